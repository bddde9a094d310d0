/**
 * Cross-modal retrieval recall: R@K image -> report and report -> image from a square similarity
 * matrix [images x reports] whose diagonal holds the matching pairs.
 *
 * The rank of the match in a row (image -> report) or column (report -> image) is 1 + the number
 * of other candidates scoring strictly higher, plus, under the default `ties: 'pessimistic'`, the
 * number scoring exactly the same (ties never help). R@K is the fraction of queries whose match
 * ranks <= K (a number in [0, 1]).
 */
import { ArgumentError } from '../errors.js';

export type SimilarityMatrix = number[][] | { data: Float32Array | Float64Array; rows: number; cols: number };

export interface RetrievalOptions {
  /** Cut-offs (default [1, 5, 10]). */
  k?: number[];
  /** How equal scores rank against the match (default 'pessimistic'). */
  ties?: 'pessimistic' | 'optimistic';
}

export interface DirectionScores {
  /** `{ 'R@1': x, 'R@5': y, ... }` as fractions in [0, 1]. */
  recall: Record<string, number>;
  medianRank: number;
  meanRank: number;
}

export interface RetrievalResult {
  n: number;
  k: number[];
  ties: 'pessimistic' | 'optimistic';
  imageToReport: DirectionScores;
  reportToImage: DirectionScores;
}

function toGetter(sim: SimilarityMatrix): { n: number; at: (i: number, j: number) => number } {
  if (Array.isArray(sim)) {
    const rows = sim.length;
    if (rows === 0) throw new ArgumentError('metrics.retrieval: expected a non-empty similarity matrix, got 0 rows', 'ERR_INVALID_ARG', 'metrics.retrieval');
    sim.forEach((row, i) => {
      if (!Array.isArray(row)) throw new ArgumentError(`metrics.retrieval: expected row ${i} to be an array of numbers, got ${typeof row}`, 'ERR_INVALID_ARG', 'metrics.retrieval');
      if (row.length !== rows) {
        throw new ArgumentError(
          `metrics.retrieval: expected a square [images x reports] matrix with the matches on the diagonal, got row ${i} of length ${row.length} in a ${rows}-row matrix`,
          'ERR_INVALID_ARG',
          'metrics.retrieval',
        );
      }
      for (let j = 0; j < row.length; j++) {
        if (typeof row[j] !== 'number' || Number.isNaN(row[j])) {
          throw new ArgumentError(`metrics.retrieval: expected numbers, got ${String(row[j])} at [${i}][${j}]`, 'ERR_INVALID_ARG', 'metrics.retrieval');
        }
      }
    });
    return { n: rows, at: (i, j) => sim[i][j] };
  }
  if (sim === null || typeof sim !== 'object' || !(sim.data instanceof Float32Array || sim.data instanceof Float64Array)) {
    throw new ArgumentError('metrics.retrieval: expected number[][] or { data: Float32Array | Float64Array, rows, cols }', 'ERR_INVALID_ARG', 'metrics.retrieval');
  }
  const { data, rows, cols } = sim;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || rows !== cols) {
    throw new ArgumentError(`metrics.retrieval: expected a square matrix (rows === cols >= 1), got rows=${rows} cols=${cols}`, 'ERR_INVALID_ARG', 'metrics.retrieval');
  }
  if (data.length !== rows * cols) {
    throw new ArgumentError(`metrics.retrieval: expected data.length = rows * cols = ${rows * cols}, got ${data.length}`, 'ERR_INVALID_ARG', 'metrics.retrieval');
  }
  for (let i = 0; i < data.length; i++) {
    if (Number.isNaN(data[i])) throw new ArgumentError(`metrics.retrieval: expected numbers, got NaN at flat index ${i}`, 'ERR_INVALID_ARG', 'metrics.retrieval');
  }
  return { n: rows, at: (i, j) => data[i * cols + j] };
}

function summarise(ranks: number[], ks: number[]): DirectionScores {
  const recall: Record<string, number> = {};
  for (const k of ks) recall[`R@${k}`] = ranks.filter((r) => r <= k).length / ranks.length;
  const sorted = [...ranks].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const medianRank = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { recall, medianRank, meanRank: ranks.reduce((a, b) => a + b, 0) / ranks.length };
}

/** R@K in both directions from a similarity matrix whose diagonal holds the matches. */
export function retrieval(similarity: SimilarityMatrix, options: RetrievalOptions = {}): RetrievalResult {
  const { n, at } = toGetter(similarity);
  const ks = options.k ?? [1, 5, 10];
  if (!Array.isArray(ks) || ks.length === 0 || ks.some((k) => !Number.isInteger(k) || k < 1)) {
    throw new ArgumentError(`metrics.retrieval: expected options.k to be positive integers, got ${JSON.stringify(ks)}`, 'ERR_INVALID_ARG', 'metrics.retrieval');
  }
  const ties = options.ties ?? 'pessimistic';
  if (ties !== 'pessimistic' && ties !== 'optimistic') {
    throw new ArgumentError(`metrics.retrieval: expected options.ties 'pessimistic' or 'optimistic', got ${JSON.stringify(ties)}`, 'ERR_INVALID_ARG', 'metrics.retrieval');
  }
  const i2r: number[] = [];
  const r2i: number[] = [];
  for (let q = 0; q < n; q++) {
    const rowMatch = at(q, q);
    let rowRank = 1;
    let colRank = 1;
    for (let c = 0; c < n; c++) {
      if (c === q) continue;
      const a = at(q, c); // other reports for image q
      if (a > rowMatch || (ties === 'pessimistic' && a === rowMatch)) rowRank++;
      const b = at(c, q); // other images for report q
      if (b > rowMatch || (ties === 'pessimistic' && b === rowMatch)) colRank++;
    }
    i2r.push(rowRank);
    r2i.push(colRank);
  }
  return { n, k: [...ks], ties, imageToReport: summarise(i2r, ks), reportToImage: summarise(r2i, ks) };
}
