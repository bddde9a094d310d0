/**
 * Image decoding and resizing through sharp (libvips with libjpeg-turbo and libpng, prebuilt from
 * npm): PNG (1 to 16 bits; grey, grey+alpha, RGB, RGBA, palette) and JPEG (baseline and progressive)
 * into grey float32 in [0, 1] at a fixed size. The work runs on libuv's thread pool, so
 * `decodeImage` / `readImage` return Promises and the event loop stays free.
 *
 * What it does, and where it differs from radkit's first decoder (`./image-reference.ts`):
 * - Header first: `readImageHeader` reads the format, size, bit depth and channels from the first
 *   bytes; an image with more than `maxPixels` pixels (default 8192 x 8192) is refused before any
 *   pixel is decoded (a 50,000 x 50,000 PNG header costs nothing).
 * - Grey: colour images become grey with ITU-R 601 weights (0.299 R + 0.587 G + 0.114 B) on the
 *   stored values; alpha is dropped, not composited (both as before).
 * - Resize, shrinking: libvips' resize with the kernel `filter` (default 'lanczos3', a three-lobe
 *   windowed sinc widened by the shrink factor, so it low-passes; the first decoder averaged areas).
 *   JPEGs may be decoded at 1/2, 1/4 or 1/8 scale first (libjpeg's DCT scaling, conservative mode,
 *   `fastShrinkOnLoad: false`). 'center-crop' resizes the shorter side to fit and cuts the centre.
 *   Both keep half-pixel centres. Enlarging (either axis): libvips decodes, and radkit's resampler
 *   (`./resample.ts`, bilinear with half-pixel centres, as the first decoder) resizes, because
 *   libvips enlarges corner-aligned, half an output pixel off.
 *   Measured against the area average (test/unit/data-image.test.ts, bench/RESULTS.md): identical
 *   without resizing; within 1/255 on smooth images; at sharp edges lanczos3 keeps more contrast
 *   (up to about 12/255 on SynthCXR's rib edges at 4x shrink; mean under 2/255).
 * - Precision: 8-bit sources give k / 255 with k the 8-bit value libvips produced (so a prepared
 *   uint8 cache holds exactly what decoding on the fly gives); 16-bit PNGs keep 16 bits (k / 65535).
 * - libvips warnings are errors (`failOn: 'warning'`): libjpeg only warns about a truncated JPEG and
 *   would fill the missing rows with grey.
 * - EXIF orientation is ignored, as before: radiographs carry their orientation in the pixels.
 */
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type SharpType from 'sharp';
import { ArgumentError, DataError, LoadError, RadkitError } from '../errors.js';
import { decodeResize, imageLibs } from './image-reference.js';
import { resampleGrey, sourceBox } from './resample.js';

export type FitMode = 'stretch' | 'center-crop';

/** libvips resize kernels (sharp's names). */
export type ResizeFilter = 'lanczos3' | 'lanczos2' | 'cubic' | 'mitchell' | 'linear' | 'nearest';
export const RESIZE_FILTERS: readonly ResizeFilter[] = ['lanczos3', 'lanczos2', 'cubic', 'mitchell', 'linear', 'nearest'];

/** Images larger than this many pixels are refused from their header (ImageOptions.maxPixels). */
export const DEFAULT_MAX_PIXELS = 8192 * 8192;

export interface ImageOptions {
  /** Output height and width in pixels. */
  height: number;
  width: number;
  /** 'stretch' (default) resizes to height x width; 'center-crop' keeps the aspect ratio and crops the centre. */
  fit?: FitMode;
  /** Optional normalisation applied after scaling to [0, 1]: (x - mean) / std. */
  mean?: number;
  std?: number;
  /** Resize kernel (default 'lanczos3'). */
  filter?: ResizeFilter;
  /** Refuse images with more pixels than this, from the header, before decoding (default `DEFAULT_MAX_PIXELS`). */
  maxPixels?: number;
}

/** What the first bytes of a file say. */
export interface ImageHeader {
  format: 'png' | 'jpeg';
  width: number;
  height: number;
  /** Bits per sample (PNG 1..16, JPEG 8 or 12). */
  bitDepth: number;
  /** 1 grey, 3 colour (RGB, YCbCr or palette), 4 CMYK/YCCK JPEG; alpha not counted. */
  channels: number;
  alpha: boolean;
  /** PNG colour type 3. */
  palette?: boolean;
  /** JPEG coding: progressive (SOF2/6/10/14) or not. */
  progressive?: boolean;
}

export interface DecodedImage {
  width: number;
  height: number;
  /** Grey values, row-major, `height * width` floats. */
  data: Float32Array;
  /** Source format and geometry, for diagnostics. */
  source: { format: 'png' | 'jpeg'; width: number; height: number; bitDepth: number; channels: number };
}

