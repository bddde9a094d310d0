// AdaMatch system: the loss against an independent float64 implementation of eqs. 5-9, the adaptive
// patch geometry, LAMB against a float64 reference, BERT weights loading (checked against a float64
// BERT forward written here), LAMB checkpoint round trip and error cases.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { Tensor, TensorBatch } from '../../lib/index.js';
import { loadNative } from '../../lib/native.js';
import { rng } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-adamatch-'));
const reports = ['the heart is normal.', 'small left pleural effusion.', 'no pneumothorax.', 'right lower lobe consolidation.', 'mild cardiomegaly.', 'clear lungs.'];
const tokenizer = radkit.text.Tokenizer.build(reports, { threshold: 1 });
const TINY = { tokenizer, imageSize: 32, dims: [8, 16, 16, 16], depths: [1, 1, 1, 1], heads: [1, 2, 2, 2], reductions: [2, 1, 1, 1], textHidden: 16, textLayers: 1, textHeads: 2, textIntermediate: 32, embedDim: 12, classWeight: 0, seed: 3 };

function batch(n: number, seed = 1): TensorBatch {
  const r = rng(seed);
  const data = new Float32Array(n * 32 * 32).map(() => r());
  const enc = tokenizer.encodeBatch(reports.slice(0, n));
  return new TensorBatch({ images: { data, shape: [n, 1, 1, 32, 32] }, tokens: { data: enc.data, mask: enc.mask, shape: enc.shape } });
}

const arr = (t: Tensor) => Array.from(t.toArray() as ArrayLike<number>, Number);

/** Eqs. 5-9 in float64 from the encoded embeddings. */
function referenceLoss(img: number[], txt: number[], mask: number[], B: number, N: number, K: number, d: number, tau: number): number {
  const dotp = (i: number, n: number, j: number, k: number) => {
    let s = 0;
    for (let x = 0; x < d; x++) s += img[(i * N + n) * d + x] * txt[(j * K + k) * d + x];
    return s;
  };
  const sI: number[][] = [], sT: number[][] = [];
  for (let i = 0; i < B; i++) {
    sI.push([]);
    sT.push([]);
    for (let j = 0; j < B; j++) {
      const real = [...Array(K).keys()].filter((k) => mask[j * K + k]);
      let a = 0;
      for (let n = 0; n < N; n++) a += Math.max(...real.map((k) => dotp(i, n, j, k)));
      let b = 0;
      for (const k of real) b += Math.max(...[...Array(N).keys()].map((n) => dotp(i, n, j, k)));
      sI[i].push(a / N);
      sT[i].push(b / real.length);
    }
  }
  const ce = (logits: number[], t: number) => {
    const m = Math.max(...logits);
    return -(logits[t] - m - Math.log(logits.reduce((s, v) => s + Math.exp(v - m), 0)));
  };
  let i2t = 0, t2i = 0;
  for (let i = 0; i < B; i++) {
    i2t += ce(sI[i].map((v) => v / tau), i);
    t2i += ce(sT.map((row) => row[i] / tau), i);
  }
  return 0.5 * (i2t / B + t2i / B);
}

