/**
 * Seeded augmentations (MedRAT: "images are augmented by crop, blur, affine and contrast; reports by
 * shuffling sentences"). Images: native (native/nn/augment), on tensors, one seed per sample, so a
 * sample's augmentation depends on its seed only: not on the batch, the thread or the worker it
 * lands on. Text: sentence shuffling in TypeScript, before tokenising.
 *
 * Horizontal flips are off by default, and should stay off for most uses: a chest radiograph's
 * left and right are anatomy (heart on the left, situs), and reports name sides ("left pleural
 * effusion"), so a flipped image contradicts its report.
 */
import { ArgumentError, NativeError } from '../errors.js';
import { loadNative } from '../native.js';
import { Tensor, handleOf } from '../tensor.js';
import type { NativeTensor } from '../../typings/native.js';
import { Rng, hashSeed } from './synth/rng.js';

/** Random resized crop: a box of `scale` x the image area and aspect `ratio`, resized to the output. */
export interface ResizedCropOptions {
  /** Probability (default 1). */
  p?: number;
  /** Area fraction range (default [0.75, 1]; torchvision's [0.08, 1] is far too strong for radiographs). */
  scale?: [number, number];
  /** Aspect ratio range, width / height (default [0.9, 1.1]). */
  ratio?: [number, number];
}

/** Random affine about the centre: rotation, isotropic scale, translation. */
export interface AffineOptions {
  p?: number;
  /** Rotation in [-degrees, degrees] (default 10). */
  degrees?: number;
  /** Translation in [-t, t] of the width / height (default 0.05). */
  translate?: number;
  /** Scale range (default [0.95, 1.05]). */
  scale?: [number, number];
}

/** Gaussian blur with a random sigma (pixels). */
export interface BlurOptions {
  /** Probability (default 0.5). */
  p?: number;
  /** Sigma range in pixels (default [0.1, 1.5]); the kernel reaches 3 sigma. */
  sigma?: [number, number];
}

export interface ImageAugmentOptions {
  resizedCrop?: ResizedCropOptions | false;
  affine?: AffineOptions | false;
  blur?: BlurOptions | false;
  /** Brightness factor in [1 - b, 1 + b] (default 0: off). */
  brightness?: number;
  /** Contrast factor in [1 - c, 1 + c] about the image mean (default 0: off). */
  contrast?: number;
  /** Horizontal flip probability. Default 0, and see the note above on laterality. */
  hflip?: number;
}

export interface TextAugmentOptions {
  /** Probability of shuffling a report's sentences (default 0). */
  shuffleSentences?: number;
}

/** Augmentations of a training loader (and of a model kind: `ModelKind.augment`). */
export interface AugmentOptions {
  image?: ImageAugmentOptions;
  text?: TextAugmentOptions;
}

/** The flat configuration native/nn/augment reads (every field set). */
export interface NativeAugmentConfig {
  cropP: number;
  cropScaleMin: number;
  cropScaleMax: number;
  cropRatioMin: number;
  cropRatioMax: number;
  affineP: number;
  degrees: number;
  translate: number;
  scaleMin: number;
  scaleMax: number;
  blurP: number;
  sigmaMin: number;
  sigmaMax: number;
  brightness: number;
  contrast: number;
  hflip: number;
}

interface NativeAugment {
  augmentImages(images: NativeTensor, seeds: NativeTensor, config: NativeAugmentConfig): Promise<NativeTensor>;
  augmentImagesInto(data: Float32Array, shape: number[], seeds: NativeTensor, config: NativeAugmentConfig): Promise<void>;
}

const FN = 'augmentImages';

function prob(v: unknown, name: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new ArgumentError(`augment: ${name} must be a probability in [0, 1], got ${String(v)}`, 'ERR_INVALID_ARG', FN);
  return v;
}

function range(v: unknown, name: string, fallback: [number, number], lo: number, hi: number): [number, number] {
  if (v === undefined) return fallback;
  if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => typeof x === 'number' && x >= lo && x <= hi) || v[0] > v[1])
    throw new ArgumentError(`augment: ${name} must be [min, max] with ${lo} <= min <= max <= ${hi}, got ${JSON.stringify(v)}`, 'ERR_INVALID_ARG', FN);
  return [v[0], v[1]];
}

function num(v: unknown, name: string, fallback: number, lo: number, hi: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !(v >= lo && v <= hi)) throw new ArgumentError(`augment: ${name} must be a number in [${lo}, ${hi}], got ${String(v)}`, 'ERR_INVALID_ARG', FN);
  return v;
}

/** Checks image augmentation options and fills the defaults; an ArgumentError names a bad field. */
export function nativeAugmentConfig(o: ImageAugmentOptions): NativeAugmentConfig {
  if (!o || typeof o !== 'object') throw new ArgumentError('augment: image options must be an object', 'ERR_INVALID_ARG', FN);
  const known = ['resizedCrop', 'affine', 'blur', 'brightness', 'contrast', 'hflip'];
  for (const k of Object.keys(o)) if (!known.includes(k)) throw new ArgumentError(`augment: unknown image option '${k}' (known: ${known.join(', ')})`, 'ERR_INVALID_ARG', FN);
  const crop = o.resizedCrop || undefined;
  const aff = o.affine || undefined;
  const blur = o.blur || undefined;
  const cs = range(crop?.scale, 'resizedCrop.scale', [0.75, 1], 0.01, 1);
  const cr = range(crop?.ratio, 'resizedCrop.ratio', [0.9, 1.1], 0.1, 10);
  const sc = range(aff?.scale, 'affine.scale', [0.95, 1.05], 0.1, 10);
  const sg = range(blur?.sigma, 'blur.sigma', [0.1, 1.5], 0, 20);
  return {
    cropP: crop ? prob(crop.p, 'resizedCrop.p', 1) : 0,
    cropScaleMin: cs[0],
    cropScaleMax: cs[1],
    cropRatioMin: cr[0],
    cropRatioMax: cr[1],
    affineP: aff ? prob(aff.p, 'affine.p', 1) : 0,
    degrees: num(aff?.degrees, 'affine.degrees', 10, 0, 180),
    translate: num(aff?.translate, 'affine.translate', 0.05, 0, 1),
    scaleMin: sc[0],
    scaleMax: sc[1],
    blurP: blur ? prob(blur.p, 'blur.p', 0.5) : 0,
    sigmaMin: sg[0],
    sigmaMax: sg[1],
    brightness: num(o.brightness, 'brightness', 0, 0, 1),
    contrast: num(o.contrast, 'contrast', 0, 0, 1),
    hflip: prob(o.hflip, 'hflip', 0),
  };
}

