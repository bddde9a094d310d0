// Model selection in the trainer: checkpoints/best is the epoch with the highest validation score,
// and a tie goes to the later epoch (a metric on a plateau keeps the weights trained longest). A toy
// kind (a tiny XProNet-computed captioner) gets a scripted validation score per epoch.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { Model } from '../../lib/models/model.js';
import { registerModelKind, unregisterModelKind, type ModelKind } from '../../lib/models/registry.js';

let scores: number[] = [];
let calls = 0;
const TOY: ModelKind = {
  name: 'selection-probe',
  summary: 'a toy captioner with a scripted validation score',
  task: 'generation',
  nativeKind: 'xpronet',
  presets: ['tiny'],
  configDefaults: () => ({}),
  create: () => {
    throw new Error('not created through the registry in this test');
  },
  metric: 'score',
  views: () => 1,
  evaluate: async () => ({ headline: { score: scores[calls++] } }),
};

let tmp: string;
let ds: ReturnType<typeof radkit.data.readR2Gen>;
let tokenizer: radkit.text.Tokenizer;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-selection-'));
  await radkit.data.synthesize({ out: path.join(tmp, 'data'), train: 8, val: 2, test: 2, size: 32, seed: 1, views: 1 });
  ds = radkit.data.readR2Gen(path.join(tmp, 'data', 'annotation.json'));
  tokenizer = radkit.text.Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: 1 });
  registerModelKind(TOY);
}, 60_000);
afterAll(() => void unregisterModelKind('selection-probe'));

function toyModel() {
  const cfg = {
    dModel: 16, heads: 2, dFF: 16, encoderLayers: 1, decoderLayers: 1, resnetWidths: [4, 4, 4, 8, 8], resnetBlocks: [1, 1, 1, 1],
    prototypesPerClass: 1, topK: 1, theta: 1.5, alpha: 0.4, lambdaImage: 0, lambdaText: 0, lambdaClass: 0, dropout: 0, labelSource: 'none', seed: 0,
    vocabSize: tokenizer.vocabSize + 1, maxPositions: 128,
  };
  return Model.create('selection-probe', cfg, { nativeKind: 'xpronet' });
}

async function run(name: string, epochScores: number[]) {
  scores = epochScores;
  calls = 0;
  const m = toyModel();
  const outDir = path.join(tmp, name);
  try {
    const r = await radkit.train(m, ds, { tokenizer, outDir, epochs: epochScores.length, batchSize: 8, imageSize: 32, progress: 'none', workers: 0, initBatches: 0 });
    const bestMeta = JSON.parse(fs.readFileSync(path.join(outDir, 'checkpoints', 'best', 'checkpoint.json'), 'utf8'));
    return { best: r.best, bestEpoch: bestMeta.epoch as number };
  } finally {
    m.dispose();
  }
}

describe('model selection by the validation metric', () => {
  it('keeps the highest score; a tie goes to the later epoch', async () => {
    expect(await run('rising-then-falling', [0.1, 0.3, 0.2])).toEqual({ best: { metric: 'score', score: 0.3, epoch: 2 }, bestEpoch: 2 });
    expect(await run('flat', [0.2, 0.2, 0.2])).toEqual({ best: { metric: 'score', score: 0.2, epoch: 3 }, bestEpoch: 3 });
    expect(await run('tie-after-a-drop', [0.3, 0.1, 0.3, 0.2])).toEqual({ best: { metric: 'score', score: 0.3, epoch: 3 }, bestEpoch: 3 });
  }, 120_000);
});
