import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { beforeAll, describe, expect, it } from 'vitest';
import { synthesize } from '../../lib/data/synth/index.js';
import { readR2Gen, readUnpaired, DataError } from '../../lib/data/r2gen.js';
import { DataLoader } from '../../lib/data/loader.js';
import { Tokenizer } from '../../lib/text/tokenizer.js';
import { CHEXPERT_OBSERVATIONS } from '../../lib/text/chexpert.js';

let dir: string;
const tmp = () => mkdtempSync(join(tmpdir(), 'radkit-r2g-'));

beforeAll(async () => {
  dir = tmp();
  await synthesize({ out: dir, train: 10, val: 4, test: 2, size: 48, seed: 9, views: 2, unpaired: true });
});

function writeAnn(obj: unknown, d = tmp()): string {
  const f = join(d, 'annotation.json');
  writeFileSync(f, typeof obj === 'string' ? obj : JSON.stringify(obj));
  return f;
}

describe('R2Gen readers', () => {
  it('reads IU style with a separate labels file', () => {
    const ds = readR2Gen(join(dir, 'annotation.json'), { labels: join(dir, 'labels.json'), checkImages: true });
    expect(ds.style).toBe('iu');
    expect(ds.splits.train).toHaveLength(10);
    expect(ds.splits.val).toHaveLength(4);
    const e = ds.splits.train[0];
    expect(e.imagePaths[0]).toBe(join(dir, 'images', e.imagePathsRaw[0]));
    expect(e.labels?.['No Finding']).toMatch(/positive|absent/);
  });
  it('reads MIMIC style (one JPEG per entry, study/subject ids, inline labels)', () => {
    const d = tmp();
    mkdirSync(join(d, 'images', 'p10', 'p10000032', 's50414267'), { recursive: true });
    const px = Buffer.alloc(16 * 16 * 4, 200);
    writeFileSync(join(d, 'images', 'p10', 'p10000032', 's50414267', 'a.jpg'), jpeg.encode({ data: px, width: 16, height: 16 }, 90).data);
    const f = writeAnn(
      {
        train: [
          {
            id: 'a',
            study_id: 50414267,
            subject_id: 10000032,
            report: 'No acute process.',
            image_path: ['p10/p10000032/s50414267/a.jpg'],
            split: 'train',
            labels: { 'No Finding': 'positive' },
          },
        ],
        val: [],
        test: [],
      },
      d,
    );
    const ds = readR2Gen(f);
    expect(ds.style).toBe('mimic');
    expect(ds.splits.train[0]).toMatchObject({ id: 'a', studyId: '50414267', subjectId: '10000032' });
    expect(ds.splits.train[0].labels?.Edema).toBe('absent');
  });
  it('names the file and entry for bad input, or skips when asked', () => {
    expect(() => readR2Gen(writeAnn('{"train": [ {"id": 1,'))).toThrow(/annotation\.json: malformed JSON/);
    expect(() => readR2Gen(join(tmp(), 'missing.json'))).toThrow(/missing\.json: file not found/);
    const bad = {
      train: [
        { id: 'ok', report: 'Fine.', image_path: ['x/0.png'] },
        { id: 'noreport', image_path: ['x/0.png'] },
        { id: 'empty', report: '   ', image_path: ['x/0.png'] },
        { report: 'no id', image_path: ['x/0.png'] },
        { id: 'noimg', report: 'x' },
        { id: 'badlabel', report: 'x', image_path: ['a.png'], labels: { Edema: 'maybe' } },
        { id: 'ok', report: 'dup', image_path: ['x/0.png'] },
        'str',
      ],
    };
    const f = writeAnn(bad);
    expect(() => readR2Gen(f)).toThrow(DataError);
    expect(() => readR2Gen(f)).toThrow(/annotation\.json: train\[1\] \(id "noreport"\): missing "report"/);
    const ds = readR2Gen(f, { onError: 'skip' });
    expect(ds.splits.train.map((e) => e.id)).toEqual(['ok']);
    expect(ds.issues.map((i) => i.message)).toEqual([
      'missing "report" (string)',
      'empty report',
      'missing "id"',
      'missing "image_path" (non-empty array of strings)',
      "labels: 'Edema' has invalid value \"maybe\" (expected positive|negative|uncertain|absent)",
      'duplicate id',
      'entry is not an object',
    ]);
    expect(() => readR2Gen(writeAnn({ train: [{ id: 'a', report: 'x', image_path: ['nope.png'] }] }), { checkImages: true })).toThrow(/image not found: .*nope\.png/);
    expect(() => readR2Gen(writeAnn([1, 2]))).toThrow(/expected an object/);
  });
  it('rejects non-UTF-8 text with the byte offset', () => {
    const d = tmp();
    const f = join(d, 'annotation.json');
    writeFileSync(f, Buffer.concat([Buffer.from('{"train": [{"id": "a", "report": "caf'), Buffer.from([0xe9]), Buffer.from('", "image_path": ["a.png"]}]}')]));
    expect(() => readR2Gen(f)).toThrow(/not valid UTF-8 text \(first bad byte at offset 37\)/);
  });
  it('reads the unpaired export', () => {
    const u = readUnpaired(join(dir, 'unpaired'));
    expect(u.images.length + u.reports.length).toBe(10);
    expect(u.images[0].imagePaths[0]).toContain(join(dir, 'images'));
  });
});

