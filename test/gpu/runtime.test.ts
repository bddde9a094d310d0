import { describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { Tensor, ops } from '../../lib/index.js';

const cuda = (() => {
  try {
    return radkit.info().cudaAvailable;
  } catch {
    return false;
  }
})();

describe('cudaSynchronize / cudaMemory', () => {
  it.skipIf(cuda)('without CUDA: synchronize is a no-op and memory is null', () => {
    expect(() => radkit.cudaSynchronize()).not.toThrow();
    expect(radkit.cudaMemory()).toBeNull();
    expect(radkit.cudaMemory({ resetPeak: true })).toBeNull();
  });

  it.skipIf(!cuda)('counts a 64 MiB tensor, keeps its peak after disposal, and restarts the peak on reset', () => {
    const bytes = 64 * 1024 * 1024;
    radkit.cudaSynchronize();
    const before = radkit.cudaMemory({ resetPeak: true })!;
    const t = Tensor.zeros([bytes / 4], { device: 'cuda' });
    radkit.cudaSynchronize();
    const during = radkit.cudaMemory()!;
    expect(during.allocatedBytes - before.allocatedBytes).toBeGreaterThanOrEqual(bytes);
    expect(during.reservedBytes).toBeGreaterThanOrEqual(during.allocatedBytes);
    t.dispose();
    const after = radkit.cudaMemory({ resetPeak: true })!;
    expect(after.allocatedBytes).toBe(before.allocatedBytes);
    expect(after.peakAllocatedBytes - before.allocatedBytes).toBeGreaterThanOrEqual(bytes);
    expect(radkit.cudaMemory()!.peakAllocatedBytes).toBe(after.allocatedBytes);
  });
  it.skipIf(!cuda)('10,000 CUDA memoryQuery forward + backward calls hold no GPU memory or handles afterwards', () => {
    const q0 = Tensor.randn([2, 5, 16]), k0 = Tensor.randn([300, 16]), v0 = Tensor.randn([300, 8]);
    const [q, k, v] = [q0.to('cuda'), k0.to('cuda'), v0.to('cuda')];
    for (const t of [q, k, v]) t.requiresGrad = true;
    const step = () => {
      const r = ops.memoryQuery(q, k, v, { k: 4, similarity: 'cosine', weighting: 'softmax' });
      const s = radkit.sum(r.response);
      s.backward();
      for (const t of [s, r.response, r.indices, r.weights]) t.dispose();
    };
    for (let i = 0; i < 100; i++) step();
    radkit.cudaSynchronize();
    const before = radkit.cudaMemory()!.allocatedBytes, handles = radkit.memory().liveTensors;
    for (let i = 0; i < 10_000; i++) step();
    radkit.cudaSynchronize();
    expect(radkit.cudaMemory()!.allocatedBytes).toBe(before);
    expect(radkit.memory().liveTensors).toBe(handles);
  });
});
