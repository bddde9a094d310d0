// Unpaired loading (lib/data/unpaired.ts): two independently shuffled streams, an epoch of max(n) / batch steps.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readR2Gen, readUnpaired, type UnpairedDataset } from '../../lib/data/r2gen.js';
import { synthesize } from '../../lib/data/synth/index.js';
import { UnpairedLoader, type UnpairedBatch } from '../../lib/data/unpaired.js';
import { prepare } from '../../lib/data/cache.js';
import { Tokenizer } from '../../lib/text/tokenizer.js';

const dir = mkdtempSync(join(tmpdir(), 'radkit-unpaired-'));
let data: UnpairedDataset;

beforeAll(async () => {
  await synthesize({ out: dir, train: 22, val: 2, test: 2, size: 32, views: 2, unpaired: true, workers: 1 });
  data = readUnpaired(join(dir, 'unpaired'));
});

async function epoch(l: UnpairedLoader, e: number): Promise<UnpairedBatch[]> {
  const out: UnpairedBatch[] = [];
  for await (const b of l.epoch(e)) out.push(b);
  return out;
}

describe('UnpairedLoader', () => {
  it('covers every item of both streams each epoch; the longer stream once, the shorter one wrapping', async () => {
    const reports = data.reports.slice(0, 4); // 11 images, 4 reports
    const d = { ...data, reports };
    expect(d.images.length).toBe(11);
    const tok = Tokenizer.build(data.reports.map((r) => r.report), { threshold: 1 });
    const l = new UnpairedLoader(d, { batchSize: 3, imageSize: 16, tokenizer: tok, seed: 5 });
    expect(l.length).toBe(4); // ceil(max(11 / 3, 4 / 3))
    for (const e of [0, 1]) {
      const bs = await epoch(l, e);
      expect(bs).toHaveLength(4);
      const imgs = bs.flatMap((b) => b.imageIds);
      expect(imgs.sort()).toEqual(d.images.map((x) => x.id).sort()); // each image exactly once
      expect(bs.map((b) => b.images.shape[0])).toEqual([3, 3, 3, 2]);
      const reps = bs.flatMap((b) => b.reportIds);
      expect(reps).toHaveLength(12); // full report batches, wrapping
      expect(new Set(reps)).toEqual(new Set(reports.map((r) => r.id)));
      for (const b of bs) {
        expect(b.images.shape).toEqual([b.imageIds.length, 1, 1, 16, 16]);
        expect(b.imageLabelStates.shape).toEqual([b.imageIds.length, 14]);
        expect(b.reportLabelStates.shape).toEqual([b.reportIds.length, 14]);
        expect(b.tokens!.shape[0]).toBe(b.reportIds.length);
        b.reportIds.forEach((id, i) => expect(b.reportLabels[i]).toEqual(reports.find((r) => r.id === id)!.labels));
        b.imageIds.forEach((id, i) => expect(b.imageLabels[i]).toEqual(d.images.find((x) => x.id === id)!.labels));
      }
    }
    // independent shuffles: reproducible from the seed, different across epochs
    expect(l.plan(0)).toEqual(new UnpairedLoader(d, { batchSize: 3, imageSize: 16, seed: 5 }).plan(0));
    expect(l.plan(1)).not.toEqual(l.plan(0));
    expect(l.plan(0).map((s) => s.images)).not.toEqual(new UnpairedLoader(d, { batchSize: 3, imageSize: 16, seed: 6 }).plan(0).map((s) => s.images));
  });

  it('reports longer than images: images wrap; report batches of their own size; sentence shuffling is seeded', async () => {
    const d = { ...data, images: data.images.slice(0, 2) };
    const l = new UnpairedLoader(d, { batchSize: 2, reportBatchSize: 4, imageSize: 16, seed: 1, augment: { text: { shuffleSentences: 1 } } });
    expect(l.length).toBe(3); // ceil(11 / 4)
    const bs = await epoch(l, 0);
    expect(bs.flatMap((b) => b.reportIds).sort()).toEqual(data.reports.map((r) => r.id).sort());
    expect(bs.map((b) => b.imageIds.length)).toEqual([2, 2, 2]);
    const again = await epoch(l, 0);
    expect(again.map((b) => b.reports)).toEqual(bs.map((b) => b.reports));
    const multi = bs.flatMap((b) => b.reports.map((r, i) => ({ r, orig: data.reports.find((x) => x.id === b.reportIds[i])!.report }))).filter((x) => x.orig.split('. ').length > 2);
    expect(multi.some((x) => x.r !== x.orig)).toBe(true);
    for (const x of multi) expect(x.r.split(/(?<=[.!?])\s+/).sort()).toEqual(x.orig.trim().split(/(?<=[.!?])\s+/).sort());
  });

  it('reads the images from the prepared cache of their dataset when there is one', async () => {
    const ds = readR2Gen(join(dir, 'annotation.json'));
    await prepare(ds, { size: 16, imagesPerShard: 9, views: 1, splits: ['train'] });
    const cached = new UnpairedLoader(data, { batchSize: 4, imageSize: 16, seed: 2 });
    const plain = new UnpairedLoader(data, { batchSize: 4, imageSize: 16, seed: 2, cache: false });
    const a = await epoch(cached, 0);
    const b = await epoch(plain, 0);
    expect(a.map((x) => Array.from(x.images.data))).toEqual(b.map((x) => Array.from(x.images.data)));
    expect((cached as unknown as { images: { cache?: unknown } }).images.cache).toBeDefined();
  });
});
