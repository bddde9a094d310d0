// MPMA (seed 004) pieces against independent float64 references written here in plain loops:
// the MAE masking utility (exact ratio, restore inverts keep, seeded), patchify, BERT-style MLM
// masking, the Gaussian ramp of lambda_GLA, the MA-CMF module (eqs. 2-4) and the GLA similarities
// and losses (eqs. 6-9), with gradients checked against central differences of the references.
import { describe, expect, it } from 'vitest';
import { Tensor, mul, sum } from '../../lib/index.js';
import { loadNative } from '../../lib/native.js';
import { arr, boolTensor as bool, expectAllClose as expectClose, f64, finiteDifference, int64Tensor as i64, randArray, rng } from './helpers.js';

type H = unknown;
interface MpmaTesting {
  randomMasking(batch: number, patches: number, ratio: number, seed: number): { keep: H; restore: H; mask: H };
  patchify(images: H, patch: number): H;
  maskTokens(tokens: H, maskable: H, o: { ratio: number; maskId: number; randomLow: number; randomHigh: number; seed: number }): { input: H; chosen: H };
  gaussianRamp(step: number, rampSteps: number): number;
  maCmf(v: H, text: H, valid: H, o: { heads: number; slots: number; residual: boolean; seed: number }): { output: H; weights: Record<string, H> };
  globalSimilarity(vm: H, tm: H, words: H, mode: string): H;
  localSimilarity(v: H, tm: H, words: H, o: { tau2: number; cosine: boolean; normalizeLocal: boolean }): H;
  infoNCE(s: H, tau: number): H;
}
const T = (): MpmaTesting => (loadNative() as unknown as { testing: { mpma: MpmaTesting } }).testing.mpma;
const h = (t: Tensor) => Tensor.handle(t) as H;
const w = (x: H) => Tensor.wrap(x as never);
const rand = (n: number, seed: number) => randArray(n, rng(seed), -1, 1);

