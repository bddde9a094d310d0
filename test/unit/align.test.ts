// Alignment tooling on hand-made embeddings: retrieval recall (ties count against the pair), the
// visual codebook and keypatches, keywords per patch, the pointing game, codebook files.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EmbeddedSplit } from '../../lib/align/embed.js';
import { retrievalMetrics, topMatches } from '../../lib/align/retrieval.js';
import { buildVisualCodebook, keypatchesForReport } from '../../lib/align/keypatches.js';
import { keywordsForImage } from '../../lib/align/keywords.js';
import { pointingGame } from '../../lib/align/pointing.js';
import { loadCodebooks, saveCodebooks, hasCodebooks, type Codebooks } from '../../lib/align/codebooks.js';
import { mostShifted, patchDrawings } from '../../lib/align/explain.js';

/** One-hot unit vectors: e(i) in R^d. */
const e = (i: number, d: number) => Array.from({ length: d }, (_, x) => (x === i ? 1 : 0));

/** n studies, N = 2 patches, K = 2 words, d = 4: study i's patch 1 and word 0 share direction (i % 4). */
function toy(n: number): EmbeddedSplit {
  const N = 2, K = 2, d = 4;
  const image: number[] = [], text: number[] = [], mask: number[] = [], boxes: number[] = [];
  for (let i = 0; i < n; i++) {
    image.push(...e(3, d), ...e(i % 3, d)); // patch 0: background (direction 3), patch 1: the finding
    text.push(...e(i % 3, d), ...e(3, d).map((v) => 0.5 * v)); // word 0: the finding, word 1: a half-matching common word
    mask.push(1, i % 2 ? 1 : 0); // odd studies have 2 words, even ones 1 (padding)
    boxes.push(8, 8, 16, 16, 24 + i, 8, 16, 16);
  }
  return {
    ids: Array.from({ length: n }, (_, i) => `s${i}`),
    reports: Array.from({ length: n }, (_, i) => `report ${i}`),
    image: Float32Array.from(image), text: Float32Array.from(text), textMask: Uint8Array.from(mask), boxes: Float32Array.from(boxes),
    fixedBoxes: Float32Array.from([8, 8, 16, 16, 24, 8, 16, 16]), n, patches: N, words: K, dim: d, grid: [1, 2], imageSize: 32,
  };
}

describe('retrieval metrics', () => {
  it('ranks by the pair score with ties against the pair, both directions', () => {
    // 3 pairs; image 0 ranks its report first, image 1 ties with report 2 (counts against), image 2 ranks it third
    const i2t = Float32Array.from([0.9, 0.1, 0.2, 0.3, 0.5, 0.5, 0.8, 0.7, 0.1]);
    const t2i = Float32Array.from([0.9, 0.0, 0.0, 0.0, 0.9, 0.0, 0.0, 0.0, 0.9]);
    const m = retrievalMetrics({ n: 3, imageToText: i2t, textToImage: t2i });
    expect(m.i2tR1).toBeCloseTo(100 / 3, 10);
    expect(m.i2tR5).toBe(100);
    expect(m.t2iR1).toBe(100);
    expect(m.chanceR1).toBeCloseTo(100 / 3, 10);
    expect(m.meanRecall).toBeCloseTo((100 / 3 + 100 + 100 + 100 + 100 + 100) / 6, 10);
    // report -> image reads the column: report 0 scored against images j is t2i[j * n + 0]
    const col = retrievalMetrics({ n: 2, imageToText: Float32Array.from([1, 0, 0, 1]), textToImage: Float32Array.from([0.1, 0.9, 0.8, 0.2]) });
    expect(col.t2iR1).toBe(0);
    expect(() => retrievalMetrics({ n: 0, imageToText: new Float32Array(0), textToImage: new Float32Array(0) })).toThrow(/at least one/);
    expect(topMatches((j) => [0.2, 0.9, 0.5][j], 3, 2)).toEqual([{ index: 1, score: 0.9 }, { index: 2, score: 0.5 }]);
  });
});

