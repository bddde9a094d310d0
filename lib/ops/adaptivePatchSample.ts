import { ArgumentError } from '../errors.js';
import { loadNative } from '../native.js';
import { Tensor, handleOf } from '../tensor.js';

/** Options of {@link adaptivePatchSample}. */
export interface AdaptivePatchSampleOptions {
  /** m: each box is cut into an m x m grid of equal cells and every cell centre is sampled (1..64). */
  points: number;
}

/**
 * Adaptive patch sampling (AdaPatch, seed 000 eqs. 1-4): bilinear samples of an m x m grid inside
 * every box.
 *
 * - `features [B, C, H, W]`; `boxes [B, P, 4]` as `(cx, cy, w, h)` in continuous feature-map
 *   coordinates, where pixel `(i, j)` covers `[j, j+1) x [i, i+1)` (its centre is `(j+0.5, i+0.5)`).
 * - Point `(u, v)` of a box is `x_u = cx - w/2 + (u + 0.5) w / m`, `y_v = cy - h/2 + (v + 0.5) h / m`,
 *   sampled exactly as `grid_sample(mode='bilinear', padding_mode='zeros', align_corners=False)`.
 * - Returns `[B, P, C, m, m]` with `out[b, p, c, v, u]` (v along y, u along x).
 * - Differentiable in `features` and in all four box coordinates (through the sample positions).
 *
 * float32/float64 (CUDA also float16/bfloat16 with fp32 accumulation); boxes must be finite.
 * Boxes may lie partly or wholly outside the map (those samples are 0) and may have zero size.
 */
export function adaptivePatchSample(features: Tensor, boxes: Tensor, options: AdaptivePatchSampleOptions): Tensor {
  const fn = 'ops.adaptivePatchSample';
  if (options === null || typeof options !== 'object')
    throw new ArgumentError(`${fn}: options must be an object with points (m), got ${options === null ? 'null' : typeof options}`, 'ERR_INVALID_ARG', fn);
  const n = loadNative();
  return Tensor.wrap(n.adaptivePatchSample(handleOf(features, 'features', fn), handleOf(boxes, 'boxes', fn), { points: options.points }));
}