/** Decoded grey pixels before scaling to [0, 1]: uint8 (8-bit sources) or uint16 (16-bit PNGs). */
export interface RawImage {
  width: number;
  height: number;
  data: Uint8Array | Uint16Array;
  /** 255 or 65535. */
  maxValue: number;
  source: ImageHeader;
}

const FN_OPTS = 'checkImageOptions';

export function checkImageOptions(o: ImageOptions): ImageOptions {
  if (!o || !Number.isInteger(o.height) || !Number.isInteger(o.width) || o.height < 1 || o.width < 1 || o.height > 8192 || o.width > 8192)
    throw new ArgumentError(`image options: height and width must be integers in [1, 8192], got ${o?.height} x ${o?.width}`, 'ERR_INVALID_ARG', FN_OPTS);
  if (o.fit !== undefined && o.fit !== 'stretch' && o.fit !== 'center-crop') throw new ArgumentError(`image options: unknown fit '${String(o.fit)}'`, 'ERR_INVALID_ARG', FN_OPTS);
  if (o.std !== undefined && !(o.std > 0)) throw new ArgumentError(`image options: std must be > 0, got ${String(o.std)}`, 'ERR_INVALID_ARG', FN_OPTS);
  if (o.mean !== undefined && !Number.isFinite(o.mean)) throw new ArgumentError(`image options: mean must be a finite number, got ${String(o.mean)}`, 'ERR_INVALID_ARG', FN_OPTS);
  if (o.filter !== undefined && !RESIZE_FILTERS.includes(o.filter))
    throw new ArgumentError(`image options: unknown filter '${String(o.filter)}' (one of ${RESIZE_FILTERS.join(', ')})`, 'ERR_INVALID_ARG', FN_OPTS);
  if (o.maxPixels !== undefined && !(Number.isInteger(o.maxPixels) && o.maxPixels >= 1))
    throw new ArgumentError(`image options: maxPixels must be a positive integer, got ${String(o.maxPixels)}`, 'ERR_INVALID_ARG', FN_OPTS);
  return o;
}

// ---------------------------------------------------------------------------------------------
// Headers

/** Thrown for bad bytes; callers that know the file turn it into a DataError naming it. */
class ImageBytesError extends RadkitError {
  constructor(message: string, fn: string) {
    super(message, 'ERR_DATA', fn);
  }
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * Format, size, bit depth and channels from the first bytes of a PNG or JPEG (no pixel is decoded).
 * Throws an ERR_DATA RadkitError saying what is wrong (empty, unknown signature, truncated header).
 */
export function readImageHeader(buf: Uint8Array, fn = 'readImageHeader'): ImageHeader {
  const fail = (m: string) => new ImageBytesError(m, fn);
  if (buf.length === 0) throw fail('empty file');
  const isPng = buf.length >= 8 && PNG_SIGNATURE.every((b, i) => buf[i] === b);
  const isJpeg = buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff;
  if (!isPng && !isJpeg) throw fail('not a PNG or JPEG file (unknown signature)');
  const u32 = (o: number) => ((buf[o] << 24) | (buf[o + 1] << 16) | (buf[o + 2] << 8) | buf[o + 3]) >>> 0;
  const u16 = (o: number) => (buf[o] << 8) | buf[o + 1];
  if (isPng) {
    // signature, then the IHDR chunk: length 13, 'IHDR', width, height, bit depth, colour type, ...
    if (buf.length < 8 + 8 + 13 || String.fromCharCode(buf[12], buf[13], buf[14], buf[15]) !== 'IHDR') throw fail('corrupt PNG: no IHDR header (truncated file?)');
    const width = u32(16);
    const height = u32(20);
    const bitDepth = buf[24];
    const colorType = buf[25];
    if (![1, 2, 4, 8, 16].includes(bitDepth) || ![0, 2, 3, 4, 6].includes(colorType)) throw fail(`corrupt PNG: bit depth ${bitDepth} with colour type ${colorType} in IHDR`);
    if (width === 0 || height === 0) throw fail(`corrupt PNG: image has no pixels (${width} x ${height})`);
    return { format: 'png', width, height, bitDepth, channels: colorType === 0 || colorType === 4 ? 1 : 3, alpha: colorType === 4 || colorType === 6, palette: colorType === 3 };
  }
  // JPEG: walk the markers up to the first frame header (SOF0..SOF15 but DHT C4, JPG C8, DAC CC).
  let o = 2;
  for (;;) {
    while (o < buf.length && buf[o] !== 0xff) o++; // tolerate garbage between segments, as libjpeg does
    while (o < buf.length && buf[o] === 0xff) o++;
    if (o >= buf.length) throw fail('corrupt JPEG: no frame header (truncated file?)');
    const m = buf[o++];
    if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) continue; // no length
    if (m === 0xd9 || m === 0xda) throw fail(`corrupt JPEG: ${m === 0xda ? 'scan' : 'end of image'} before the frame header`);
    if (o + 2 > buf.length) throw fail('corrupt JPEG: no frame header (truncated file?)');
    const len = u16(o);
    if (len < 2) throw fail(`corrupt JPEG: segment length ${len} at byte ${o}`);
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      if (o + 8 > buf.length) throw fail('corrupt JPEG: truncated frame header');
      const bitDepth = buf[o + 2];
      const height = u16(o + 3);
      const width = u16(o + 5);
      const comps = buf[o + 7];
      if (width === 0 || height === 0) throw fail(`corrupt JPEG: frame header gives ${width} x ${height} pixels`);
      if (comps !== 1 && comps !== 3 && comps !== 4) throw fail(`corrupt JPEG: ${comps} components`);
      return { format: 'jpeg', width, height, bitDepth, channels: comps, alpha: false, progressive: m === 0xc2 || m === 0xc6 || m === 0xca || m === 0xce };
    }
    o += len;
  }
}

