/**
 * Image decoding and resizing: PNG (8/16-bit, grey/grey+alpha/RGB/RGBA/palette, via pngjs) and
 * baseline/progressive JPEG (via jpeg-js) into grey float32 in [0, 1], resized to a fixed size.
 *
 * `decodeResize` is written as one self-contained function (helpers nested, libraries passed in)
 * so that the loader's worker threads can run the very same code: its source text is shipped to
 * them, which works both from the compiled package and from TypeScript sources under a test runner.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ArgumentError, DataError, RadkitError } from '../errors.js';

export type FitMode = 'stretch' | 'center-crop';

export interface ImageOptions {
  /** Output height and width in pixels. */
  height: number;
  width: number;
  /** 'stretch' (default) resizes to height x width; 'center-crop' keeps the aspect ratio and crops the centre. */
  fit?: FitMode;
  /** Optional normalisation applied after scaling to [0, 1]: (x - mean) / std. */
  mean?: number;
  std?: number;
}

export interface DecodedImage {
  width: number;
  height: number;
  /** Grey values, row-major, `height * width` floats. */
  data: Float32Array;
  /** Source format and geometry, for diagnostics. */
  source: { format: 'png' | 'jpeg'; width: number; height: number; bitDepth: number; channels: number };
}

/** Libraries the decoder needs; the worker threads pass their own `require`d copies. */
export interface ImageLibs {
  PNG: { sync: { read(buf: Buffer, opts?: { skipRescale?: boolean }): { width: number; height: number; data: ArrayLike<number>; depth?: number; color?: boolean; alpha?: boolean } } };
  jpeg: { decode(buf: Uint8Array, opts?: Record<string, unknown>): { width: number; height: number; data: ArrayLike<number> } };
  /**
   * Builds the error `decodeResize` throws for bad bytes. `imageLibs()` gives a RadkitError (code
   * `ERR_DATA`); without it (the loader's worker threads, which cannot import radkit's classes and
   * only pass the message on) a local Error subclass is thrown.
   */
  error?: (message: string) => Error;
}

/**
 * Decodes PNG/JPEG bytes and resizes. Throws `libs.error(message)` (see `ImageLibs.error`) with a
 * message that says what is wrong with the bytes (the caller adds the file name).
 * Self-contained: do not reference module-level names here.
 */
export function decodeResize(buf: Uint8Array, opts: ImageOptions, libs: ImageLibs): DecodedImage {
  class DecodeFailure extends Error {}
  const failure = (message: string): Error => (libs.error ? libs.error(message) : new DecodeFailure(message));
  const isPng = buf.length >= 8 && buf[0] === 0x89 && buf[1] === 0x50 && buf[2] === 0x4e && buf[3] === 0x47;
  const isJpeg = buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff;
  if (buf.length === 0) throw failure('empty file');
  if (!isPng && !isJpeg) throw failure('not a PNG or JPEG file (unknown signature)');
  let sw = 0;
  let sh = 0;
  let grey: Float32Array;
  let bitDepth = 8;
  let channels = 1;
  if (isPng) {
    let img;
    try {
      img = libs.PNG.sync.read(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength), { skipRescale: true });
    } catch (e) {
      throw failure(`corrupt PNG: ${(e as Error).message}`);
    }
    sw = img.width;
    sh = img.height;
    bitDepth = img.depth ?? 8;
    channels = img.color ? 3 : 1;
    const max = bitDepth === 16 ? 65535 : 255;
    const d = img.data;
    if (d.length < sw * sh * 4) throw failure('corrupt PNG: truncated pixel data');
    grey = new Float32Array(sw * sh);
    for (let i = 0, j = 0; i < grey.length; i++, j += 4) {
      grey[i] = img.color ? (0.299 * d[j] + 0.587 * d[j + 1] + 0.114 * d[j + 2]) / max : d[j] / max;
    }
  } else {
    let img;
    try {
      img = libs.jpeg.decode(buf, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: 200, maxMemoryUsageInMB: 1024 });
    } catch (e) {
      throw failure(`corrupt JPEG: ${(e as Error).message}`);
    }
    sw = img.width;
    sh = img.height;
    channels = 3;
    const d = img.data;
    grey = new Float32Array(sw * sh);
    let isGrey = true;
    for (let i = 0, j = 0; i < grey.length; i++, j += 4) {
      if (d[j] !== d[j + 1] || d[j] !== d[j + 2]) isGrey = false;
      grey[i] = (0.299 * d[j] + 0.587 * d[j + 1] + 0.114 * d[j + 2]) / 255;
    }
    if (isGrey) channels = 1;
  }
  if (sw <= 0 || sh <= 0) throw failure('image has no pixels');

  // source crop (center-crop keeps the aspect ratio of the output)
  const H = opts.height;
  const W = opts.width;
  let cx0 = 0;
  let cy0 = 0;
  let cw = sw;
  let ch = sh;
  if (opts.fit === 'center-crop') {
    const target = W / H;
    if (sw / sh > target) {
      cw = sh * target;
      cx0 = (sw - cw) / 2;
    } else {
      ch = sw / target;
      cy0 = (sh - ch) / 2;
    }
  }
  // separable resampling: area average when shrinking, bilinear (half-pixel centres) when enlarging
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
  const wx = weights(W, cx0, cw, sw);
  const wy = weights(H, cy0, ch, sh);
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
  const mean = opts.mean ?? 0;
  const std = opts.std ?? 1;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      let acc = 0;
      for (let k = wy.off[y]; k < wy.off[y + 1]; k++) acc += wy.w[k] * tmp[wy.idx[k] * W + x];
      out[y * W + x] = (acc - mean) / std;
    }
  }
  return { width: W, height: H, data: out, source: { format: isPng ? 'png' : 'jpeg', width: sw, height: sh, bitDepth, channels } };
}

