/**
 * The VQ image tokenizer of AdaMatch-Cyclic (seed 000 section 3.2; native/nn/vq.h): a VQ-VAE in
 * taming-transformers' parameter layout, trained from scratch with L1 reconstruction, codebook and
 * commitment terms (beta 0.25), an EMA codebook with dead-code restart and an optional PatchGAN
 * hinge loss. Without perceptual (LPIPS/VGG) weights it is a "VQ-VAE (+PatchGAN)", not the paper's
 * VQ-GAN; `loadTamingWeights` takes a user's VQ-GAN weights by name (`--vq FILE`).
 *
 * Presets: 'small' (CPU: 128 px, f16 -> 8 x 8 = 64 codes per image, 256 codes x 64 dims, channels
 * 32-128) and 'paper' (taming's f16/1024 configuration at 256 px, three colour channels).
 */
import { ArgumentError } from '../errors.js';
import { loadSharp } from '../data/image.js';
import { readSafetensors } from '../io/safetensors.js';
import { psnr, ssim } from '../metrics/image.js';
import { RadkitError } from '../errors.js';
import { splitLoader } from '../train/evaluate.js';
import type { Tensor } from '../tensor.js';
import type { NativeConfig } from '../../typings/model.js';
import { Model, TensorBatch, type LoadReport } from './model.js';
import { createOptions, registerModelKind, type Evaluation, type EvaluationOptions } from './registry.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';
import type { R2GenDataset } from '../data/r2gen.js';

export type VqPreset = 'small' | 'paper';

const PRESETS: Record<VqPreset, NativeConfig> = {
  small: { resolution: 128, inChannels: 1, outChannels: 1, ch: 32, chMult: [1, 1, 2, 2, 4], numResBlocks: 1, attnResolutions: [8], zChannels: 64, embedDim: 64, nEmbed: 256 },
  // taming-transformers' f16 VQ-GAN with 1,024 codes (ImageNet/MIMIC configurations of that size).
  paper: { resolution: 256, inChannels: 3, outChannels: 3, ch: 128, chMult: [1, 1, 2, 2, 4], numResBlocks: 2, attnResolutions: [16], zChannels: 256, embedDim: 256, nEmbed: 1024 },
};

/** Every configuration key of `vqgan` with its default, for a preset. */
export function vqganConfigDefaults(preset: string): NativeConfig {
  const p = PRESETS[preset as VqPreset];
  if (!p) throw new ArgumentError(`vqgan: preset must be 'small' or 'paper', got '${String(preset)}'`, 'ERR_INVALID_ARG', 'vqgan');
  return {
    ...p,
    normGroups: 32,
    dropout: 0,
    beta: 0.25, // commitment weight (paper of VQ-VAE / taming)
    ema: 1, // EMA codebook (decay emaDecay) instead of the codebook loss term
    emaDecay: 0.99,
    emaEps: 1e-5,
    deadCodeThreshold: 1, // EMA count under which a code restarts at a batch vector (0: never)
    gan: 0, // PatchGAN hinge loss (taming's NLayerDiscriminator)
    ganWeight: 0.1, // fixed weight of the generator's hinge term (taming adapts it; not here)
    ganStart: 0.3, // fraction of the run before the discriminator joins
    discChannels: 32,
    discLayers: 3,
    seed: 0,
  };
}

export interface VqganOptions {
  preset?: VqPreset;
  seed?: number;
  /** Any key of `vqganConfigDefaults` (e.g. nEmbed, ema, gan). */
  [key: string]: unknown;
}

export function vqganConfig(o: VqganOptions = {}): NativeConfig {
  const { preset, ...rest } = o;
  const cfg = vqganConfigDefaults(preset ?? 'small');
  for (const [k, v] of Object.entries(rest)) {
    if (v === undefined) continue;
    if (!(k in cfg)) throw new ArgumentError(`vqgan: unknown option '${k}' (configuration keys: ${Object.keys(cfg).join(', ')})`, 'ERR_INVALID_ARG', 'vqgan');
    cfg[k] = typeof v === 'boolean' ? Number(v) : (v as number | string | number[]);
  }
  return cfg;
}

/** Creates a VQ image tokenizer (dispose it when done). */
export function vqgan(options: VqganOptions = {}): Model {
  return Model.create('vqgan', vqganConfig(options), createOptions(VQGAN));
}