describe('DataLoader', () => {
  it('yields [B, V, 1, H, W] batches with tokens and labels, shuffled reproducibly, off the main thread', async () => {
    const ds = readR2Gen(join(dir, 'annotation.json'), { labels: join(dir, 'labels.json') });
    const tok = Tokenizer.fromAnnotation(JSON.parse(readFileSync(join(dir, 'annotation.json'), 'utf8')), { threshold: 1 });
    const loader = new DataLoader(ds, { split: 'train', batchSize: 4, imageSize: 32, tokenizer: tok, seed: 1, workers: 2, prefetch: 2 });
    expect(loader.length).toBe(3);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const batches = [];
    for await (const b of loader) batches.push(b);
    clearInterval(timer);
    expect(batches.map((b) => b.images.shape)).toEqual([
      [4, 2, 1, 32, 32],
      [4, 2, 1, 32, 32],
      [2, 2, 1, 32, 32],
    ]);
    const b0 = batches[0];
    expect(b0.images.data).toBeInstanceOf(Float32Array);
    expect(b0.images.data.length).toBe(4 * 2 * 32 * 32);
    expect(Math.max(...b0.images.data)).toBeLessThanOrEqual(1);
    expect(b0.tokens!.shape[0]).toBe(4);
    expect(b0.tokens!.data[0]).toBe(0);
    expect(b0.labelStates!.shape).toEqual([4, 14]);
    // label states: 0 absent, 1 positive, 2 negative, 3 uncertain, in CheXpert order, from each study's labels
    const states = { absent: 0, positive: 1, negative: 2, uncertain: 3 } as const;
    b0.labels!.forEach((l, i) => CHEXPERT_OBSERVATIONS.forEach((o, j) => expect(b0.labelStates!.data[i * 14 + j]).toBe(states[l[o]])));
    const ids = batches.flatMap((b) => b.ids);
    expect(new Set(ids).size).toBe(10);
    expect(ids).toEqual(loader.order().map((i) => ds.splits.train[i].id));
    expect(loader.order(1)).not.toEqual(loader.order(0));
    expect(ticks).toBeGreaterThan(0);
    // in-thread decoding gives the same pixels as the workers
    const here = new DataLoader(ds, { split: 'train', batchSize: 4, imageSize: 32, seed: 1, workers: 0 });
    const first = (await here[Symbol.asyncIterator]().next()).value;
    expect(Array.from(first.images.data.slice(0, 64))).toEqual(Array.from(b0.images.data.slice(0, 64)));
  });
  it('stops cleanly on break and on errors; skip mode drops only the broken study', async () => {
    const d = tmp();
    mkdirSync(join(d, 'images', 'a'), { recursive: true });
    const ds0 = readR2Gen(join(dir, 'annotation.json'));
    const src = ds0.splits.val;
    src.forEach((e, i) => {
      mkdirSync(join(d, 'images', e.id), { recursive: true });
      e.imagePathsRaw.forEach((p, k) => copyFileSync(join(dir, 'images', p), join(d, 'images', `${e.id}/${k}.png`)));
      if (i === 1) writeFileSync(join(d, 'images', `${e.id}/0.png`), Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('broken')]));
    });
    const f = writeAnn({ val: [...src.map((e) => ({ id: e.id, report: e.report, image_path: e.imagePathsRaw })), { id: 'gone', report: 'x', image_path: ['gone/0.png'] }] }, d);
    const ds = readR2Gen(f);
    const strict = new DataLoader(ds, { split: 'val', batchSize: 8, imageSize: 16, workers: 1 });
    await expect(async () => {
      for await (const _ of strict) void _;
    }).rejects.toThrow(/val study "syn-val-00001": cannot decode image .*0\.png: corrupt PNG/);
    const lenient = new DataLoader(ds, { split: 'val', batchSize: 8, imageSize: 16, workers: 1, onError: 'skip' });
    const out = [];
    for await (const b of lenient) out.push(b);
    expect(out[0].ids).toEqual(['syn-val-00000', 'syn-val-00002', 'syn-val-00003']);
    expect(out[0].skipped).toEqual(['syn-val-00001', 'gone']);
    expect(out[0].images.shape[0]).toBe(3);
    expect(lenient.issues.map((i) => i.message).join('\n')).toMatch(/gone\/0\.png: file not found/);
    const early = new DataLoader(ds0, { split: 'train', batchSize: 2, imageSize: 16, workers: 2 });
    for await (const b of early) {
      expect(b.ids).toHaveLength(2);
      break;
    }
  });
  it('validates options', () => {
    const ds = readR2Gen(join(dir, 'annotation.json'));
    expect(() => new DataLoader(ds, { split: 'train', batchSize: 0, imageSize: 8 })).toThrow(/batchSize/);
    expect(() => new DataLoader(ds, { split: 'nope' as 'train', batchSize: 1, imageSize: 8 })).toThrow(/split/);
  });
});
