import { describe, expect, it } from 'vitest';
import { ArgumentError, Tensor, ops, setNumThreads, getNumThreads } from '../../lib/index.js';
import { arr, bitsEqual, dot, f64, finiteDifference, handle, maxRelDiff, randArray, rng, testing, wrap } from './helpers.js';

function mask(bits: boolean[], shape: number[]): Tensor {
  return Tensor.from(Uint8Array.from(bits, (b) => (b ? 1 : 0)), shape, { dtype: 'bool' });
}

/** Random lengths per row (at least 1 real token unless allowEmpty) as a bool mask. */
function lengthsMask(r: () => number, B: number, L: number, allowEmpty = false): boolean[] {
  const bits: boolean[] = [];
  for (let b = 0; b < B; b++) {
    const len = allowEmpty && b === 1 ? 0 : 1 + Math.floor(r() * L);
    for (let l = 0; l < L; l++) bits.push(l < len);
  }
  return bits;
}

/** Puts large finite garbage where the mask is false. */
function garbage(data: Float64Array, bits: boolean[], D: number, value: number): Float64Array {
  const out = Float64Array.from(data);
  bits.forEach((real, i) => {
    if (!real) for (let d = 0; d < D; d++) out[i * D + d] = value * (d % 2 ? -1 : 1);
  });
  return out;
}

const keys = ['imageToText', 'textToImage', 'imageToTextArgmax', 'textToImageArgmax'] as const;

function both(Bi: number, N: number, Bt: number, K: number, D: number, seed: number, masked: boolean, allowEmpty = false) {
  const r = rng(seed);
  const im = masked ? lengthsMask(r, Bi, N, allowEmpty) : undefined;
  const tm = masked ? lengthsMask(r, Bt, K, allowEmpty) : undefined;
  let idata = randArray(Bi * N * D, r), tdata = randArray(Bt * K * D, r);
  if (im) idata = garbage(idata, im, D, 1e6);
  if (tm) tdata = garbage(tdata, tm, D, -3e5);
  const g1 = randArray(Bi * Bt, r), g2 = randArray(Bi * Bt, r);
  const mk = () => ({ image: f64(idata, [Bi, N, D], true), text: f64(tdata, [Bt, K, D], true) });
  const masks = () => ({ imageMask: im && mask(im, [Bi, N]), textMask: tm && mask(tm, [Bt, K]) });
  // kernel
  const a = mk();
  const out = ops.maxSimilarity(a.image, a.text, { ...masks(), returnArgmax: true });
  testing().backwardMany([handle(out.imageToText), handle(out.textToImage)], [handle(f64(g1, [Bi, Bt])), handle(f64(g2, [Bi, Bt]))]);
  // reference
  const b = mk();
  const mm = masks();
  const ref = testing().maxSimilarityReference(handle(b.image), handle(b.text), mm.imageMask && handle(mm.imageMask), mm.textMask && handle(mm.textMask));
  testing().backwardMany([ref.imageToText, ref.textToImage], [handle(f64(g1, [Bi, Bt])), handle(f64(g2, [Bi, Bt]))]);
  return { out, ref, a, b, idata, tdata, im, tm, g1, g2 };
}

