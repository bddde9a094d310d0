import { afterEach, describe, expect, it } from 'vitest';
import { getNumThreads, setNumThreads } from '../../lib/index.js';
import { loadNative } from '../../lib/native.js';

interface ThreadTesting {
  parallelThreads: () => number;
  parallelThreadsAsync: () => Promise<number>;
  openblasThreads: () => number;
}
const testing = () => (loadNative() as unknown as { testing: ThreadTesting }).testing;

// Enough concurrent calls to occupy every libuv pool thread (UV_THREADPOOL_SIZE, default 4).
const onWorkers = async (): Promise<number[]> => Promise.all(Array.from({ length: 16 }, () => testing().parallelThreadsAsync()));

describe('CPU threads of radkit kernels', () => {
  const before = getNumThreads();
  afterEach(() => setNumThreads(before));

  it('runs its own parallel loops on setNumThreads threads (the addon is built with OpenMP)', () => {
    setNumThreads(1);
    expect(testing().parallelThreads()).toBe(1);
    setNumThreads(3);
    expect(testing().parallelThreads()).toBe(3);
  });

  it('a change reaches the libuv worker threads that already ran parallel work', async () => {
    setNumThreads(1);
    expect(new Set(await onWorkers())).toEqual(new Set([1]));  // every pool thread has now fixed a team size
    setNumThreads(3);
    expect(new Set(await onWorkers())).toEqual(new Set([3]));
    setNumThreads(2);
    expect(new Set(await onWorkers())).toEqual(new Set([2]));
  });

  it('sizes OpenBLAS pool with the same count (no second pool of CPU-count threads)', () => {
    const blas = testing().openblasThreads();
    if (blas < 0) return;  // no OpenBLAS in this process (another BLAS)
    setNumThreads(1);
    expect(testing().openblasThreads()).toBe(1);
    setNumThreads(2);
    expect(testing().openblasThreads()).toBe(2);
  });
});
