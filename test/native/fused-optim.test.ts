// The multi-tensor clipping and the fused Adam/AdamW step (native/nn/fused_optim.h) against
// LibTorch's own implementations (torch::nn::utils::clip_grad_norm_, torch::optim::Adam/AdamW),
// run side by side on copies of the same inputs in float64, and a float32 run close to them.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../../lib/index.js';
import { loadNative } from '../../lib/native.js';
import type { NativeTensor } from '../../typings/native.js';
import { rng } from './helpers.js';

interface FusedTesting {
  fusedAdamSteps(kind: string, param: NativeTensor, grads: NativeTensor[], o: Record<string, number>): { fused: NativeTensor; reference: NativeTensor };
  fusedClip(grads: NativeTensor[], maxNorm: number): { fusedNorm: number; referenceNorm: number; fused: NativeTensor[]; reference: NativeTensor[] };
}
const testing = () => (loadNative() as unknown as { testing: FusedTesting }).testing;

const signed = (seed: number) => {
  const r = rng(seed);
  return () => r() * 2 - 1;
};
const h = (t: Tensor) => Tensor.handle(t);
const values = (n: NativeTensor) => {
  const t = Tensor.wrap(n);
  const a = Array.from(t.toArray() as Float64Array | Float32Array);
  t.dispose();
  return a;
};
function maxRel(a: number[], b: number[]) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(1e-30, Math.abs(b[i])));
  return m;
}

describe('fused multi-tensor optimizer step', () => {
  // 10,000 elements: several 4096-element chunks, and a tail that is not a multiple of 16.
  const n = 10_007;
  for (const kind of ['adam', 'adamw'] as const) {
    for (const weightDecay of [0, 0.05]) {
      it(`${kind} (weight decay ${weightDecay}) equals LibTorch's ${kind} in float64 over 5 steps`, () => {
        const r = signed(kind.length * 10 + weightDecay * 100);
        const p = Tensor.from(Float64Array.from({ length: n }, r), [n], { dtype: 'float64' });
        const grads = Array.from({ length: 5 }, () => Tensor.from(Float64Array.from({ length: n }, () => r() * 3), [n], { dtype: 'float64' }));
        const o = { lr: 0.01, beta1: 0.85, beta2: 0.99, eps: 1e-8, weightDecay };
        const out = testing().fusedAdamSteps(kind, h(p), grads.map(h), o);
        const fused = values(out.fused), ref = values(out.reference), start = Array.from(p.toArray() as Float64Array);
        expect(maxRel(fused, ref)).toBeLessThan(1e-12);
        expect(maxRel(ref, start)).toBeGreaterThan(1e-4);  // the steps moved the parameters
        // float32: the same operations, close to the float64 result
        const p32 = p.to('float32');
        const out32 = testing().fusedAdamSteps(kind, h(p32), grads.map(h), o);
        const f32 = values(out32.fused), r32 = values(out32.reference);
        let worst = 0;
        for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(f32[i] - ref[i]), Math.abs(r32[i] - ref[i]));
        expect(worst).toBeLessThan(1e-5);
        [p, p32, ...grads].forEach((t) => t.dispose());
      });
    }
  }

  for (const kind of ['adam', 'adamw'] as const) {
    it(`${kind} with amsgrad (not fused) takes LibTorch's own step`, () => {
      const r = signed(5);
      const p = Tensor.from(Float64Array.from({ length: 64 }, r), [64], { dtype: 'float64' });
      const grads = Array.from({ length: 3 }, () => Tensor.from(Float64Array.from({ length: 64 }, r), [64], { dtype: 'float64' }));
      const out = testing().fusedAdamSteps(kind, h(p), grads.map(h), { lr: 0.01, amsgrad: 1 });
      expect(values(out.fused)).toEqual(values(out.reference));
      [p, ...grads].forEach((t) => t.dispose());
    });
  }

  it('clipping equals clip_grad_norm_ in float64 (norm and scaled gradients), and leaves small norms alone', () => {
    const r = signed(3);
    const shapes = [[7], [64, 65], [3, 3, 3, 3], [5000]];
    const grads = shapes.map((s) => {
      const len = s.reduce((a, b) => a * b, 1);
      return Tensor.from(Float64Array.from({ length: len }, r), s, { dtype: 'float64' });
    });
    const norm = Math.sqrt(grads.reduce((acc, g) => acc + (Array.from(g.toArray() as Float64Array).reduce((a, v) => a + v * v, 0)), 0));
    for (const maxNorm of [norm / 7, norm * 2]) {
      const out = testing().fusedClip(grads.map(h), maxNorm);
      expect(Math.abs(out.fusedNorm - out.referenceNorm) / out.referenceNorm).toBeLessThan(1e-13);
      expect(Math.abs(out.fusedNorm - norm) / norm).toBeLessThan(1e-13);
      const fused = out.fused.map(values), reference = out.reference.map(values);
      for (let i = 0; i < grads.length; i++) expect(maxRel(fused[i], reference[i])).toBeLessThan(1e-14);
      const scaled = fused[3], original = Array.from(grads[3].toArray() as Float64Array);
      if (maxNorm < norm) expect(scaled[0] / original[0]).toBeCloseTo(maxNorm / (norm + 1e-6), 12);
      else expect(scaled).toEqual(original);
    }
    // float32 gradients: norm read in float32 lanes, within float32 rounding of the float64 norm
    const g32 = grads.map((g) => g.to('float32'));
    const out32 = testing().fusedClip(g32.map(h), norm / 2);
    expect(Math.abs(out32.fusedNorm - norm) / norm).toBeLessThan(1e-6);
    [...grads, ...g32].forEach((t) => t.dispose());
  });
});
