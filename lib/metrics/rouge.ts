/**
 * ROUGE-L exactly as coco-caption's scorer (`pycocoevalcap/rouge/rouge.py`):
 *
 * - tokens: split on single spaces (Python `str.split(" ")`, so an empty hypothesis is one empty
 *   token and a double space yields an empty token, as in the original);
 * - per item: LCS with each reference; precision = LCS / |hyp|, recall = LCS / |ref|; the maximum
 *   precision and the maximum recall over the references are taken separately;
 * - F = (1 + beta^2) P R / (R + beta^2 P) with beta = 1.2, 0 when P or R is 0;
 * - the corpus score is the mean of the per-item scores.
 */
import { checkCorpus } from './inputs.js';

export const ROUGE_BETA = 1.2;

export interface RougeResult {
  score: number;
  perItem: number[];
}

/** Length of the longest common subsequence of two integer sequences. */
export function lcsLength(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length < b.length) [a, b] = [b, a];
  const m = b.length;
  if (m === 0) return 0;
  let prev = new Int32Array(m + 1);
  let cur = new Int32Array(m + 1);
  for (let i = 1; i <= a.length; i++) {
    const ai = a[i - 1];
    for (let j = 1; j <= m; j++) {
      if (ai === b[j - 1]) cur[j] = prev[j - 1] + 1;
      else cur[j] = prev[j] >= cur[j - 1] ? prev[j] : cur[j - 1];
    }
    const t = prev;
    prev = cur;
    cur = t;
  }
  return prev[m];
}

function toIds(tokens: string[], vocab: Map<string, number>): Int32Array {
  const out = new Int32Array(tokens.length);
  for (let i = 0; i < tokens.length; i++) {
    let id = vocab.get(tokens[i]);
    if (id === undefined) {
      id = vocab.size;
      vocab.set(tokens[i], id);
    }
    out[i] = id;
  }
  return out;
}

/** ROUGE-L of one hypothesis against its references (coco-caption's `calc_score`). */
export function rougeLSentence(hyp: string, refs: string[], beta = ROUGE_BETA): number {
  const vocab = new Map<string, number>();
  const c = toIds(hyp.split(' '), vocab);
  let precMax = -Infinity;
  let recMax = -Infinity;
  for (const ref of refs) {
    const r = toIds(ref.split(' '), vocab);
    const lcs = lcsLength(r, c);
    const prec = lcs / c.length;
    const rec = lcs / r.length;
    if (prec > precMax) precMax = prec;
    if (rec > recMax) recMax = rec;
  }
  if (precMax !== 0 && recMax !== 0) {
    return ((1 + beta ** 2) * precMax * recMax) / (recMax + beta ** 2 * precMax);
  }
  return 0;
}

/** Mean ROUGE-L with per-item scores. */
export function rougeLWithStats(hyps: string[], refs: string[][]): RougeResult {
  const c = checkCorpus('metrics.rougeL', hyps, refs);
  const perItem = c.hyps.map((h, i) => rougeLSentence(h, c.refs[i]));
  let sum = 0;
  for (const s of perItem) sum += s;
  return { score: sum / perItem.length, perItem };
}

/** Corpus ROUGE-L (mean of per-item scores), as coco-caption's Rouge scorer. */
export function rougeL(hyps: string[], refs: string[][]): number {
  return rougeLWithStats(hyps, refs).score;
}
