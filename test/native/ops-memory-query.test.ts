import { describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { ArgumentError, Tensor, ops } from '../../lib/index.js';
import { loadNative } from '../../lib/native.js';
import type { MemoryQueryOptions } from '../../lib/ops/memoryQuery.js';

// The composite reference (matmul + topk + gather) lives in native/testing/memory_query_reference.cc.
/* eslint-disable @typescript-eslint/no-explicit-any */
const native = () => loadNative() as any;
const H = (t: Tensor) => Tensor.handle(t);

function reference(q: Tensor, k: Tensor, v: Tensor, o: MemoryQueryOptions) {
  const r = native()._testing_memoryQuery(H(q), H(k), H(v), { ...o, mask: o.mask && H(o.mask) });
  return { response: Tensor.wrap(r.response), indices: Tensor.wrap(r.indices), weights: Tensor.wrap(r.weights) };
}

function rand(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  const out = new Float64Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; ++i) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = lo + (s / 4294967296) * (hi - lo);
  }
  return out;
}
const t64 = (d: Float64Array, shape: number[], requiresGrad = false) => Tensor.from(d, shape, { requiresGrad });
const arr = (t: Tensor) => Array.from(t.toArray() as Float64Array, Number);
const ints = (t: Tensor) => Array.from(t.toArray() as BigInt64Array, Number);
const boolMask = (bits: number[], shape: number[]) => Tensor.from(new Uint8Array(bits), shape, { dtype: 'bool' });

function expectClose(actual: number[], expected: number[], rtol: number, atol: number) {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; ++i)
    if (!(Math.abs(actual[i] - expected[i]) <= atol + rtol * Math.abs(expected[i])))
      throw new Error(`index ${i}: got ${actual[i]}, expected ${expected[i]}`);
}

const B = 2, L = 3, D = 8, S = 11, Dv = 6;
const qd = rand(B * L * D, 1), kd = rand(S * D, 2), vd = rand(S * Dv, 3);
const gR = rand(B * L * Dv, 4);

// Forward and backward (loss = sum(response * gR) + sum(weights * gW)) against the reference.
function compare(o: MemoryQueryOptions, shapes = { B, L, D, S, Dv }, data = { qd, kd, vd }) {
  const { B: b, L: l, D: d, S: s, Dv: dv } = shapes;
  const mk = () => [t64(data.qd, [b, l, d], true), t64(data.kd, [s, d], true), t64(data.vd, [s, dv], true)] as const;
  const [q1, k1, v1] = mk();
  const [q2, k2, v2] = mk();
  const r = ops.memoryQuery(q1, k1, v1, o);
  const e = reference(q2, k2, v2, o);
  expect(r.response.shape).toEqual([b, l, dv]);
  expect(r.indices.shape).toEqual(e.indices.shape);
  expect(r.indices.dtype).toBe('int64');
  expect(ints(r.indices)).toEqual(ints(e.indices));
  expectClose(arr(r.weights), arr(e.weights), 1e-10, 1e-14);
  expectClose(arr(r.response), arr(e.response), 1e-10, 1e-14);
  const gRt = t64(rand(b * l * dv, 4), [b, l, dv]);
  const gWt = t64(rand(r.weights.numel, 5), r.weights.shape);
  radkit.sum(radkit.mul(r.response, gRt)).backward(); // response path
  radkit.sum(radkit.mul(e.response, gRt)).backward();
  expectClose(arr(q1.grad!), arr(q2.grad!), 1e-8, 1e-12);
  expectClose(arr(k1.grad!), arr(k2.grad!), 1e-8, 1e-12);
  expectClose(arr(v1.grad!), arr(v2.grad!), 1e-8, 1e-12);
  // weights path (fresh leaves)
  const [q3, k3] = mk(), [q4, k4] = mk();
  const r3 = ops.memoryQuery(q3, k3, t64(data.vd, [s, dv]), o);
  const e4 = reference(q4, k4, t64(data.vd, [s, dv]), o);
  radkit.sum(radkit.mul(r3.weights, gWt)).backward();
  radkit.sum(radkit.mul(e4.weights, gWt)).backward();
  expectClose(arr(q3.grad!), arr(q4.grad!), 1e-8, 1e-12);
  expectClose(arr(k3.grad!), arr(k4.grad!), 1e-8, 1e-12);
  return r;
}