/** Throws (ERR_DATA) when the header's pixel count is over the limit. */
function checkSize(h: ImageHeader, maxPixels: number, fn: string): void {
  const px = h.width * h.height;
  if (px > maxPixels)
    throw new ImageBytesError(
      `${h.format.toUpperCase()} of ${h.width} x ${h.height} pixels (${(px / 1e6).toFixed(1)} megapixels) is over the limit of ${maxPixels} pixels (ImageOptions.maxPixels); refused before decoding`,
      fn,
    );
}

// ---------------------------------------------------------------------------------------------
// sharp

let sharpLib: typeof SharpType | undefined;

/** sharp, loaded on first use; a LoadError that says how to fix a broken install otherwise. */
export function loadSharp(): typeof SharpType {
  if (!sharpLib) {
    const req = typeof require === 'function' ? require : createRequire(join(process.cwd(), 'noop.js'));
    try {
      sharpLib = req('sharp') as typeof SharpType;
    } catch (e) {
      throw new LoadError(
        `radkit: the image decoder sharp (libvips) could not be loaded: ${(e as Error).message.split('\n')[0]}. ` +
          `Reinstall it with its prebuilt libvips for this platform: npm install --include=optional sharp`,
        'ERR_LOAD',
        'loadSharp',
      );
    }
  }
  return sharpLib;
}

const ITU601: [number, number, number] = [0.299, 0.587, 0.114];

/**
 * Decodes PNG/JPEG bytes to grey at `height x width`, before scaling: uint8 for sources of at most
 * 8 bits, uint16 for 16-bit PNGs. Errors are ERR_DATA RadkitErrors saying what is wrong with the bytes.
 */
