// Trains a tiny XProNet (used by train.test.ts in a child process so it can be killed with -9).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const radkit = require('../../dist/lib/index.js');

const [dataDir, outDir, epochs] = process.argv.slice(2);
const TINY = { preset: 'small', dModel: 64, heads: 4, dFF: 128, encoderLayers: 1, decoderLayers: 1, resnetWidths: [8, 8, 16, 16, 32], resnetBlocks: [1, 1, 1, 1], prototypesPerClass: 4, topK: 4, seed: 1 };

(async () => {
  radkit.setNumThreads(1);
  const ds = radkit.data.readR2Gen(path.join(dataDir, 'annotation.json'), { labels: path.join(dataDir, 'labels.json') });
  const tokenizer = radkit.text.Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: 1 });
  const model = radkit.xpronet({ tokenizer, ...TINY });
  const result = await radkit.train(model, ds, {
    tokenizer, outDir, epochs: Number(epochs), batchSize: 8, imageSize: 64, lr: 2e-3, progress: 'json', workers: 1,
    evaluate: { split: 'val', metric: 'bleu4', generate: { beams: 2, maxLength: 30, noRepeatNgram: 3 } },
  });
  model.dispose();
  console.log(JSON.stringify({ result }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