/** Checks a whole AugmentOptions (image and text parts); returns it. */
export function checkAugmentOptions(o: AugmentOptions): AugmentOptions {
  if (!o || typeof o !== 'object') throw new ArgumentError('augment: options must be an object { image?, text? }', 'ERR_INVALID_ARG', FN);
  for (const k of Object.keys(o)) if (k !== 'image' && k !== 'text') throw new ArgumentError(`augment: unknown option '${k}' (image, text)`, 'ERR_INVALID_ARG', FN);
  if (o.image) nativeAugmentConfig(o.image);
  if (o.text) {
    for (const k of Object.keys(o.text)) if (k !== 'shuffleSentences') throw new ArgumentError(`augment: unknown text option '${k}' (shuffleSentences)`, 'ERR_INVALID_ARG', FN);
    prob(o.text.shuffleSentences, 'text.shuffleSentences', 0);
  }
  return o;
}

function seedArray(seeds: ArrayLike<number>): BigInt64Array {
  const s = new BigInt64Array(seeds.length);
  for (let i = 0; i < seeds.length; i++) {
    const v = seeds[i];
    if (!Number.isSafeInteger(v) || v < 0) throw new ArgumentError(`${FN}: seeds must be non-negative safe integers, got ${v}`, 'ERR_INVALID_ARG', FN);
    s[i] = BigInt(v);
  }
  return s;
}

function nativeAugment(): NativeAugment {
  const n = loadNative() as unknown as Partial<NativeAugment>;
  if (typeof n.augmentImages !== 'function') throw new NativeError(`${FN}: this radkit binary was built without nn/augment; rebuild it (npm run build:native)`, 'ERR_NOT_COMPILED', FN);
  return n as NativeAugment;
}

/**
 * Augments images `[N, C, H, W]` (float32/float64, values in [0, 1], CPU or CUDA) on a native worker
 * thread: sample i is transformed as `seeds[i]` decides (resized crop and affine in one
 * `affine_grid` / `grid_sample` pass with zeros outside, then blur, brightness, contrast, clamped to
 * [0, 1]). Same seeds, same output; the input is not changed.
 */
export async function augmentImages(images: Tensor, seeds: ArrayLike<number>, options: ImageAugmentOptions): Promise<Tensor> {
  const config = nativeAugmentConfig(options);
  const n = images.shape[0];
  if (images.shape.length !== 4) throw new ArgumentError(`${FN}: images must be [N, C, H, W], got [${images.shape.join(', ')}]`, 'ERR_SHAPE', FN);
  if (seeds.length !== n) throw new ArgumentError(`${FN}: ${seeds.length} seeds for ${n} images`, 'ERR_SHAPE', FN);
  using seedT = Tensor.from(seedArray(seeds), [n]);
  return Tensor.wrap(await nativeAugment().augmentImages(handleOf(images, 'images', FN), handleOf(seedT, 'seeds', FN), config));
}

/**
 * `augmentImages` on plain float32 data `[N, C, H, W]` (the loader's form), in place: the result is
 * written back into `data` (do not read or write it until the promise settles).
 */
export async function augmentInPlace(data: Float32Array, shape: [number, number, number, number], seeds: ArrayLike<number>, options: ImageAugmentOptions): Promise<void> {
  const config = nativeAugmentConfig(options);
  if (seeds.length !== shape[0]) throw new ArgumentError(`${FN}: ${seeds.length} seeds for ${shape[0]} images`, 'ERR_SHAPE', FN);
  using seedT = Tensor.from(seedArray(seeds), [seeds.length]);
  await nativeAugment().augmentImagesInto(data, shape, handleOf(seedT, 'seeds', FN), config);
}

/** The seed of one image of one study in one epoch of a run (independent of order and workers). */
export function imageSeed(runSeed: number, epoch: number, id: string, view: number, copy = 0): number {
  return hashSeed('radkit-augment-image', runSeed, epoch, id, view, copy);
}

/** Splits a report into sentences (after '.', '!' or '?' followed by space). */
export function sentences(report: string): string[] {
  return report
    .split(/(?<=[.!?])\s+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/**
 * MedRAT's text augmentation: with probability `p` the report's sentences in a random order, seeded
 * by `(runSeed, epoch, id)`; otherwise the report unchanged.
 */
export function shuffleSentences(report: string, p: number, runSeed: number, epoch: number, id: string, copy = 0): string {
  if (!(p > 0)) return report;
  const r = new Rng(hashSeed('radkit-augment-text', runSeed, epoch, id, copy));
  if (!r.chance(p)) return report;
  const s = sentences(report);
  if (s.length < 2) return report;
  return r.shuffle(s).join(' ');
}
