// The prepared image cache (lib/data/cache.ts) and the loader reading it.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { prepare, PreparedCache, type CacheManifest } from '../../lib/data/cache.js';
import { DataLoader, type Batch } from '../../lib/data/loader.js';
import { readR2Gen, type R2GenDataset } from '../../lib/data/r2gen.js';
import { synthesize } from '../../lib/data/synth/index.js';
import { DataError } from '../../lib/errors.js';

const root = mkdtempSync(join(tmpdir(), 'radkit-cache-'));
const src = join(root, 'synth');

/** A copy of the SynthCXR dataset (so tests can change images). */
function copyDataset(name: string): string {
  const d = join(root, name);
  mkdirSync(d, { recursive: true });
  for (const f of ['annotation.json', 'labels.json']) copyFileSync(join(src, f), join(d, f));
  for (const id of readdirSync(join(src, 'images'))) {
    mkdirSync(join(d, 'images', id), { recursive: true });
    for (const f of readdirSync(join(src, 'images', id))) copyFileSync(join(src, 'images', id, f), join(d, 'images', id, f));
  }
  return d;
}

async function all(loader: DataLoader): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader) out.push(b);
  return out;
}

function rejects(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

beforeAll(async () => {
  await synthesize({ out: src, train: 12, val: 3, test: 3, size: 64, views: 2, workers: 1 });
});

describe('radkit.data.prepare and the loader', () => {
  it('prepares uint8 shards; the loader reads them and gives exactly what decoding on the fly gives', async () => {
    const d = copyDataset('a');
    const ds = readR2Gen(join(d, 'annotation.json'), { labels: join(d, 'labels.json') });
    const r = await prepare(ds, { size: 32, imagesPerShard: 7, workers: 2 });
    expect(r.dir).toBe(join(d, 'prepared', '32x32-stretch-lanczos3'));
    expect(r.manifest).toMatchObject({ complete: true, images: 36, shards: 6, imagesPerShard: 7, views: null });
    expect(r.manifest.preprocessing.decoder).toMatch(/^sharp \S+ \/ libvips \S+/);
    expect(readFileSync(join(r.dir, 'shard-00000.bin')).length).toBe(7 * 32 * 32);
    expect(r.writtenShards).toBe(6);

    const cached = new DataLoader(ds, { split: 'train', batchSize: 5, imageSize: 32, seed: 3, mean: 0.5, std: 0.25 });
    expect(cached.cache?.dir).toBe(r.dir);
    const decoded = new DataLoader(ds, { split: 'train', batchSize: 5, imageSize: 32, seed: 3, mean: 0.5, std: 0.25, cache: false });
    expect(decoded.cache).toBeUndefined();
    const a = await all(cached);
    const b = await all(decoded);
    expect(a.map((x) => x.ids)).toEqual(b.map((x) => x.ids));
    a.forEach((x, i) => expect(Buffer.from(x.images.data.buffer).equals(Buffer.from(b[i].images.data.buffer))).toBe(true));
    expect(a[0].labelStates!.shape).toEqual([5, 14]);

    // another size: no cache for it (auto), decoding on the fly; an explicit folder of another size is refused
    expect(new DataLoader(ds, { split: 'train', batchSize: 5, imageSize: 16 }).cache).toBeUndefined();
    expect(() => new DataLoader(ds, { split: 'train', batchSize: 5, imageSize: 16, cache: r.dir })).toThrow(/holds 32x32 stretch lanczos3 images, the loader wants 16x16/);

    // run again: every shard kept
    const again = await prepare(ds, { size: 32, imagesPerShard: 7 });
    expect([again.keptShards, again.writtenShards]).toEqual([6, 0]);
  });

  it('a changed source image makes the cache stale: refused with a clear message, and prepare redoes that shard only', async () => {
    const d = copyDataset('b');
    const ds = readR2Gen(join(d, 'annotation.json'));
    await prepare(ds, { size: 32, imagesPerShard: 7, views: 1 });
    const victim = ds.splits.val[1];
    const file = victim.imagePaths[0];
    const later = new Date(Date.now() + 5000);
    utimesSync(file, later, later);
    const e = (() => {
      try {
        new DataLoader(ds, { split: 'val', batchSize: 2, imageSize: 32, views: 1 });
      } catch (err) {
        return err;
      }
    })() as DataError;
    expect(e).toBeInstanceOf(DataError);
    expect(e.message).toMatch(/prepared cache is stale/);
    expect(e.message).toContain(file);
    expect(e.entry).toBe(`val study "${victim.id}"`);
    expect(e.message).toMatch(/run radkit prepare --data .* --size 32 again, or load without the cache/);
    // the training split is unaffected; two views were not prepared (--views 1): 'auto' decodes
    // instead, the cache named explicitly is refused, naming the image
    expect(new DataLoader(ds, { split: 'train', batchSize: 2, imageSize: 32, views: 1 }).cache).toBeDefined();
    expect(new DataLoader(ds, { split: 'train', batchSize: 2, imageSize: 32, views: 2 }).cache).toBeUndefined();
    const dirOf = new DataLoader(ds, { split: 'train', batchSize: 2, imageSize: 32, views: 1 }).cache!.dir;
    expect(() => new DataLoader(ds, { split: 'train', batchSize: 2, imageSize: 32, views: 2, cache: dirOf })).toThrow(/does not hold .*1\.png/);
    const redo = await prepare(ds, { size: 32, imagesPerShard: 7, views: 1 });
    expect(redo.writtenShards).toBe(1);
    expect(redo.keptShards).toBe(redo.manifest.shards - 1);
    expect(new DataLoader(ds, { split: 'val', batchSize: 2, imageSize: 32, views: 1 }).cache).toBeDefined();
  });

  it('an incomplete cache is refused; a corrupt source fails prepare naming file and study, or is skipped', async () => {
    const d = copyDataset('c');
    const ds = readR2Gen(join(d, 'annotation.json'));
    const bad = ds.splits.train[4];
    writeFileSync(bad.imagePaths[1], Buffer.from('not an image'));
    const e = (await rejects(prepare(ds, { size: 32, imagesPerShard: 7 }))) as DataError;
    expect(e).toBeInstanceOf(DataError);
    expect(e.file).toBe(bad.imagePaths[1]);
    expect(e.entry).toBe(`train study "${bad.id}"`);
    expect(e.message).toMatch(/not a PNG or JPEG/);
    // the interrupted (failed) prepare left an incomplete cache: the loader refuses it
    expect(() => new DataLoader(ds, { split: 'train', batchSize: 4, imageSize: 32 })).toThrow(/incomplete \(an interrupted prepare\)/);
    const r = await prepare(ds, { size: 32, imagesPerShard: 7, onError: 'skip' });
    expect(r.manifest.complete).toBe(true);
    expect(r.manifest.skipped).toEqual([expect.objectContaining({ file: bad.imagePaths[1], entry: `train study "${bad.id}"` })]);
    const strict = new DataLoader(ds, { split: 'train', batchSize: 12, imageSize: 32, shuffle: false });
    expect(await rejects(all(strict))).toMatchObject({ message: expect.stringMatching(new RegExp(`train study "${bad.id}": cannot decode image .*1\\.png: .*not a PNG or JPEG.*\\(at prepare time\\)`)) });
    const lenient = new DataLoader(ds, { split: 'train', batchSize: 12, imageSize: 32, shuffle: false, onError: 'skip' });
    const out = await all(lenient);
    expect(out[0].skipped).toEqual([bad.id]);
    expect(out[0].ids).toHaveLength(11);
  });

  it('resumes after kill -9: complete shards are kept, the rest is decoded, the result is the same as one clean run', async () => {
    const dist = resolve('dist');
    if (!existsSync(join(dist, 'lib/data/cache.js'))) throw new Error('build the TypeScript first (npm run build:ts): this test spawns dist/');
    const d = copyDataset('d');
    const ann = join(d, 'annotation.json');
    const out = join(d, 'cache');
    const child = spawnSync(process.execPath, [join('test', 'unit', 'prepare-kill.cjs'), dist, ann, out, '3'], { encoding: 'utf8' });
    expect(child.signal).toBe('SIGKILL');
    const m0 = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as CacheManifest;
    expect(m0.complete).toBe(false);
    expect(existsSync(join(out, 'shard-00002.json'))).toBe(true);
    // debris of a shard being written when the process died
    writeFileSync(join(out, 'shard-00003.bin.tmp'), Buffer.alloc(100, 7));
    writeFileSync(join(out, 'shard-00004.bin'), Buffer.alloc(5 * 32 * 32, 9)); // a renamed bin whose index never came
    const ds = readR2Gen(ann);
    expect(() => PreparedCache.open(out)).toThrow(/incomplete/);
    const r = await prepare(ds, { size: 32, out, imagesPerShard: 5 });
    expect(r.keptShards).toBe(3);
    expect(r.writtenShards).toBe(r.manifest.shards - 3);
    expect(readdirSync(out).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const clean = await prepare(ds, { size: 32, out: join(d, 'clean'), imagesPerShard: 5 });
    for (let k = 0; k < r.manifest.shards; k++) {
      const name = `shard-${String(k).padStart(5, '0')}.bin`;
      expect(readFileSync(join(out, name)).equals(readFileSync(join(clean.dir, name))), name).toBe(true);
    }
  });
});
