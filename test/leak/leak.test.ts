import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const script = path.join(__dirname, 'leak-script.cjs');
function run(mode: string, n: number, env: NodeJS.ProcessEnv = process.env) {
  const out = execFileSync(process.execPath, ['--expose-gc', script, mode, String(n)], { encoding: 'utf8', env });
  return JSON.parse(out.trim().split('\n').pop()!);
}

describe('no leaks', () => {
  it('100,000 created and disposed tensors leave memory() at its baseline and RSS within 50 MB', () => {
    const r = run('dispose', 100_000);
    expect(r.after.liveTensors).toBe(r.before.liveTensors);
    expect(r.after.liveBytes).toBe(r.before.liveBytes);
    expect(r.after.totalCreated - r.before.totalCreated).toBe(200_000);
    console.log(`dispose loop: RSS growth ${((r.rssAfter - r.rssBefore) / 1e6).toFixed(1)} MB`);
    expect(r.rssAfter - r.rssBefore).toBeLessThan(50 * 1024 * 1024);
  });

  it('forgotten tensors are reclaimed by the safety net', () => {
    const r = run('forget', 100_000);
    expect(r.peakLive - r.before.liveTensors).toBeGreaterThan(0);
    // All 100,000 forgotten 4 KiB tensors (400 MB) reclaimed, and the memory is reused: after two
    // warm-up rounds, a third round of forgetting does not grow RSS by what it allocated.
    expect(r.after.liveTensors).toBe(r.before.liveTensors);
    expect(r.after.liveBytes).toBe(r.before.liveBytes);
    expect(r.rssAfter - r.rssBefore).toBeLessThan(50 * 1024 * 1024);
  });

  it('10,000 forward + backward calls of each CPU kernel leave memory() at its baseline and native memory within 16 MB', () => {
    const r = run('ops', 10_000, { ...process.env, RADKIT_MQ_SCREEN: '1' });
    expect(r.after.liveTensors).toBe(r.before.liveTensors);
    expect(r.after.liveBytes).toBe(r.before.liveBytes);
    console.log(`kernel loop: native memory growth ${((r.nativeAfter - r.nativeBefore) / 1e6).toFixed(1)} MB`);
    expect(r.nativeAfter - r.nativeBefore).toBeLessThan(16 * 1024 * 1024); // a planted leak of 1.5 KB per call adds 35 MB
  }, 600_000);
});
