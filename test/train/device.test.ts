// train() / loadCheckpoint() / the CLI with a device and a precision, on the CPU: a device that
// cannot be used is refused (naming it and why) before any file is written; a CPU run records
// its precision and device, resumes only at that precision, and its checkpoint loads and
// generates; an out-of-memory step leaves the run's last checkpoint as it was and the process goes on.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import * as radkit from '../../lib/index.js';
import { main } from '../../lib/cli/main.js';
import { loadNative } from '../../lib/native.js';
import type { TrainOptions } from '../../lib/train/trainer.js';
import { modelWeights } from './run-weights.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-device-'));
const dataDir = path.join(tmp, 'data');
const TINY = { preset: 'small' as const, dModel: 32, heads: 4, dFF: 64, encoderLayers: 1, decoderLayers: 1, resnetWidths: [8, 8, 8, 16, 16], resnetBlocks: [1, 1, 1, 1], prototypesPerClass: 2, topK: 2 };
const cuda = radkit.info().cudaAvailable;
const testing = () => (loadNative() as unknown as { testing: { probeOutOfMemoryAbove(rows: number): void } }).testing;
let ds: ReturnType<typeof radkit.data.readR2Gen>;
let tokenizer: radkit.text.Tokenizer;

const options = (outDir: string, extra: Partial<TrainOptions> = {}): TrainOptions => ({
  tokenizer, outDir, epochs: 1, batchSize: 8, imageSize: 32, progress: 'none', workers: 0, evaluate: false, initBatches: 0, ...extra,
});

beforeAll(async () => {
  await radkit.data.synthesize({ out: dataDir, train: 16, val: 4, test: 4, size: 32, seed: 2, views: 1 });
  ds = radkit.data.readR2Gen(path.join(dataDir, 'annotation.json'), { labels: path.join(dataDir, 'labels.json') });
  tokenizer = radkit.text.Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: 1 });
}, 120_000);

afterEach(() => testing().probeOutOfMemoryAbove(-1));