/** Resolves the image libraries from this package (works from compiled JS and from TS sources). */
export function imageLibPaths(): { png: string; jpeg: string } {
  const req = typeof require === 'function' ? require : createRequire(join(process.cwd(), 'noop.js'));
  return { png: req.resolve('pngjs'), jpeg: req.resolve('jpeg-js') };
}

let libsCache: ImageLibs | undefined;
export function imageLibs(): ImageLibs {
  if (!libsCache) {
    const p = imageLibPaths();
    const req = typeof require === 'function' ? require : createRequire(join(process.cwd(), 'noop.js'));
    libsCache = {
      PNG: (req(p.png) as { PNG: ImageLibs['PNG'] }).PNG,
      jpeg: req(p.jpeg) as ImageLibs['jpeg'],
      error: (message) => new RadkitError(message, 'ERR_DATA', 'decodeResize'),
    };
  }
  return libsCache;
}

const FN_OPTS = 'checkImageOptions';

export function checkImageOptions(o: ImageOptions): ImageOptions {
  if (!o || !Number.isInteger(o.height) || !Number.isInteger(o.width) || o.height < 1 || o.width < 1 || o.height > 8192 || o.width > 8192)
    throw new ArgumentError(`image options: height and width must be integers in [1, 8192], got ${o?.height} x ${o?.width}`, 'ERR_INVALID_ARG', FN_OPTS);
  if (o.fit !== undefined && o.fit !== 'stretch' && o.fit !== 'center-crop') throw new ArgumentError(`image options: unknown fit '${String(o.fit)}'`, 'ERR_INVALID_ARG', FN_OPTS);
  if (o.std !== undefined && !(o.std > 0)) throw new ArgumentError(`image options: std must be > 0, got ${String(o.std)}`, 'ERR_INVALID_ARG', FN_OPTS);
  return o;
}

/** Reads, decodes and resizes one image file (synchronously, on this thread). Errors name the file. */
export function loadImage(path: string, opts: ImageOptions): DecodedImage {
  checkImageOptions(opts);
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new DataError({ file: path, message: err.code === 'ENOENT' ? 'file not found' : `cannot read image: ${err.message}` }, 'loadImage');
  }
  try {
    return decodeResize(buf, opts, imageLibs());
  } catch (e) {
    throw new DataError({ file: path, message: (e as Error).message }, 'loadImage');
  }
}
