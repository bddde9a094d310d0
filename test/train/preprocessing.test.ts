// How images become the model's input is part of a run: train's fit and filter are recorded in the
// checkpoint, and generation on new images decodes them the same way.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import * as radkit from '../../lib/index.js';
import { main } from '../../lib/cli/main.js';
import { readCheckpointMeta } from '../../lib/train/checkpoint.js';
import type { TrainOptions } from '../../lib/train/trainer.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-preprocessing-'));
const dataDir = path.join(tmp, 'data');
const TINY = { preset: 'small' as const, dModel: 32, heads: 4, dFF: 64, encoderLayers: 1, decoderLayers: 1, resnetWidths: [8, 8, 8, 16, 16], resnetBlocks: [1, 1, 1, 1], prototypesPerClass: 2, topK: 2 };
let ds: ReturnType<typeof radkit.data.readR2Gen>;
let tokenizer: radkit.text.Tokenizer;

const options = (outDir: string, extra: Partial<TrainOptions> = {}): TrainOptions => ({
  tokenizer, outDir, epochs: 1, batchSize: 8, imageSize: 32, progress: 'none', workers: 0, evaluate: false, initBatches: 0, ...extra,
});

beforeAll(async () => {
  await radkit.data.synthesize({ out: dataDir, train: 8, val: 2, test: 2, size: 32, seed: 4, views: 1 });
  ds = radkit.data.readR2Gen(path.join(dataDir, 'annotation.json'), { labels: path.join(dataDir, 'labels.json') });
  tokenizer = radkit.text.Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: 1 });
}, 120_000);

afterEach(() => vi.restoreAllMocks());

describe('preprocessing recorded in checkpoints', () => {
  it('train records fit and filter; generate reads new images with them', async () => {
    const run = path.join(tmp, 'crop');
    const model = radkit.xpronet({ tokenizer, ...TINY, seed: 1 });
    await radkit.train(model, ds, options(run, { fit: 'center-crop', filter: 'linear' }));
    model.dispose();
    const last = path.join(run, 'checkpoints', 'last');
    expect(readCheckpointMeta(last)!.preprocessing).toMatchObject({ imageSize: 32, fit: 'center-crop', filter: 'linear' });

    // A 64 x 32 image whose centre differs from its squeezed whole, and its centre cut out by hand.
    const W = 64, H = 32;
    const px = Buffer.from(Array.from({ length: W * H }, (_, i) => ((i % W) < 16 ? 255 : (i % W) >= 48 ? 0 : ((i * 37) % 200) + 20)));
    const wide = path.join(tmp, 'wide.png'), centre = path.join(tmp, 'centre.png');
    await sharp(px, { raw: { width: W, height: H, channels: 1 } }).png().toFile(wide);
    await sharp(px, { raw: { width: W, height: H, channels: 1 } }).extract({ left: 16, top: 0, width: 32, height: 32 }).png().toFile(centre);
    const logged: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void logged.push(a.join(' ')));
    const errors: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void errors.push(a.join(' ')));
    const score = async (image: string) => {
      logged.length = 0;
      expect(await main(['generate', '--checkpoint', last, image, '--method', 'greedy', '--max-length', '4', '--json']), errors.join('\n')).toBe(0);
      return JSON.parse(logged.join('\n'))[0].score as number;
    };
    // The recorded center-crop: the wide image reads as its centre (at 32 px no resampling is left).
    const cropped = await score(wide);
    expect(cropped).toBe(await score(centre));
    // The same checkpoint told to stretch reads the whole width squeezed: another input, another score.
    const file = path.join(last, 'checkpoint.json');
    const meta = JSON.parse(fs.readFileSync(file, 'utf8'));
    fs.writeFileSync(file, JSON.stringify({ ...meta, preprocessing: { ...meta.preprocessing, fit: 'stretch' } }));
    expect(await score(wide)).not.toBe(cropped);
    // Checkpoints written before fit/filter were recorded read as stretch / lanczos3.
    const { fit: _f, filter: _l, ...older } = meta.preprocessing;
    fs.writeFileSync(file, JSON.stringify({ ...meta, preprocessing: older }));
    expect(readCheckpointMeta(last)!.preprocessing.fit).toBeUndefined();
    expect(await score(wide)).toBeTypeOf('number');
    // A value radkit does not know is a damaged checkpoint, named.
    fs.writeFileSync(file, JSON.stringify({ ...meta, preprocessing: { ...meta.preprocessing, fit: 'squash' } }));
    expect(() => readCheckpointMeta(last)).toThrow(/checkpoint\.json.*"preprocessing\.fit" must be "stretch" or "center-crop"/);
  }, 120_000);

  it('bad fit or filter options are refused before anything is written', async () => {
    const model = radkit.xpronet({ tokenizer, ...TINY, seed: 2 });
    const run = path.join(tmp, 'bad');
    await expect(radkit.train(model, ds, options(run, { fit: 'squash' as 'stretch' }))).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/fit must be 'stretch' or 'center-crop'/) });
    await expect(radkit.train(model, ds, options(run, { filter: 'bicubic' as 'cubic' }))).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/filter must be one of lanczos3/) });
    expect(fs.existsSync(run)).toBe(false);
    model.dispose();
  });
});
