import { execFileSync, execSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

// Builds a prebuild with prebuildify (node-gyp + binding.gyp, the install-time path) in a copy of
// the package, removes build/, and loads the copy: node-gyp-build must pick prebuilds/.
// It compiles every source again (minutes on 2 cores), so it runs in CI or when asked.
const enabled = !!process.env.CI || !!process.env.RADKIT_TEST_PREBUILD;
const root = path.resolve(__dirname, '..', '..');

describe.skipIf(!enabled)('prebuild (set RADKIT_TEST_PREBUILD=1 to run outside CI)', () => {
  it('prebuildify makes prebuilds/linux-x64/*.node and a copy without build/ loads it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-prebuild-'));
    for (const item of ['package.json', 'binding.gyp', 'native', 'scripts', 'dist', 'typings']) {
      fs.cpSync(path.join(root, item), path.join(dir, item), { recursive: true });
    }
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
    execSync('npx prebuildify --napi --strip', { cwd: dir, stdio: 'pipe', env: { ...process.env, RADKIT_NATIVE: '' } });
    const prebuilt = fs.readdirSync(path.join(dir, 'prebuilds', `${process.platform}-${process.arch}`));
    expect(prebuilt.some((f) => f.endsWith('.node'))).toBe(true);
    fs.rmSync(path.join(dir, 'build'), { recursive: true, force: true });
    const script = `const r = require(${JSON.stringify(path.join(dir, 'dist/lib/index.js'))});
      const t = r.Tensor.from(new Float32Array([1, 2, 3]), [3]);
      console.log(JSON.stringify({ binary: r.info().binary, sum: Array.from(r.sum(t).toArray()) }));`;
    const env = { ...process.env };
    delete env.RADKIT_NATIVE;
    delete env.LD_LIBRARY_PATH;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', env }).trim());
    expect(out.binary.loaded).toBe(true);
    expect(out.binary.source).toBe('prebuild');
    expect(out.binary.path).toContain(path.join(dir, 'prebuilds'));
    expect(out.sum).toEqual([6]);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 1_800_000);
});
