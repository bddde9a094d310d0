import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPairs, metricsCommand } from '../../lib/cli/commands/metrics.js';
import { commands } from '../../lib/cli/commands/index.js';
import { runCommand } from '../../lib/cli/command.js';
import { RadkitError } from '../../lib/errors.js';

function tmp(name: string, data: unknown): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-metrics-'));
  const p = path.join(dir, name);
  fs.writeFileSync(p, JSON.stringify(data));
  return p;
}

describe('radkit metrics', () => {
  it('is registered', () => {
    expect(commands.some((c) => c.name === 'metrics')).toBe(true);
  });

  it('aligns object inputs by id and accepts array inputs', () => {
    const a = loadPairs({ x: 'a b', y: 'c' }, { y: ['c', 'c d'], x: 'a b' });
    expect(a.hyps).toEqual(['a b', 'c']);
    expect(a.refs).toEqual([['a b'], ['c', 'c d']]);
    expect(loadPairs(['a'], [['a', 'b']]).refs).toEqual([['a', 'b']]);
    expect(() => loadPairs({ x: 'a' }, { z: 'a' })).toThrow(/no references for id "x"/);
    expect(() => loadPairs([1], ['a'])).toThrow(RadkitError);
    expect(() => loadPairs([1], ['a'])).toThrow(/--hyps\[0\]: expected a string/);
  });

  it('writes JSON and markdown results', async () => {
    const h = tmp('h.json', ['the heart is normal .', 'no pleural effusion .']);
    const r = tmp('r.json', ['the heart is normal in size .', ['there is no pleural effusion .']]);
    const outJson = path.join(path.dirname(h), 'out.json');
    expect(await runCommand(metricsCommand, ['--hyps', h, '--refs', r, '--out', outJson, '--metrics', 'bleu,rougeL'])).toBe(0);
    const j = JSON.parse(fs.readFileSync(outJson, 'utf8'));
    expect(j.n).toBe(2);
    expect(j.bleu.bleu1).toBeGreaterThan(0);
    expect(j.settings.referenceMode).toBe('full');
    const outMd = path.join(path.dirname(h), 'out.md');
    expect(await runCommand(metricsCommand, ['--hyps', h, '--refs', r, '--format', 'md', '--out', outMd, '--uncertain', 'positive'])).toBe(0);
    const md = fs.readFileSync(outMd, 'utf8');
    expect(md).toMatch(/\| BLEU-4 \|/);
    expect(md).toMatch(/uncertain = positive/);
    expect(md).toMatch(/paraphrase/);
  });

  it('fails clearly on missing or bad inputs', async () => {
    await expect(runCommand(metricsCommand, ['--refs', 'x.json'])).rejects.toMatchObject({ code: 'ERR_USAGE', message: '--hyps is required' });
    const h = tmp('h.json', ['a']);
    await expect(runCommand(metricsCommand, ['--hyps', h, '--refs', h, '--format', 'xml'])).rejects.toThrow(/--format must be one of json, md, got 'xml'/);
    await expect(runCommand(metricsCommand, ['--hyps', h, '--refs', '/nonexistent/r.json'])).rejects.toThrow(/cannot read --refs/);
    const r2 = tmp('r.json', [['a'], ['b']]);
    await expect(runCommand(metricsCommand, ['--hyps', h, '--refs', r2])).rejects.toThrow(/1 hypotheses and 2 reference lists/);
  });
});
