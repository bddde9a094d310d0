// The VQ image tokenizer (native/nn/vq.h, kind vqgan): the straight-through quantiser's values and
// gradients and the EMA codebook update (with dead-code restart) against float64 references written
// here; the taming-transformers parameter names (listed here from taming's naming rules, not read
// from the model) of a tiny checkpoint the test writes; encode/decode round trip; learning
// (reconstruction L1 below the mean-image baseline); error cases.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { Tensor, TensorBatch } from '../../lib/index.js';
import { decodeCodes, encodeImages, loadTamingWeights, vqgan } from '../../lib/models/vqgan.js';
import { cropBox, downsamplingFactor, keypatchCodes, keypatchCodesInContext } from '../../lib/models/cyclic-keypatches.js';
import { loadNative } from '../../lib/native.js';
import { arr, f64, randArray, rng } from './helpers.js';

type H = unknown;
interface VqTesting {
  quantize(z: H, codebook: H): { zq: H; codes: H; codebookLoss: H; commitLoss: H };
  emaUpdate(cs: H, ea: H, cb: H, z: H, codes: H, o: { decay: number; eps: number; deadThreshold: number; seed: number }): { clusterSize: H; embedAvg: H; codebook: H; restarted: number };
}
const T = (): VqTesting => (loadNative() as unknown as { testing: { vq: VqTesting } }).testing.vq;
const h = (t: Tensor) => Tensor.handle(t) as H;
const w = (x: H) => Tensor.wrap(x as never);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-vq-'));

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number) {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) if (!(Math.abs(actual[i] - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])))) throw new Error(`index ${i}: got ${actual[i]}, expected ${expected[i]}`);
}

/** Nearest code of each row (float64, ties to the lower index). */
function nearest(z: Float64Array, cb: Float64Array, N: number, K: number, D: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < N; i++) {
    let best = 0, bestD = Infinity;
    for (let k = 0; k < K; k++) {
      let d = 0;
      for (let x = 0; x < D; x++) d += (z[i * D + x] - cb[k * D + x]) ** 2;
      if (d < bestD) [best, bestD] = [k, d];
    }
    out.push(best);
  }
  return out;
}

describe('VQ quantiser', () => {
  it('picks the nearest code and passes gradients straight through (float64)', () => {
    const N = 7, K = 5, D = 3, beta = 0.25;
    const z = randArray(N * D, rng(1)), cb = randArray(K * D, rng(2)), W = randArray(N * D, rng(3));
    const codes = nearest(z, cb, N, K, D);
    const zt = f64(Float64Array.from(z), [N, D], true), cbt = f64(Float64Array.from(cb), [K, D], true), Wt = f64(W, [N, D]);
    const q = T().quantize(h(zt), h(cbt));
    const zq = w(q.zq), cl = w(q.codebookLoss), ml = w(q.commitLoss);
    expect(arr(w(q.codes))).toEqual(codes);
    const e = codes.flatMap((k) => Array.from(cb.subarray(k * D, (k + 1) * D)));
    expectClose(arr(zq), e, 1e-12);
    let sq = 0;
    for (let i = 0; i < N * D; i++) sq += (z[i] - e[i]) ** 2;
    expectClose([arr(cl)[0], arr(ml)[0]], [sq / (N * D), sq / (N * D)], 1e-12);
    // L = sum(zq * W) + codebook + beta * commit: dL/dz = W + beta 2 (z - e) / ND (straight through,
    // no codebook term); dL/de_k = sum over rows coded k of 2 (e_k - z_i) / ND (no term from zq).
    // (three backward passes: gradients accumulate in the leaves)
    radkit.sum(radkit.mul(zq, Wt)).backward();
    cl.backward();
    radkit.mul(ml, f64(Float64Array.of(beta), [])).backward();
    const gz = Array.from({ length: N * D }, (_, i) => W[i] + (beta * 2 * (z[i] - e[i])) / (N * D));
    const gcb = new Array(K * D).fill(0);
    codes.forEach((k, i) => {
      for (let x = 0; x < D; x++) gcb[k * D + x] += (2 * (cb[k * D + x] - z[i * D + x])) / (N * D);
    });
    expectClose(arr(zt.grad!), gz, 1e-12);
    expectClose(arr(cbt.grad!), gcb, 1e-12);
  });

  it('updates the EMA codebook as the float64 reference does', () => {
    const N = 9, K = 4, D = 3, decay = 0.9, eps = 1e-5;
    const z = randArray(N * D, rng(4)), cb = randArray(K * D, rng(5));
    const cs = Float64Array.from([1, 0.5, 2, 0.25]), ea = randArray(K * D, rng(6));
    const codes = nearest(z, cb, N, K, D);
    const r = T().emaUpdate(h(f64(cs, [K])), h(f64(ea, [K, D])), h(f64(cb, [K, D])), h(f64(z, [N, D])), h(Tensor.from(BigInt64Array.from(codes, BigInt), [N])), { decay, eps, deadThreshold: 0, seed: 0 });
    const cs2 = Array.from(cs, (c, k) => decay * c + (1 - decay) * codes.filter((x) => x === k).length);
    const ea2 = Array.from(ea, (v, j) => {
      const k = Math.floor(j / D), x = j % D;
      let s = 0;
      codes.forEach((c, i) => (s += c === k ? z[i * D + x] : 0));
      return decay * v + (1 - decay) * s;
    });
    const total = cs2.reduce((a, b) => a + b, 0);
    const cb2 = ea2.map((v, j) => v / (((cs2[Math.floor(j / D)] + eps) / (total + K * eps)) * total));
    expect(r.restarted).toBe(0);
    expectClose(arr(w(r.clusterSize)), cs2, 1e-12);
    expectClose(arr(w(r.embedAvg)), ea2, 1e-12);
    expectClose(arr(w(r.codebook)), cb2, 1e-12);
  });

  it('restarts dead codes at encoder outputs of the batch', () => {
    const N = 8, K = 3, D = 2, decay = 0.99, eps = 1e-5;
    const z = randArray(N * D, rng(7));
    const cb = Float64Array.from([0, 0, 50, 50, 0.5, 0.5]); // code 1 is far from every row: never chosen
    const codes = nearest(z, cb, N, K, D);
    expect(codes).not.toContain(1);
    const cs = Float64Array.from([4, 0.01, 4]);
    const r = T().emaUpdate(h(f64(cs, [K])), h(f64(cb, [K, D])), h(f64(cb, [K, D])), h(f64(z, [N, D])), h(Tensor.from(BigInt64Array.from(codes, BigInt), [N])), { decay, eps, deadThreshold: 0.5, seed: 1 });
    expect(r.restarted).toBe(1);
    const size = arr(w(r.clusterSize)), avg = arr(w(r.embedAvg)), book = arr(w(r.codebook));
    expect(size[1]).toBe(1);
    const row = [avg[2], avg[3]];
    expect([...Array(N).keys()].some((i) => z[i * D] === row[0] && z[i * D + 1] === row[1])).toBe(true);
    const total = size.reduce((a, b) => a + b, 0);
    expectClose([book[2], book[3]], row.map((v) => v / (((1 + eps) / (total + K * eps)) * total)), 1e-12);
  });
});