// ---------------------------------------------------------------- float64 references
const dotv = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0);
const unit = (a: number[]) => {
  const n = Math.max(Math.sqrt(dotv(a, a)), 1e-8);
  return a.map((x) => x / n);
};
const row = (x: Float64Array, i: number, d: number) => Array.from(x.subarray(i * d, (i + 1) * d));
function logSumExp(xs: number[]) {
  const m = Math.max(...xs);
  return m + Math.log(xs.reduce((s, x) => s + Math.exp(x - m), 0));
}
function softmax(xs: number[]) {
  const l = logSumExp(xs);
  return xs.map((x) => Math.exp(x - l));
}
/** 1/2 [CE rows + CE columns] of S / tau with the diagonal as targets. */
function infoNCERef(S: number[][], tau: number) {
  const n = S.length;
  let rows = 0, cols = 0;
  for (let i = 0; i < n; i++) {
    rows -= S[i][i] / tau - logSumExp(S[i].map((s) => s / tau));
    cols -= S[i][i] / tau - logSumExp(S.map((r) => r[i] / tau));
  }
  return 0.5 * (rows / n + cols / n);
}
function globalRef(vm: Float64Array, tm: Float64Array, words: number[], B: number, M: number, Tn: number, D: number, mode: string): number[][] {
  const gv: number[][] = [], gt: number[][] = [];
  for (let b = 0; b < B; b++) {
    if (mode === 'mean') {
      const v = new Array(D).fill(0), t = new Array(D).fill(0);
      for (let m = 0; m < M; m++) for (let d = 0; d < D; d++) v[d] += vm[(b * M + m) * D + d] / M;
      let n = 0;
      for (let j = 0; j < Tn; j++) if (words[b * Tn + j]) {
        n++;
        for (let d = 0; d < D; d++) t[d] += tm[(b * Tn + j) * D + d];
      }
      gv.push(unit(v));
      gt.push(unit(t.map((x) => x / Math.max(1, n))));
    } else {
      gv.push(unit(Array.from(vm.subarray(b * M * D, b * M * D + Tn * D))));
      const t: number[] = [];
      for (let j = 0; j < Tn; j++) for (let d = 0; d < D; d++) t.push(words[b * Tn + j] ? tm[(b * Tn + j) * D + d] : 0);
      gt.push(unit(t));
    }
  }
  return gv.map((a) => gt.map((b) => dotv(a, b)));
}
function localRef(v: Float64Array, tm: Float64Array, words: number[], B: number, Np: number, Tn: number, D: number, tau2: number, cosine: boolean, norm: boolean): number[][] {
  const H: number[][] = [];
  for (let a = 0; a < B; a++) {
    H.push([]);
    const va = Array.from({ length: Np }, (_, i) => row(v, a * Np + i, D));
    for (let b = 0; b < B; b++) {
      const dots: number[] = [];
      for (let j = 0; j < Tn; j++) {
        if (!words[b * Tn + j]) continue;
        const t = row(tm, b * Tn + j, D);
        const s = va.map((vi) => (cosine ? dotv(unit(vi), unit(t)) : dotv(vi, t)) / tau2);
        const alpha = softmax(s);
        const g = new Array(D).fill(0);
        alpha.forEach((al, i) => va[i].forEach((x, d) => (g[d] += al * x)));
        dots.push(norm ? dotv(unit(g), unit(t)) : dotv(g, t));
      }
      H[a].push(dots.length ? logSumExp(dots) : 0);
    }
  }
  return H;
}
/** nn::MultiHeadAttention: wo(concat_h softmax(q_h k_h^T / sqrt(dh)) v_h) with Linear = x W^T + b. */
function linear(x: number[], W: Float64Array, b: Float64Array, dout: number) {
  const din = x.length;
  return Array.from({ length: dout }, (_, o) => b[o] + x.reduce((s, xi, i) => s + xi * W[o * din + i], 0));
}
function mhaRef(q: number[][], kv: number[][], keyValid: boolean[], wt: Record<string, Float64Array>, p: string, heads: number) {
  const D = q[0].length, dh = D / heads;
  const Q = q.map((x) => linear(x, wt[`${p}.wq.weight`], wt[`${p}.wq.bias`], D));
  const K = kv.map((x) => linear(x, wt[`${p}.wk.weight`], wt[`${p}.wk.bias`], D));
  const V = kv.map((x) => linear(x, wt[`${p}.wv.weight`], wt[`${p}.wv.bias`], D));
  return Q.map((qi) => {
    const cat: number[] = [];
    for (let hh = 0; hh < heads; hh++) {
      const sl = (x: number[]) => x.slice(hh * dh, (hh + 1) * dh);
      const idx = K.map((_, j) => j).filter((j) => keyValid[j]);
      const a = softmax(idx.map((j) => dotv(sl(qi), sl(K[j])) / Math.sqrt(dh)));
      const o = new Array(dh).fill(0);
      idx.forEach((j, n) => sl(V[j]).forEach((x, d) => (o[d] += a[n] * x)));
      cat.push(...o);
    }
    return linear(cat, wt[`${p}.wo.weight`], wt[`${p}.wo.bias`], D);
  });
}
function layerNormRef(x: number[], g: Float64Array, b: Float64Array) {
  const m = x.reduce((s, v) => s + v, 0) / x.length;
  const v = x.reduce((s, y) => s + (y - m) ** 2, 0) / x.length;
  return x.map((y, i) => ((y - m) / Math.sqrt(v + 1e-5)) * g[i] + b[i]);
}
function maCmfRef(v: Float64Array, text: Float64Array, valid: number[], wt: Record<string, Float64Array>, B: number, Np: number, Tn: number, D: number, heads: number, slots: number, residual: boolean) {
  const out: number[] = [];
  const mem = (name: string) => Array.from({ length: slots }, (_, s) => Array.from(wt[name].subarray(s * D, (s + 1) * D)));
  for (let b = 0; b < B; b++) {
    let vb = Array.from({ length: Np }, (_, i) => row(v, b * Np + i, D));
    let tb = Array.from({ length: Tn }, (_, j) => row(text, b * Tn + j, D));
    const v0 = vb, t0 = tb;
    if (residual) {
      vb = vb.map((x) => layerNormRef(x, wt['imageNorm.weight'], wt['imageNorm.bias']));
      tb = tb.map((x) => layerNormRef(x, wt['textNorm.weight'], wt['textNorm.bias']));
    }
    const cv = mhaRef(vb, [...tb, ...mem('memoryText')], [...tb.map((_, j) => valid[b * Tn + j] === 1), ...new Array(slots).fill(true)], wt, 'imageQuery', heads);
    const ce = mhaRef(tb, [...vb, ...mem('memoryImage')], new Array(Np + slots).fill(true), wt, 'textQuery', heads);
    const add = (a: number[][], r: number[][]) => (residual ? a.map((x, i) => x.map((y, d) => y + r[i][d])) : a);
    for (const x of [...add(cv, v0), ...add(ce, t0)]) out.push(...x);
  }
  return out;
}

