import { ArgumentError } from '../errors.js';
import { loadNative } from '../native.js';
import { Tensor, handleOf } from '../tensor.js';

/** How a query row is compared with a memory key. */
export type MemorySimilarity = 'dot' | 'scaled-dot' | 'cosine';
/** How the k selected scores become weights. */
export type MemoryWeighting = 'softmax' | 'normalized';

/** Options of {@link memoryQuery}. */
export interface MemoryQueryOptions {
  /** Memory rows selected per query row (per head), 1 <= k <= S. */
  k: number;
  /**
   * `'dot'`: q.k; `'scaled-dot'`: q.k / sqrt(D / heads); `'cosine'`:
   * q.k / (max(|q|, 1e-12) max(|k|, 1e-12)) (per head slice).
   */
  similarity: MemorySimilarity;
  /**
   * `'softmax'` over the k selected scores (seed 001 eq. 1), or `'normalized'`: score / sum of
   * scores (XProNet eq. 11) after shifting the scores to be positive:
   * `w_t = u_t / sum u`, `u_t = s_t - m + 1e-6`, `m = min(0, smallest selected score)`.
   */
  weighting: MemoryWeighting;
  /** `bool [B, S]`, true = eligible (e.g. prototypes of the sample's positive labels). Default: all. */
  mask?: Tensor;
  /**
   * Heads (default 1): D and Dv are split into `heads` equal slices; head h compares the h-th
   * query slice with the h-th key slice and sums the h-th value slice. XProNet uses 8.
   */
  heads?: number;
}

/** Result of {@link memoryQuery}; dispose the tensors when done. */
export interface MemoryQueryResult {
  /** `[B, L, Dv]` = sum_t weights * values[indices] (heads concatenated); differentiable. */
  response: Tensor;
  /** int64 `[B, L, k]` (`[B, L, heads, k]` when heads > 1), best first; -1 in slots with nothing eligible. */
  indices: Tensor;
  /** Same shape as indices; 0 in missing slots; differentiable. */
  weights: Tensor;
}

/**
 * Top-k memory querying, fused: similarity of every query row with every memory key, the k best
 * eligible keys per row (streamed over memory tiles: S = 100,000 needs no `[B, L, S]` score
 * tensor), their weights, and the weighted sum of their value rows (no gathered `[B, L, k, Dv]`
 * copy). A row with fewer than k eligible keys gets index -1 / weight 0 in the missing slots; a
 * row with none gets a zero response. Gradients flow to query, keys and values.
 *
 * `query [B, L, D]`, `keys [S, D]`, `values [S, Dv]`; float32/float64 (CUDA: also
 * float16/bfloat16 with fp32 accumulation).
 */
export function memoryQuery(query: Tensor, keys: Tensor, values: Tensor, options: MemoryQueryOptions): MemoryQueryResult {
  const fn = 'ops.memoryQuery';
  if (options === null || typeof options !== 'object')
    throw new ArgumentError(`${fn}: options must be an object with k, similarity and weighting`, 'ERR_INVALID_ARG', fn);
  const n = loadNative();
  const raw = n.memoryQuery(handleOf(query, 'query', fn), handleOf(keys, 'keys', fn), handleOf(values, 'values', fn), {
    k: options.k,
    similarity: options.similarity,
    weighting: options.weighting,
    heads: options.heads,
    mask: options.mask === undefined ? undefined : handleOf(options.mask, 'options.mask', fn),
  });
  return { response: Tensor.wrap(raw.response), indices: Tensor.wrap(raw.indices), weights: Tensor.wrap(raw.weights) };
}

/** The multi-head form of {@link memoryQuery} (XProNet: `heads = 8`); `heads` is required. */
export function multiHeadMemoryQuery(
  query: Tensor,
  keys: Tensor,
  values: Tensor,
  options: MemoryQueryOptions & { heads: number },
): MemoryQueryResult {
  return memoryQuery(query, keys, values, options);
}
