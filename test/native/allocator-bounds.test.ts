// The caching CPU allocator's bounds: idle memory never exceeds RADKIT_CPU_CACHE_MB (oldest buffers
// go first); a miss keeps the idle buffers of other sizes (a training step's sizes miss in turn);
// emptyCpuCache() returns everything idle.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { Tensor } from '../../lib/index.js';

const MiB = 1 << 20;

describe('caching CPU allocator bounds', () => {
  it('a request of a new size keeps the idle buffers of other sizes for reuse; emptyCpuCache returns them', () => {
    radkit.emptyCpuCache();
    const big = Array.from({ length: 10 }, () => Tensor.zeros([2 * MiB])); // 8 MiB each
    big.forEach((t) => t.dispose());
    expect(radkit.cpuCache().idleBytes).toBeGreaterThanOrEqual(80 * MiB);
    const other = Tensor.zeros([MiB + 4096]); // a size nothing idle has: a miss
    expect(radkit.cpuCache().idleBytes!).toBeGreaterThanOrEqual(80 * MiB);
    const hits = radkit.cpuCache().hits!;
    const z = Tensor.zeros([2 * MiB]);  // a kept 8 MiB buffer is reused, and handed out zeroed
    expect(radkit.cpuCache().hits).toBe(hits + 1);
    expect((z.toArray() as Float32Array).every((v) => v === 0)).toBe(true);
    [other, z].forEach((t) => t.dispose());
    radkit.emptyCpuCache();
    expect(radkit.cpuCache()).toMatchObject({ idleBytes: 0, idleBuffers: 0 });
  });

  it('keeps at most RADKIT_CPU_CACHE_MB idle, the most recently freed buffers', () => {
    const index = path.resolve(__dirname, '../../dist/lib/index.js');
    const script = `const r = require(${JSON.stringify(index)});
      const ts = [1, 2, 3, 4].map(() => r.Tensor.zeros([2 * 1048576]));
      ts.forEach((t) => t.dispose());
      const full = r.cpuCache();
      const again = r.Tensor.zeros([2 * 1048576]);
      const hit = r.cpuCache().hits - full.hits;
      again.dispose();
      console.log(JSON.stringify({ full, hit }));`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, RADKIT_CPU_CACHE_MB: '16' } });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { full: radkit.CpuCacheInfo; hit: number };
    expect(out.full.limitBytes).toBe(16 * MiB);
    expect(out.full.idleBytes).toBe(16 * MiB);  // two of the four 8 MiB buffers
    expect(out.full.idleBuffers).toBe(2);
    expect(out.hit).toBe(1);
  });
});
