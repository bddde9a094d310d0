import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { synthesize, holdsSynthesis, planStudy, Rng, hashSeed, renderStudy } from '../../lib/data/index.js';
import { label } from '../../lib/text/labeler.js';
import { CHEXPERT_OBSERVATIONS } from '../../lib/text/chexpert.js';

function treeHash(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

describe('SynthCXR generator', () => {
  it('writes R2Gen IU format, labels, boxes; same seed gives identical bytes, other seed differs', async () => {
    const a = mkdtempSync(join(tmpdir(), 'radkit-synth-a-'));
    const b = mkdtempSync(join(tmpdir(), 'radkit-synth-b-'));
    const c = mkdtempSync(join(tmpdir(), 'radkit-synth-c-'));
    const opts = { train: 6, val: 2, test: 2, size: 64, seed: 42, views: 2 as const, unpaired: true };
    await synthesize({ ...opts, out: a });
    await synthesize({ ...opts, out: b, workers: 1 });
    await synthesize({ ...opts, out: c, seed: 43 });
    const ha = treeHash(a);
    expect(ha).toEqual(treeHash(b));
    // holdsSynthesis: reuse only what the same options would write
    expect(holdsSynthesis(a, opts)).toBe(true);
    expect(holdsSynthesis(c, opts)).toBe(false);
    expect(holdsSynthesis(a, { ...opts, train: 7 })).toBe(false);
    expect(holdsSynthesis(a, { ...opts, size: 128 })).toBe(false);
    expect(holdsSynthesis(join(a, 'missing'), opts)).toBe(false);
    expect(treeHash(c)['annotation.json']).not.toBe(ha['annotation.json']);
    const ann = JSON.parse(readFileSync(join(a, 'annotation.json'), 'utf8'));
    expect(Object.keys(ann)).toEqual(['train', 'val', 'test']);
    expect(ann.train).toHaveLength(6);
    const e = ann.train[0];
    expect(Object.keys(e).sort()).toEqual(['id', 'image_path', 'report', 'split']);
    expect(e.image_path).toEqual([`${e.id}/0.png`, `${e.id}/1.png`]);
    const png = PNG.sync.read(readFileSync(join(a, 'images', e.image_path[0])));
    expect([png.width, png.height]).toEqual([64, 64]);
    const labels = JSON.parse(readFileSync(join(a, 'labels.json'), 'utf8'));
    const boxes = JSON.parse(readFileSync(join(a, 'boxes.json'), 'utf8'));
    for (const split of ['train', 'val', 'test'])
      for (const en of ann[split]) {
        expect(Object.keys(labels[en.id])).toEqual([...CHEXPERT_OBSERVATIONS]);
        for (const bx of boxes[en.id]) {
          const [x0, y0, x1, y1] = bx.box;
          expect(0 <= x0 && x0 < x1 && x1 <= 64 && 0 <= y0 && y0 < y1 && y1 <= 64).toBe(true);
        }
      }
    const ui = JSON.parse(readFileSync(join(a, 'unpaired', 'images.json'), 'utf8'));
    const ur = JSON.parse(readFileSync(join(a, 'unpaired', 'reports.json'), 'utf8'));
    expect(ui.length + ur.length).toBe(6);
    const ids = new Set(ui.map((x: { id: string }) => x.id));
    expect(ur.some((x: { id: string }) => ids.has(x.id))).toBe(false);
    expect(ur[0].labels).toEqual(labels[ur[0].id]);
  });

  it('rejects bad options with clear messages', async () => {
    await expect(synthesize({ out: '', train: 1, val: 0, test: 0 })).rejects.toThrow(/out/);
    await expect(synthesize({ out: join(tmpdir(), 'x'), train: -1, val: 0, test: 0 })).rejects.toThrow(/train must be/);
    await expect(synthesize({ out: join(tmpdir(), 'x'), train: 1, val: 0, test: 0, size: 8 })).rejects.toThrow(/size/);
  });

  it('draws findings with boxes where the report says so', () => {
    let withBoxes = 0;
    let findings = 0;
    for (let i = 0; i < 40; i++) {
      const st = renderStudy(5, 'train', i, 64, 1);
      const planned = planStudy(new Rng(hashSeed('synthcxr-v1', 5, 'train', i))).findings;
      findings += planned.length;
      withBoxes += st.boxes.length;
      for (const b of st.boxes) expect(planned.some((f) => f.kind === b.finding)).toBe(true);
    }
    expect(withBoxes / findings).toBeGreaterThan(0.95);
  });

  it('labeler recovers the generator labels on 400 reports (>= 98% per observation)', () => {
    const agree: Record<string, number> = {};
    const N = 400;
    for (let i = 0; i < N; i++) {
      const p = planStudy(new Rng(hashSeed('agreement', i)));
      const l = label(p.report);
      for (const o of CHEXPERT_OBSERVATIONS) agree[o] = (agree[o] ?? 0) + (l[o] === p.labels[o] ? 1 : 0);
    }
    for (const o of CHEXPERT_OBSERVATIONS) expect(agree[o] / N, o).toBeGreaterThanOrEqual(0.98);
  });

  it('varies phrasing: several paraphrases, negations and hedges appear', () => {
    const reports = new Set<string>();
    const sentences = new Set<string>();
    let hedged = 0;
    for (let i = 0; i < 300; i++) {
      const p = planStudy(new Rng(hashSeed('variety', i)));
      reports.add(p.report);
      for (const s of p.report.split(/(?<=\.) /)) sentences.add(s.replace(/\b(right|left|small|moderate|large|\d+(\.\d)?)\b/g, '#'));
      if (Object.values(p.labels).includes('uncertain')) hedged++;
    }
    expect(reports.size).toBeGreaterThan(250);
    expect(sentences.size).toBeGreaterThan(80);
    expect(hedged).toBeGreaterThan(15);
  });
});