describe('ops.maxSimilarity', () => {
  for (const [name, Bi, N, Bt, K, D, masked] of [
    ['unmasked', 3, 7, 4, 5, 9, false],
    ['masked with garbage in padding', 4, 9, 5, 6, 8, true],
    ['many texts (several column groups per image)', 2, 10, 70, 7, 5, true],
    ['a batch of one', 1, 6, 1, 4, 3, false],
  ] as const) {
    it(`agrees with the einsum-then-max composite in float64, forward, argmax and backward (${name})`, () => {
      const { out, ref, a, b } = both(Bi, N, Bt, K, D, 17 + Bt, masked);
      expect(out.imageToText.shape).toEqual([Bi, Bt]);
      expect(out.imageToTextArgmax!.shape).toEqual([Bi, Bt, N]);
      expect(out.textToImageArgmax!.shape).toEqual([Bi, Bt, K]);
      expect(out.imageToTextArgmax!.dtype).toBe('int64');
      expect(maxRelDiff(arr(out.imageToText), arr(wrap(ref.imageToText)))).toBeLessThan(1e-12);
      expect(maxRelDiff(arr(out.textToImage), arr(wrap(ref.textToImage)))).toBeLessThan(1e-12);
      expect(arr(out.imageToTextArgmax!)).toEqual(arr(wrap(ref.imageToTextArgmax)));
      expect(arr(out.textToImageArgmax!)).toEqual(arr(wrap(ref.textToImageArgmax)));
      expect(maxRelDiff(arr(a.image.grad!), arr(b.image.grad!))).toBeLessThan(1e-12);
      expect(maxRelDiff(arr(a.text.grad!), arr(b.text.grad!))).toBeLessThan(1e-12);
    });
  }

  it('ignores garbage in padded positions entirely (bit-identical results and zero gradient there)', () => {
    const r = rng(21);
    const Bi = 3, N = 6, Bt = 4, K = 5, D = 4;
    const im = lengthsMask(r, Bi, N), tm = lengthsMask(r, Bt, K);
    const idata = randArray(Bi * N * D, r), tdata = randArray(Bt * K * D, r);
    const run = (i: Float64Array, t: Float64Array) => {
      const img = f64(i, [Bi, N, D], true), txt = f64(t, [Bt, K, D], true);
      const o = ops.maxSimilarity(img, txt, { imageMask: mask(im, [Bi, N]), textMask: mask(tm, [Bt, K]), returnArgmax: true });
      testing().backwardMany([handle(o.imageToText), handle(o.textToImage)], [handle(f64(new Float64Array(Bi * Bt).fill(1), [Bi, Bt])), handle(f64(new Float64Array(Bi * Bt).fill(1), [Bi, Bt]))]);
      return { o, gi: arr(img.grad!), gt: arr(txt.grad!) };
    };
    const clean = run(idata, tdata);
    const dirty = run(garbage(idata, im, D, 1e30), garbage(tdata, tm, D, -1e30));
    for (const k of keys) expect(bitsEqual(clean.o[k]!, dirty.o[k]!)).toBe(true);
    expect(dirty.gi).toEqual(clean.gi);
    expect(dirty.gt).toEqual(clean.gt);
    im.forEach((real, i) => { if (!real) for (let d = 0; d < D; d++) expect(dirty.gi[i * D + d]).toBe(0); });
    const a1 = arr(dirty.o.imageToTextArgmax!);
    for (let i = 0; i < Bi; i++) for (let j = 0; j < Bt; j++) for (let n = 0; n < N; n++) {
      const v = a1[(i * Bt + j) * N + n];
      if (!im[i * N + n]) expect(v).toBe(-1);
      else expect(tm[j * K + v]).toBe(true);
    }
  });

  it('gives 0 and -1 for an image without real patches or a text without real words', () => {
    const { out, ref } = both(3, 5, 3, 4, 3, 33, true, true);
    const i2t = arr(out.imageToText);
    for (let j = 0; j < 3; j++) expect(i2t[1 * 3 + j]).toBe(0); // image 1 is empty
    for (let i = 0; i < 3; i++) expect(i2t[i * 3 + 1]).toBe(0); // text 1 is empty
    expect(maxRelDiff(arr(out.imageToText), arr(wrap(ref.imageToText)))).toBeLessThan(1e-12);
    expect(arr(out.textToImageArgmax!)).toEqual(arr(wrap(ref.textToImageArgmax)));
  });

  it('resolves ties to the lowest index and routes the gradient there', () => {
    // text 0 has words 1 and 3 identical: every patch ties between them; image patches 0 and 2 identical.
    const D = 3;
    const idata = new Float64Array([1, 2, 3, 0.5, -1, 2, 1, 2, 3]);
    const tdata = new Float64Array([-1, 0, 0, 2, 1, 1, 0, 0, 1, 2, 1, 1]);
    const img = f64(idata, [1, 3, D], true), txt = f64(tdata, [1, 4, D], true);
    const o = ops.maxSimilarity(img, txt, { returnArgmax: true });
    expect(arr(o.imageToTextArgmax!)).toEqual([1, 1, 1]);
    const t2i = arr(o.textToImageArgmax!);
    expect(t2i[1]).toBe(0);
    expect(t2i[3]).toBe(0);
    testing().backwardMany([handle(o.imageToText), handle(o.textToImage)], [handle(f64(new Float64Array([1]), [1, 1])), handle(f64(new Float64Array([0]), [1, 1]))]);
    const gt = arr(txt.grad!);
    expect(gt.slice(9, 12)).toEqual([0, 0, 0]); // the tied word 3 gets nothing
    expect(gt.slice(3, 6).some((x) => x !== 0)).toBe(true);
  });

  it('passes a finite-difference gradient check', () => {
    const r = rng(44);
    const Bi = 2, N = 4, Bt = 3, K = 3, D = 3;
    const im = [true, true, true, false, true, true, false, false];
    const tm = [true, true, false, true, true, true, true, false, false];
    const idata = randArray(Bi * N * D, r), tdata = randArray(Bt * K * D, r);
    const w1 = randArray(Bi * Bt, r), w2 = randArray(Bi * Bt, r);
    const opts = () => ({ imageMask: mask(im, [Bi, N]), textMask: mask(tm, [Bt, K]) });
    const loss = (d: Float64Array[]) => {
      const o = ops.maxSimilarity(f64(d[0], [Bi, N, D]), f64(d[1], [Bt, K, D]), opts());
      return dot(arr(o.imageToText), w1) + dot(arr(o.textToImage), w2);
    };
    const img = f64(idata, [Bi, N, D], true), txt = f64(tdata, [Bt, K, D], true);
    const o = ops.maxSimilarity(img, txt, opts());
    testing().backwardMany([handle(o.imageToText), handle(o.textToImage)], [handle(f64(w1, [Bi, Bt])), handle(f64(w2, [Bi, Bt]))]);
    expect(maxRelDiff(arr(img.grad!), Array.from(finiteDifference(loss, [idata, tdata], 0)))).toBeLessThan(1e-7);
    expect(maxRelDiff(arr(txt.grad!), Array.from(finiteDifference(loss, [idata, tdata], 1)))).toBeLessThan(1e-7);
  });

  it('accepts non-contiguous inputs with identical results', () => {
    const r = rng(50);
    const img = f64(randArray(3 * 5 * 4, r), [3, 5, 4]), txt = f64(randArray(2 * 6 * 4, r), [2, 6, 4]);
    const a = ops.maxSimilarity(img, txt, { returnArgmax: true });
    const b = ops.maxSimilarity(wrap(testing().nonContiguous(handle(img))), wrap(testing().nonContiguous(handle(txt))), { returnArgmax: true });
    for (const k of keys) expect(bitsEqual(a[k]!, b[k]!)).toBe(true);
  });

  it('is bit-identical across runs and thread counts, float32 forward and backward', () => {
    const r = rng(60);
    const Bi = 5, N = 33, Bt = 9, K = 50, D = 37; // D not a multiple of 8: SIMD tail; 9 x 50 words: 2 column groups
    const idata = Float32Array.from(randArray(Bi * N * D, r)), tdata = Float32Array.from(randArray(Bt * K * D, r));
    const once = () => {
      const img = Tensor.from(idata, [Bi, N, D], { requiresGrad: true }), txt = Tensor.from(tdata, [Bt, K, D], { requiresGrad: true });
      const o = ops.maxSimilarity(img, txt, { returnArgmax: true });
      const ones = Tensor.ones([Bi, Bt]);
      testing().backwardMany([handle(o.imageToText), handle(o.textToImage)], [handle(ones), handle(ones)]);
      return { ...o, gi: img.grad!, gt: txt.grad! };
    };
    const before = getNumThreads();
    const a = once(), b = once();
    setNumThreads(2);
    const c = once();
    setNumThreads(before);
    for (const k of [...keys, 'gi', 'gt'] as const) {
      expect(bitsEqual(a[k]!, b[k]!)).toBe(true);
      expect(bitsEqual(a[k]!, c[k]!)).toBe(true);
    }
  });

  it('never allocates the [Bi, Bt, N, K] tensor: peak extra memory is O(Bi Bt (N + K))', () => {
    const Bi = 16, N = 64, Bt = 16, K = 40, D = 32;
    const img = Tensor.randn([Bi, N, D]), txt = Tensor.randn([Bt, K, D]);
    const t = testing();
    const base = t.allocTrackerReset().current;
    const o = wrap(t.maxSimilarityRaw(handle(img), handle(txt)).imageToText);
    const peak = t.allocTrackerRead().peak - base;
    const full = Bi * Bt * N * K * 4;
    expect(peak).toBeLessThan(Bi * Bt * (N + K) * 8 * 1.5 + 64 * 1024);
    expect(peak).toBeLessThan(full / 10);
    o.dispose();
  });

  it('rejects bad calls with errors naming the op and the argument', () => {
    const img = f64(new Float64Array(2 * 3 * 4), [2, 3, 4]), txt = f64(new Float64Array(2 * 5 * 4), [2, 5, 4]);
    const bad: [() => unknown, RegExp][] = [
      [() => ops.maxSimilarity(f64(new Float64Array(4), [2, 2]), txt), /image must have rank 3/],
      [() => ops.maxSimilarity(img, f64(new Float64Array(2 * 5 * 3), [2, 5, 3])), /text must have the embedding size D of image \(4\)/],
      [() => ops.maxSimilarity(img, txt.to('float32')), /text must have the dtype of image \(float64\), got float32/],
      [() => ops.maxSimilarity(img, txt, { imageMask: mask([true, true], [1, 2]) }), /options.imageMask must have shape \[Bi, N\] = \[2, 3\]/],
      [() => ops.maxSimilarity(img, txt, { textMask: f64(new Float64Array(10), [2, 5]) }), /options.textMask must be a bool tensor, got float64/],
      [() => ops.maxSimilarity(img, f64(new Float64Array(40).fill(NaN), [2, 5, 4])), /text must be finite/],
    ];
    for (const [call, msg] of bad) {
      let err: unknown;
      try {
        call();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ArgumentError);
      expect((err as Error).message).toMatch(/^ops\.maxSimilarity: /);
      expect((err as Error).message).toMatch(msg);
    }
  });
});
