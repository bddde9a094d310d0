// Training-batch augmentations reach the trainer's loader: from train()'s `augment` option and from
// the kind's registry entry (ModelKind.augment), recorded in the run, checked when resuming.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { diseasenet } from '../../lib/models/diseasenet.js';
import { otdrgTokenizer } from '../../lib/models/otdrg.js';
import { findModelKind, registerModelKind, unregisterModelKind } from '../../lib/models/registry.js';
import type { AugmentOptions } from '../../lib/data/augment.js';
import type { TrainOptions } from '../../lib/train/trainer.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-augment-'));
const dataDir = path.join(tmp, 'data');
const SIZE = 64;
let ds: ReturnType<typeof radkit.data.readR2Gen>;
let tokenizer: radkit.text.Tokenizer;
const AUG: AugmentOptions = { image: { affine: { degrees: 10, translate: 0.1 }, contrast: 0.3 } };

const options = (outDir: string, extra: Partial<TrainOptions> = {}): TrainOptions => ({
  tokenizer, outDir, epochs: 1, batchSize: 16, imageSize: SIZE, progress: 'none', workers: 0, evaluate: false, seed: 4, ...extra,
});
/** The focal loss of every step of a 1-epoch diseasenet run (same weights and batch order every time). */
async function stepLosses(name: string, extra: Partial<TrainOptions> = {}): Promise<number[]> {
  const m = diseasenet({ preset: 'tiny', seed: 1 });
  const dir = path.join(tmp, name);
  try {
    await radkit.train(m, ds, options(dir, extra));
  } finally {
    m.dispose();
  }
  return fs.readFileSync(path.join(dir, 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.type === 'step').map((e) => e.loss);
}
const recorded = (name: string) => JSON.parse(fs.readFileSync(path.join(tmp, name, 'checkpoints', 'last', 'checkpoint.json'), 'utf8')).trainOptions;

beforeAll(async () => {
  await radkit.data.synthesize({ out: dataDir, train: 48, val: 8, test: 8, size: SIZE, seed: 9, views: 1 });
  ds = radkit.data.readR2Gen(path.join(dataDir, 'annotation.json'), { labels: path.join(dataDir, 'labels.json') });
  tokenizer = otdrgTokenizer(ds, { threshold: 1 }) as radkit.text.Tokenizer;
}, 120_000);

describe('training augmentations', () => {
  it("train({ augment }) changes the batches the model sees; the run records it; the kind's default applies and false turns it off", async () => {
    const plain = await stepLosses('plain');
    expect(await stepLosses('plain-again')).toEqual(plain); // deterministic: a difference below is the augmentation's
    const augmented = await stepLosses('augmented', { augment: AUG });
    expect(augmented).toHaveLength(plain.length);
    expect(augmented[0]).not.toBe(plain[0]); // the very first batch already differs
    expect(recorded('augmented').augment).toEqual(AUG);
    expect(recorded('plain').augment).toBeUndefined();

    // a kind that declares augmentations in the registry gets them without the option
    const original = findModelKind('diseasenet')!;
    unregisterModelKind('diseasenet');
    try {
      registerModelKind({ ...original, augment: AUG });
      expect(await stepLosses('kind-default')).toEqual(augmented);
      expect(recorded('kind-default').augment).toEqual(AUG);
      expect(await stepLosses('kind-default-off', { augment: false })).toEqual(plain);
    } finally {
      unregisterModelKind('diseasenet');
      registerModelKind(original);
    }
  }, 300_000);

  it('bad augmentations are refused before anything is written; resuming with other augmentations is a settings difference', async () => {
    const m = diseasenet({ preset: 'tiny', seed: 1 });
    try {
      const bad = path.join(tmp, 'bad');
      await expect(radkit.train(m, ds, options(bad, { augment: { image: { blur: { p: 3 } } } }))).rejects.toThrow(/options\.augment: .*blur\.p must be a probability/);
      expect(fs.existsSync(bad)).toBe(false);
      const dir = path.join(tmp, 'resume');
      await radkit.train(m, ds, options(dir, { augment: AUG }));
      await expect(radkit.train(m, ds, options(dir, { epochs: 2 }))).rejects.toThrow(/augment\.image\.contrast: 0\.3 -> null/);
      expect(JSON.parse(fs.readFileSync(path.join(dir, 'checkpoints', 'last', 'checkpoint.json'), 'utf8')).epoch).toBe(1);
    } finally {
      m.dispose();
    }
  }, 300_000);
});
