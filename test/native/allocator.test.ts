// The caching CPU allocator: freed large buffers are reused, contents are never stale, the cache
// empties on request and RADKIT_CPU_CACHE_MB=0 turns it off.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { Tensor } from '../../lib/index.js';

describe('caching CPU allocator', () => {
  it('reuses freed buffers and never hands out stale data', () => {
    const before = radkit.cpuCache();
    expect(before.enabled).toBe(true);
    for (let i = 0; i < 20; i++) {
      const t = Tensor.ones([1024, 1024]); // 4 MiB
      t.dispose();
    }
    const z = Tensor.zeros([1024, 1024]);
    const a = z.toArray() as Float32Array;
    expect(a.every((v) => v === 0)).toBe(true);
    z.dispose();
    const after = radkit.cpuCache();
    expect(after.hits! - before.hits!).toBeGreaterThanOrEqual(19);
    expect(after.idleBytes!).toBeGreaterThanOrEqual(4 << 20);
    expect(after.limitBytes).toBe(1024 * 1024 * 1024);
    radkit.emptyCpuCache();
    expect(radkit.cpuCache().idleBytes).toBe(0);
    // small tensors bypass the cache
    const h = radkit.cpuCache().hits!;
    for (let i = 0; i < 10; i++) Tensor.ones([16]).dispose();
    expect(radkit.cpuCache().hits).toBe(h);
  });

  it('can be turned off with RADKIT_CPU_CACHE_MB=0', () => {
    const index = path.resolve(__dirname, '../../dist/lib/index.js');
    const r = spawnSync(process.execPath, ['-e', `const r = require(${JSON.stringify(index)}); const t = r.Tensor.ones([512, 512]); t.dispose(); console.log(JSON.stringify(r.cpuCache()));`], {
      encoding: 'utf8',
      env: { ...process.env, RADKIT_CPU_CACHE_MB: '0' },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ enabled: false });
  });
});
