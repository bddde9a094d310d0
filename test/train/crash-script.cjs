// Trains a tiny XProNet into OUT for EPOCHS epochs (crash-safety.test.ts kills it with -9 and runs
// it again). With WRITE_PAUSE_MS > 0 every checkpoint write lingers that long inside its temporary
// folder (the stand-in for a slow disk), so kills can land inside writes.
'use strict';
const path = require('node:path');
const radkit = require('../../dist/lib/index.js');

const [dataDir, outDir, epochs, writePauseMs] = process.argv.slice(2);
const TINY = { preset: 'small', dModel: 32, heads: 2, dFF: 64, encoderLayers: 1, decoderLayers: 1, resnetWidths: [4, 4, 8, 8, 16], resnetBlocks: [1, 1, 1, 1], prototypesPerClass: 2, topK: 2, seed: 1 };

(async () => {
  radkit.setNumThreads(1);
  const ds = radkit.data.readR2Gen(path.join(dataDir, 'annotation.json'), { labels: path.join(dataDir, 'labels.json') });
  const tokenizer = radkit.text.Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: 1, maxLength: 24 });
  const model = radkit.xpronet({ tokenizer, ...TINY });
  const pause = Number(writePauseMs ?? 0);
  if (pause > 0) {
    const save = model.saveWeights.bind(model);
    model.saveWeights = async (w, o) => {
      await save(w, o);
      await new Promise((r) => setTimeout(r, pause));
    };
  }
  const result = await radkit.train(model, ds, {
    tokenizer, outDir, epochs: Number(epochs), batchSize: 4, imageSize: 32, lr: 2e-3, progress: 'none', workers: 0, initBatches: 1,
    evaluate: { split: 'val', metric: 'bleu4', generate: { method: 'greedy', maxLength: 8 } },
  });
  model.dispose();
  console.log(JSON.stringify({ result }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