// A tiny configuration: two levels (f2), attention at 8 px, 32-channel groups.
const TINY = { resolution: 16, ch: 32, chMult: [1, 2], numResBlocks: 1, attnResolutions: [8], zChannels: 16, embedDim: 8, nEmbed: 16, seed: 1 };

/** taming-transformers' parameter names and shapes for TINY (from its Encoder/Decoder/VQModel rules). */
function tamingNames(): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  const conv = (p: string, o: number, i: number, k: number) => {
    out[`${p}.weight`] = [o, i, k, k];
    out[`${p}.bias`] = [o];
  };
  const norm = (p: string, c: number) => {
    out[`${p}.weight`] = [c];
    out[`${p}.bias`] = [c];
  };
  const res = (p: string, i: number, o: number) => {
    norm(`${p}.norm1`, i);
    conv(`${p}.conv1`, o, i, 3);
    norm(`${p}.norm2`, o);
    conv(`${p}.conv2`, o, o, 3);
    if (i !== o) conv(`${p}.nin_shortcut`, o, i, 1);
  };
  const attn = (p: string, c: number) => {
    norm(`${p}.norm`, c);
    for (const n of ['q', 'k', 'v', 'proj_out']) conv(`${p}.${n}`, c, c, 1);
  };
  const mid = (p: string, c: number) => {
    res(`${p}.block_1`, c, c);
    attn(`${p}.attn_1`, c);
    res(`${p}.block_2`, c, c);
  };
  conv('encoder.conv_in', 32, 1, 3);
  res('encoder.down.0.block.0', 32, 32);
  conv('encoder.down.0.downsample.conv', 32, 32, 3);
  res('encoder.down.1.block.0', 32, 64);
  attn('encoder.down.1.attn.0', 64);
  mid('encoder.mid', 64);
  norm('encoder.norm_out', 64);
  conv('encoder.conv_out', 16, 64, 3);
  conv('quant_conv', 8, 16, 1);
  out['quantize.embedding.weight'] = [16, 8];
  conv('post_quant_conv', 16, 8, 1);
  conv('decoder.conv_in', 64, 16, 3);
  mid('decoder.mid', 64);
  res('decoder.up.1.block.0', 64, 64);
  res('decoder.up.1.block.1', 64, 64);
  attn('decoder.up.1.attn.0', 64);
  attn('decoder.up.1.attn.1', 64);
  conv('decoder.up.1.upsample.conv', 64, 64, 3);
  res('decoder.up.0.block.0', 64, 32);
  res('decoder.up.0.block.1', 32, 32);
  norm('decoder.norm_out', 32);
  conv('decoder.conv_out', 1, 32, 3);
  return out;
}

