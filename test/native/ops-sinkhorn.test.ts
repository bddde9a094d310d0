import { describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { ArgumentError, Tensor, ops } from '../../lib/index.js';
import { loadNative } from '../../lib/native.js';

// Composite float64 references live in native/testing/sinkhorn_reference.cc.
/* eslint-disable @typescript-eslint/no-explicit-any */
const ref = () => loadNative() as any;
const wrap = (h: any) => Tensor.wrap(h);
const H = (t: Tensor) => Tensor.handle(t);

function unrolled(cost: Tensor, o: { epsilon: number; maxIterations: number; tolerance?: number; a?: Tensor; b?: Tensor }) {
  const r = ref()._testing_sinkhornUnrolled(H(cost), { ...o, a: o.a && H(o.a), b: o.b && H(o.b) });
  return { plan: wrap(r.plan), distance: wrap(r.distance), marginalError: wrap(r.marginalError), objective: wrap(r.objective), problemIterations: r.problemIterations as number[] };
}

// Deterministic pseudo-random data (no dependence on LibTorch's generator).
function rand(n: number, seed: number, lo = 0, hi = 1): Float64Array {
  const out = new Float64Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; ++i) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = lo + ((s >>> 0) / 4294967296) * (hi - lo);
  }
  return out;
}
const t64 = (data: Float64Array, shape: number[], requiresGrad = false) => Tensor.from(data, shape, { requiresGrad });
const arr = (t: Tensor) => Array.from(t.toArray() as Float64Array, Number);

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol = 0) {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; ++i) {
    const e = Math.abs(actual[i] - expected[i]) - (atol + rtol * Math.abs(expected[i]));
    worst = Math.max(worst, e);
    if (!(Number.isFinite(actual[i]) && e <= 0)) throw new Error(`index ${i}: got ${actual[i]}, expected ${expected[i]} (rtol ${rtol}, atol ${atol})`);
  }
  expect(worst).toBeLessThanOrEqual(0);
}

const B = 3, M = 7, N = 5, D = 4;
const costData = rand(B * M * N, 7, 0, 2);

