// Shared helpers of the native suites: seeded data, the native testing
// bindings (composite LibTorch references), array comparisons and finite differences.
import { loadNative } from '../../lib/native.js';
import { Tensor } from '../../lib/index.js';
import type { NativeTesting, NativeTensor } from '../../typings/native.js';

export const testing = (): NativeTesting => (loadNative() as unknown as { testing: NativeTesting }).testing;
export const handle = (t: Tensor): NativeTensor => Tensor.handle(t);
export const wrap = (h: NativeTensor): Tensor => Tensor.wrap(h);

/** Deterministic uniform [0, 1) (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randArray(n: number, r: () => number, lo = -1, hi = 1): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * r();
  return a;
}

export function f64(data: Float64Array, shape: number[], requiresGrad = false): Tensor {
  return Tensor.from(data, shape, { dtype: 'float64', requiresGrad });
}

export function arr(t: Tensor): number[] {
  return Array.from(t.toArray() as ArrayLike<number | bigint>, (x) => Number(x));
}

/** max |a - b| / max(1, |b|) elementwise. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return m;
}

export function bitsEqual(a: Tensor, b: Tensor): boolean {
  const x = new Uint8Array((a.toArray() as Float64Array).buffer.slice(0));
  const y = new Uint8Array((b.toArray() as Float64Array).buffer.slice(0));
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * Central finite differences of loss(inputs) w.r.t. every element of inputs[which], where each input
 * is given as its data array (rebuilt as a float64 tensor on every call).
 */
export function finiteDifference(loss: (datas: Float64Array[]) => number, datas: Float64Array[], which: number, h = 1e-6): Float64Array {
  const d = datas[which];
  const out = new Float64Array(d.length);
  for (let i = 0; i < d.length; i++) {
    const keep = d[i];
    d[i] = keep + h;
    const lp = loss(datas);
    d[i] = keep - h;
    const lm = loss(datas);
    d[i] = keep;
    out[i] = (lp - lm) / (2 * h);
  }
  return out;
}

/** Throws naming the first index where |actual - expected| > atol + rtol |expected| (or actual is not finite). */
export function expectAllClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol = 0): void {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length}, expected ${expected.length}`);
  for (let i = 0; i < actual.length; ++i) {
    const err = Math.abs(actual[i] - expected[i]);
    if (!(Number.isFinite(actual[i]) && err <= atol + rtol * Math.abs(expected[i])))
      throw new Error(`index ${i}: got ${actual[i]}, expected ${expected[i]} (rtol ${rtol}, atol ${atol})`);
  }
}

/** A bool tensor of 0/1 values. */
export const boolTensor = (v: number[], shape: number[]): Tensor => Tensor.from(Uint8Array.from(v), shape, { dtype: 'bool' });
/** An int64 tensor. */
export const int64Tensor = (v: number[], shape: number[]): Tensor => Tensor.from(BigInt64Array.from(v, BigInt), shape);