describe('vqgan model', () => {
  it('has taming-transformers parameter names and loads a taming-layout checkpoint by name', () => {
    const model = vqgan(TINY);
    try {
      const want = tamingNames();
      const shapes = model.tensorShapes();
      const own = Object.keys(shapes).filter((n) => !(n in want));
      expect(own.sort()).toEqual(['quantize.cluster_size', 'quantize.embed_avg']);
      for (const [n, s] of Object.entries(want)) expect(shapes[n], n).toEqual(s);
      const r = rng(9);
      const tensors: Record<string, Tensor> = {};
      for (const [n, s] of Object.entries(want)) tensors[n] = Tensor.from(randArray(s.reduce((a, b) => a * b, 1), r).map(Math.fround), s, { dtype: 'float32' });
      tensors['loss.discriminator.main.0.weight'] = Tensor.zeros([4, 1, 4, 4]);
      tensors['loss.perceptual_loss.lin0.model.1.weight'] = Tensor.zeros([1, 4, 1, 1]);
      const file = path.join(tmp, 'taming.safetensors');
      radkit.writeSafetensors(file, tensors);
      const report = loadTamingWeights(model, file);
      expect(report.loaded).toBe(Object.keys(want).length);
      expect(report.unexpected.sort()).toEqual(['loss.discriminator.main.0.weight', 'loss.perceptual_loss.lin0.model.1.weight']);
      const got = model.namedTensors();
      for (const n of Object.keys(want)) expect(arr(got[n]), n).toEqual(arr(tensors[n]));
      expect(arr(got['quantize.embed_avg'])).toEqual(arr(tensors['quantize.embedding.weight']));
      Object.values(got).forEach((t) => t.dispose());
      // A file of another configuration is refused, naming what is missing, and loads nothing.
      const bad = path.join(tmp, 'bad.safetensors');
      radkit.writeSafetensors(bad, { 'quant_conv.weight': Tensor.zeros([8, 16, 1, 1]) });
      expect(() => loadTamingWeights(model, bad)).toThrow(/missing encoder\.conv_in/);
      Object.values(tensors).forEach((t) => t.dispose());
    } finally {
      model.dispose();
    }
  });

  it('decodes the codes it encodes to its reconstructions; refuses bad input', async () => {
    const model = vqgan(TINY);
    try {
      const r = rng(3);
      const images = { data: new Float32Array(2 * 16 * 16).map(() => r()), shape: [2, 1, 1, 16, 16] };
      const enc = await encodeImages(model, images);
      expect(enc.shape).toEqual([2, 1, 8, 8]);
      expect(Math.max(...enc.codes)).toBeLessThan(16);
      const dec = await decodeCodes(model, enc.codes, [2, 8, 8]);
      expect(dec.shape).toEqual([2, 1, 1, 16, 16]);
      expectClose(dec.data, enc.reconstructions, 1e-4);
      await expect(decodeCodes(model, [16, 0, 0, 0], [1, 2, 2])).rejects.toThrow(/outside \[0, 16\)/);
      const odd = new TensorBatch({ images: { data: new Float32Array(15 * 15), shape: [1, 1, 1, 15, 15] } });
      await expect(model.encode(odd)).rejects.toThrow(/multiple of the downsampling factor 2/);
      odd.dispose();
      await expect(model.generate(new TensorBatch({ images: { data: images.data, shape: images.shape as [number, number, 1, number, number] } }))).rejects.toThrow(/generates no reports/);
    } finally {
      model.dispose();
    }
    expect(() => vqgan({ ...TINY, ch: 24 })).toThrow(/normGroups/);
    expect(() => vqgan({ ...TINY, colour: 1 })).toThrow(/unknown option 'colour'/);
  });

  it('learns: reconstruction L1 falls below the mean-image baseline, codes stay in use', async () => {
    // Images: a dark background with one bright 4 x 4 square at a random place (a mean image blurs it).
    const S = 16, n = 64;
    const r = rng(11);
    const data = new Float32Array(n * S * S);
    for (let i = 0; i < n; i++) {
      const y0 = Math.floor(r() * (S - 4)), x0 = Math.floor(r() * (S - 4)), base = 0.1 + 0.2 * r();
      for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) data[i * S * S + y * S + x] = y >= y0 && y < y0 + 4 && x >= x0 && x < x0 + 4 ? 0.9 : base;
    }
    const mean = new Float64Array(S * S);
    for (let i = 0; i < n; i++) for (let k = 0; k < S * S; k++) mean[k] += data[i * S * S + k] / n;
    let baseline = 0;
    for (let i = 0; i < n; i++) for (let k = 0; k < S * S; k++) baseline += Math.abs(data[i * S * S + k] - mean[k]) / (n * S * S);
    // Narrower than TINY (16/32 channels in groups of 8, no attention) to keep the test fast.
    const model = vqgan({ ...TINY, ch: 16, normGroups: 8, attnResolutions: [], zChannels: 8, nEmbed: 32 });
    try {
      model.setupOptimizer({ kind: 'adam', lr: 2e-3 });
      const first: number[] = [], last: number[] = [];
      for (let step = 0; step < 80; step++) {
        const b = (step % 4) * 16;
        const tb = new TensorBatch({ images: { data: data.subarray(b * S * S, (b + 16) * S * S), shape: [16, 1, 1, S, S] } });
        const res = await model.trainStep(tb, { clipNorm: 1 });
        tb.dispose();
        expect(res.parts.perplexity).toBeGreaterThan(1);
        (step < 4 ? first : step >= 76 ? last : []).push(res.parts.rec);
      }
      expect(Math.max(...last)).toBeLessThan(Math.min(...first));
      const enc = await encodeImages(model, { data, shape: [n, 1, 1, S, S] });
      let l1 = 0;
      for (let k = 0; k < data.length; k++) l1 += Math.abs(enc.reconstructions[k] - data[k]) / data.length;
      expect(l1).toBeLessThan(0.7 * baseline);
      expect(new Set(enc.codes).size).toBeGreaterThan(2);
    } finally {
      model.dispose();
    }
  }, 60_000);

  it('turns keypatches into one code each (crop the box at f x f, encode alone)', async () => {
    // Whole-frame box at the image's own size: the crop is the image.
    const H = 4, W = 4;
    const img = Array.from({ length: H * W }, (_, i) => i / 16);
    expectClose(cropBox(img, H, W, [2, 2, 4, 4], 4, 4), img, 1e-7);
    // A linear ramp v = 0.01 x + 0.02 y (pixel centres at integers) is reproduced exactly by bilinear
    // sampling: box (cx 10, cy 6, 8 x 4) in a 32 px frame over a 16 px image, 2 x 2 samples.
    const ramp = Array.from({ length: 256 }, (_, i) => 0.01 * (i % 16) + 0.02 * Math.floor(i / 16));
    const want: number[] = [];
    for (const yc of [5, 7]) for (const xc of [8, 12]) want.push(0.01 * (xc / 2 - 0.5) + 0.02 * (yc / 2 - 0.5));
    expectClose(cropBox(ramp, 16, 16, [10, 6, 8, 4], 32, 2), want, 1e-6);
    const model = vqgan(TINY);
    try {
      expect(downsamplingFactor(model)).toBe(2);
      const crops = [cropBox(ramp, 16, 16, [10, 6, 8, 4], 32, 2), cropBox(ramp, 16, 16, [20, 20, 6, 6], 32, 2)];
      const codes = await keypatchCodes(model, crops);
      expect(codes).toHaveLength(2);
      const alone = await encodeImages(model, { data: crops[1], shape: [1, 1, 1, 2, 2] });
      expect(codes[1]).toBe(alone.codes[0]);
      await expect(keypatchCodes(model, [new Float32Array(9)])).rejects.toThrow(/expected 2 x 2/);
    } finally {
      model.dispose();
    }
  });
  it('reads a keypatch token in context: the code under its box centre in the whole encoded image', async () => {
    const model = vqgan(TINY); // 16 px, f 2: an 8 x 8 code grid
    try {
      const r = rng(11);
      const images = [0, 1].map(() => Float32Array.from({ length: 256 }, () => r()));
      const whole = await encodeImages(model, { data: Float32Array.from([...images[0], ...images[1]]), shape: [2, 1, 1, 16, 16] });
      // Boxes in a 32 px frame (AdaMatch's input) over 16 px images: centre (cx, cy) -> cell (cy / 4, cx / 4).
      const boxes: [number, number, number, number][] = [[1, 1, 2, 2], [31, 17, 6, 6], [13, 30, 40, 3]];
      const codes = await keypatchCodesInContext(model, [images[0], images[1], images[1]], boxes, 32, 16);
      const at = (b: number, row: number, col: number) => whole.codes[b * 64 + row * 8 + col];
      expect(codes).toEqual([at(0, 0, 0), at(1, 4, 7), at(1, 7, 3)]);
      await expect(keypatchCodesInContext(model, [images[0]], [], 32, 16)).rejects.toThrow(/1 images for 0 boxes/);
      await expect(keypatchCodesInContext(model, [new Float32Array(9)], [boxes[0]], 32, 16)).rejects.toThrow(/expected 16 x 16/);
    } finally {
      model.dispose();
    }
  });
});
