// Seeded native augmentations (native/nn/augment through lib/data/augment.ts) and the loader using them.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { Tensor } from '../../lib/index.js';
import { augmentImages, augmentInPlace, nativeAugmentConfig } from '../../lib/data/augment.js';
import { loadNative } from '../../lib/native.js';
import type { NativeTensor } from '../../typings/native.js';
import { DataLoader, type Batch } from '../../lib/data/loader.js';
import { readR2Gen, readUnpaired } from '../../lib/data/r2gen.js';
import { synthesize } from '../../lib/data/synth/index.js';
import { UnpairedLoader, unpairedTensorBatch } from '../../lib/data/unpaired.js';
import { rng } from './helpers.js';

const N = 6;
const H = 24;
const W = 20;
function images(seed = 1): Float32Array {
  const r = rng(seed);
  // smooth blobs plus noise, values in [0, 1]
  return new Float32Array(N * H * W).map((_, i) => {
    const x = i % W;
    const y = Math.floor(i / W) % H;
    return Math.min(1, Math.max(0, 0.5 + 0.3 * Math.sin(x / 3 + i / (H * W)) * Math.cos(y / 4) + 0.1 * (r() - 0.5)));
  });
}
const SEEDS = [11, 22, 33, 44, 55, 66];
const FULL = { resizedCrop: {}, affine: {}, blur: { p: 1 }, brightness: 0.2, contrast: 0.2 };

async function aug(data: Float32Array, seeds: number[], o: Parameters<typeof augmentImages>[2], n = seeds.length): Promise<Float32Array> {
  using t = Tensor.from(data, [n, 1, H, W]);
  using out = await augmentImages(t, seeds, o);
  return out.toArray() as Float32Array;
}
const sample = (d: Float32Array, i: number) => d.slice(i * H * W, (i + 1) * H * W);

describe('augmentImages', () => {
  it('same seeds, same pixels; other seeds, other pixels; the input is untouched; each sample depends on its own seed only', async () => {
    const x = images();
    const copy = x.slice();
    const a = await aug(x, SEEDS, FULL);
    const b = await aug(x, SEEDS, FULL);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    expect(Buffer.from(x.buffer).equals(Buffer.from(copy.buffer))).toBe(true);
    const c = await aug(x, SEEDS.map((s) => s + 1), FULL);
    for (let i = 0; i < N; i++) expect(Array.from(sample(c, i))).not.toEqual(Array.from(sample(a, i)));
    // sample 3 alone, and with one and two threads: bit-identical to its row in the batch
    const alone = await aug(sample(x, 3), [SEEDS[3]], FULL, 1);
    expect(Array.from(alone)).toEqual(Array.from(sample(a, 3)));
    const threads = radkit.getNumThreads();
    try {
      radkit.setNumThreads(1);
      const one = await aug(x, SEEDS, FULL);
      expect(Buffer.from(one.buffer).equals(Buffer.from(a.buffer))).toBe(true);
    } finally {
      radkit.setNumThreads(threads);
    }
    for (const v of a) expect(v >= 0 && v <= 1).toBe(true);
    // in place on a Float32Array (the loader's path): the same pixels
    const inPlace = x.slice();
    await augmentInPlace(inPlace, [N, 1, H, W], SEEDS, FULL);
    expect(Buffer.from(inPlace.buffer).equals(Buffer.from(a.buffer))).toBe(true);
    await expect(augmentInPlace(x.slice(), [N, 1, H, W + 1], SEEDS, FULL)).rejects.toThrow(/shape holds/);
  });

  it('geometry: no transform is the identity, a flip mirrors exactly, a full-size crop is the identity', async () => {
    const x = images(2);
    expect(Array.from(await aug(x, SEEDS, {}))).toEqual(Array.from(x));
    const f = await aug(x, SEEDS, { hflip: 1 });
    for (let i = 0; i < N; i++)
      for (let y = 0; y < H; y++)
        for (let k = 0; k < W; k++) expect(f[i * H * W + y * W + k]).toBeCloseTo(x[i * H * W + y * W + (W - 1 - k)], 5);
    const full = await aug(x, SEEDS, { resizedCrop: { scale: [1, 1], ratio: [W / H, W / H] } });
    for (let j = 0; j < x.length; j++) expect(full[j]).toBeCloseTo(x[j], 5);
    // a real crop zooms in: the result differs and keeps values in range
    const crop = await aug(x, SEEDS, { resizedCrop: { scale: [0.5, 0.5] } });
    expect(Array.from(crop)).not.toEqual(Array.from(x));
  });

  it('photometric: brightness scales, contrast scales about the mean, blur smooths', async () => {
    const x = images(3).map((v) => 0.25 + 0.5 * v); // away from the clamps
    const b = await aug(x, SEEDS, { brightness: 0.3 });
    const factors = new Set<string>();
    for (let i = 0; i < N; i++) {
      const s = sample(x, i);
      const o = sample(b, i);
      const k = o[0] / s[0];
      expect(k).toBeGreaterThanOrEqual(0.7);
      expect(k).toBeLessThanOrEqual(1.3);
      for (let j = 0; j < s.length; j++) if (o[j] < 1) expect(o[j]).toBeCloseTo(s[j] * k, 5);
      factors.add(k.toFixed(4));
    }
    expect(factors.size).toBe(N);
    const c = await aug(x, SEEDS, { contrast: 0.3 });
    for (let i = 0; i < N; i++) {
      const s = sample(x, i);
      const o = sample(c, i);
      const m = s.reduce((p, v) => p + v, 0) / s.length;
      const k = (o[5] - m) / (s[5] - m);
      for (let j = 0; j < s.length; j++) expect(o[j]).toBeCloseTo(m + k * (s[j] - m), 4);
    }
    const tv = (d: Float32Array) => d.reduce((p, v, j) => p + (j % W ? Math.abs(v - d[j - 1]) : 0), 0);
    const bl = await aug(x, SEEDS, { blur: { p: 1, sigma: [1, 1.5] } });
    expect(tv(bl)).toBeLessThan(0.7 * tv(x));
    expect(bl.reduce((p, v) => p + v, 0) / bl.length).toBeCloseTo(x.reduce((p, v) => p + v, 0) / x.length, 2);
  });

  it('the CPU loops equal the ATen definition (affine_grid, grid_sample, reflection_pad2d, conv2d)', async () => {
    const ref = (loadNative() as unknown as { testing: { augmentImagesReference(i: NativeTensor, s: NativeTensor, c: object): NativeTensor } }).testing.augmentImagesReference;
    for (const dtype of ['float32', 'float64'] as const) {
      for (const o of [FULL, { affine: { degrees: 30, translate: 0.2, scale: [0.7, 1.3] as [number, number] }, hflip: 0.5 }, { blur: { p: 1, sigma: [0.5, 2.5] as [number, number] } }]) {
        using t = Tensor.from(images(4), [N, 1, H, W]).to(dtype);
        using seeds = Tensor.from(BigInt64Array.from(SEEDS.map(BigInt)), [N]);
        using fast = await augmentImages(t, SEEDS, o);
        using slow = Tensor.wrap(ref(Tensor.handle(t), Tensor.handle(seeds), nativeAugmentConfig(o)));
        const a = fast.toArray() as Float64Array;
        const b = slow.toArray() as Float64Array;
        let max = 0;
        for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
        expect(max, `${dtype} ${JSON.stringify(o)}`).toBeLessThan(dtype === 'float32' ? 2e-5 : 1e-12);
      }
    }
  });

  it('checks its arguments', async () => {
    using t = Tensor.from(images(), [N, 1, H, W]);
    await expect(augmentImages(t, [1, 2], {})).rejects.toThrow(/2 seeds for 6 images/);
    await expect(augmentImages(t, SEEDS, { hflip: 1.5 })).rejects.toThrow(/hflip must be a probability/);
    using flat = Tensor.from(new Float32Array(4), [4]);
    await expect(augmentImages(flat, [1, 2, 3, 4], {})).rejects.toThrow(/\[N, C, H, W\]/);
  });
});

