import { describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { Tensor, ops } from '../../lib/index.js';

// CUDA kernels of ops.sinkhorn and ops.memoryQuery against the CPU kernels (skipped without CUDA).
const cuda = (() => {
  try {
    return radkit.info().cudaAvailable;
  } catch {
    return false;
  }
})();

const num = (t: Tensor) => Array.from(t.to('cpu').to('float64').toArray() as Float64Array, Number);
const ints = (t: Tensor) => Array.from(t.to('cpu').toArray() as BigInt64Array, Number);
function close(a: number[], b: number[], rtol: number, atol: number) {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; ++i)
    if (!(Math.abs(a[i] - b[i]) <= atol + rtol * Math.abs(b[i]))) throw new Error(`index ${i}: ${a[i]} vs ${b[i]}`);
}

describe.skipIf(!cuda)('CUDA sinkhorn / memoryQuery vs CPU', () => {
  it('sinkhorn: float64/float32 on CUDA match the CPU; float16/bfloat16 run with fp32 accumulation', () => {
    radkit.manualSeed(1);
    for (const [B, M, N] of [[4, 196, 56], [2, 7, 300], [1, 600, 500]]) {
      const cost = Tensor.randn([B, M, N], { dtype: 'float64' });
      const o = { epsilon: 0.1, maxIterations: 60, tolerance: 1e-9 };
      const c = ops.sinkhorn(cost, o);
      const g = ops.sinkhorn(cost.to('cuda'), o);
      expect(g.plan.device).toBe('cuda:0');
      close(num(g.plan), num(c.plan), 1e-9, 1e-14);
      close(num(g.distance), num(c.distance), 1e-9, 1e-12);
      expect(g.problemIterations).toEqual(c.problemIterations);
      const g32 = ops.sinkhorn(cost.to('float32').to('cuda'), { epsilon: 0.1, maxIterations: 60 });
      close(num(g32.plan), num(ops.sinkhorn(cost, { epsilon: 0.1, maxIterations: 60 }).plan), 1e-3, 1e-6);
      for (const dt of ['float16', 'bfloat16'] as const) {
        const h = ops.sinkhorn(cost.to(dt).to('cuda'), { epsilon: 0.1, maxIterations: 60 });
        expect(h.plan.dtype).toBe(dt);
        expect(num(h.distance).every(Number.isFinite)).toBe(true);
      }
    }
    // gradient on CUDA is the plan
    const cost = Tensor.randn([2, 5, 4], { dtype: 'float32', device: 'cuda' });
    cost.requiresGrad = true;
    const r = ops.sinkhorn(cost, { epsilon: 0.2, maxIterations: 50 });
    radkit.sum(r.distance).backward();
    close(num(cost.grad!), num(r.plan), 1e-6, 1e-7);
  });

  it('memoryQuery: CUDA forward and backward match the CPU (float64, float32), with masks, heads and large S', () => {
    radkit.manualSeed(2);
    for (const [B, L, D, S, Dv, k, heads] of [[2, 33, 64, 280, 48, 15, 8], [1, 5, 16, 5000, 8, 32, 1], [2, 3, 8, 11, 6, 11, 2]]) {
      for (const similarity of ['dot', 'scaled-dot', 'cosine'] as const)
        for (const weighting of ['softmax', 'normalized'] as const) {
          const q = Tensor.randn([B, L, D], { dtype: 'float64' }), kk = Tensor.randn([S, D], { dtype: 'float64' }), v = Tensor.randn([S, Dv], { dtype: 'float64' });
          const bits = new Uint8Array(B * S).map((_, i) => (i % 3 === 0 || i < S ? 1 : 0));
          const mask = Tensor.from(bits, [B, S], { dtype: 'bool' });
          const o = { k, similarity, weighting, heads, mask };
          const leaves = (dev: 'cpu' | 'cuda') => [q, kk, v].map((t) => {
            // a CPU copy of its own: t.to('cpu') would be t itself, and its CUDA copy then no leaf
            const x = dev === 'cpu' ? Tensor.from(t.toArray(), t.shape, { dtype: 'float64' }) : t.to(dev);
            x.requiresGrad = true;
            return x;
          });
          const [qc, kc, vc] = leaves('cpu');
          const [qg, kg, vg] = leaves('cuda');
          const rc = ops.memoryQuery(qc, kc, vc, o);
          const rg = ops.memoryQuery(qg, kg, vg, { ...o, mask: mask.to('cuda') });
          expect(ints(rg.indices)).toEqual(ints(rc.indices));
          close(num(rg.weights), num(rc.weights), 1e-10, 1e-13);
          close(num(rg.response), num(rc.response), 1e-10, 1e-13);
          const w = Tensor.randn(rc.response.shape, { dtype: 'float64' });
          radkit.sum(radkit.mul(rc.response, w)).backward();
          radkit.sum(radkit.mul(rg.response, w.to('cuda'))).backward();
          close(num(qg.grad!), num(qc.grad!), 1e-9, 1e-12);
          close(num(kg.grad!), num(kc.grad!), 1e-9, 1e-12);
          close(num(vg.grad!), num(vc.grad!), 1e-9, 1e-12);
          const r32 = ops.memoryQuery(q.to('float32').to('cuda'), kk.to('float32').to('cuda'), v.to('float32').to('cuda'), { ...o, mask: mask.to('cuda') });
          close(num(r32.response), num(rc.response), 1e-3, 1e-4);
          for (const dt of ['float16', 'bfloat16'] as const) {
            const rh = ops.memoryQuery(q.to(dt).to('cuda'), kk.to(dt).to('cuda'), v.to(dt).to('cuda'), { ...o, mask: mask.to('cuda') });
            expect(rh.response.dtype).toBe(dt);
            expect(num(rh.response).every(Number.isFinite)).toBe(true);
          }
        }
    }
  });
  it('memoryQuery: exact ties across several memory chunks give the CPU indices (lowest index first), with a mask', () => {
    // 64 rows -> chunks of 262,144 keys, so S = 600,000 spans three; integer data makes scores exact.
    radkit.manualSeed(4);
    const [B, L, D, S, Dv] = [2, 32, 4, 600_000, 3];
    const tern = (n: number) => Float64Array.from({ length: n }, () => Math.floor(Math.random() * 3) - 1);
    const q = Tensor.from(tern(B * L * D), [B, L, D], { dtype: 'float64' });
    const kk = Tensor.from(tern(S * D), [S, D], { dtype: 'float64' });
    const v = Tensor.randn([S, Dv], { dtype: 'float64' });
    const mask = Tensor.from(Uint8Array.from({ length: B * S }, (_, i) => (i % 7 === 3 ? 0 : 1)), [B, S], { dtype: 'bool' });
    // k = 20 keeps each row's list in the warp's lanes, k = 40 in memory (two merge paths)
    for (const [dtype, k] of [['float64', 20], ['float32', 20], ['float32', 40]] as const) {
      const o = { k, similarity: 'dot' as const, weighting: 'softmax' as const, mask };
      const rc = ops.memoryQuery(q.to(dtype), kk.to(dtype), v.to(dtype), o);
      const rg = ops.memoryQuery(q.to(dtype).to('cuda'), kk.to(dtype).to('cuda'), v.to(dtype).to('cuda'), { ...o, mask: mask.to('cuda') });
      expect(ints(rg.indices)).toEqual(ints(rc.indices));
      close(num(rg.response), num(rc.response), 1e-5, 1e-6);
    }
  });
  it('memoryQuery: tied candidates of a later chunk, a few (filtered) or many (overflowing the candidate list), rank by index', () => {
    // 64 rows -> chunks of 262,144 keys. Chunk 1 fills every list with zeros; chunk 2 holds a few
    // (or many) tied higher scores at random places; chunk 3 only lower ones.
    const [B, L, chunk, k] = [2, 32, 262_144, 20];
    const S = 3 * chunk;
    for (const higher of [30, 500]) {
      const keys = new Float64Array(S);
      keys.fill(-1, 2 * chunk);
      const places = new Set<number>();
      while (places.size < higher) places.add(chunk + Math.floor(Math.random() * chunk));
      [...places].forEach((p, i) => (keys[p] = i % 6 === 0 ? 2 : 1));
      const q = Tensor.ones([B, L, 1], { dtype: 'float64' }), kk = Tensor.from(keys, [S, 1], { dtype: 'float64' });
      const v = Tensor.randn([S, 2], { dtype: 'float64' });
      const o = { k, similarity: 'dot' as const, weighting: 'softmax' as const };
      const rc = ops.memoryQuery(q, kk, v, o);
      const rg = ops.memoryQuery(q.to('cuda'), kk.to('cuda'), v.to('cuda'), o);
      expect(ints(rg.indices)).toEqual(ints(rc.indices));
      const first = ints(rc.indices).slice(0, k);
      const expected = [...places].sort((a, b) => keys[b] - keys[a] || a - b).slice(0, k);
      expect(first).toEqual(expected);
    }
  });
});