describe('ops.sinkhorn (CPU)', () => {
  it('matches the unrolled composite reference in float64 (fixed iterations)', () => {
    const cost = t64(costData, [B, M, N]);
    const o = { epsilon: 0.1, maxIterations: 40 };
    const r = ops.sinkhorn(cost, o);
    const e = unrolled(cost, o);
    expect(r.plan.shape).toEqual([B, M, N]);
    expect(r.distance.shape).toEqual([B]);
    expect(r.iterations).toBe(40);
    expect(r.problemIterations).toEqual([40, 40, 40]);
    expectClose(arr(r.plan), arr(e.plan), 1e-10, 1e-15);
    expectClose(arr(r.distance), arr(e.distance), 1e-10);
    expectClose(arr(r.marginalError), arr(e.marginalError), 1e-6, 1e-14);
  });

  it('stops each problem on its own at the tolerance, like the reference, with marginals within it', () => {
    // Problems of different difficulty: different scales of cost.
    const data = costData.map((v, i) => v * (1 + Math.floor(i / (M * N)) * 3));
    const cost = t64(data, [B, M, N]);
    const o = { epsilon: 0.2, maxIterations: 5000, tolerance: 1e-9 };
    const r = ops.sinkhorn(cost, o);
    const e = unrolled(cost, o);
    expect(r.problemIterations).toEqual(e.problemIterations);
    expect(new Set(r.problemIterations).size).toBeGreaterThan(1);
    expect(r.iterations).toBe(Math.max(...r.problemIterations));
    for (const err of arr(r.marginalError)) expect(err).toBeLessThan(1e-9);
    expectClose(arr(r.plan), arr(e.plan), 1e-8, 1e-14);
    expectClose(arr(r.distance), arr(e.distance), 1e-9);
  });

  it('respects non-uniform marginals a and b', () => {
    const a = rand(B * M, 11, 0.1, 1), b = rand(B * N, 12, 0.1, 1);
    for (let p = 0; p < B; ++p) {
      const sa = a.subarray(p * M, (p + 1) * M).reduce((x, y) => x + y);
      const sb = b.subarray(p * N, (p + 1) * N).reduce((x, y) => x + y);
      for (let i = 0; i < M; ++i) a[p * M + i] /= sa;
      for (let j = 0; j < N; ++j) b[p * N + j] /= sb;
    }
    const cost = t64(costData, [B, M, N]);
    const o = { epsilon: 0.1, maxIterations: 3000, tolerance: 1e-10, a: t64(a, [B, M]), b: t64(b, [B, N]) };
    const r = ops.sinkhorn(cost, o);
    const e = unrolled(cost, o);
    expectClose(arr(r.plan), arr(e.plan), 1e-7, 1e-14);
    const plan = arr(r.plan);
    for (let p = 0; p < B; ++p)
      for (let i = 0; i < M; ++i) {
        let s = 0;
        for (let j = 0; j < N; ++j) s += plan[(p * M + i) * N + j];
        expect(Math.abs(s - a[p * M + i])).toBeLessThan(1e-9);
      }
  });

  it('stays finite and accurate at epsilon = 0.01 with costs near 10 (float64 and float32)', () => {
    const data = rand(B * M * N, 21, 9.5, 10.5);
    const cost = t64(data, [B, M, N]);
    const o = { epsilon: 0.01, maxIterations: 300 };
    const r = ops.sinkhorn(cost, o);
    const e = unrolled(cost, o);
    for (const v of arr(r.plan)) expect(Number.isFinite(v)).toBe(true);
    expectClose(arr(r.plan), arr(e.plan), 1e-8, 1e-14);
    expectClose(arr(r.distance), arr(e.distance), 1e-10);
    const r32 = ops.sinkhorn(cost.to('float32'), o);
    const p32 = Array.from(r32.plan.toArray() as Float32Array);
    for (const v of p32) expect(Number.isFinite(v)).toBe(true);
    expectClose(p32, arr(r.plan), 1e-3, 1e-5);
    expectClose(Array.from(r32.distance.toArray() as Float32Array), arr(r.distance), 1e-4);
  });

  it('batched equals one-by-one (bit-identical) and is deterministic across runs', () => {
    const cost = t64(costData, [B, M, N]);
    const o = { epsilon: 0.05, maxIterations: 500, tolerance: 1e-7 };
    const r = ops.sinkhorn(cost, o);
    const again = ops.sinkhorn(cost, o);
    expect(arr(again.plan)).toEqual(arr(r.plan));
    const plan = arr(r.plan), dist = arr(r.distance);
    for (let p = 0; p < B; ++p) {
      const one = ops.sinkhorn(t64(costData.slice(p * M * N, (p + 1) * M * N), [1, M, N]), o);
      expect(arr(one.plan)).toEqual(plan.slice(p * M * N, (p + 1) * M * N));
      expect(arr(one.distance)[0]).toBe(dist[p]);
      expect(one.problemIterations[0]).toBe(r.problemIterations[p]);
    }
  });

  it('float32 agrees with float64', () => {
    const cost = t64(costData, [B, M, N]);
    const o = { epsilon: 0.1, maxIterations: 200 };
    const r64 = ops.sinkhorn(cost, o);
    const r32 = ops.sinkhorn(cost.to('float32'), o);
    expect(r32.plan.dtype).toBe('float32');
    expect(r32.distance.dtype).toBe('float32');
    expectClose(Array.from(r32.plan.toArray() as Float32Array), arr(r64.plan), 1e-4, 1e-6);
  });

  it('accepts a non-contiguous cost', () => {
    const costT = t64(costData, [B, N, M]);
    const view = wrap(ref()._testing_transpose(H(costT), 1, 2));
    const dense = Tensor.from(new Float64Array(arr(view)), [B, M, N]);
    const o = { epsilon: 0.1, maxIterations: 50 };
    expect(arr(ops.sinkhorn(view, o).plan)).toEqual(arr(ops.sinkhorn(dense, o).plan));
  });

  it('distance gradient is the plan (envelope theorem) and equals autograd through the unrolled iterations at convergence', () => {
    const cost = t64(costData, [B, M, N], true);
    const o = { epsilon: 0.1, maxIterations: 3000, tolerance: 1e-12 };
    const r = ops.sinkhorn(cost, o);
    const w = t64(new Float64Array([0.5, -1, 2]), [B]);
    r.distance.backward(w);
    const g = arr(cost.grad!);
    const plan = arr(r.plan);
    expectClose(g, plan.map((v, i) => v * [0.5, -1, 2][Math.floor(i / (M * N))]), 1e-12, 1e-16);
    // Autograd through the unrolled composite iterations of the regularised value <T,C> - eps H(T).
    const cost2 = t64(costData, [B, M, N], true);
    const e = unrolled(cost2, { epsilon: 0.1, maxIterations: 400 });
    e.objective.backward(w);
    expectClose(g, arr(cost2.grad!), 0, 1e-4);
  });

  it('envelope gradient matches finite differences of the regularised value', () => {
    const cost = costData.slice(0, M * N);
    const o = { epsilon: 0.3, maxIterations: 5000, tolerance: 1e-13 };
    const value = (c: Float64Array) => arr(unrolled(t64(c, [1, M, N]), o).objective)[0];
    const plan = arr(ops.sinkhorn(t64(cost, [1, M, N]), o).plan);
    const h = 1e-5;
    for (const idx of [0, 3, 17, M * N - 1]) {
      const cp = cost.slice(), cm = cost.slice();
      cp[idx] += h; cm[idx] -= h;
      expect(Math.abs((value(cp) - value(cm)) / (2 * h) - plan[idx])).toBeLessThan(1e-6);
    }
  });

  it('rejects bad calls with codes', () => {
    const good = t64(costData, [B, M, N]);
    const bad: [() => unknown, string, RegExp][] = [
      [() => ops.sinkhorn(Tensor.zeros([3, 4]), { epsilon: 0.1, maxIterations: 10 }), 'ERR_SHAPE', /cost must have shape \[B, M, N\].*\[3, 4\]/],
      [() => ops.sinkhorn(Tensor.zeros([1, 3, 4], { dtype: 'int32' }), { epsilon: 0.1, maxIterations: 10 }), 'ERR_DTYPE', /cost must be float32 or float64.*int32/],
      [() => ops.sinkhorn(good, { epsilon: 0, maxIterations: 10 }), 'ERR_INVALID_ARG', /epsilon must be a finite number > 0, got 0/],
      [() => ops.sinkhorn(good, { epsilon: NaN, maxIterations: 10 }), 'ERR_NOT_FINITE', /epsilon must be finite/],
      [() => ops.sinkhorn(good, { epsilon: 0.1, maxIterations: 0 }), 'ERR_INVALID_ARG', /maxIterations must be in \[1, 100000000\], got 0/],
      [() => ops.sinkhorn(good, { epsilon: 0.1, maxIterations: 2.5 }), 'ERR_INVALID_ARG', /maxIterations must be an integer/],
      [() => ops.sinkhorn(good, { epsilon: 0.1, maxIterations: 10, tolerance: -1 }), 'ERR_INVALID_ARG', /tolerance must be a finite number >= 0/],
      [() => ops.sinkhorn(good, { epsilon: 0.1, maxIterations: 10, a: Tensor.ones([B, M + 1], { dtype: 'float64' }) }), 'ERR_SHAPE', /a must have shape \[B, M\] = \[3, 7\], got \[3, 8\]/],
      [() => ops.sinkhorn(good, { epsilon: 0.1, maxIterations: 10, b: Tensor.ones([B, N]) }), 'ERR_DTYPE', /b must have the cost's dtype float64, got float32/],
      [() => ops.sinkhorn(good, { epsilon: 0.1, maxIterations: 10, a: t64(new Float64Array(B * M).fill(-1), [B, M]) }), 'ERR_INVALID_ARG', /a must be non-negative/],
      [() => ops.sinkhorn(good, { epsilon: 0.1, maxIterations: 10, b: Tensor.zeros([B, N], { dtype: 'float64' }) }), 'ERR_INVALID_ARG', /positive total mass/],
      [() => ops.sinkhorn(t64(new Float64Array(M * N).fill(NaN), [1, M, N]), { epsilon: 0.1, maxIterations: 10 }), 'ERR_NOT_FINITE', /cost must hold only finite values/],
      [() => ops.sinkhorn({} as never, { epsilon: 0.1, maxIterations: 10 }), 'ERR_INVALID_ARG', /cost must be a Tensor/],
      [() => ops.sinkhorn(good, null as never), 'ERR_INVALID_ARG', /options must be an object/],
      [() => ops.euclideanCost(Tensor.zeros([2, 3]), Tensor.zeros([2, 3, 4])), 'ERR_SHAPE', /x must have shape \[B, M, D\]/],
      [() => ops.euclideanCost(Tensor.zeros([2, 3, 4]), Tensor.zeros([2, 3, 5])), 'ERR_SHAPE', /must agree in B and D/],
      [() => ops.euclideanCost(Tensor.zeros([2, 3, 4]), Tensor.zeros([2, 3, 4], { dtype: 'float64' })), 'ERR_DTYPE', /y must have x's dtype float32/],
    ];
    for (const [call, code, msg] of bad) {
      let err: unknown;
      try { call(); } catch (e) { err = e; }
      expect(err, String(msg)).toBeInstanceOf(ArgumentError);
      expect((err as ArgumentError).code, String(msg)).toBe(code);
      expect((err as Error).message).toMatch(msg);
      expect((err as Error).message).not.toMatch(/Exception raised from|frame #/);
    }
  });
});

describe('ops.euclideanCost (CPU)', () => {
  const Bx = 2, Mx = 4, Nx = 3;
  const xd = rand(Bx * Mx * D, 31, -1, 1), yd = rand(Bx * Nx * D, 32, -1, 1);
  it('matches the direct composite reference in float64, forward and backward', () => {
    const x = t64(xd, [Bx, Mx, D], true), y = t64(yd, [Bx, Nx, D], true);
    const c = ops.euclideanCost(x, y);
    const x2 = t64(xd, [Bx, Mx, D], true), y2 = t64(yd, [Bx, Nx, D], true);
    const c2 = wrap(ref()._testing_euclideanCost(H(x2), H(y2)));
    expect(c.shape).toEqual([Bx, Mx, Nx]);
    expectClose(arr(c), arr(c2), 1e-10);
    const w = t64(rand(Bx * Mx * Nx, 33, -1, 1), [Bx, Mx, Nx]);
    radkit.sum(radkit.mul(c, w)).backward();
    radkit.sum(radkit.mul(c2, w)).backward();
    expectClose(arr(x.grad!), arr(x2.grad!), 1e-8, 1e-12);
    expectClose(arr(y.grad!), arr(y2.grad!), 1e-8, 1e-12);
  });

  it('passes a finite-difference gradient check in float64, and carries the sinkhorn gradient to x and y', () => {
    const w = rand(Bx * Mx * Nx, 34, -1, 1);
    const f = (xa: Float64Array, ya: Float64Array) => {
      const c = arr(ops.euclideanCost(t64(xa, [Bx, Mx, D]), t64(ya, [Bx, Nx, D])));
      return c.reduce((s, v, i) => s + v * w[i], 0);
    };
    const x = t64(xd, [Bx, Mx, D], true), y = t64(yd, [Bx, Nx, D], true);
    radkit.sum(radkit.mul(ops.euclideanCost(x, y), t64(w, [Bx, Mx, Nx]))).backward();
    const gx = arr(x.grad!), gy = arr(y.grad!);
    const h = 1e-6;
    for (const i of [0, 5, 13, Bx * Mx * D - 1]) {
      const p = xd.slice(), m = xd.slice();
      p[i] += h; m[i] -= h;
      expect(Math.abs((f(p, yd) - f(m, yd)) / (2 * h) - gx[i])).toBeLessThan(1e-7);
    }
    for (const i of [0, 7, Bx * Nx * D - 1]) {
      const p = yd.slice(), m = yd.slice();
      p[i] += h; m[i] -= h;
      expect(Math.abs((f(xd, p) - f(xd, m)) / (2 * h) - gy[i])).toBeLessThan(1e-7);
    }
    // sinkhorn distance -> euclideanCost -> x, y
    const x3 = t64(xd, [Bx, Mx, D], true);
    const r = ops.sinkhorn(ops.euclideanCost(x3, t64(yd, [Bx, Nx, D])), { epsilon: 0.5, maxIterations: 50 });
    radkit.sum(r.distance).backward();
    expect(arr(x3.grad!).every(Number.isFinite)).toBe(true);
    expect(arr(x3.grad!).some((v) => v !== 0)).toBe(true);
  });
});
