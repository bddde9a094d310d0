import { afterEach, describe, expect, it } from 'vitest';
import { getNumThreads, setNumThreads } from '../../lib/index.js';
import { loadNative } from '../../lib/native.js';

const testing = () => (loadNative() as unknown as { testing: { parallelThreads: () => number } }).testing;

describe('CPU threads of radkit kernels', () => {
  const before = getNumThreads();
  afterEach(() => setNumThreads(before));

  it('runs its own parallel loops on setNumThreads threads (the addon is built with OpenMP)', () => {
    setNumThreads(1);
    expect(testing().parallelThreads()).toBe(1);
    setNumThreads(3);
    expect(testing().parallelThreads()).toBe(3);
  });
});