describe('AdaMatch model', () => {
  it('computes eqs. 5-9 exactly as a float64 reference over its own embeddings', async () => {
    const model = radkit.adamatch({ ...TINY, temperature: 0.2 });
    const b = batch(5);
    const enc = await model.encode(b);
    const [B, N, d] = enc.image.shape;
    const K = enc.text.shape[1];
    expect([B, N, d]).toEqual([5, 4, 12]); // 32 px: stage 3 is a 2 x 2 grid
    const want = referenceLoss(arr(enc.image), arr(enc.text), arr(enc.textMask), B, N, K, d, arr(enc.temperature)[0]);
    expect(arr(enc.temperature)[0]).toBeCloseTo(0.2, 6);
    const got = await model.evalLoss(b);
    expect(Math.abs(got.loss - want) / want).toBeLessThan(1e-5);
    expect(got.parts.imageToText + got.parts.textToImage).toBeCloseTo(2 * got.loss, 5);
    // padding words are excluded: the R2Gen tokenizer's 0 (BOS/EOS/PAD) never counts as a word
    const tokens = arr(b.tokens!);
    expect(arr(enc.textMask)).toEqual(tokens.map((t) => (t !== 0 ? 1 : 0)));
    Object.values(enc).forEach((t) => t.dispose());
    b.dispose();
    model.dispose();
  });

  it('starts with every adaptive patch on its fixed patch and moves them after training', async () => {
    const model = radkit.adamatch({ ...TINY, imageSize: 64 });
    const data = new Float32Array(4 * 64 * 64).map((_, i) => (Math.sin(i * 0.11) + 1) / 2);
    const enc0 = tokenizer.encodeBatch(reports.slice(0, 4));
    const b = new TensorBatch({ images: { data, shape: [4, 1, 1, 64, 64] }, tokens: { data: enc0.data, mask: enc0.mask, shape: enc0.shape } });
    const e = await model.encode(b);
    expect(arr(e.grid)).toEqual([4, 4]);
    // stage 3 at 64 px: 16-pixel patches, centres 8, 24, 40, 56
    const fixed = arr(e.fixedBoxes);
    expect(fixed.slice(0, 8)).toEqual([8, 8, 16, 16, 24, 8, 16, 16]);
    const boxes = arr(e.boxes);
    for (let i = 0; i < 4; i++) for (let x = 0; x < fixed.length; x++) expect(boxes[i * fixed.length + x]).toBeCloseTo(fixed[x], 4);
    Object.values(e).forEach((t) => t.dispose());
    model.setupOptimizer({ kind: 'lamb', lr: 0.05, eps: 1e-4 });
    for (let s = 0; s < 3; s++) await model.trainStep(b, { clipNorm: 1 });
    const e2 = await model.encode(b);
    const moved = arr(e2.boxes).reduce((m, v, x) => Math.max(m, Math.abs(v - fixed[x % fixed.length])), 0);
    expect(moved).toBeGreaterThan(1e-3);
    Object.values(e2).forEach((t) => t.dispose());
    // fixed patches (the ablation) never move
    const fixedModel = radkit.adamatch({ ...TINY, imageSize: 64, adaptive: false });
    fixedModel.setupOptimizer({ kind: 'lamb', lr: 0.05 });
    await fixedModel.trainStep(b);
    const e3 = await fixedModel.encode(b);
    const fb = arr(e3.boxes);
    for (let x = 0; x < fb.length; x++) expect(fb[x]).toBe(fixed[x % fixed.length]);
    Object.values(e3).forEach((t) => t.dispose());
    expect(fixedModel.parameterCount).toBeLessThan(model.parameterCount);
    b.dispose();
    model.dispose();
    fixedModel.dispose();
  });

  it('LAMB matches a float64 reference (bias correction, weight decay, trust ratio)', () => {
    const t = (loadNative() as unknown as { testing: { lambSteps: (...a: unknown[]) => unknown } }).testing;
    const r = rng(7);
    const p0 = Float64Array.from({ length: 12 }, () => r() - 0.5);
    const grads = [0, 1, 2].map(() => Float64Array.from({ length: 12 }, () => r() - 0.5));
    const o = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-4, weightDecay: 0.01 };
    const got = Tensor.wrap(t.lambSteps(Tensor.handle(Tensor.from(p0, [3, 4])), grads.map((g) => Tensor.handle(Tensor.from(g, [3, 4]))), o) as never);
    const p = Float64Array.from(p0), m = new Float64Array(12), v = new Float64Array(12);
    grads.forEach((g, s) => {
      const step = s + 1;
      const rr = new Float64Array(12);
      for (let x = 0; x < 12; x++) {
        m[x] = o.beta1 * m[x] + (1 - o.beta1) * g[x];
        v[x] = o.beta2 * v[x] + (1 - o.beta2) * g[x] * g[x];
        rr[x] = m[x] / (1 - o.beta1 ** step) / (Math.sqrt(v[x] / (1 - o.beta2 ** step)) + o.eps) + o.weightDecay * p[x];
      }
      const pn = Math.hypot(...p), rn = Math.hypot(...rr);
      for (let x = 0; x < 12; x++) p[x] -= o.lr * (pn / rn) * rr[x];
    });
    const out = got.toArray() as Float64Array;
    for (let x = 0; x < 12; x++) expect(out[x]).toBeCloseTo(p[x], 12);
    // the trust ratio makes the step size relative to the weight norm, unlike Adam's
    expect(Math.hypot(...p.map((v2, x) => v2 - p0[x]))).toBeCloseTo(3 * o.lr * Math.hypot(...p0), 2);
  });

  it('saves and restores the LAMB state with a checkpoint', async () => {
    const b = batch(4);
    const a = radkit.adamatch(TINY);
    a.setupOptimizer({ kind: 'lamb', lr: 0.01 });
    await a.trainStep(b);
    await a.saveWeights(path.join(tmp, 'w.pt'), path.join(tmp, 'o.pt'));
    const c = radkit.adamatch({ ...TINY, seed: 99 });
    c.setupOptimizer({ kind: 'lamb', lr: 0.01 });
    await c.loadWeights(path.join(tmp, 'w.pt'), path.join(tmp, 'o.pt'));
    radkit.manualSeed(1);
    const ra = await a.trainStep(b);
    radkit.manualSeed(1);
    const rc = await c.trainStep(b);
    expect(rc.loss).toBe(ra.loss);
    expect((await c.evalLoss(b)).loss).toBe((await a.evalLoss(b)).loss);
    a.dispose();
    c.dispose();
    b.dispose();
  });

  it('adds the disease-classification head when classWeight > 0 (labels required)', async () => {
    const m = radkit.adamatch({ ...TINY, classWeight: 2 });
    const b = batch(4);
    await expect(m.evalLoss(b)).rejects.toThrow(/needs batch.labels/);
    const labels = new Int32Array(4 * 14).map((_, i) => (i % 5 === 0 ? 1 : i % 5 === 1 ? 2 : 0));
    const enc = tokenizer.encodeBatch(reports.slice(0, 4));
    const lb = new TensorBatch({ images: { data: b.images!.toArray() as Float32Array, shape: [4, 1, 1, 32, 32] }, tokens: { data: enc.data, mask: enc.mask, shape: enc.shape }, labelStates: { data: labels, shape: [4, 14] } });
    const r = await m.evalLoss(lb);
    expect(r.parts.classification).toBeGreaterThan(0);
    expect(r.loss).toBeCloseTo(0.5 * (r.parts.imageToText + r.parts.textToImage) + 2 * r.parts.classification, 5);
    m.setupOptimizer({ kind: 'lamb', lr: 0.01 });
    const first = (await m.trainStep(lb)).parts.classification;
    for (let i = 0; i < 15; i++) await m.trainStep(lb);
    expect((await m.evalLoss(lb)).parts.classification).toBeLessThan(first);
    expect(() => radkit.adamatch({ ...TINY, classWeight: -1 })).toThrow(/classWeight/);
    expect(() => radkit.adamatch({ ...TINY, stem: 'conv', imageSize: 64, firstPatch: 8 } as never)).toThrow(/firstPatch must be 4/);
    lb.dispose();
    b.dispose();
    m.dispose();
  });

  it('batch-norm projections take statistics over real words only; LayerNorm stays available', async () => {
    // Extra padding columns must not move the training loss: the padded rows are excluded from the
    // batch statistics (and masked in the similarities).
    const imgs = batch(4);
    const images = { data: imgs.images!.toArray() as Float32Array, shape: [4, 1, 1, 32, 32] as [number, number, 1, number, number] };
    const enc = tokenizer.encodeBatch(reports.slice(0, 4));
    const [B, T] = enc.shape, extra = 6;
    const data = new (enc.data.constructor as Int32ArrayConstructor)(B * (T + extra));
    const mask = new (enc.mask.constructor as Uint8ArrayConstructor)(B * (T + extra));
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++) {
        data[b * (T + extra) + t] = Number(enc.data[b * T + t]);
        mask[b * (T + extra) + t] = Number(enc.mask[b * T + t]);
      }
    const firstLoss = async (norm: 'batch' | 'layer', tokens: { data: ArrayLike<number>; mask: ArrayLike<number>; shape: number[] }) => {
      const m = radkit.adamatch({ ...TINY, textDropout: 0, projectionNorm: norm } as never);
      m.setupOptimizer({ kind: 'lamb', lr: 0.01 });
      const tb = new TensorBatch({ images, tokens: tokens as never });
      const r = await m.trainStep(tb);
      tb.dispose();
      m.dispose();
      return r.loss;
    };
    for (const norm of ['batch', 'layer'] as const) {
      const plain = await firstLoss(norm, { data: enc.data, mask: enc.mask, shape: [B, T] });
      const padded = await firstLoss(norm, { data, mask, shape: [B, T + extra] });
      expect(Number.isFinite(plain)).toBe(true);
      expect(padded).toBeCloseTo(plain, 4);
    }
    expect(() => radkit.adamatch({ ...TINY, projectionNorm: 'group' } as never)).toThrow(/projectionNorm must be 'layer' or 'batch'/);
    imgs.dispose();
  });

  it('refuses what it cannot do with typed errors', async () => {
    expect(() => radkit.adamatch({ ...TINY, dims: [8, 16, 16] })).toThrow(/4 entries/);
    expect(() => radkit.adamatch({ ...TINY, imageSize: 16 })).toThrow(/imageSize must be at least 32/);
    expect(() => radkit.adamatch({ ...TINY, temperature: 0 })).toThrow(/temperature/);
    expect(() => radkit.adamatch({ ...TINY, heads: [3, 2, 2, 2] })).toThrow(/divisible/);
    const m = radkit.adamatch(TINY);
    const one = batch(1);
    m.setupOptimizer({ kind: 'lamb', lr: 0.01 });
    await expect(m.trainStep(one)).rejects.toThrow(/at least 2 image-report pairs/);
    await expect(m.generate(one)).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED' });
    await expect(m.encode(new TensorBatch({}))).rejects.toThrow(/needs batch.images, batch.tokens or both/);
    expect(() => m.setupOptimizer({ kind: 'sgd' as never, lr: 1 })).toThrow(/'adam', 'adamw' or 'lamb'/);
    // text-only and image-only encodings work (keywords, explanations)
    const enc = tokenizer.encodeBatch(['no pneumothorax.']);
    const e = await m.encode(new TensorBatch({ tokens: { data: enc.data, mask: enc.mask, shape: enc.shape } }));
    expect(e.image).toBeUndefined();
    expect(e.text.shape).toEqual([1, enc.shape[1], 12]);
    Object.values(e).forEach((t) => t.dispose());
    one.dispose();
    m.dispose();
    const x = radkit.xpronet({ tokenizer, dModel: 16, heads: 2, dFF: 16, encoderLayers: 1, decoderLayers: 1, resnetWidths: [8, 8, 8, 8, 8], resnetBlocks: [1, 1, 1, 1], prototypesPerClass: 2, topK: 2 });
    const xb = batch(2);
    await expect(x.encode(xb)).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED' });
    xb.dispose();
    x.dispose();
  });
});