// ---------------------------------------------------------------- tests

describe('MAE masking utility', () => {
  it('masks exactly round(ratio * Np) patches per sample; restore inverts the shuffle; keep lists the visible patches', () => {
    const B = 5, Np = 64;
    const s = T().randomMasking(B, Np, 0.75, 7);
    const keep = arr(w(s.keep)), restore = arr(w(s.restore)), mask = arr(w(s.mask));
    expect(w(s.keep).shape).toEqual([B, 16]);
    for (let b = 0; b < B; b++) {
      const m = mask.slice(b * Np, (b + 1) * Np);
      expect(m.reduce((x, y) => x + y, 0)).toBe(48);
      const r = restore.slice(b * Np, (b + 1) * Np);
      expect([...r].sort((x, y) => x - y)).toEqual(Array.from({ length: Np }, (_, i) => i));
      const k = keep.slice(b * 16, (b + 1) * 16);
      // kept patches are unmasked, sit first in the shuffled order, and restore maps them back there
      k.forEach((p, i) => {
        expect(m[p]).toBe(0);
        expect(r[p]).toBe(i);
      });
      // gather(shuffled, restore) is the identity: shuffled[restore[p]] = p
      const shuffled = new Array(Np);
      r.forEach((pos, p) => (shuffled[pos] = p));
      expect(shuffled.slice(0, 16)).toEqual(k);
    }
  });

  it('is reproducible from its seed and differs across seeds and samples', () => {
    const a = arr(w(T().randomMasking(3, 49, 0.6, 11).mask));
    const b = arr(w(T().randomMasking(3, 49, 0.6, 11).mask));
    const c = arr(w(T().randomMasking(3, 49, 0.6, 12).mask));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a.slice(0, 49)).not.toEqual(a.slice(49, 98));
    expect(a.reduce((x, y) => x + y, 0)).toBe(3 * Math.round(0.6 * 49));
    expect(() => T().randomMasking(2, 4, 1, 0)).toThrow(/ratio/);
  });

  it('patchify orders patches row-major with pixels (p, q) inside', () => {
    const img = Float64Array.from({ length: 16 }, (_, i) => i);
    const p = arr(w(T().patchify(h(f64(img, [1, 1, 4, 4])), 2)));
    expect(p).toEqual([0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]);
  });
});

