import { ArgumentError } from '../errors.js';
import { loadNative } from '../native.js';
import { Tensor, handleOf } from '../tensor.js';

/** Options of {@link sinkhorn}. */
export interface SinkhornOptions {
  /** Entropic regularisation epsilon (> 0), as POT's `reg`: the kernel is `exp(-C / epsilon)`. */
  epsilon: number;
  /** Upper bound on iterations (>= 1). One iteration updates both potentials (Algorithm 1 order: rows, then columns). */
  maxIterations: number;
  /**
   * Each problem stops as soon as the L1 error of its row and column marginals is below this
   * (problems in a batch stop independently). Default 0: always run `maxIterations`.
   */
  tolerance?: number;
  /** Row marginals `[B, M]` (non-negative, positive mass); default uniform `1 / M`. */
  a?: Tensor;
  /** Column marginals `[B, N]`; default uniform `1 / N`. */
  b?: Tensor;
}

/** Result of {@link sinkhorn}; dispose the three tensors when done. */
export interface SinkhornResult {
  /** Transport plan `[B, M, N]` (not differentiable). */
  plan: Tensor;
  /**
   * `[B]` = `<plan, cost>`. Differentiable w.r.t. `cost`: its gradient is the plan (envelope
   * theorem; exact for the regularised value `<T, C> - epsilon * H(T)`, which differs from the
   * derivative of `<T, C>` alone by terms of order epsilon).
   */
  distance: Tensor;
  /** The most iterations any problem ran. */
  iterations: number;
  /** Iterations per problem. */
  problemIterations: number[];
  /** `[B]`: `|plan 1 - a|_1 + |plan^T 1 - b|_1` of the returned plan. */
  marginalError: Tensor;
}

/**
 * Entropic optimal transport between the rows and columns of each cost matrix, solved with
 * Sinkhorn-Knopp iterations in the log domain (stable for `epsilon = 0.01` on costs of size 10).
 * Solves `min <T, C> - epsilon H(T)` s.t. `T 1 = a`, `T^T 1 = b`, `H(T) = -sum T log T`, as
 * POT's `ot.sinkhorn(a, b, C, reg=epsilon)`. `cost` is `[B, M, N]` float32/float64 (CUDA: also
 * float16/bfloat16, fp32 accumulation); the B problems are independent.
 */
export function sinkhorn(cost: Tensor, options: SinkhornOptions): SinkhornResult {
  const fn = 'ops.sinkhorn';
  if (options === null || typeof options !== 'object')
    throw new ArgumentError(`${fn}: options must be an object with epsilon and maxIterations`, 'ERR_INVALID_ARG', fn);
  const raw = loadNative().sinkhorn(handleOf(cost, 'cost', fn), {
    epsilon: options.epsilon,
    maxIterations: options.maxIterations,
    tolerance: options.tolerance,
    a: options.a === undefined ? undefined : handleOf(options.a, 'options.a', fn),
    b: options.b === undefined ? undefined : handleOf(options.b, 'options.b', fn),
  });
  return {
    plan: Tensor.wrap(raw.plan),
    distance: Tensor.wrap(raw.distance),
    iterations: raw.iterations,
    problemIterations: raw.problemIterations,
    marginalError: Tensor.wrap(raw.marginalError),
  };
}

/**
 * Pairwise Euclidean (not squared) distances `[B, M, N]` between `x [B, M, D]` and `y [B, N, D]`
 * (seed 002 eq. 6), the cost matrix for {@link sinkhorn}. Differentiable in `x` and `y` (gradient
 * 0 where a distance is exactly 0).
 */
export function euclideanCost(x: Tensor, y: Tensor): Tensor {
  const fn = 'ops.euclideanCost';
  return Tensor.wrap(loadNative().euclideanCost(handleOf(x, 'x', fn), handleOf(y, 'y', fn)));
}
