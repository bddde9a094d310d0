import { describe, expect, it } from 'vitest';
import { ArgumentError, Tensor, ops, setNumThreads, getNumThreads } from '../../lib/index.js';
import { arr, bitsEqual, dot, f64, finiteDifference, handle, maxRelDiff, randArray, rng, testing, wrap } from './helpers.js';

const B = 2, C = 3, H = 5, W = 6;

/** Boxes covering the hard cases: inside, partly outside, wholly outside, zero-size, one-pixel, huge. */
function mixedBoxes(r: () => number, b: number, p: number): Float64Array {
  const d = new Float64Array(b * p * 4);
  for (let i = 0; i < b * p; i++) {
    const kind = i % 6;
    let box: number[];
    if (kind === 0) box = [0.5 + r() * (W - 1), 0.5 + r() * (H - 1), 0.3 + 2 * r(), 0.3 + 2 * r()];
    else if (kind === 1) box = [-0.5 + r(), H - 0.3 + r(), 1 + 2 * r(), 1 + 2 * r()]; // partly outside
    else if (kind === 2) box = [W + 3 + r(), -4 - r(), 1 + r(), 1 + r()]; // wholly outside
    else if (kind === 3) box = [0.5 + r() * (W - 1), 0.5 + r() * (H - 1), 0, 0]; // zero size
    else if (kind === 4) box = [1.3 + r() * 3, 1.2 + r() * 2, 1, 1]; // one pixel
    else box = [W / 2 + r(), H / 2 + r(), 2 * W * (0.5 + r()), 2 * H * (0.5 + r())]; // larger than the map
    d.set(box, i * 4);
  }
  return d;
}

function run(features: Tensor, boxes: Tensor, m: number, gOut: Float64Array) {
  const out = ops.adaptivePatchSample(features, boxes, { points: m });
  out.backward(f64(gOut, out.shape));
  return { out, gf: features.grad!, gb: boxes.grad! };
}

function runReference(features: Tensor, boxes: Tensor, m: number, gOut: Float64Array) {
  const out = wrap(testing().adaptivePatchSampleReference(handle(features), handle(boxes), m));
  testing().backwardMany([handle(out)], [handle(f64(gOut, out.shape))]);
  return { out, gf: features.grad!, gb: boxes.grad! };
}

