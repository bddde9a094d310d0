import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
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

  it('model commands: train, generate on new images, evaluate, report', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-cli-'));
    expect(radkit('synth', '--out', path.join(tmp, 'data'), '--train', '24', '--val', '4', '--test', '4', '--size', '64', '--seed', '3').status).toBe(0);
    const run = path.join(tmp, 'run');
    const t = radkit('train', '--data', path.join(tmp, 'data'), '--out', run, '--epochs', '1', '--image-size', '64', '--batch-size', '8', '--threshold', '1', '--progress', 'none');
    expect(t.status, t.stderr).toBe(0);
    expect(JSON.parse(t.stdout).best.epoch).toBe(1);
    const img = fs.readdirSync(path.join(tmp, 'data', 'images'))[0];
    const g = radkit('generate', '--checkpoint', run, path.join(tmp, 'data', 'images', img, '0.png'), '--json');
    expect(g.status, g.stderr).toBe(0);
    const gen = JSON.parse(g.stdout);
    expect(gen).toHaveLength(1);
    expect(gen[0].labelSource).toBe('predicted');
    expect(typeof gen[0].report).toBe('string');
    const e = radkit('evaluate', '--checkpoint', run, '--data', path.join(tmp, 'data'), '--split', 'test', '--out', path.join(tmp, 'eval'));
    expect(e.status, e.stderr).toBe(0);
    const m = JSON.parse(fs.readFileSync(path.join(tmp, 'eval', 'metrics.json'), 'utf8'));
    expect(m.reports).toHaveLength(4);
    expect(m.headline.bleu4).toBeGreaterThanOrEqual(0);
    expect(fs.readFileSync(path.join(tmp, 'eval', 'metrics.md'), 'utf8')).toMatch(/\| bleu4 \|/);
    const r = radkit('report', path.join(tmp, 'eval'), '--data', path.join(tmp, 'data'));
    expect(r.status, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(tmp, 'eval', 'report.html'), 'utf8')).toMatch(/data:image\/png;base64/);
    expect(radkit('generate', '--checkpoint', path.join(tmp, 'nothing'), 'x.png').stderr).toMatch(/no radkit checkpoint/);
  }, 600_000);

  it('unknown commands exit 2 with usage', () => {
    const r = radkit('frobnicate');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown command 'frobnicate'/);
    expect(r.stderr).toMatch(/doctor/);
  });
});
