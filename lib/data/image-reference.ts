/**
 * radkit's first image decoder, kept as the reference the libvips decoder (`./image.ts`) is
 * compared with: PNG (8/16-bit, grey/grey+alpha/RGB/RGBA/palette, via pngjs) and
 * baseline/progressive JPEG (via jpeg-js) into grey float32 in [0, 1], area-averaged when shrinking
 * and bilinear (half-pixel centres) when enlarging. Pure JavaScript and synchronous: about 1 s for a
 * 2544 x 3056 JPEG, against about 30 ms through sharp (bench/RESULTS.md). The loaders do not use it;
 * the agreement tests and `bench/data.ts` do, and the synchronous `loadImage` still does.
 *
 * `decodeResize` decodes with the libraries passed in and resamples with `./resample.ts`.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { RadkitError } from '../errors.js';
import type { DecodedImage, ImageOptions } from './image.js';
import { resampleGrey } from './resample.js';

/** Libraries the decoder needs (`imageLibs()` gives them). */
export interface ImageLibs {
  PNG: { sync: { read(buf: Buffer, opts?: { skipRescale?: boolean }): { width: number; height: number; data: ArrayLike<number>; depth?: number; color?: boolean; alpha?: boolean } } };
  jpeg: { decode(buf: Uint8Array, opts?: Record<string, unknown>): { width: number; height: number; data: ArrayLike<number> } };
  /** Builds the error `decodeResize` throws for bad bytes (`imageLibs()`: a RadkitError, code `ERR_DATA`; without it a plain Error). */
  error?: (message: string) => Error;
}

/**
 * Decodes PNG/JPEG bytes and resizes. Throws `libs.error(message)` (see `ImageLibs.error`) with a
 * message that says what is wrong with the bytes (the caller adds the file name).
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

  const H = opts.height;
  const W = opts.width;
  const out = resampleGrey(grey, sw, sh, H, W, opts.fit ?? 'stretch');
  const mean = opts.mean ?? 0;
  const std = opts.std ?? 1;
  if (mean !== 0 || std !== 1) for (let i = 0; i < out.length; i++) out[i] = (out[i] - mean) / std;
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
