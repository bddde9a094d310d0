// CUDA kernels of ops.adaptivePatchSample and ops.maxSimilarity against the CPU kernels (skipped without CUDA).
import { describe, expect, it } from 'vitest';
import { Tensor, info, ops } from '../../lib/index.js';
import { arr, f64, handle, maxRelDiff, randArray, rng, testing } from '../native/helpers.js';

const cuda = (() => {
  try {
    return info().cudaAvailable && info().builtWithCuda;
  } catch {
    return false;
  }
})();

describe.skipIf(!cuda)('CUDA adaptivePatchSample / maxSimilarity vs CPU', () => {
  for (const dtype of ['float64', 'float32', 'float16', 'bfloat16'] as const) {
    const tol = dtype === 'float64' ? 1e-10 : dtype === 'float32' ? 1e-4 : dtype === 'float16' ? 2e-2 : 8e-2;
    it(`adaptivePatchSample forward and backward (${dtype})`, () => {
      const r = rng(1);
      const [B, C, H, W, P, m] = [2, 5, 9, 8, 7, 3];
      const fd = randArray(B * C * H * W, r), bd = new Float64Array(B * P * 4);
      for (let i = 0; i < B * P; i++) bd.set([-2 + 12 * r(), -2 + 12 * r(), 4 * r(), 4 * r()], i * 4);
      const g = randArray(B * P * C * m * m, r);
      const runOn = (device: 'cpu' | 'cuda') => {
        const lowp = device === 'cuda' ? dtype : 'float64';
        const f = f64(fd, [B, C, H, W]).to(lowp).to(device), b = f64(bd, [B, P, 4]).to(lowp).to(device);
        f.requiresGrad = true;
        b.requiresGrad = true;
        const o = ops.adaptivePatchSample(f, b, { points: m });
        o.backward(f64(g, o.shape).to(lowp).to(device));
        return { o: arr(o.to('cpu').to('float64')), gf: arr(f.grad!.to('cpu').to('float64')), gb: arr(b.grad!.to('cpu').to('float64')) };
      };
      const c = runOn('cpu'), d = runOn('cuda');
      expect(maxRelDiff(d.o, c.o)).toBeLessThan(tol);
      expect(maxRelDiff(d.gf, c.gf)).toBeLessThan(tol);
      expect(maxRelDiff(d.gb, c.gb)).toBeLessThan(tol * 50);
    });
  }

  it('maxSimilarity forward, argmax and backward (float64, masked, garbage in padding)', () => {
    const r = rng(2);
    const [Bi, N, Bt, K, D] = [5, 17, 6, 11, 13];
    const id = randArray(Bi * N * D, r), td = randArray(Bt * K * D, r);
    const im = Array.from({ length: Bi * N }, (_, i) => i % N < 3 + (i % 5) * 3);
    const tm = Array.from({ length: Bt * K }, (_, i) => i % K < 2 + (i % 4) * 2);
    im.forEach((real, i) => { if (!real) id.fill(1e6, i * D, (i + 1) * D); });
    const runOn = (device: 'cpu' | 'cuda') => {
      const img = f64(id, [Bi, N, D]).to(device), txt = f64(td, [Bt, K, D]).to(device);
      img.requiresGrad = true;
      txt.requiresGrad = true;
      const mk = (bits: boolean[], shape: number[]) => Tensor.from(Uint8Array.from(bits, Number), shape, { dtype: 'bool' }).to(device);
      const o = ops.maxSimilarity(img, txt, { imageMask: mk(im, [Bi, N]), textMask: mk(tm, [Bt, K]), returnArgmax: true });
      const ones = Tensor.ones([Bi, Bt], { dtype: 'float64' }).to(device);
      testing().backwardMany([handle(o.imageToText), handle(o.textToImage)], [handle(ones), handle(ones)]);
      return {
        a: arr(o.imageToText.to('cpu')), b: arr(o.textToImage.to('cpu')),
        ia: arr(o.imageToTextArgmax!.to('cpu')), ta: arr(o.textToImageArgmax!.to('cpu')),
        gi: arr(img.grad!.to('cpu')), gt: arr(txt.grad!.to('cpu')),
      };
    };
    const c = runOn('cpu'), d = runOn('cuda');
    expect(maxRelDiff(d.a, c.a)).toBeLessThan(1e-10);
    expect(maxRelDiff(d.b, c.b)).toBeLessThan(1e-10);
    expect(d.ia).toEqual(c.ia);
    expect(d.ta).toEqual(c.ta);
    expect(maxRelDiff(d.gi, c.gi)).toBeLessThan(1e-10);
    expect(maxRelDiff(d.gt, c.gt)).toBeLessThan(1e-10);
  });
  it('maxSimilarity: many exact ties (values in {-1, 0, 1}) pick the same lowest-index arg-maxima as the CPU, over many image blocks', () => {
    const r = rng(3);
    const [Bi, N, Bt, K, D] = [40, 37, 9, 45, 3];
    const tern = (n: number) => Float64Array.from({ length: n }, () => Math.floor(r() * 3) - 1);
    const id = tern(Bi * N * D), td = tern(Bt * K * D);
    for (const dtype of ['float64', 'float32'] as const) {
      const runOn = (device: 'cpu' | 'cuda') => {
        const o = ops.maxSimilarity(f64(id, [Bi, N, D]).to(dtype).to(device), f64(td, [Bt, K, D]).to(dtype).to(device), { returnArgmax: true });
        return { a: arr(o.imageToText.to('cpu')), b: arr(o.textToImage.to('cpu')), ia: arr(o.imageToTextArgmax!.to('cpu')), ta: arr(o.textToImageArgmax!.to('cpu')) };
      };
      const c = runOn('cpu'), d = runOn('cuda');
      expect(d.ia).toEqual(c.ia);
      expect(d.ta).toEqual(c.ta);
      expect(maxRelDiff(d.a, c.a)).toBeLessThan(1e-6);
      expect(maxRelDiff(d.b, c.b)).toBeLessThan(1e-6);
    }
  });
});