/**
 * Loads taming-transformers VQ-GAN weights (.safetensors; a `state_dict` saved with
 * safetensors.torch.save_file) by name. The training-loss tensors of a taming checkpoint
 * (`loss.perceptual_loss.*`, and `loss.discriminator.*` when this model has no discriminator) are
 * not model weights and are left out; the EMA statistics (`quantize.cluster_size`,
 * `quantize.embed_avg`) are radkit's own and keep their values. Any other missing or unknown name,
 * or a shape that does not fit, is an error naming it, with nothing loaded.
 */
export function loadTamingWeights(model: Model, file: string): LoadReport {
  const { tensors } = readSafetensors(file);
  try {
    const shapes = model.tensorShapes();
    const kept: Record<string, Tensor> = {};
    const ignored: string[] = [];
    for (const [name, t] of Object.entries(tensors)) {
      if (name.startsWith('loss.') && !(name in shapes)) ignored.push(name);
      else kept[name] = t;
    }
    const own = new Set(['quantize.cluster_size', 'quantize.embed_avg']);
    const missing = Object.keys(shapes).filter((n) => !(n in kept) && !own.has(n) && !n.startsWith('loss.'));
    const unknown = Object.keys(kept).filter((n) => !(n in shapes));
    if (missing.length || unknown.length)
      throw new ArgumentError(
        `vqgan: ${file} is not a VQ model of this configuration: ${missing.length ? `missing ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}` : ''}${missing.length && unknown.length ? '; ' : ''}${unknown.length ? `unknown ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ''}` : ''}`,
        'ERR_INVALID_ARG',
        'loadTamingWeights',
      );
    const report = model.loadTensors('', kept);
    // The EMA averages restart from the loaded codebook.
    if ('quantize.embed_avg' in shapes && kept['quantize.embedding.weight'] && !kept['quantize.embed_avg']) model.loadTensors('quantize.', { embed_avg: kept['quantize.embedding.weight'] });
    return { ...report, unexpected: [...report.unexpected, ...ignored] };
  } finally {
    Object.values(tensors).forEach((t) => t.dispose());
  }
}

export interface VqCodes {
  /** Codes [B, V, h, w] row-major. */
  codes: Int32Array;
  shape: [number, number, number, number];
  /** Reconstructions in [0, 1], [B, V, 1, H, W]. */
  reconstructions: Float32Array;
}

/** The codes (and reconstructions) of a batch of images in [0, 1] ([B, V, 1, H, W]). */
export async function encodeImages(model: Model, images: { data: Float32Array; shape: number[] }): Promise<VqCodes> {
  const tb = new TensorBatch({ images: { data: images.data, shape: images.shape as [number, number, 1, number, number] } });
  let enc: Record<string, Tensor> = {};
  try {
    enc = await model.encode(tb);
    return {
      codes: Int32Array.from(enc.codes.toArray() as BigInt64Array, Number),
      shape: enc.codes.shape as [number, number, number, number],
      reconstructions: enc.reconstructions.toArray() as Float32Array,
    };
  } finally {
    tb.dispose();
    Object.values(enc).forEach((t) => t.dispose());
  }
}

/** Grey [0, 1] pixels (H x W) -> PNG bytes (sharp). */
export async function greyPng(data: Float32Array, H: number, W: number): Promise<Buffer> {
  const bytes = Buffer.alloc(H * W);
  for (let i = 0; i < H * W; i++) bytes[i] = Math.max(0, Math.min(255, Math.round(data[i] * 255)));
  return loadSharp()(bytes, { raw: { width: W, height: H, channels: 1 } }).toColourspace('b-w').png().toBuffer();
}

/** Images in [0, 1] ([B, 1, 1, H, W]) decoded from codes [B, h, w]. */
export async function decodeCodes(model: Model, codes: ArrayLike<number>, shape: [number, number, number]): Promise<{ data: Float32Array; shape: number[] }> {
  const tb = new TensorBatch({}, { extras: { codes: { data: BigInt64Array.from(Array.from(codes, (c) => BigInt(c))), shape, dtype: 'int64' } } });
  let enc: Record<string, Tensor> = {};
  try {
    enc = await model.encode(tb);
    return { data: enc.images.toArray() as Float32Array, shape: enc.images.shape };
  } finally {
    tb.dispose();
    Object.values(enc).forEach((t) => t.dispose());
  }
}

/**
 * Reconstruction quality on a split: mean per-image PSNR and SSIM of the reconstructions, their
 * mean L1, the PSNR of the trivial baseline (the split's mean image for every image), and the
 * codebook's use: perplexity exp(H) of the code histogram over the split and the fraction of codes
 * used at least once.
 */
