import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const main = path.resolve(__dirname, '../../dist/lib/cli/main.js');
const radkit = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });

describe('radkit CLI', () => {
  it('doctor reports LibTorch and the loaded binary, exit 0', () => {
    const r = radkit('doctor');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/ok {4}loaded .*radkit\.node/);
    expect(r.stdout).toMatch(/LibTorch \d+\.\d+\.\d+/);
    const j = JSON.parse(radkit('doctor', '--json').stdout);
    expect(j.binary.loaded).toBe(true);
    expect(j.problems).toEqual([]);
  });

  it('doctor explains a binary that cannot load, with a fix', () => {
    const r = spawnSync(process.execPath, ['-e', `
      process.env.RADKIT_NATIVE = '/nonexistent/radkit.node';
      require(${JSON.stringify(path.resolve(__dirname, '../../dist/lib/native.js'))});
      const n = require(${JSON.stringify(path.resolve(__dirname, '../../dist/lib/native.js'))});
      console.log(JSON.stringify(n.loadReport()));`], { encoding: 'utf8' });
    const rep = JSON.parse(r.stdout);
    expect(rep.attempts[0].path).toBe('/nonexistent/radkit.node');
    expect(rep.attempts[0].error).toMatch(/Cannot find module/);
  });

  it('demo runs and says plainly what it does', () => {
    const r = radkit('demo', '--seconds', '0.2');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Planned: train XProNet/);
    expect(r.stdout).toMatch(/GFLOP\/s/);
  });

  it('unknown commands exit 2 with usage', () => {
    const r = radkit('frobnicate');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown command 'frobnicate'/);
    expect(r.stderr).toMatch(/doctor/);
  });
});
