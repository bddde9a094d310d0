// radkit prepare through the CLI: writes the cache the loader picks up, reruns keep it, errors name the file.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../lib/cli/main.js';
import { DataLoader } from '../../lib/data/loader.js';
import { readR2Gen } from '../../lib/data/r2gen.js';
import { synthesize } from '../../lib/data/synth/index.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-cli-prepare-'));
let out: string[] = [];
let err: string[] = [];
beforeAll(async () => {
  await synthesize({ out: dir, train: 6, val: 2, test: 2, size: 48, views: 2, workers: 1 });
});
afterEach(() => vi.restoreAllMocks());
function capture() {
  out = [];
  err = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
}

describe('radkit prepare', () => {
  it('prepares the dataset at the given size; the loader uses it; a second run keeps every shard', async () => {
    capture();
    expect(await main(['prepare', '--data', dir, '--size', '32', '--views', '1'])).toBe(0);
    expect(out.join('\n')).toMatch(/10 images at 32x32 \(stretch, lanczos3\) in 1 shards -> .*prepared\/32x32-stretch-lanczos3 \(1 written, 0 kept/);
    const ds = readR2Gen(path.join(dir, 'annotation.json'));
    expect(new DataLoader(ds, { split: 'train', batchSize: 2, imageSize: 32, views: 1 }).cache).toBeDefined();
    capture();
    expect(await main(['prepare', '--data', dir, '--size', '32', '--views', '1'])).toBe(0);
    expect(out.join('\n')).toMatch(/shard 1\/1 kept \(unchanged\)/);
  });
  it('a corrupt image: exit 1 naming the file and the study; --on-error skip goes on and lists it', async () => {
    const ds = readR2Gen(path.join(dir, 'annotation.json'));
    const bad = ds.splits.val[0].imagePaths[0];
    fs.writeFileSync(bad, 'garbage');
    capture();
    expect(await main(['prepare', '--data', dir, '--size', '16'])).toBe(1);
    expect(err.join('\n')).toMatch(new RegExp(`${bad.replace(/[.]/g, '\\.')}: val study "${ds.splits.val[0].id}": not a PNG or JPEG`));
    capture();
    expect(await main(['prepare', '--data', dir, '--size', '16', '--on-error', 'skip'])).toBe(0);
    expect(out.join('\n')).toMatch(/1 skipped/);
    expect(out.join('\n')).toContain(`skipped ${bad}`);
  });
  it('refuses a bad command line before any work', async () => {
    capture();
    expect(await main(['prepare', '--data', dir, '--size', '0'])).toBe(2);
    expect(await main(['prepare', '--data', dir, '--splits', 'train,dev'])).toBe(2);
    expect(err.join('\n')).toMatch(/--splits takes a comma-separated list/);
  });
});
