import { describe, expect, it } from 'vitest';
import { ArgumentError, Tensor, nn } from '../../lib/index.js';
import { arr, dot, f64, finiteDifference, randArray, rng } from './helpers.js';

// OTDRG eq. 2 (IRCP): InfoNCE of each anchor against its noisy copy, in-batch negatives, checked
// against a float64 reference in plain loops (never calling the native loss), its gradient against
// central differences of the reference, and argument errors.
const { noisyPositiveInfoNCE } = nn.losses;

function ref(a: Float64Array, noise: Float64Array, n: number, d: number, temperature: number, normalize = true): number {
  const row = (x: Float64Array, i: number) => Array.from(x.subarray(i * d, (i + 1) * d));
  const unit = (r: number[]) => {
    const norm = Math.sqrt(dot(r, r));
    return normalize ? r.map((v) => v / Math.max(norm, 1e-12)) : r;
  };
  const A = Array.from({ length: n }, (_, i) => unit(row(a, i)));
  const K = Array.from({ length: n }, (_, j) => unit(row(a, j).map((v, k) => v + noise[j * d + k])));
  let total = 0;
  for (let i = 0; i < n; i++) {
    const s = K.map((k) => dot(A[i], k) / temperature);
    const m = Math.max(...s);
    const lse = m + Math.log(s.reduce((acc, v) => acc + Math.exp(v - m), 0));
    total += lse - s[i];
  }
  return total / n;
}

describe('nn.losses.noisyPositiveInfoNCE (OTDRG eq. 2)', () => {
  const B = 5, D = 4;
  const a = randArray(B * D, rng(11)), noise = Float64Array.from(randArray(B * D, rng(12)), (v) => 0.1 * v);

  it('matches the float64 reference, cosine and dot product, float64 and float32', () => {
    for (const [temperature, normalize] of [[0.5, true], [0.1, true], [2, false]] as const) {
      const expected = ref(a, noise, B, D, temperature, normalize);
      expect(Number(noisyPositiveInfoNCE(f64(a, [B, D]), f64(noise, [B, D]), { temperature, normalize }).toArray()[0])).toBeCloseTo(expected, 12);
      const single = noisyPositiveInfoNCE(Tensor.from(Float32Array.from(a), [B, D]), Tensor.from(Float32Array.from(noise), [B, D]), { temperature, normalize });
      expect(single.dtype).toBe('float32');
      expect(Math.abs(Number(single.toArray()[0]) - expected)).toBeLessThan(1e-5 * Math.max(1, Math.abs(expected)));
    }
    // zero noise and orthogonal anchors: every key but its own is at cosine 0
    const eye = new Float64Array(9).map((_, i) => (i % 4 === 0 ? 1 : 0));
    const l = Number(noisyPositiveInfoNCE(f64(eye, [3, 3]), f64(new Float64Array(9), [3, 3]), { temperature: 0.5 }).toArray()[0]);
    expect(l).toBeCloseTo(-Math.log(Math.exp(2) / (Math.exp(2) + 2)), 12);
  });

  it('has the gradient of the reference in the anchors and the noise (central differences)', () => {
    for (const normalize of [true, false]) {
      const ta = f64(a, [B, D], true), tn = f64(noise, [B, D], true);
      noisyPositiveInfoNCE(ta, tn, { temperature: 0.5, normalize }).backward();
      const fa = Array.from(finiteDifference(([x]) => ref(x, noise, B, D, 0.5, normalize), [Float64Array.from(a)], 0));
      const fn = Array.from(finiteDifference(([x]) => ref(a, x, B, D, 0.5, normalize), [Float64Array.from(noise)], 0));
      expect(Math.max(...fa.map(Math.abs))).toBeGreaterThan(1e-3);
      arr(ta.grad!).forEach((g, i) => expect(Math.abs(g - fa[i])).toBeLessThan(1e-6 + 1e-5 * Math.abs(fa[i])));
      arr(tn.grad!).forEach((g, i) => expect(Math.abs(g - fn[i])).toBeLessThan(1e-6 + 1e-5 * Math.abs(fn[i])));
    }
  });

  it('refuses shapes, dtypes and temperatures that do not fit, naming them', () => {
    const call = (f: () => unknown, code: string, message: RegExp) => {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ArgumentError);
      expect((err as ArgumentError).code).toBe(code);
      expect((err as Error).message).toMatch(message);
    };
    call(() => noisyPositiveInfoNCE(f64(a, [B, D]), f64(noise.subarray(0, 8), [2, D]), { temperature: 0.5 }), 'ERR_SHAPE', /anchors and noise must have one shape/);
    call(() => noisyPositiveInfoNCE(f64(a, [B, D]), Tensor.from(Float32Array.from(noise), [B, D]), { temperature: 0.5 }), 'ERR_DTYPE', /one dtype/);
    call(() => noisyPositiveInfoNCE(f64(a, [B, D]), f64(noise, [B, D]), { temperature: 0 }), 'ERR_INVALID_ARG', /temperature/);
  });
});