// ---- BERT text encoder: Hugging Face weights by name, checked against a float64 forward pass.

const H = 8, HEADS = 2, FF = 12, VOCAB = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'no', 'pleural', 'effusion', '.', 'heart', 'normal', '##s'];

function erf(x: number): number {
  // Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7)
  const s = Math.sign(x), a = Math.abs(x), t = 1 / (1 + 0.3275911 * a);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a);
  return s * y;
}

function bertWeights(seed: number): Record<string, { shape: number[]; data: Float64Array }> {
  const r = rng(seed);
  const w = (...shape: number[]) => ({ shape, data: Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (r() - 0.5) * 0.6) });
  const ln = (n: number) => ({ shape: [n], data: Float64Array.from({ length: n }, () => 1 + (r() - 0.5) * 0.2) });
  const out: Record<string, { shape: number[]; data: Float64Array }> = {
    'bert.embeddings.word_embeddings.weight': w(VOCAB.length, H),
    'bert.embeddings.position_embeddings.weight': w(16, H),
    'bert.embeddings.token_type_embeddings.weight': w(2, H),
    'bert.embeddings.LayerNorm.gamma': ln(H),
    'bert.embeddings.LayerNorm.beta': w(H),
    'bert.pooler.dense.weight': w(H, H),
  };
  const L = 'bert.encoder.layer.0.';
  for (const n of ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense']) {
    out[`${L}${n}.weight`] = w(H, H);
    out[`${L}${n}.bias`] = w(H);
  }
  out[`${L}attention.output.LayerNorm.weight`] = ln(H);
  out[`${L}attention.output.LayerNorm.bias`] = w(H);
  out[`${L}intermediate.dense.weight`] = w(FF, H);
  out[`${L}intermediate.dense.bias`] = w(FF);
  out[`${L}output.dense.weight`] = w(H, FF);
  out[`${L}output.dense.bias`] = w(H);
  out[`${L}output.LayerNorm.weight`] = ln(H);
  out[`${L}output.LayerNorm.bias`] = w(H);
  return out;
}

