/**
 * Keypatches as image tokens (AdaMatch-Cyclic, seed 000 section 3.2.2: "a frozen VQ-GAN encoder
 * converts the matched keypatches into image tokens"; Fig. 4 shows one token per keypatch). The
 * paper leaves open how; here a keypatch's box (cx, cy, w, h in the pixels of the image it was
 * found in, `boxSize` px square) is cropped from that image with bilinear sampling at f x f
 * points (f = the tokenizer's downsampling factor) and encoded alone: a single f x f input gives a
 * 1 x 1 code grid, that code is the keypatch's token.
 */
import { ArgumentError } from '../errors.js';
import type { Model } from './model.js';
import { encodeImages } from './vqgan.js';

/**
 * Bilinear crop of `box` = (cx, cy, w, h), given in a `boxSize` x `boxSize` frame, from a grey
 * H x W image, sampled at f x f cell centres (align_corners=false); samples outside the image take
 * the nearest edge pixel.
 */
export function cropBox(pixels: ArrayLike<number>, H: number, W: number, box: readonly [number, number, number, number], boxSize: number, f: number): Float32Array {
  if (pixels.length !== H * W) throw new ArgumentError(`cropBox: ${pixels.length} pixels for ${H} x ${W}`, 'ERR_SHAPE', 'cropBox');
  const [cx, cy, bw, bh] = box;
  if (!(bw > 0 && bh > 0)) throw new ArgumentError(`cropBox: the box needs a positive width and height, got ${bw} x ${bh}`, 'ERR_INVALID_ARG', 'cropBox');
  const sx = W / boxSize, sy = H / boxSize;
  const out = new Float32Array(f * f);
  const at = (y: number, x: number) => pixels[Math.min(H - 1, Math.max(0, y)) * W + Math.min(W - 1, Math.max(0, x))];
  for (let i = 0; i < f; i++)
    for (let j = 0; j < f; j++) {
      // Cell centre in box-frame pixels, then in image pixel coordinates (pixel centres at k + 0.5).
      const x = (cx - bw / 2 + ((j + 0.5) * bw) / f) * sx - 0.5;
      const y = (cy - bh / 2 + ((i + 0.5) * bh) / f) * sy - 0.5;
      const x0 = Math.floor(x), y0 = Math.floor(y), ax = x - x0, ay = y - y0;
      out[i * f + j] = (1 - ay) * ((1 - ax) * at(y0, x0) + ax * at(y0, x0 + 1)) + ay * ((1 - ax) * at(y0 + 1, x0) + ax * at(y0 + 1, x0 + 1));
    }
  return out;
}

/** The tokenizer's downsampling factor f = 2^(levels - 1) of a vqgan model. */
export function downsamplingFactor(vq: Model): number {
  const mult = vq.config.chMult;
  if (!Array.isArray(mult) || !mult.length) throw new ArgumentError(`downsamplingFactor: ${vq.kind} has no chMult`, 'ERR_INVALID_ARG', 'downsamplingFactor');
  return 2 ** (mult.length - 1);
}

/** One code per crop (each f x f, values in [0, 1]), encoded together. */
export async function keypatchCodes(vq: Model, crops: readonly Float32Array[]): Promise<number[]> {
  if (!crops.length) return [];
  const f = downsamplingFactor(vq);
  const data = new Float32Array(crops.length * f * f);
  crops.forEach((c, i) => {
    if (c.length !== f * f) throw new ArgumentError(`keypatchCodes: crop ${i} has ${c.length} pixels, expected ${f} x ${f}`, 'ERR_SHAPE', 'keypatchCodes');
    data.set(c, i * f * f);
  });
  const r = await encodeImages(vq, { data, shape: [crops.length, 1, 1, f, f] });
  return Array.from(r.codes);
}

/**
 * One code per keypatch read in context: each keypatch's source image (grey [0, 1], `size` x `size`;
 * pass the same array for keypatches of one image) is encoded whole and the keypatch takes the code of the grid cell that holds its box centre.
 * Encoding an f x f crop alone (`keypatchCodes`) gives the encoder a window it never saw in training
 * (mostly padding around one cell): on SynthCXR at 128 px every crop fell on 2 codes. In context the
 * token is one the image -> code map really produces, so it is a token the LM has read in images.
 */
export async function keypatchCodesInContext(
  vq: Model,
  images: readonly Float32Array[],
  boxes: readonly (readonly [number, number, number, number])[],
  boxSize: number,
  size: number,
): Promise<number[]> {
  const fn = 'keypatchCodesInContext';
  if (images.length !== boxes.length) throw new ArgumentError(`${fn}: ${images.length} images for ${boxes.length} boxes`, 'ERR_SHAPE', fn);
  if (!images.length) return [];
  // An image given for several boxes (the same array) is encoded once.
  const distinct = [...new Set(images)];
  const slot = new Map(distinct.map((im, j) => [im, j]));
  const data = new Float32Array(distinct.length * size * size);
  distinct.forEach((im, j) => {
    if (im.length !== size * size) throw new ArgumentError(`${fn}: image ${images.indexOf(im)} has ${im.length} pixels, expected ${size} x ${size}`, 'ERR_SHAPE', fn);
    data.set(im, j * size * size);
  });
  const r = await encodeImages(vq, { data, shape: [distinct.length, 1, 1, size, size] });
  const [, views, gh, gw] = r.shape;
  return boxes.map(([cx, cy], i) => {
    const row = Math.min(gh - 1, Math.max(0, Math.floor((cy / boxSize) * gh)));
    const col = Math.min(gw - 1, Math.max(0, Math.floor((cx / boxSize) * gw)));
    return r.codes[slot.get(images[i])! * views * gh * gw + row * gw + col];
  });
}