describe('codebooks, keywords and keypatches', () => {
  it('builds the visual codebook from the best pairs and finds keypatches for words', () => {
    const split = toy(6);
    // s^T_{i,i}: even studies have one word scoring 1 -> 1; odd ones average 1 and 0.5 -> 0.75
    const book = buildVisualCodebook(split, 3, 1);
    expect(book.keypatches.map((k) => k.study)).toEqual(['s0', 's2', 's4']);
    expect(book.keypatches.every((k) => k.patch === 1 && k.word === 0)).toBe(true);
    expect(book.keypatches[1].box).toEqual([24 + 2, 8, 16, 16]);
    expect(Array.from(book.embeddings.subarray(4, 8))).toEqual(e(2, 4));
    // kappa3 = 2 on an odd study: both words pick distinct patches -> 2 keypatches
    const all = buildVisualCodebook(split, 6, 2);
    expect(all.keypatches.filter((k) => k.study === 's1').map((k) => k.patch).sort()).toEqual([0, 1]);
    // a report whose only word is direction 2 matches the keypatch of s2 first
    const r = keypatchesForReport(book, Float32Array.from([...e(2, 4), ...e(0, 4)]), Uint8Array.from([1, 0]), 2, 1);
    expect(r.perWord).toHaveLength(1);
    expect(r.top).toEqual([{ keypatch: 1, score: 1, word: 0 }]);
    expect(() => keypatchesForReport(book, new Float32Array(3), Uint8Array.from([1]))).toThrow(/expected 1 x 4/);
  });

  it('matches keywords to patches and keeps the best overall', () => {
    const split = toy(3);
    const bank = { keywords: ['zero', 'one', 'two', 'background'], embeddings: Float32Array.from([...e(0, 4), ...e(1, 4), ...e(2, 4), ...e(3, 4)]), dim: 4 };
    const k = keywordsForImage(bank, split, 1, 1, 10);
    expect(k.perPatch.map((p) => p[0].keyword)).toEqual(['background', 'one']);
    expect(k.top.map((t) => [t.keyword, t.patch])).toEqual([['background', 0], ['one', 1]]);
    expect(keywordsForImage(bank, split, 1, 2, 1).top).toHaveLength(1);
  });

  it('saves and loads codebooks losslessly', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-books-'));
    const split = toy(4);
    const c: Codebooks = {
      textual: { groups: { biological_structure: [{ text: 'lung', count: 3 }], detailed_description: [], disease_disorder: [], sign_symptom: [] }, keywords: ['lung'] },
      keywords: { keywords: ['lung'], embeddings: Float32Array.from([0.5, 0.5, 0.5, 0.5]), dim: 4 },
      visual: buildVisualCodebook(split, 2, 1),
      settings: { kappa0: 1, kappa2: 2, kappa3: 1, trainStudies: 4 },
    };
    expect(hasCodebooks(dir)).toBe(false);
    saveCodebooks(dir, c);
    const back = loadCodebooks(dir);
    expect(back.visual.keypatches).toEqual(c.visual.keypatches);
    expect(Array.from(back.visual.embeddings)).toEqual(Array.from(c.visual.embeddings));
    expect(Array.from(back.keywords.embeddings)).toEqual([0.5, 0.5, 0.5, 0.5]);
    expect(back.textual).toEqual(c.textual);
    expect(() => loadCodebooks(path.join(dir, 'none'))).toThrow(/no codebooks/);
  });
});

describe('pointing game and pictures', () => {
  it('scores the best-matching patch of the finding words against the box', () => {
    const split = toy(2);
    split.reports = ['effusion here', 'effusion there'];
    // study 0: its "effusion" word (position 0) matches patch 1 (centre x 24); study 1: patch 1 is at x 25
    const words = [['effusion', 'the'], ['effusion', 'the']];
    const wordOf = (i: number, k: number) => words[i][k];
    const hitBoxes = { s0: [{ finding: 'pleural_effusion', box: [20, 0, 30, 16] as [number, number, number, number] }], s1: [{ finding: 'pleural_effusion', box: [0, 0, 16, 16] as [number, number, number, number] }, { finding: 'pneumothorax', box: [0, 0, 32, 32] as [number, number, number, number] }] };
    const r = pointingGame(split, hitBoxes, wordOf);
    expect(r.boxes).toBe(2);
    expect(r.hits).toBe(1);
    expect(r.skipped).toBe(1); // study 1 never names a pneumothorax
    expect(r.perFinding.pleural_effusion).toEqual({ boxes: 2, hits: 1 });
    // a random patch: box [20,0,30,16] holds 1 of 2 fixed centres, [0,0,16,16] holds 1 of 2
    expect(r.randomAccuracy).toBeCloseTo(0.5, 10);
    // fixed patches: patch 1's fixed centre (24, 8) lies in study 0's box and not in study 1's
    expect(pointingGame(split, hitBoxes, wordOf, { useFixed: true }).hits).toBe(1);
  });

  it('lists patches as drawings and picks the most shifted', () => {
    const split = toy(3);
    const d = patchDrawings(split, 2);
    expect(d[1]).toEqual({ box: [26, 8, 16, 16], fixedCentre: [24, 8] });
    expect(mostShifted(d, 1)).toEqual([1]);
  });
});