describe('MLM masking (50%, 80/10/10)', () => {
  it('chooses exactly round(ratio * n) maskable tokens per row and never touches special tokens', () => {
    const B = 400, L = 12;
    const toks: number[] = [], can: number[] = [];
    for (let b = 0; b < B; b++) {
      const n = 2 + (b % 9); // words in this row
      for (let j = 0; j < L; j++) {
        const word = j >= 1 && j <= n;
        toks.push(word ? 5 + ((b + j) % 20) : 0);
        can.push(word ? 1 : 0);
      }
    }
    const r = T().maskTokens(h(i64(toks, [B, L])), h(bool(can, [B, L])), { ratio: 0.5, maskId: 99, randomLow: 1, randomHigh: 30, seed: 3 });
    const input = arr(w(r.input)), chosen = arr(w(r.chosen));
    let masked = 0, random = 0, same = 0;
    for (let b = 0; b < B; b++) {
      const n = 2 + (b % 9);
      let c = 0;
      for (let j = 0; j < L; j++) {
        const i = b * L + j;
        if (!can[i]) {
          expect(chosen[i]).toBe(0);
          expect(input[i]).toBe(toks[i]);
          continue;
        }
        if (!chosen[i]) {
          expect(input[i]).toBe(toks[i]);
          continue;
        }
        c++;
        if (input[i] === 99) masked++;
        else if (input[i] === toks[i]) same++;
        else {
          random++;
          expect(input[i]).toBeGreaterThanOrEqual(1);
          expect(input[i]).toBeLessThan(30);
        }
      }
      expect(c).toBe(Math.round(0.5 * n));
    }
    const total = masked + random + same;
    expect(masked / total).toBeGreaterThan(0.75);
    expect(masked / total).toBeLessThan(0.85);
    expect(random / total).toBeGreaterThan(0.06); // random ids can hit the original (1 in 29)
    expect(same / total).toBeGreaterThan(0.07);
    const again = T().maskTokens(h(i64(toks, [B, L])), h(bool(can, [B, L])), { ratio: 0.5, maskId: 99, randomLow: 1, randomHigh: 30, seed: 3 });
    expect(arr(w(again.input))).toEqual(input);
  });
});

describe('Gaussian ramp of lambda_GLA', () => {
  it('is exp(-5 (1 - t/T)^2) before T and 1 from T on', () => {
    const r = (s: number, t: number) => T().gaussianRamp(s, t);
    expect(r(0, 100)).toBeCloseTo(Math.exp(-5), 12);
    expect(r(50, 100)).toBeCloseTo(Math.exp(-1.25), 12);
    expect(r(90, 100)).toBeCloseTo(Math.exp(-0.05), 12);
    expect(r(100, 100)).toBe(1);
    expect(r(5000, 100)).toBe(1);
    expect(r(3, 0)).toBe(1);
    for (let s = 1; s < 100; s++) expect(r(s, 100)).toBeGreaterThan(r(s - 1, 100));
  });
});

describe('MA-CMF (eqs. 2-4) against a float64 reference', () => {
  const B = 2, Np = 3, Tn = 4, D = 4, heads = 2;
  const valid = [1, 1, 1, 0, 1, 1, 0, 0];
  for (const [slots, residual] of [[3, true], [0, true], [2, false]] as const) {
    it(`slots ${slots}, residual ${residual}: output and gradients`, () => {
      const v = rand(B * Np * D, 1), text = rand(B * Tn * D, 2);
      const run = (vd: Float64Array, td: Float64Array, grad = false) => {
        const vt = f64(vd, [B, Np, D], grad), tt = f64(td, [B, Tn, D], grad);
        const r = T().maCmf(h(vt), h(tt), h(bool(valid, [B, Tn])), { heads, slots, residual, seed: 5 });
        return { vt, tt, out: w(r.output), weights: Object.fromEntries(Object.entries(r.weights).map(([k, x]) => [k, w(x).toArray() as Float64Array])) };
      };
      const first = run(v, text);
      expect(first.out.shape).toEqual([B, Np + Tn, D]);
      const ref = (vd: Float64Array, td: Float64Array) => maCmfRef(vd, td, valid, first.weights, B, Np, Tn, D, heads, slots, residual);
      expectClose(arr(first.out), ref(v, text), 1e-9, 1e-10);
      // padded words are no keys: changing them leaves C_v alone
      const t2 = Float64Array.from(text);
      t2.fill(9, (0 * Tn + 3) * D, (0 * Tn + 4) * D);
      expectClose(arr(run(v, t2).out).slice(0, Np * D), arr(first.out).slice(0, Np * D), 1e-12, 1e-12);
      // gradients of sum(C * R) against central differences of the reference
      const R = rand(B * (Np + Tn) * D, 3);
      const g = run(v, text, true);
      const loss = sum(mul(g.out, f64(R, [B, Np + Tn, D])));
      loss.backward();
      const refLoss = (ds: Float64Array[]) => dotv(ref(ds[0], ds[1]), Array.from(R));
      expectClose(arr(g.vt.grad!), finiteDifference(refLoss, [Float64Array.from(v), Float64Array.from(text)], 0), 1e-5, 1e-7);
      expectClose(arr(g.tt.grad!), finiteDifference(refLoss, [Float64Array.from(v), Float64Array.from(text)], 1), 1e-5, 1e-7);
    });
  }
});

