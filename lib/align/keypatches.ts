import { ArgumentError } from '../errors.js';
import type { EmbeddedSplit } from './embed.js';
import { dot } from './vectors.js';

/** One entry of the visual codebook: an adaptive patch of a training image and its embedding. */
export interface Keypatch {
  study: string;
  patch: number;
  /** (cx, cy, w, h) in input pixels. */
  box: [number, number, number, number];
  /** The report word (token position) that picked it. */
  word: number;
}

export interface VisualCodebook {
  keypatches: Keypatch[];
  /** [count, d] patch embeddings. */
  embeddings: Float32Array;
  dim: number;
}

/** Per real word k of study i: (max over patches n of <z_n, z_k>, that n). */
function wordMaxima(e: EmbeddedSplit, i: number): Array<{ word: number; score: number; patch: number }> {
  const { patches: N, words: K, dim: d } = e;
  const out: Array<{ word: number; score: number; patch: number }> = [];
  for (let k = 0; k < K; k++) {
    if (!e.textMask[i * K + k]) continue;
    let best = -Infinity, at = 0;
    for (let n = 0; n < N; n++) {
      const s = dot(e.image, (i * N + n) * d, e.text, (i * K + k) * d, d);
      if (s > best) [best, at] = [s, n];
    }
    out.push({ word: k, score: best, patch: at });
  }
  return out;
}

/**
 * The visual codebook of section 3.2.2: the kappa2 training pairs with the highest report-to-image
 * similarity s^T_{i,i} (eq. 6); in each, the words' best-matching patches for the kappa3 highest
 * word-patch maxima become keypatches (a patch picked by several words is kept once).
 */
export function buildVisualCodebook(e: EmbeddedSplit, kappa2 = 1000, kappa3 = 20): VisualCodebook {
  if (!(kappa2 >= 1 && kappa3 >= 1)) throw new ArgumentError('buildVisualCodebook: kappa2 and kappa3 must be >= 1', 'ERR_INVALID_ARG', 'buildVisualCodebook');
  const d = e.dim;
  const pairs = Array.from({ length: e.n }, (_, i) => {
    const w = wordMaxima(e, i);
    return { i, w, sT: w.length ? w.reduce((s, x) => s + x.score, 0) / w.length : -Infinity };
  });
  pairs.sort((a, b) => b.sT - a.sT || a.i - b.i);
  const keypatches: Keypatch[] = [];
  const rows: number[] = [];
  for (const p of pairs.slice(0, kappa2)) {
    const seen = new Set<number>();
    for (const w of [...p.w].sort((a, b) => b.score - a.score || a.word - b.word).slice(0, kappa3)) {
      if (seen.has(w.patch)) continue;
      seen.add(w.patch);
      const b = (p.i * e.patches + w.patch) * 4;
      keypatches.push({ study: e.ids[p.i], patch: w.patch, box: [e.boxes[b], e.boxes[b + 1], e.boxes[b + 2], e.boxes[b + 3]], word: w.word });
      rows.push(p.i * e.patches + w.patch);
    }
  }
  const embeddings = new Float32Array(rows.length * d);
  rows.forEach((r, x) => embeddings.set(e.image.subarray(r * d, (r + 1) * d), x * d));
  return { keypatches, embeddings, dim: d };
}

export interface ReportKeypatches {
  /** Per real word: its top-kappa4 keypatches (codebook index, similarity). */
  perWord: Array<{ word: number; matches: Array<{ keypatch: number; score: number }> }>;
  /** The `top` best keypatches overall (each once): the hints of section 3.2.2. */
  top: Array<{ keypatch: number; score: number; word: number }>;
}

/** Keypatches of one report (its word embeddings [K, d] with a mask): s^W = codebook x words, top-kappa4 per word. */
export function keypatchesForReport(book: VisualCodebook, text: Float32Array, mask: Uint8Array, kappa4 = 5, top = 5): ReportKeypatches {
  const d = book.dim;
  const count = book.keypatches.length;
  const K = mask.length;
  if (text.length !== K * d) throw new ArgumentError(`keypatchesForReport: text has ${text.length} values, expected ${K} x ${d}`, 'ERR_SHAPE', 'keypatchesForReport');
  const perWord: ReportKeypatches['perWord'] = [];
  const best = new Map<number, { score: number; word: number }>();
  for (let k = 0; k < K; k++) {
    if (!mask[k]) continue;
    const scores = Array.from({ length: count }, (_, c) => ({ keypatch: c, score: dot(book.embeddings, c * d, text, k * d, d) }));
    scores.sort((a, b) => b.score - a.score || a.keypatch - b.keypatch);
    const kept = scores.slice(0, kappa4);
    perWord.push({ word: k, matches: kept });
    for (const m of kept) {
      const prev = best.get(m.keypatch);
      if (!prev || m.score > prev.score) best.set(m.keypatch, { score: m.score, word: k });
    }
  }
  const ranked = [...best.entries()].map(([keypatch, v]) => ({ keypatch, ...v }));
  ranked.sort((a, b) => b.score - a.score || a.keypatch - b.keypatch);
  return { perWord, top: ranked.slice(0, top) };
}