export async function decodeRaw(buf: Uint8Array, opts: ImageOptions, fn = 'decodeRaw'): Promise<RawImage> {
  checkImageOptions(opts);
  const header = readImageHeader(buf, fn);
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  checkSize(header, maxPixels, fn);
  const sharp = loadSharp();
  // 16-bit grey PNGs keep 16 bits; colour goes through sharp's recomb, which works in 8-bit sRGB.
  const wide = header.format === 'png' && header.bitDepth === 16 && header.channels === 1;
  // libvips shrinks with half-pixel centres but enlarges corner-aligned (half an output pixel off):
  // when an axis grows, libvips only decodes and radkit's resampler resizes (bilinear, half-pixel).
  const box = sourceBox(header.width, header.height, opts.height, opts.width, opts.fit ?? 'stretch');
  const grows = opts.width > box.w || opts.height > box.h;
  let p = sharp(buf, { limitInputPixels: maxPixels, failOn: 'warning', sequentialRead: true });
  if (header.alpha) p = p.removeAlpha();
  if (!grows)
    p = p.resize(opts.width, opts.height, {
      fit: opts.fit === 'center-crop' ? 'cover' : 'fill',
      position: 'centre',
      kernel: opts.filter ?? 'lanczos3',
      fastShrinkOnLoad: false,
    });
  if (header.channels === 1) p = p.toColourspace(wide ? 'grey16' : 'b-w');
  else if (header.channels === 3) p = p.recomb([ITU601, ITU601, ITU601]).linear(1, 0.5).extractChannel(0); // + 0.5: the cast to uchar truncates
  else p = p.toColourspace(wide ? 'grey16' : 'b-w'); // CMYK: libvips' own conversion
  let out: { data: Buffer; info: SharpType.OutputInfo };
  try {
    out = await p.raw({ depth: wide ? 'ushort' : 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new ImageBytesError(`corrupt ${header.format.toUpperCase()}: ${String((e as Error).message).replace(/^Vips\w*:\s*/, '')}`, fn);
  }
  const { info, data } = out;
  const [ew, eh] = grows ? [header.width, header.height] : [opts.width, opts.height];
  if (info.width !== ew || info.height !== eh || info.channels !== 1)
    throw new RadkitError(`${fn}: libvips returned ${info.width} x ${info.height} x ${info.channels}, expected ${ew} x ${eh} x 1`, 'ERR_NATIVE', fn);
  let pixels: Uint8Array | Uint16Array;
  if (wide) {
    const copy = data.byteOffset % 2 === 0 ? data : Buffer.from(data);
    pixels = new Uint16Array(copy.buffer, copy.byteOffset, copy.length / 2);
  } else pixels = new Uint8Array(data.buffer, data.byteOffset, data.length);
  if (grows) {
    const r = resampleGrey(pixels, header.width, header.height, opts.height, opts.width, opts.fit ?? 'stretch');
    const max = wide ? 65535 : 255;
    pixels = wide ? new Uint16Array(r.length) : new Uint8Array(r.length);
    for (let i = 0; i < r.length; i++) pixels[i] = Math.min(max, Math.max(0, Math.round(r[i])));
    return { width: opts.width, height: opts.height, data: pixels, maxValue: max, source: header };
  }
  return { width: info.width, height: info.height, data: pixels, maxValue: wide ? 65535 : 255, source: header };
}

/** Scales raw pixels to [0, 1] and applies `(x - mean) / std`. */
export function toFloat(raw: { data: Uint8Array | Uint16Array; maxValue: number }, mean = 0, std = 1, out = new Float32Array(raw.data.length)): Float32Array {
  const d = raw.data;
  const inv = 1 / raw.maxValue;
  if (mean === 0 && std === 1) for (let i = 0; i < d.length; i++) out[i] = d[i] * inv;
  else for (let i = 0; i < d.length; i++) out[i] = (d[i] * inv - mean) / std;
  return out;
}

function decoded(raw: RawImage, opts: ImageOptions): DecodedImage {
  const s = raw.source;
  return {
    width: raw.width,
    height: raw.height,
    data: toFloat(raw, opts.mean ?? 0, opts.std ?? 1),
    source: { format: s.format, width: s.width, height: s.height, bitDepth: s.bitDepth, channels: s.channels },
  };
}

/** Decodes and resizes PNG/JPEG bytes (on libuv's threads). Errors: ERR_DATA RadkitErrors about the bytes. */
export async function decodeImage(buf: Uint8Array, opts: ImageOptions): Promise<DecodedImage> {
  return decoded(await decodeRaw(buf, opts, 'decodeImage'), opts);
}

/** Reads a file's bytes; a DataError naming it when it cannot. */
export async function readImageBytes(path: string, fn: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new DataError({ file: path, message: err.code === 'ENOENT' ? 'file not found' : `cannot read image: ${err.message}` }, fn);
  }
}

/** Reads, decodes and resizes one image file. Every failure is a DataError naming the file. */
export async function readImage(path: string, opts: ImageOptions): Promise<DecodedImage> {
  checkImageOptions(opts);
  const buf = await readImageBytes(path, 'readImage');
  try {
    return decoded(await decodeRaw(buf, opts, 'readImage'), opts);
  } catch (e) {
    if (e instanceof ImageBytesError) throw new DataError({ file: path, message: e.message }, 'readImage');
    throw e;
  }
}

/** `readImage`'s raw form (uint8/uint16 pixels), for the prepared cache. Failures are DataErrors naming the file. */
export async function readImageRaw(path: string, opts: ImageOptions): Promise<RawImage> {
  const buf = await readImageBytes(path, 'readImageRaw');
  try {
    return await decodeRaw(buf, opts, 'readImageRaw');
  } catch (e) {
    if (e instanceof ImageBytesError) throw new DataError({ file: path, message: e.message }, 'readImageRaw');
    throw e;
  }
}

/**
 * Reads, decodes and resizes one image file synchronously, with the first (pure JavaScript)
 * decoder: area average when shrinking. Kept for synchronous callers; prefer `readImage`, which
 * decodes as the loaders do (libvips, `filter`) and about 30x faster on large images. The header
 * size limit applies here too. Errors are DataErrors naming the file.
 * @deprecated use `readImage`.
 */
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
    checkSize(readImageHeader(buf, 'loadImage'), opts.maxPixels ?? DEFAULT_MAX_PIXELS, 'loadImage');
    return decodeResize(buf, opts, imageLibs());
  } catch (e) {
    throw new DataError({ file: path, message: (e as Error).message }, 'loadImage');
  }
}

export { decodeResize, imageLibs };