export async function vqEvaluation(model: Model, tokenizer: ReportTokenizer, dataset: R2GenDataset, o: EvaluationOptions): Promise<Evaluation> {
  const loader = splitLoader(dataset, o, tokenizer, o.batchSize ?? 16);
  const nEmbed = Number(model.config.nEmbed);
  const hist = new Float64Array(nEmbed);
  let psnrSum = 0, ssimSum = 0, l1Sum = 0, n = 0;
  const originals: Float32Array[] = [];
  let H = 0, W = 0;
  for await (const batch of loader) {
    if (o.signal?.aborted) throw new RadkitError('vqgan evaluation: aborted', 'ERR_ABORTED', 'evaluate', { cause: o.signal.reason });
    const [B, V, , h, w] = batch.images.shape;
    [H, W] = [h, w];
    const r = await encodeImages(model, batch.images);
    for (const c of r.codes) hist[c]++;
    const P = h * w;
    for (let i = 0; i < B * V; i++) {
      const x = batch.images.data.subarray(i * P, (i + 1) * P), y = r.reconstructions.subarray(i * P, (i + 1) * P);
      psnrSum += psnr(x, y);
      ssimSum += ssim(x, y, h, w);
      let l1 = 0;
      for (let k = 0; k < P; k++) l1 += Math.abs(x[k] - y[k]);
      l1Sum += l1 / P;
      originals.push(Float32Array.from(x));
      n++;
    }
  }
  const mean = new Float64Array(H * W);
  for (const x of originals) for (let k = 0; k < mean.length; k++) mean[k] += x[k] / originals.length;
  let basePsnr = 0;
  for (const x of originals) basePsnr += psnr(x, mean);
  const total = hist.reduce((s, c) => s + c, 0);
  let entropy = 0, used = 0;
  for (const c of hist)
    if (c > 0) {
      used++;
      entropy -= (c / total) * Math.log(c / total);
    }
  const headline = { psnr: psnrSum / Math.max(1, n), ssim: ssimSum / Math.max(1, n), l1: l1Sum / Math.max(1, n), meanImagePsnr: basePsnr / Math.max(1, n), perplexity: Math.exp(entropy), codesUsed: used / nEmbed, n };
  return { headline, record: { nEmbed, imageSize: [H, W] } };
}

export const VQGAN = registerModelKind({
  name: 'vqgan',
  summary: "VQ image tokenizer in taming-transformers' layout (L1 + codebook/commitment, EMA codebook, optional PatchGAN; seed 000)",
  task: 'pretraining',
  presets: ['small', 'paper'],
  configDefaults: vqganConfigDefaults,
  create: (c) => {
    const f = c.flags;
    const model = vqgan({
      preset: c.preset as VqPreset,
      seed: c.seed,
      ...(c.imageSize ? { resolution: c.imageSize } : {}),
      ...(f.codes !== undefined ? { nEmbed: f.codes } : {}),
      ...(f.gan ? { gan: 1 } : {}),
      ...(f['no-ema'] ? { ema: 0 } : {}),
      ...(f['dead-code-threshold'] !== undefined ? { deadCodeThreshold: f['dead-code-threshold'] } : {}),
    });
    if (typeof f.vq === 'string') {
      try {
        loadTamingWeights(model, f.vq);
      } catch (err) {
        model.dispose();
        throw err;
      }
    }
    return model;
  },
  recipe: (c) => ({ optimizer: 'adam', lr: 4.5e-4, visualLr: 4.5e-4, optimizerOptions: { beta1: 0.5, beta2: 0.9 }, schedule: { kind: 'cosine', warmupFraction: 0.02 }, clipNorm: 1, batchSize: c.batchSize ?? 16, initBatches: 0 }),
  metric: 'psnr',
  views: () => 1,
  evaluate: vqEvaluation,
  trainFlags: {
    codes: { type: 'integer', min: 2, max: 65536, arg: 'N', help: 'codebook size (small preset: 256)' },
    gan: { type: 'boolean', help: 'add the PatchGAN hinge loss (taming NLayerDiscriminator)' },
    'no-ema': { type: 'boolean', help: 'learn the codebook by its loss term instead of EMA updates' },
    'dead-code-threshold': { type: 'number', min: 0, help: 'EMA count under which a code restarts at a batch vector (0: never)', default: 1 },
    vq: { type: 'string', arg: 'FILE', help: 'taming-transformers VQ-GAN weights (.safetensors) to start from' },
  },
});
