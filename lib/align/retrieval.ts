import { ArgumentError } from '../errors.js';
import { maxSimilarity } from '../ops/maxSimilarity.js';
import { Tensor } from '../tensor.js';
import type { EmbeddedSplit } from './embed.js';

/** Image-report similarity matrices of a split: `imageToText[i * n + j]` = s^I_{i,j} (eq. 5), `textToImage[i * n + j]` = s^T_{i,j} (eq. 6). */
export interface SimilarityMatrices {
  n: number;
  imageToText: Float32Array;
  textToImage: Float32Array;
}

/**
 * All pairs of a split through ops.maxSimilarity, in chunks of images against every report, so the
 * memory is O(chunk * n * (N + K)) and never a [n, n, N, K] tensor.
 */
export function similarityMatrices(e: EmbeddedSplit, chunk = 64): SimilarityMatrices {
  const { n, patches: N, words: K, dim: d } = e;
  const i2t = new Float32Array(n * n);
  const t2i = new Float32Array(n * n);
  if (n === 0) return { n, imageToText: i2t, textToImage: t2i };
  const text = Tensor.from(e.text, [n, K, d]);
  const mask = Tensor.from(e.textMask, [n, K], { dtype: 'bool' });
  try {
    for (let s = 0; s < n; s += chunk) {
      const b = Math.min(chunk, n - s);
      const img = Tensor.from(e.image.subarray(s * N * d, (s + b) * N * d), [b, N, d]);
      const r = maxSimilarity(img, text, { textMask: mask });
      i2t.set(r.imageToText.toArray() as Float32Array, s * n);
      t2i.set(r.textToImage.toArray() as Float32Array, s * n);
      img.dispose();
      r.imageToText.dispose();
      r.textToImage.dispose();
    }
  } finally {
    text.dispose();
    mask.dispose();
  }
  return { n, imageToText: i2t, textToImage: t2i };
}

/** Recall@k both ways (percent) with pessimistic ties: a candidate scoring equal to the true pair ranks ahead of it. */
export interface RetrievalMetrics {
  i2tR1: number;
  i2tR5: number;
  i2tR10: number;
  t2iR1: number;
  t2iR5: number;
  t2iR10: number;
  /** Mean of the six recalls (model selection). */
  meanRecall: number;
  /** R@1 of a random ranking (100 / n), for scale. */
  chanceR1: number;
  n: number;
}

/** 1-based rank of the true item `truth` among `scores` (ties count against it). */
function rankOf(scores: (j: number) => number, count: number, truth: number): number {
  const t = scores(truth);
  let rank = 1;
  for (let j = 0; j < count; j++) if (j !== truth && scores(j) >= t) rank++;
  return rank;
}

/**
 * Image-to-report retrieval ranks the reports j of image i by s^I_{i,j}; report-to-image retrieval
 * ranks the images j of report i by s^T_{j,i}, the similarities each direction's loss term uses.
 * The paired item is the only correct answer (duplicate reports elsewhere count as misses).
 */
export function retrievalMetrics(m: SimilarityMatrices): RetrievalMetrics {
  const ks = [1, 5, 10];
  const { n } = m;
  if (n < 1) throw new ArgumentError('retrieval needs at least one image-report pair', 'ERR_INVALID_ARG', 'retrievalMetrics');
  const hits = { i2t: ks.map(() => 0), t2i: ks.map(() => 0) };
  for (let i = 0; i < n; i++) {
    const ri = rankOf((j) => m.imageToText[i * n + j], n, i);
    const rt = rankOf((j) => m.textToImage[j * n + i], n, i);
    ks.forEach((k, x) => {
      if (ri <= k) hits.i2t[x]++;
      if (rt <= k) hits.t2i[x]++;
    });
  }
  const pct = (h: number) => (100 * h) / n;
  const [a1, a5, a10] = hits.i2t.map(pct);
  const [b1, b5, b10] = hits.t2i.map(pct);
  return { i2tR1: a1, i2tR5: a5, i2tR10: a10, t2iR1: b1, t2iR5: b5, t2iR10: b10, meanRecall: (a1 + a5 + a10 + b1 + b5 + b10) / 6, chanceR1: 100 / n, n };
}

/** The `top` best candidates (index, score) of one query row. */
export function topMatches(scores: (j: number) => number, count: number, top: number): Array<{ index: number; score: number }> {
  const all = Array.from({ length: count }, (_, j) => ({ index: j, score: scores(j) }));
  all.sort((a, b) => b.score - a.score || a.index - b.index);
  return all.slice(0, top);
}