describe('GLA losses (eqs. 6-9) against float64 references', () => {
  const B = 3, Np = 4, M = 5, Tn = 4, D = 3;
  const words = [1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1];
  for (const mode of ['mean', 'frobenius']) {
    it(`global eq. 6 (${mode}): similarity, InfoNCE and gradients`, () => {
      const vm = rand(B * M * D, 10), tm = rand(B * Tn * D, 11);
      const nat = (a: Float64Array, b: Float64Array, grad = false) => {
        const x = f64(a, [B, M, D], grad), y = f64(b, [B, Tn, D], grad);
        return { x, y, s: w(T().globalSimilarity(h(x), h(y), h(bool(words, [B, Tn])), mode)) };
      };
      const S = globalRef(vm, tm, words, B, M, Tn, D, mode);
      expectClose(arr(nat(vm, tm).s), S.flat(), 1e-12, 1e-12);
      const tau = 0.07;
      const g = nat(vm, tm, true);
      const l = w(T().infoNCE(h(g.s), tau));
      expect(Number(l.toArray()[0])).toBeCloseTo(infoNCERef(S, tau), 10);
      l.backward();
      const refLoss = (ds: Float64Array[]) => infoNCERef(globalRef(ds[0], ds[1], words, B, M, Tn, D, mode), tau);
      const ds = [Float64Array.from(vm), Float64Array.from(tm)];
      expectClose(arr(g.x.grad!), finiteDifference(refLoss, ds, 0), 1e-5, 1e-7);
      expectClose(arr(g.y.grad!), finiteDifference(refLoss, ds, 1), 1e-5, 1e-7);
    });
  }

  for (const [cosine, norm] of [[true, true], [false, true], [true, false]] as const) {
    it(`local eqs. 7-9 (cosine attention ${cosine}, normalised eq. 8 ${norm}): H, InfoNCE and gradients`, () => {
      const v = rand(B * Np * D, 20), tm = rand(B * Tn * D, 21);
      const o = { tau2: 0.25, cosine, normalizeLocal: norm };
      const nat = (a: Float64Array, b: Float64Array, grad = false) => {
        const x = f64(a, [B, Np, D], grad), y = f64(b, [B, Tn, D], grad);
        return { x, y, H: w(T().localSimilarity(h(x), h(y), h(bool(words, [B, Tn])), o)) };
      };
      const Href = localRef(v, tm, words, B, Np, Tn, D, 0.25, cosine, norm);
      expectClose(arr(nat(v, tm).H), Href.flat(), 1e-11, 1e-12);
      const g = nat(v, tm, true);
      const l = w(T().infoNCE(h(g.H), 0.1));
      expect(Number(l.toArray()[0])).toBeCloseTo(infoNCERef(Href, 0.1), 9);
      l.backward();
      const refLoss = (ds: Float64Array[]) => infoNCERef(localRef(ds[0], ds[1], words, B, Np, Tn, D, 0.25, cosine, norm), 0.1);
      const ds = [Float64Array.from(v), Float64Array.from(tm)];
      expectClose(arr(g.x.grad!), finiteDifference(refLoss, ds, 0), 1e-5, 1e-7);
      expectClose(arr(g.y.grad!), finiteDifference(refLoss, ds, 1), 1e-5, 1e-7);
    });
  }

  it('a report without words has H = 0 and finite gradients', () => {
    const v = f64(rand(2 * Np * D, 30), [2, Np, D], true), tm = f64(rand(2 * 2 * D, 31), [2, 2, D], true);
    const H = w(T().localSimilarity(h(v), h(tm), h(bool([1, 1, 0, 0], [2, 2])), { tau2: 0.25, cosine: true, normalizeLocal: true }));
    const a = arr(H);
    expect(a[1]).toBe(0);
    expect(a[3]).toBe(0);
    w(T().infoNCE(h(H), 0.1)).backward();
    expect(arr(v.grad!).every(Number.isFinite)).toBe(true);
  });
});