function bertReference(W: ReturnType<typeof bertWeights>, ids: number[], mask: number[]): number[][] {
  const g = (n: string) => W[n].data;
  const T = ids.length;
  const linear = (x: number[], n: string, out: number) => {
    const wt = g(`${n}.weight`), b = g(`${n}.bias`), inn = x.length;
    return Array.from({ length: out }, (_, o) => b[o] + x.reduce((s, v, i) => s + v * wt[o * inn + i], 0));
  };
  const layerNorm = (x: number[], n: string) => {
    const mu = x.reduce((a, b) => a + b, 0) / x.length;
    const vr = x.reduce((a, b) => a + (b - mu) ** 2, 0) / x.length;
    const gam = g(n.endsWith('embeddings.LayerNorm') ? `${n}.gamma` : `${n}.weight`), bet = g(n.endsWith('embeddings.LayerNorm') ? `${n}.beta` : `${n}.bias`);
    return x.map((v, i) => ((v - mu) / Math.sqrt(vr + 1e-12)) * gam[i] + bet[i]);
  };
  const E = 'bert.embeddings.';
  let x = ids.map((id, t) => layerNorm(Array.from({ length: H }, (_, i) => g(`${E}word_embeddings.weight`)[id * H + i] + g(`${E}position_embeddings.weight`)[t * H + i] + g(`${E}token_type_embeddings.weight`)[i]), `${E}LayerNorm`));
  const L = 'bert.encoder.layer.0.';
  const q = x.map((v) => linear(v, `${L}attention.self.query`, H)), k = x.map((v) => linear(v, `${L}attention.self.key`, H)), val = x.map((v) => linear(v, `${L}attention.self.value`, H));
  const dh = H / HEADS;
  const ctx = x.map(() => new Array(H).fill(0));
  for (let h = 0; h < HEADS; h++)
    for (let t = 0; t < T; t++) {
      const sc = k.map((kk, u) => (mask[u] ? q[t].slice(h * dh, (h + 1) * dh).reduce((s, v, i) => s + v * kk[h * dh + i], 0) / Math.sqrt(dh) : -Infinity));
      const m = Math.max(...sc);
      const e = sc.map((s) => Math.exp(s - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let u = 0; u < T; u++) for (let i = 0; i < dh; i++) ctx[t][h * dh + i] += (e[u] / z) * val[u][h * dh + i];
    }
  x = x.map((v, t) => layerNorm(linear(ctx[t], `${L}attention.output.dense`, H).map((o, i) => o + v[i]), `${L}attention.output.LayerNorm`));
  return x.map((v) => {
    const inter = linear(v, `${L}intermediate.dense`, FF).map((a) => 0.5 * a * (1 + erf(a / Math.SQRT2)));
    return layerNorm(linear(inter, `${L}output.dense`, H).map((o, i) => o + v[i]), `${L}output.LayerNorm`);
  });
}

describe('AdaMatch text encoder from BERT weights', () => {
  const dir = path.join(tmp, 'bert');
  fs.mkdirSync(dir, { recursive: true });
  const W = bertWeights(11);
  const tensors = Object.fromEntries(Object.entries(W).map(([k, v]) => [k, Tensor.from(Float32Array.from(v.data), v.shape)]));
  radkit.writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  fs.writeFileSync(path.join(dir, 'vocab.txt'), VOCAB.join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ hidden_size: H, num_hidden_layers: 1, num_attention_heads: HEADS, intermediate_size: FF, max_position_embeddings: 16 }));

  it('loads Hugging Face names and matches a float64 BERT forward pass', async () => {
    const text = radkit.models.bertTextOptions(dir, 12);
    const opts = { ...TINY, ...text, textDropout: 0 };
    const a = radkit.adamatch({ ...opts, seed: 1 });
    const c = radkit.adamatch({ ...opts, seed: 2 });
    const r = radkit.models.loadTextWeights(a, path.join(dir, 'model.safetensors'));
    expect(r.missing).toEqual([]);
    expect(r.unexpected).toEqual(['pooler.dense.weight']);
    const enc = text.tokenizer.encodeBatch(['No pleural effusions.', 'heart normal']);
    expect(Array.from(enc.data.slice(0, 7))).toEqual([2, 4, 5, 6, 10, 7, 3]);
    const tb = new TensorBatch({ tokens: { data: enc.data, mask: enc.mask, shape: enc.shape } });
    const ea = await a.encode(tb);
    const ec = await c.encode(tb);
    const ha = arr(ea.textHidden), hc = arr(ec.textHidden);
    // same weights, different seeds: identical text encoder outputs (every parameter was loaded)
    expect(hc).toEqual(ha);
    const T = enc.shape[1];
    for (let s = 0; s < 2; s++) {
      const ids = Array.from(enc.data.slice(s * T, (s + 1) * T));
      const mask = ids.map((v) => (v !== 0 ? 1 : 0));
      const want = bertReference(W, ids, mask);
      for (let t = 0; t < T; t++) {
        if (!mask[t]) continue;
        for (let i = 0; i < H; i++) expect(Math.abs(ha[(s * T + t) * H + i] - want[t][i])).toBeLessThan(2e-4);
      }
    }
    // a fresh model without weights differs
    const fresh = radkit.adamatch({ ...TINY, ...text, textWeights: undefined, seed: 1 });
    const ef = await fresh.encode(tb);
    expect(arr(ef.textHidden)).not.toEqual(ha);
    [ea, ec, ef].forEach((e) => Object.values(e).forEach((t) => t.dispose()));
    tb.dispose();
    [a, c, fresh].forEach((m) => m.dispose());
  });

  it('rejects weights that do not fit', () => {
    const bad = path.join(tmp, 'bad.safetensors');
    radkit.writeSafetensors(bad, { 'bert.embeddings.word_embeddings.weight': Tensor.zeros([3, 3]) });
    const m = radkit.adamatch({ ...TINY, ...radkit.models.bertTextOptions(dir, 12), textWeights: undefined });
    expect(() => radkit.models.loadTextWeights(m, bad)).toThrow(/shape/);
    const none = path.join(tmp, 'none.safetensors');
    radkit.writeSafetensors(none, { other: Tensor.zeros([1]) });
    expect(() => radkit.models.loadTextWeights(m, none)).toThrow(/no BERT tensor/);
    m.dispose();
    expect(() => radkit.models.bertTextOptions(tmp)).toThrow(/model.safetensors/);
  });
});
