import { describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { Tensor } from '../../lib/index.js';

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
});
