/**
 * BLEU-1..4 exactly as coco-caption's scorer (`pycocoevalcap/bleu/bleu_scorer.py`, called by
 * `Bleu.compute_score` with `option='closest'`) computes it:
 *
 * - tokens: the hypothesis and each reference split on whitespace (Python `str.split()`);
 * - clipped n-gram counts: each hypothesis n-gram counts at most as often as in the reference
 *   that has it most often;
 * - corpus level: clipped matches and hypothesis n-gram counts are summed over all items before
 *   the precisions are formed; BLEU-n is the geometric mean of the 1..n precisions;
 * - effective reference length per item: the reference length closest to the hypothesis length,
 *   the shorter one on a tie; summed over items;
 * - brevity penalty exp(1 - r/c) when c < r, with the scorer's guards: every precision is
 *   (matches + 1e-15) / (count + 1e-9) and the length ratio is (c + 1e-15) / (r + 1e-9), so a
 *   precision with no match is ~1e-15 / count instead of zero and an empty corpus scores ~0.
 */
import { checkCorpus, checkPositiveInt, ngramCounts, splitWhitespace } from './inputs.js';

const TINY = 1e-15;
const SMALL = 1e-9;

export interface BleuOptions {
  /** Highest n-gram order (default 4). */
  n?: number;
}

export interface BleuResult {
  /** `[BLEU-1, ..., BLEU-n]`. */
  scores: number[];
  /** Sum of hypothesis lengths (c). */
  testLength: number;
  /** Sum of the effective (closest) reference lengths (r). */
  referenceLength: number;
  /** (c + 1e-15) / (r + 1e-9) as the scorer computes it. */
  ratio: number;
  /** Brevity penalty applied (1 when ratio >= 1). */
  brevityPenalty: number;
  /** Summed clipped matches per order. */
  correct: number[];
  /** Summed hypothesis n-gram counts per order. */
  guess: number[];
}

/** Full BLEU statistics; `bleu()` returns only the scores. */
export function bleuWithStats(hyps: string[], refs: string[][], options: BleuOptions = {}): BleuResult {
  const c = checkCorpus('metrics.bleu', hyps, refs);
  const n = checkPositiveInt('metrics.bleu', 'options.n', options.n ?? 4);
  const correct = new Array<number>(n).fill(0);
  const guess = new Array<number>(n).fill(0);
  let testLength = 0;
  let referenceLength = 0;

  for (let item = 0; item < c.hyps.length; item++) {
    // cook_refs: reference lengths and the max count of each n-gram over the references
    const refLens: number[] = [];
    const maxCounts: Map<string, number>[] = [];
    for (let k = 0; k < n; k++) maxCounts.push(new Map());
    for (const ref of c.refs[item]) {
      const w = splitWhitespace(ref);
      refLens.push(w.length);
      const counts = ngramCounts(w, n);
      for (let k = 0; k < n; k++) {
        const mk = maxCounts[k];
        for (const [g, cnt] of counts[k]) {
          const prev = mk.get(g);
          if (prev === undefined || cnt > prev) mk.set(g, cnt);
        }
      }
    }
    // cook_test
    const w = splitWhitespace(c.hyps[item]);
    const testlen = w.length;
    // closest: min over (|l - testlen|, l)
    let best = refLens[0];
    for (const l of refLens) {
      const d = Math.abs(l - testlen);
      const bd = Math.abs(best - testlen);
      if (d < bd || (d === bd && l < best)) best = l;
    }
    testLength += testlen;
    referenceLength += best;
    const counts = ngramCounts(w, n);
    for (let k = 0; k < n; k++) {
      guess[k] += Math.max(0, testlen - k);
      const mk = maxCounts[k];
      for (const [g, cnt] of counts[k]) correct[k] += Math.min(mk.get(g) ?? 0, cnt);
    }
  }

  const ratio = (testLength + TINY) / (referenceLength + SMALL);
  const brevityPenalty = ratio < 1 ? Math.exp(1 - 1 / ratio) : 1;
  const scores: number[] = [];
  for (let nn = 1; nn <= n; nn++) {
    let b = 1;
    for (let k = 0; k < nn; k++) b *= (correct[k] + TINY) / (guess[k] + SMALL);
    let s = Math.pow(b, 1 / nn);
    if (ratio < 1) s *= brevityPenalty;
    scores.push(s);
  }
  return { scores, testLength, referenceLength, ratio, brevityPenalty, correct, guess };
}

/** `[BLEU-1, BLEU-2, BLEU-3, BLEU-4]` at corpus level, as coco-caption's Bleu scorer. */
export function bleu(hyps: string[], refs: string[][], options: BleuOptions = {}): number[] {
  return bleuWithStats(hyps, refs, options).scores;
}
