/**
 * Image-reconstruction metrics for images scaled to [0, 1] (row-major H x W, one channel):
 * PSNR = 10 log10(1 / MSE), and SSIM (Wang et al. 2004) with an 11 x 11 Gaussian window of
 * sigma 1.5, K1 0.01, K2 0.03, over the positions where the window fits ("valid", as
 * skimage.metrics.structural_similarity with gaussian_weights=True, data_range=1), averaged.
 */
import { ArgumentError } from '../errors.js';

type Pixels = ArrayLike<number>;

function check(fn: string, a: Pixels, b: Pixels, n: number): void {
  if (a.length !== n || b.length !== n) throw new ArgumentError(`${fn}: both images need ${n} pixels, got ${a.length} and ${b.length}`, 'ERR_SHAPE', fn);
}

/** Mean squared error of two equally long pixel arrays. */
export function mse(a: Pixels, b: Pixels): number {
  check('mse', a, b, a.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return s / Math.max(1, a.length);
}

/** PSNR in dB for pixels in [0, 1] (an exact match is capped at 100 dB). */
export function psnr(a: Pixels, b: Pixels): number {
  const m = mse(a, b);
  return m <= 1e-10 ? 100 : 10 * Math.log10(1 / m);
}

const WINDOW = 11, SIGMA = 1.5;
const gauss = (() => {
  const g = new Float64Array(WINDOW);
  let s = 0;
  for (let i = 0; i < WINDOW; i++) s += g[i] = Math.exp(-((i - (WINDOW - 1) / 2) ** 2) / (2 * SIGMA * SIGMA));
  return g.map((v) => v / s);
})();

/** Separable Gaussian filter, valid positions only: [(H-10) x (W-10)]. */
function filter(x: Float64Array, H: number, W: number): Float64Array {
  const Wo = W - WINDOW + 1, Ho = H - WINDOW + 1;
  const rows = new Float64Array(H * Wo);
  for (let y = 0; y < H; y++)
    for (let c = 0; c < Wo; c++) {
      let s = 0;
      for (let k = 0; k < WINDOW; k++) s += gauss[k] * x[y * W + c + k];
      rows[y * Wo + c] = s;
    }
  const out = new Float64Array(Ho * Wo);
  for (let r = 0; r < Ho; r++)
    for (let c = 0; c < Wo; c++) {
      let s = 0;
      for (let k = 0; k < WINDOW; k++) s += gauss[k] * rows[(r + k) * Wo + c];
      out[r * Wo + c] = s;
    }
  return out;
}

/** Mean SSIM of two H x W images in [0, 1] (both sides at least 11 pixels). */
export function ssim(a: Pixels, b: Pixels, H: number, W: number): number {
  check('ssim', a, b, H * W);
  if (H < WINDOW || W < WINDOW) throw new ArgumentError(`ssim: images must be at least ${WINDOW} x ${WINDOW}, got ${H} x ${W}`, 'ERR_SHAPE', 'ssim');
  const n = H * W;
  const x = Float64Array.from(a), y = Float64Array.from(b);
  const xx = new Float64Array(n), yy = new Float64Array(n), xy = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    xx[i] = x[i] * x[i];
    yy[i] = y[i] * y[i];
    xy[i] = x[i] * y[i];
  }
  const mx = filter(x, H, W), my = filter(y, H, W), sxx = filter(xx, H, W), syy = filter(yy, H, W), sxy = filter(xy, H, W);
  const C1 = 0.01 ** 2, C2 = 0.03 ** 2;
  // Population (co)variances under the window, E[xy] - E[x]E[y] (skimage does the same with Gaussian weights).
  let s = 0;
  for (let i = 0; i < mx.length; i++) {
    const vx = sxx[i] - mx[i] * mx[i], vy = syy[i] - my[i] * my[i], cxy = sxy[i] - mx[i] * my[i];
    s += ((2 * mx[i] * my[i] + C1) * (2 * cxy + C2)) / ((mx[i] * mx[i] + my[i] * my[i] + C1) * (vx + vy + C2));
  }
  return s / mx.length;
}