describe('loaders with augmentations', () => {
  const dir = mkdtempSync(join(tmpdir(), 'radkit-aug-'));
  beforeAll(async () => {
    await synthesize({ out: dir, train: 10, val: 2, test: 2, size: 48, views: 2, unpaired: true, workers: 1 });
  });
  async function epoch(l: DataLoader, e: number): Promise<Batch[]> {
    const out: Batch[] = [];
    for await (const b of l.epoch(e)) out.push(b);
    return out;
  }
  it('reproducible per run seed and epoch, whatever the number of workers; differ across epochs and seeds', async () => {
    const ds = readR2Gen(join(dir, 'annotation.json'));
    const opts = { split: 'train' as const, batchSize: 4, imageSize: 32, seed: 7, augment: { image: FULL, text: { shuffleSentences: 0.5 } } };
    const a = await epoch(new DataLoader(ds, { ...opts, workers: 1 }), 0);
    const b = await epoch(new DataLoader(ds, { ...opts, workers: 3, prefetch: 3 }), 0);
    expect(a.map((x) => Array.from(x.images.data))).toEqual(b.map((x) => Array.from(x.images.data)));
    expect(a.map((x) => x.reports)).toEqual(b.map((x) => x.reports));
    const e1 = await epoch(new DataLoader(ds, { ...opts, workers: 1 }), 1);
    const byId = (bs: Batch[]) => new Map(bs.flatMap((x) => x.ids.map((id, i) => [id, Array.from(x.images.data.slice(i * 2 * 32 * 32, (i + 1) * 2 * 32 * 32))])));
    const m0 = byId(a);
    const m1 = byId(e1);
    for (const [id, px] of m0) expect(m1.get(id)).not.toEqual(px);
    const plain = byId(await epoch(new DataLoader(ds, { ...opts, augment: undefined, workers: 1 }), 0));
    for (const [id, px] of m0) expect(plain.get(id)).not.toEqual(px);
  });
  it('unpaired batches become TensorBatches with paired: false and image labels as extras', async () => {
    const u = new UnpairedLoader(readUnpaired(join(dir, 'unpaired')), { batchSize: 3, reportBatchSize: 2, imageSize: 32, tokenizer: radkit.text.Tokenizer.build(['a b c.'], { threshold: 1 }), augment: { image: FULL } });
    for await (const b of u) {
      const tb = unpairedTensorBatch(b);
      try {
        expect(tb.paired).toBe(false);
        expect(tb.images!.shape).toEqual([3, 1, 1, 32, 32]);
        expect(tb.tokens!.shape[0]).toBe(2);
        expect(tb.labels!.shape).toEqual([2, 14]);
        expect(tb.extras.imageLabels.shape).toEqual([3, 14]);
        expect(tb.extras.imageLabels.dtype).toBe('int64');
      } finally {
        tb.dispose();
      }
      break;
    }
  });
});