describe('ops.adaptivePatchSample', () => {
  for (const m of [1, 2, 3]) {
    it(`agrees with the grid_sample composite in float64, forward and backward (m=${m})`, () => {
      const r = rng(11 + m);
      const P = 12;
      const fd = randArray(B * C * H * W, r), bd = mixedBoxes(r, B, P);
      const g = randArray(B * P * C * m * m, r);
      const a = run(f64(fd, [B, C, H, W], true), f64(bd, [B, P, 4], true), m, g);
      const ref = runReference(f64(fd, [B, C, H, W], true), f64(bd, [B, P, 4], true), m, g);
      expect(a.out.shape).toEqual([B, P, C, m, m]);
      expect(maxRelDiff(arr(a.out), arr(ref.out))).toBeLessThan(1e-12);
      expect(maxRelDiff(arr(a.gf), arr(ref.gf))).toBeLessThan(1e-10);
      expect(maxRelDiff(arr(a.gb), arr(ref.gb))).toBeLessThan(1e-10);
    });
  }

  it('passes a finite-difference gradient check for features and all four box coordinates', () => {
    const r = rng(5);
    const m = 3, P = 6;
    const fd = randArray(1 * C * H * W, r);
    const bd = mixedBoxes(r, 1, P);
    bd.set([2.37, 1.91, 2.6, 1.7], 0); // a plain box first
    const wOut = randArray(P * C * m * m, r);
    const loss = (d: Float64Array[]) => {
      const o = ops.adaptivePatchSample(f64(d[0], [1, C, H, W]), f64(d[1], [1, P, 4]), { points: m });
      const v = dot(arr(o), wOut);
      o.dispose();
      return v;
    };
    const a = run(f64(fd, [1, C, H, W], true), f64(bd, [1, P, 4], true), m, wOut);
    const numF = finiteDifference(loss, [fd, bd], 0);
    const numB = finiteDifference(loss, [fd, bd], 1);
    expect(maxRelDiff(arr(a.gf), Array.from(numF))).toBeLessThan(1e-6);
    expect(maxRelDiff(arr(a.gb), Array.from(numB))).toBeLessThan(1e-6);
    // the box gradient is not trivially zero for the in-map box
    expect(arr(a.gb).slice(0, 4).every((x) => Math.abs(x) > 1e-8)).toBe(true);
  });

  it('samples zero (and gives zero gradients) for boxes wholly outside the map', () => {
    const fd = randArray(1 * C * H * W, rng(3));
    const bd = new Float64Array([W + 5, H + 5, 2, 2, -10, 2, 3, 3]);
    const a = run(f64(fd, [1, C, H, W], true), f64(bd, [1, 2, 4], true), 3, new Float64Array(2 * C * 9).fill(1));
    expect(arr(a.out).every((x) => x === 0)).toBe(true);
    expect(arr(a.gb).every((x) => x === 0)).toBe(true);
    expect(arr(a.gf).every((x) => x === 0)).toBe(true);
  });

  it('returns zeros for an empty feature map (H = 0) and gives zero box gradients', () => {
    const f = f64(new Float64Array(0), [1, 2, 0, 5], true);
    const b = f64(new Float64Array([0.5, 0.5, 1, 1]), [1, 1, 4], true);
    const o = ops.adaptivePatchSample(f, b, { points: 2 });
    expect(o.shape).toEqual([1, 1, 2, 2, 2]);
    expect(arr(o).every((x) => x === 0)).toBe(true);
    o.backward(f64(new Float64Array(8).fill(1), o.shape));
    expect(arr(b.grad!)).toEqual([0, 0, 0, 0]);
  });

  it('reads a pixel exactly with a zero-size box or a one-pixel box at its centre', () => {
    const fd = randArray(1 * C * H * W, rng(4));
    const f = f64(fd, [1, C, H, W]);
    const i = 2, j = 3;
    const zero = arr(ops.adaptivePatchSample(f, f64(new Float64Array([j + 0.5, i + 0.5, 0, 0]), [1, 1, 4]), { points: 3 }));
    const one = arr(ops.adaptivePatchSample(f, f64(new Float64Array([j + 0.5, i + 0.5, 1, 1]), [1, 1, 4]), { points: 1 }));
    for (let c = 0; c < C; c++) {
      const px = fd[(c * H + i) * W + j];
      expect(one[c]).toBe(px);
      for (let k = 0; k < 9; k++) expect(zero[c * 9 + k]).toBe(px);
    }
  });

  it('accepts non-contiguous inputs with identical results', () => {
    const r = rng(8);
    const fd = randArray(B * C * H * W, r), bd = mixedBoxes(r, B, 5);
    const f = f64(fd, [B, C, H, W]), b = f64(bd, [B, 5, 4]);
    const fn = wrap(testing().nonContiguous(handle(f))), bn = wrap(testing().nonContiguous(handle(b)));
    expect(testing().isContiguous(handle(fn))).toBe(false);
    expect(testing().isContiguous(handle(bn))).toBe(false);
    expect(bitsEqual(ops.adaptivePatchSample(f, b, { points: 3 }), ops.adaptivePatchSample(fn, bn, { points: 3 }))).toBe(true);
    const g = randArray(B * 5 * C * 9, r);
    const x = run(f64(fd, [B, C, H, W], true), f64(bd, [B, 5, 4], true), 3, g);
    const fnG = wrap(testing().nonContiguous(handle(f64(fd, [B, C, H, W], true))));
    const bnG = wrap(testing().nonContiguous(handle(f64(bd, [B, 5, 4], true))));
    const y = run(fnG, bnG, 3, g);
    expect(maxRelDiff(arr(y.gf), arr(x.gf))).toBe(0);
    expect(maxRelDiff(arr(y.gb), arr(x.gb))).toBe(0);
  });

  it('handles a batch of one and float32 (close to float64)', () => {
    const r = rng(9);
    const fd = randArray(1 * 4 * 7 * 7, r), bd = mixedBoxes(r, 1, 7);
    const o64 = arr(ops.adaptivePatchSample(f64(fd, [1, 4, 7, 7]), f64(bd, [1, 7, 4]), { points: 2 }));
    const o32 = arr(ops.adaptivePatchSample(f64(fd, [1, 4, 7, 7]).to('float32'), f64(bd, [1, 7, 4]).to('float32'), { points: 2 }));
    expect(maxRelDiff(o32, o64)).toBeLessThan(1e-5);
  });

  it('is bit-identical across runs and thread counts (forward and backward)', () => {
    const r = rng(10);
    const Bb = 3, Cc = 70, P = 40; // 70 channels: two channel blocks in the feature-gradient kernel
    const fd = randArray(Bb * Cc * 8 * 8, r), bd = new Float64Array(Bb * P * 4);
    for (let i = 0; i < Bb * P; i++) bd.set([8 * r(), 8 * r(), 3 * r(), 3 * r()], i * 4);
    const g = randArray(Bb * P * Cc * 9, r);
    const leaf = () => {
      const f = Tensor.from(Float32Array.from(fd), [Bb, Cc, 8, 8], { requiresGrad: true });
      const b = Tensor.from(Float32Array.from(bd), [Bb, P, 4], { requiresGrad: true });
      const out = ops.adaptivePatchSample(f, b, { points: 3 });
      out.backward(Tensor.from(Float32Array.from(g), out.shape));
      return { out, gf: f.grad!, gb: b.grad! };
    };
    const before = getNumThreads();
    const a = leaf(), b = leaf();
    setNumThreads(2);
    const c = leaf();
    setNumThreads(before);
    for (const k of ['out', 'gf', 'gb'] as const) {
      expect(bitsEqual(a[k], b[k])).toBe(true);
      expect(bitsEqual(a[k], c[k])).toBe(true);
    }
  });

  it('rejects bad calls with errors naming the op and the argument', () => {
    const f = f64(new Float64Array(C * H * W), [1, C, H, W]);
    const b = f64(new Float64Array(4), [1, 1, 4]);
    const bad: [() => unknown, RegExp][] = [
      [() => ops.adaptivePatchSample(f64(new Float64Array(6), [2, 3]), b, { points: 3 }), /features must have rank 4/],
      [() => ops.adaptivePatchSample(f, f64(new Float64Array(3), [1, 1, 3]), { points: 3 }), /boxes must have shape \[B, P, 4\]/],
      [() => ops.adaptivePatchSample(f, f64(new Float64Array(8), [2, 1, 4]), { points: 3 }), /batch size/],
      [() => ops.adaptivePatchSample(f, b.to('float32'), { points: 3 }), /boxes must have the dtype of features \(float64\), got float32/],
      [() => ops.adaptivePatchSample(f, b, { points: 0 }), /options.points must be in \[1, 64\]/],
      [() => ops.adaptivePatchSample(f, b, {} as { points: number }), /options.points .* is required/],
      [() => ops.adaptivePatchSample(f, f64(new Float64Array([1, NaN, 1, 1]), [1, 1, 4]), { points: 3 }), /boxes must be finite/],
      [() => ops.adaptivePatchSample(f.to('int32'), b, { points: 3 }), /features must be float32 or float64/],
    ];
    for (const [call, msg] of bad) {
      let err: unknown;
      try {
        call();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ArgumentError);
      expect((err as Error).message).toMatch(/^ops\.adaptivePatchSample: /);
      expect((err as Error).message).toMatch(msg);
    }
  });
});

describe('AdaPatch module (C++)', () => {
  it('starts with every box equal to its fixed patch and tokens equal to f5 of the fixed samples', () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const res = testing().adaPatchStep0({ batch: 2, channels: 8, height: 12, width: 10, stride: 2, points: 3, outDim: 16, dtype });
      expect(res.tokenShape).toEqual([2, 30, 16]);
      const boxes = arr(wrap(res.boxes)), fixed = arr(wrap(res.fixedBoxes));
      expect(boxes.length).toBe(2 * 30 * 4);
      expect(maxRelDiff(boxes, fixed)).toBeLessThan(dtype === 'float32' ? 1e-6 : 1e-14);
      expect(fixed.slice(0, 8)).toEqual([1, 1, 2, 2, 3, 1, 2, 2]); // first two patches: centres (1,1), (3,1), side 2
      expect(res.maxTokenDiff).toBeLessThan(dtype === 'float32' ? 1e-5 : 1e-12);
      // the offset and size heads receive gradient at step 0, so the boxes can move
      for (const k of ['f1', 'f2', 'f3', 'f4', 'f5', 'features'] as const) expect(res.gradNorms[k]).toBeGreaterThan(0);
      expect(res.parameters).toBe(12);
    }
  });
});