describe('train() on a device', () => {
  it.skipIf(cuda)("device 'cuda' without CUDA is an ERR_DEVICE naming the device and why, before the run folder exists", async () => {
    const out = path.join(tmp, 'no-cuda');
    const m = radkit.xpronet({ tokenizer, ...TINY, seed: 1 });
    const before = modelWeights(m);
    await expect(radkit.train(m, ds, options(out, { device: 'cuda' }))).rejects.toMatchObject({
      name: 'ArgumentError',
      code: 'ERR_DEVICE',
      message: expect.stringMatching(/^train: device is cuda:0 but CUDA is not available: .*(built without CUDA|no device is visible).*radkit doctor/),
    });
    await expect(radkit.train(m, ds, options(out, { device: 'cuda:2' }))).rejects.toMatchObject({ code: 'ERR_DEVICE', message: expect.stringMatching(/cuda:2/) });
    expect(fs.existsSync(out)).toBe(false);
    expect(m.device).toBe('cpu');
    expect(modelWeights(m)).toEqual(before);
    m.dispose();
  });

  it('bad device names and precisions, and float16 off CUDA, are refused before the run folder exists', async () => {
    const out = path.join(tmp, 'bad-options');
    const m = radkit.xpronet({ tokenizer, ...TINY, seed: 1 });
    await expect(radkit.train(m, ds, options(out, { device: 'gpu' }))).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/device must be 'cpu', 'cuda' or 'cuda:N'/) });
    await expect(radkit.train(m, ds, options(out, { precision: 'fp8' as never }))).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/precision must be/) });
    await expect(radkit.train(m, ds, options(out, { device: 'cpu', precision: 'float16' }))).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/float16.*CUDA only.*cpu/) });
    expect(fs.existsSync(out)).toBe(false);
    m.dispose();
  });

  it("a bfloat16 CPU run records precision and device, resumes only at its precision, and its checkpoint loads with { device: 'cpu' } and generates", async () => {
    const out = path.join(tmp, 'bf16');
    const m = radkit.xpronet({ tokenizer, ...TINY, seed: 1 });
    const r = await radkit.train(m, ds, options(out, { device: 'cpu', precision: 'bfloat16' }));
    expect(r.history[0].trainLoss).toBeGreaterThan(0);
    const meta = JSON.parse(fs.readFileSync(path.join(out, 'checkpoints', 'last', 'checkpoint.json'), 'utf8'));
    expect(meta.trainOptions).toMatchObject({ precision: 'bfloat16', device: 'cpu' });
    await expect(radkit.train(m, ds, options(out, { epochs: 2, precision: 'float32' }))).rejects.toMatchObject({ code: 'ERR_CHECKPOINT', message: expect.stringMatching(/precision: "bfloat16" -> "float32"/) });
    const trained = modelWeights(m);
    m.dispose();

    const ck = await radkit.loadCheckpoint(out, { device: 'cpu' });
    expect(ck.model.device).toBe('cpu');
    expect(modelWeights(ck.model)).toEqual(trained);
    const g = await radkit.generateSplit(ck.model, tokenizer, ds, { split: 'test', preprocessing: ck.meta.preprocessing, generate: { method: 'greedy', maxLength: 8 } });
    expect(g).toHaveLength(ds.splits.test.length);
    ck.model.dispose();
    if (!cuda) await expect(radkit.loadCheckpoint(out, { device: 'cuda' })).rejects.toMatchObject({ code: 'ERR_DEVICE', fn: 'loadCheckpoint' });
  }, 120_000);

  it("an out-of-memory step keeps the run's last checkpoint as it was, says where it is, and the process goes on", async () => {
    const out = path.join(tmp, 'oom');
    const probe = () => radkit.Model.create('testing-probe', { target: 1 });
    const a = probe();
    await radkit.train(a, ds, options(out, { epochs: 1, batchSize: 4 }));
    a.dispose();
    const weightsFile = path.join(out, 'checkpoints', 'last', 'weights.pt');
    const bytes = fs.readFileSync(weightsFile);
    testing().probeOutOfMemoryAbove(2);
    const b = probe();
    await expect(radkit.train(b, ds, options(out, { epochs: 2, batchSize: 4 }))).rejects.toMatchObject({
      name: 'OutOfMemoryError',
      code: 'ERR_OUT_OF_MEMORY',
      message: expect.stringMatching(/^train: Model\.trainStep: out of memory in a training step of this testing-probe model on cpu at precision float32 \(batch: images \[4, 1, 1, 32, 32\].*the last completed epoch \(1\) is checkpointed in .*checkpoints[/\\]last$/),
    });
    b.dispose();
    expect(fs.readFileSync(weightsFile).equals(bytes)).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'checkpoints', 'last', 'checkpoint.json'), 'utf8')).epoch).toBe(1);
    // The same process trains on: with the memory back, the run resumes from its intact checkpoint.
    testing().probeOutOfMemoryAbove(-1);
    const c = probe();
    const r = await radkit.train(c, ds, options(out, { epochs: 2, batchSize: 4 }));
    expect(r.history.map((h) => h.epoch)).toEqual([0, 1]);
    c.dispose();
  }, 60_000);
});

describe('the CLI with --device', () => {
  it.skipIf(cuda)('radkit train / generate --device cuda exit 1 with ERR_DEVICE before reading or writing anything', async () => {
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const out = path.join(tmp, 'cli-cuda');
      expect(await main(['train', '--data', dataDir, '--out', out, '--device', 'cuda', '--epochs', '1'])).toBe(1);
      expect(err.mock.calls.flat().join('\n')).toMatch(/radkit train: \[ERR_DEVICE\] radkit train: device is cuda:0 but CUDA is not available/);
      expect(fs.existsSync(out)).toBe(false);
      err.mockClear();
      expect(await main(['generate', '--checkpoint', path.join(tmp, 'bf16'), '--device', 'cuda:1', path.join(dataDir, 'images', 'none.png')])).toBe(1);
      expect(err.mock.calls.flat().join('\n')).toMatch(/\[ERR_DEVICE\] loadCheckpoint: device is cuda:1/);
      err.mockClear();
      expect(await main(['train', '--data', dataDir, '--out', out, '--precision', 'fp8'])).toBe(2);
    } finally {
      err.mockRestore();
    }
  });
});