describe('ops.memoryQuery (CPU)', () => {
  for (const similarity of ['dot', 'scaled-dot', 'cosine'] as const)
    for (const weighting of ['softmax', 'normalized'] as const)
      for (const heads of [1, 2])
        it(`matches matmul + topk + gather in float64, forward and backward (${similarity}, ${weighting}, heads ${heads})`, () => {
          compare({ k: 4, similarity, weighting, heads });
        });

  it('k = 1 and k = S', () => {
    compare({ k: 1, similarity: 'dot', weighting: 'softmax' });
    const r = compare({ k: S, similarity: 'scaled-dot', weighting: 'normalized' });
    // every row selects every memory row once
    const idx = ints(r.indices);
    for (let row = 0; row < B * L; ++row) expect([...idx.slice(row * S, (row + 1) * S)].sort((a, b) => a - b)).toEqual([...Array(S).keys()]);
  });

  it('a mask leaving fewer than k eligible gives index -1 / weight 0; a row with none gives a zero response', () => {
    const bits = new Array(B * S).fill(0);
    bits[2] = 1; bits[7] = 1; // sample 0: two eligible; sample 1: none
    const mask = boolMask(bits, [B, S]);
    for (const weighting of ['softmax', 'normalized'] as const) {
      const o: MemoryQueryOptions = { k: 4, similarity: 'cosine', weighting, mask, heads: 2 };
      const r = compare(o);
      const idx = ints(r.indices), w = arr(r.weights), resp = arr(r.response);
      for (let l = 0; l < L; ++l)
        for (let h = 0; h < 2; ++h) {
          const base = (l * 2 + h) * 4;
          expect(new Set(idx.slice(base, base + 2))).toEqual(new Set([2, 7]));
          expect(idx.slice(base + 2, base + 4)).toEqual([-1, -1]);
          expect(w.slice(base + 2, base + 4)).toEqual([0, 0]);
          expect(w[base] + w[base + 1]).toBeCloseTo(1, 12);
        }
      const second = L * 2 * 4;
      expect(idx.slice(second)).toEqual(new Array(L * 2 * 4).fill(-1));
      expect(w.slice(second)).toEqual(new Array(L * 2 * 4).fill(0));
      expect(resp.slice(L * Dv)).toEqual(new Array(L * Dv).fill(0));
      expect(resp.every(Number.isFinite)).toBe(true);
    }
  });

  it('selects the right indices for distinct known scores, best first', () => {
    // query = e0, key s has first coordinate perm[s]: the order is known exactly.
    const perm = [5, 0, 9, 3, 10, 1, 7, 2, 8, 4, 6];
    const keys = new Float64Array(S * D);
    perm.forEach((p, s) => (keys[s * D] = p / 10));
    const q = new Float64Array(1 * 1 * D);
    q[0] = 1;
    const r = ops.memoryQuery(t64(q, [1, 1, D]), t64(keys, [S, D]), t64(vd, [S, Dv]), { k: 5, similarity: 'dot', weighting: 'softmax' });
    expect(ints(r.indices)).toEqual([4, 2, 8, 6, 10]);
    const w = arr(r.weights);
    const sc = [1.0, 0.9, 0.8, 0.7, 0.6].map(Math.exp), z = sc.reduce((a, b) => a + b);
    expectClose(w, sc.map((x) => x / z), 1e-14, 0);
  });

  it('long rows with many ties and a mask: highest eligible scores, ties to the lowest index', () => {
    // Integer keys and queries give exact, heavily tied scores; S >= 4k exercises the kernel's
    // group-maximum bound. Expected order computed here by a full sort.
    const b = 2, l = 3, d = 4, s = 300, k = 5, heads = 2, dh = d / heads;
    const qi = Float64Array.from(rand(b * l * d, 21), (x) => Math.round(x * 2));
    const ki = Float64Array.from(rand(s * d, 22), (x) => Math.round(x));
    for (let j = 0; j < d; ++j) ki[(s - 1) * d + j] = 9; // the last row is the best for positive queries
    const bits = Array.from(rand(b * s, 23), (x) => (x > -0.4 ? 1 : 0));
    const r = ops.memoryQuery(t64(qi, [b, l, d]), t64(ki, [s, d]), t64(rand(s * 2, 24), [s, 2]), { k, similarity: 'dot', weighting: 'softmax', heads, mask: boolMask(bits, [b, s]) });
    const got = ints(r.indices);
    for (let row = 0; row < b * l; ++row)
      for (let h = 0; h < heads; ++h) {
        const score = (j: number) => qi[row * d + h * dh] * ki[j * d + h * dh] + qi[row * d + h * dh + 1] * ki[j * d + h * dh + 1];
        const eligible = [...Array(s).keys()].filter((j) => bits[Math.floor(row / l) * s + j] === 1);
        const want = eligible.sort((x, y) => score(y) - score(x) || x - y).slice(0, k);
        expect(got.slice((row * heads + h) * k, (row * heads + h + 1) * k)).toEqual(want);
      }
  });

  it('streams over several memory tiles (S = 5000) and matches the reference', () => {
    const s = 5000;
    compare({ k: 7, similarity: 'scaled-dot', weighting: 'softmax', heads: 2 }, { B: 1, L: 2, D, S: s, Dv }, { qd: qd.slice(0, 2 * D), kd: rand(s * D, 9), vd: rand(s * Dv, 10) });
  });

  describe('int8 screening of long memories (RADKIT_MQ_SCREEN=1 forces it on any CPU)', () => {
    const withScreening = <T>(on: boolean, fn: () => T): T => {
      const before = process.env.RADKIT_MQ_SCREEN;
      process.env.RADKIT_MQ_SCREEN = on ? '1' : '0';
      try {
        return fn();
      } finally {
        if (before === undefined) delete process.env.RADKIT_MQ_SCREEN;
        else process.env.RADKIT_MQ_SCREEN = before;
      }
    };

    it('selects exactly what the unscreened kernel and the composite select (float32, S = 20,000), forward and backward', () => {
      radkit.manualSeed(11);
      const [b, l, d, s, dv] = [2, 5, 64, 20_000, 8];
      const q = Tensor.randn([b, l, d]), kk = Tensor.randn([s, d]), v = Tensor.randn([s, dv]);
      const mask = boolMask(Array.from({ length: b * s }, (_, i) => (i % 5 === 2 ? 0 : 1)), [b, s]);
      const g = Tensor.randn([b, l, dv]);
      for (const similarity of ['dot', 'scaled-dot', 'cosine'] as const)
        for (const [heads, m] of [[1, undefined], [4, mask]] as const) {
          const o: MemoryQueryOptions = { k: 12, similarity, weighting: 'softmax', heads, mask: m };
          const run = (on: boolean) =>
            withScreening(on, () => {
              const [qg, kg, vg] = [q, kk, v].map((t) => Tensor.from(t.toArray(), t.shape, { requiresGrad: true }));
              const r = ops.memoryQuery(qg, kg, vg, o);
              r.response.backward(g);
              return { r, grads: [qg.grad!, kg.grad!, vg.grad!].map((t) => Array.from(t.toArray() as Float32Array)) };
            });
          const on = run(true), off = run(false);
          expect(ints(on.r.indices)).toEqual(ints(off.r.indices));
          expect(ints(on.r.indices)).toEqual(ints(reference(q, kk, v, o).indices));
          const f32 = (t: Tensor) => Array.from(t.toArray() as Float32Array);
          expectClose(f32(on.r.response), f32(off.r.response), 1e-4, 1e-5);
          for (let i = 0; i < 3; ++i) expectClose(on.grads[i], off.grads[i], 1e-3, 1e-4);
        }
    });

    const f32 = (d: Float64Array | Float32Array, shape: number[]) => Tensor.from(Float32Array.from(d), shape);
    const indicesBoth = (q: Tensor, kk: Tensor, v: Tensor, o: MemoryQueryOptions) =>
      [true, false].map((on) => withScreening(on, () => ints(ops.memoryQuery(q, kk, v, o).indices)));

    it('handles head widths that are not multiples of the vector width (dh = 75, 20, 3)', () => {
      const s = 6000;
      for (const [d, heads] of [[75, 1], [40, 2], [12, 4]] as const) {
        const q = f32(rand(3 * d, 40 + d), [1, 3, d]), kk = f32(rand(s * d, 41 + d), [s, d]), v = f32(rand(s * 4, 42), [s, 4]);
        const o: MemoryQueryOptions = { k: 9, similarity: 'scaled-dot', weighting: 'softmax', heads };
        const [on, off] = indicesBoth(q, kk, v, o);
        expect(on).toEqual(off);
        expect(on).toEqual(ints(reference(q, kk, v, o).indices));
      }
    });

    it('selects exactly on keys that quantize badly: zero, tiny, one dominant entry, near-duplicates', () => {
      const s = 5000, d = 32;
      const kd = Float32Array.from(rand(s * d, 51));
      for (let j = 0; j < s; ++j) {
        const row = kd.subarray(j * d, (j + 1) * d);
        if (j % 7 === 0) row.fill(0);
        else if (j % 7 === 1) row.forEach((x, i) => (row[i] = x * 1e-33));
        else if (j % 7 === 2) row[j % d] = 40; // one entry far above the rest: the others round to code 0
        else if (j % 7 === 3 && j > 3) row.set(kd.subarray((j - 3) * d, (j - 2) * d).map((x) => x * (1 + 1e-6)));
      }
      const q = f32(rand(4 * d, 52), [1, 4, d]), kk = Tensor.from(kd, [s, d]), v = f32(rand(s * 2, 53), [s, 2]);
      for (const similarity of ['dot', 'cosine'] as const) {
        const o: MemoryQueryOptions = { k: 20, similarity, weighting: 'softmax' };
        const [on, off] = indicesBoth(q, kk, v, o);
        expect(on).toEqual(off);
      }
    });

    it('falls back to the exact path for scores that could overflow, and reports non-finite keys', () => {
      const s = 3000, d = 16;
      const kd = Float32Array.from(rand(s * d, 61), (x) => x * 1e17);
      const q = f32(rand(2 * d, 62).map((x) => x * 1e14), [1, 2, d]), v = f32(rand(s * 2, 63), [s, 2]);
      const o: MemoryQueryOptions = { k: 5, similarity: 'cosine', weighting: 'softmax' };
      const [on, off] = indicesBoth(q, Tensor.from(kd, [s, d]), v, o);
      expect(on).toEqual(off);
      kd[1234] = NaN;
      expect(() => withScreening(true, () => ops.memoryQuery(q, Tensor.from(kd, [s, d]), v, o))).toThrow(/finite/);
    });

    it('gives bit-identical results on 1 and 3 threads, screened and unscreened (float32, S = 7,000)', () => {
      radkit.manualSeed(12);
      const q = Tensor.randn([3, 70, 96]), kk = Tensor.randn([7000, 96]), v = Tensor.randn([7000, 16]);
      const o: MemoryQueryOptions = { k: 10, similarity: 'scaled-dot', weighting: 'softmax', heads: 2 };
      const before = radkit.getNumThreads();
      const run = (threads: number, on: boolean) => {
        radkit.setNumThreads(threads);
        try {
          return withScreening(on, () => {
            const r = ops.memoryQuery(q, kk, v, o);
            return [ints(r.indices), Array.from(r.response.toArray() as Float32Array)];
          });
        } finally {
          radkit.setNumThreads(before);
        }
      };
      for (const on of [true, false]) expect(run(3, on)).toEqual(run(1, on));
    });

    it('keeps ties in index order across screened tiles (integer data, S = 10,000)', () => {
      const b = 1, l = 4, d = 4, s = 10_000, k = 6;
      const qi = Float32Array.from(rand(b * l * d, 31), (x) => Math.round(x * 2));
      const ki = Float32Array.from(rand(s * d, 32), (x) => Math.round(x * 2));
      const r = withScreening(true, () =>
        ops.memoryQuery(Tensor.from(qi, [b, l, d]), Tensor.from(ki, [s, d]), Tensor.randn([s, 2]), { k, similarity: 'dot', weighting: 'softmax' }));
      const got = ints(r.indices);
      for (let row = 0; row < l; ++row) {
        const score = (j: number) => [0, 1, 2, 3].reduce((acc, x) => acc + qi[row * d + x] * ki[j * d + x], 0);
        const want = [...Array(s).keys()].sort((x, y) => score(y) - score(x) || x - y).slice(0, k);
        expect(got.slice(row * k, (row + 1) * k)).toEqual(want);
      }
    });
  });

  it('accepts non-contiguous inputs', () => {
    const tr = (t: Tensor, a: number, b: number) => Tensor.wrap(native()._testing_transpose(H(t), a, b));
    const keysT = tr(t64(kd, [D, S]), 0, 1); // [S, D] view
    const valsT = tr(t64(vd, [Dv, S]), 0, 1);
    const qT = tr(t64(qd, [B, D, L]), 1, 2);
    const dense = (t: Tensor) => t64(new Float64Array(arr(t)), t.shape);
    const o: MemoryQueryOptions = { k: 3, similarity: 'cosine', weighting: 'softmax', heads: 2 };
    const a = ops.memoryQuery(qT, keysT, valsT, o);
    const b = ops.memoryQuery(dense(qT), dense(keysT), dense(valsT), o);
    expect(ints(a.indices)).toEqual(ints(b.indices));
    expect(arr(a.response)).toEqual(arr(b.response));
  });

  it('is bit-identical across runs, forward and backward, and float32 agrees with float64', () => {
    const o: MemoryQueryOptions = { k: 5, similarity: 'dot', weighting: 'softmax', heads: 2 };
    const run = () => {
      const q = t64(qd, [B, L, D], true), k = t64(kd, [S, D], true), v = t64(vd, [S, Dv], true);
      const r = ops.memoryQuery(q, k, v, o);
      radkit.sum(radkit.mul(r.response, t64(gR, [B, L, Dv]))).backward();
      return [arr(r.response), arr(q.grad!), arr(k.grad!), arr(v.grad!)];
    };
    expect(run()).toEqual(run());
    const f = ops.memoryQuery(t64(qd, [B, L, D]).to('float32'), t64(kd, [S, D]).to('float32'), t64(vd, [S, Dv]).to('float32'), o);
    expect(f.response.dtype).toBe('float32');
    expectClose(Array.from(f.response.toArray() as Float32Array), arr(ops.memoryQuery(t64(qd, [B, L, D]), t64(kd, [S, D]), t64(vd, [S, Dv]), o).response), 1e-5, 1e-6);
  });

  it('passes a finite-difference gradient check in float64', () => {
    for (const [similarity, weighting] of [['cosine', 'normalized'], ['scaled-dot', 'softmax']] as const) {
      const o: MemoryQueryOptions = { k: 3, similarity, weighting, heads: 2 };
      const f = (q: Float64Array, k: Float64Array, v: Float64Array) =>
        arr(ops.memoryQuery(t64(q, [B, L, D]), t64(k, [S, D]), t64(v, [S, Dv]), o).response).reduce((a, x, i) => a + x * gR[i], 0);
      const q = t64(qd, [B, L, D], true), k = t64(kd, [S, D], true), v = t64(vd, [S, Dv], true);
      radkit.sum(radkit.mul(ops.memoryQuery(q, k, v, o).response, t64(gR, [B, L, Dv]))).backward();
      const grads = [arr(q.grad!), arr(k.grad!), arr(v.grad!)];
      const h = 1e-6;
      const datas = [qd, kd, vd];
      for (let which = 0; which < 3; ++which)
        for (let i = 0; i < datas[which].length; i += 5) {
          const p = datas.map((x) => x.slice()), m = datas.map((x) => x.slice());
          p[which][i] += h; m[which][i] -= h;
          const fd = (f(p[0], p[1], p[2]) - f(m[0], m[1], m[2])) / (2 * h);
          expect(Math.abs(fd - grads[which][i])).toBeLessThan(1e-6);
        }
    }
  });

  it('rejects bad calls with codes', () => {
    const q = t64(qd, [B, L, D]), k = t64(kd, [S, D]), v = t64(vd, [S, Dv]);
    const o: MemoryQueryOptions = { k: 3, similarity: 'dot', weighting: 'softmax' };
    const nan = new Float64Array(qd); nan[3] = NaN;
    const bad: [() => unknown, string, RegExp][] = [
      [() => ops.memoryQuery(t64(qd, [B * L, D]), k, v, o), 'ERR_SHAPE', /query must have shape \[B, L, D\] \(rank 3\), got \[6, 8\]/],
      [() => ops.memoryQuery(q, t64(kd.slice(0, S * 4), [S, 4]), v, o), 'ERR_SHAPE', /keys must have shape \[S, D\] with query's D = 8, got \[11, 4\]/],
      [() => ops.memoryQuery(q, k, t64(vd.slice(0, 10 * Dv), [10, Dv]), o), 'ERR_SHAPE', /values must have shape \[S, Dv\] with the keys' S = 11/],
      [() => ops.memoryQuery(q, k.to('float32'), v, o), 'ERR_DTYPE', /keys must have query's dtype float64, got float32/],
      [() => ops.memoryQuery(q.to('int32'), k, v, o), 'ERR_DTYPE', /query must be float32 or float64/],
      [() => ops.memoryQuery(q, k, v, { ...o, k: 0 }), 'ERR_INVALID_ARG', /options.k must be in \[1/],
      [() => ops.memoryQuery(q, k, v, { ...o, k: S + 1 }), 'ERR_INVALID_ARG', /k must be in \[1, S\] = \[1, 11\], got 12/],
      [() => ops.memoryQuery(q, k, v, { ...o, similarity: 'l2' as never }), 'ERR_INVALID_ARG', /similarity must be 'dot', 'scaled-dot' or 'cosine', got string 'l2'/],
      [() => ops.memoryQuery(q, k, v, { ...o, weighting: undefined as never }), 'ERR_INVALID_ARG', /weighting must be 'softmax' or 'normalized', got undefined/],
      [() => ops.memoryQuery(q, k, v, { ...o, heads: 3 }), 'ERR_INVALID_ARG', /heads must be >= 1 and divide D = 8 and Dv = 6, got 3/],
      [() => ops.memoryQuery(q, k, v, { ...o, mask: Tensor.ones([B, S]) }), 'ERR_DTYPE', /mask must be bool, got float32/],
      [() => ops.memoryQuery(q, k, v, { ...o, mask: boolMask(new Array(B * (S - 1)).fill(1), [B, S - 1]) }), 'ERR_SHAPE', /mask must have shape \[B, S\] = \[2, 11\], got \[2, 10\]/],
      [() => ops.memoryQuery(t64(nan, [B, L, D]), k, v, o), 'ERR_NOT_FINITE', /finite similarity scores/],
      [() => ops.memoryQuery(q, [] as never, v, o), 'ERR_INVALID_ARG', /keys must be a Tensor, got array/],
      [() => ops.memoryQuery(q, k, v, undefined as never), 'ERR_INVALID_ARG', /options must be an object/],
    ];
    for (const [call, code, msg] of bad) {
      let err: unknown;
      try { call(); } catch (e) { err = e; }
      expect(err, String(msg)).toBeInstanceOf(ArgumentError);
      expect((err as ArgumentError).code, String(msg)).toBe(code);
      expect((err as Error).message).toMatch(msg);
    }
  });
});
