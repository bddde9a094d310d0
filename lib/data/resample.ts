/**
 * radkit's own separable resampler of grey images: area average along an axis that shrinks,
 * bilinear with half-pixel centres along an axis that grows; 'center-crop' cuts the centre of the
 * source (fractional bounds) to the output's aspect ratio first. The first decoder resized with it
 * (`./image-reference.ts`); the libvips decoder uses it whenever an axis grows, because libvips
 * enlarges with corner-aligned sampling (half an output pixel off the half-pixel convention that
 * its shrinking, this resampler and `grid_sample(align_corners=false)` follow).
 */
import type { FitMode } from './image.js';

/** The source box a fit takes: origin and size in source pixels (fractional for 'center-crop'). */
export function sourceBox(sw: number, sh: number, H: number, W: number, fit: FitMode): { x0: number; y0: number; w: number; h: number } {
  if (fit !== 'center-crop') return { x0: 0, y0: 0, w: sw, h: sh };
  const target = W / H;
  if (sw / sh > target) {
    const w = sh * target;
    return { x0: (sw - w) / 2, y0: 0, w, h: sh };
  }
  const h = sw / target;
  return { x0: 0, y0: (sh - h) / 2, w: sw, h };
}

function weights(n: number, src0: number, srcLen: number, srcMax: number): { idx: Int32Array; w: Float32Array; off: Int32Array } {
  const scale = srcLen / n;
  const idx: number[] = [];
  const w: number[] = [];
  const off = new Int32Array(n + 1);
  for (let o = 0; o < n; o++) {
    off[o] = idx.length;
    if (scale > 1) {
      const a = src0 + o * scale;
      const b = a + scale;
      for (let s = Math.floor(a); s < Math.ceil(b); s++) {
        const ww = Math.min(b, s + 1) - Math.max(a, s);
        if (ww > 1e-9) {
          idx.push(Math.min(srcMax - 1, Math.max(0, s)));
          w.push(ww / scale);
        }
      }
    } else {
      const x = src0 + (o + 0.5) * scale - 0.5;
      const x0 = Math.floor(x);
      const f = x - x0;
      idx.push(Math.min(srcMax - 1, Math.max(0, x0)), Math.min(srcMax - 1, Math.max(0, x0 + 1)));
      w.push(1 - f, f);
    }
  }
  off[n] = idx.length;
  return { idx: Int32Array.from(idx), w: Float32Array.from(w), off };
}

/** Resamples `grey` (`sh x sw`, row-major) to `H x W`; values keep their units. */
export function resampleGrey(grey: ArrayLike<number>, sw: number, sh: number, H: number, W: number, fit: FitMode): Float32Array {
  const box = sourceBox(sw, sh, H, W, fit);
  const wx = weights(W, box.x0, box.w, sw);
  const wy = weights(H, box.y0, box.h, sh);
  const tmp = new Float32Array(sh * W);
  for (let y = 0; y < sh; y++) {
    const row = y * sw;
    for (let x = 0; x < W; x++) {
      let acc = 0;
      for (let k = wx.off[x]; k < wx.off[x + 1]; k++) acc += wx.w[k] * grey[row + wx.idx[k]];
      tmp[y * W + x] = acc;
    }
  }
  const out = new Float32Array(H * W);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      let acc = 0;
      for (let k = wy.off[y]; k < wy.off[y + 1]; k++) acc += wy.w[k] * tmp[wy.idx[k] * W + x];
      out[y * W + x] = acc;
    }
  }
  return out;
}
