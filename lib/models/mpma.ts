/**
 * MPMA (seed 004): multi-task paired masking with alignment. `mpma` pre-trains a ViT with masked
 * image modelling (MAE, 75%), masked report modelling through memory-augmented cross-modal fusion
 * (MA-CMF, 50% of the words) and global + local image-report alignment (GLA), eq. 10 with the
 * Gaussian ramp of lambda_GLA. The pre-trained `image.*` weights then start `mpma-rg` (report
 * generation, lib/models/mpma-rg.ts) or `mpma-probe` (linear probe, lib/models/mpma-probe.ts).
 * Every choice the paper leaves open is a configuration key, recorded in checkpoints (see the
 * README section "MPMA" and native/models/mpma.cc).
 */
import { ArgumentError } from '../errors.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';
import { WordPieceTokenizer } from '../text/wordpiece.js';
import { readSafetensors } from '../io/safetensors.js';
import { Tensor } from '../tensor.js';
import type { NativeConfig } from '../../typings/model.js';
import { bertOrReportTokenizer, bertTextOptions, loadTextWeights } from './adamatch.js';
import { Model } from './model.js';
import { createOptions, registerModelKind } from './registry.js';
import { mpmaEvaluation } from './mpma-eval.js';

export type MpmaPreset = 'small' | 'paper';

/** The ViT shared by the three MPMA kinds (same keys, so `image.*` moves between runs). */
export const MPMA_VIT_PRESETS = {
  small: { imageSize: 128, patch: 16, vitDim: 192, vitLayers: 6, vitHeads: 3, vitIntermediate: 768, vitActivation: 'gelu', vitPreLayerNorm: 1, vitPixelMean: 0.449, vitPixelStd: 0.269, vitPatchBias: 0, vitPositionInit: 'sincos' },
  paper: { imageSize: 224, patch: 16, vitDim: 768, vitLayers: 12, vitHeads: 12, vitIntermediate: 3072, vitActivation: 'quick_gelu', vitPreLayerNorm: 1, vitPixelMean: 0.449, vitPixelStd: 0.269, vitPatchBias: 0, vitPositionInit: 'sincos' },
} as const;

const PRESETS = {
  small: { maeDim: 128, maeLayers: 2, maeHeads: 4, memorySlots: 16, mlmLayers: 2, mlmHeads: 4, textHidden: 128, textLayers: 2, textHeads: 4, textIntermediate: 512 },
  paper: { maeDim: 512, maeLayers: 8, maeHeads: 16, memorySlots: 40, mlmLayers: 4, mlmHeads: 12, textHidden: 768, textLayers: 12, textHeads: 12, textIntermediate: 3072 },
} as const;

/** MPMA pre-training options: a tokenizer, a preset, and any configuration key over the preset. */
export interface MpmaOptions {
  tokenizer: ReportTokenizer;
  preset?: MpmaPreset;
  seed?: number;
  /** Hugging Face BERT / CXR-BERT weights (.safetensors) for the GLA text encoder (with the matching WordPieceTokenizer and text sizes). */
  textWeights?: string;
  /** Hugging Face CLIP weights (.safetensors, `vision_model.*`) for the ViT (paper preset: CLIP-ViT-B/16 at 224). */
  visionWeights?: string;
  /** Any key of `configDefaults` (e.g. lambdaIL, lambdaGla, ramp, fusion, memorySlots). */
  [key: string]: unknown;
}

export function mpmaVitDefaults(preset: string, kind: string): Record<string, number | string> {
  const v = MPMA_VIT_PRESETS[preset as MpmaPreset];
  if (!v) throw new ArgumentError(`${kind}: preset must be 'small' or 'paper', got '${String(preset)}'`, 'ERR_INVALID_ARG', kind);
  return { ...v };
}

/** Every configuration key `mpma` reads with its default, for a preset (the tokenizer adds vocabulary keys). */
function configDefaults(preset: string): NativeConfig {
  return {
    ...mpmaVitDefaults(preset, 'mpma'),
    ...PRESETS[preset as MpmaPreset],
    maskRatio: 0.75, // MIM: 75% of the patches (paper)
    normPixLoss: 0, // MAE's option; off: the diagnostics compare pixels with the mean image
    mlmRatio: 0.5, // MLM: 50% of the words (paper), BERT 80/10/10
    mlmVisual: 'full', // MA-CMF reads the unmasked image pass (Fig. 2); 'visible': I_U of eq. 5
    fusion: 'cmf', // 'cmf' (MA-CMF with memorySlots; 0 slots = the paper's CMF), 'gap', 'gmp' (Table V)
    cmfResidual: 1, // decision: residual pre-norm MCA sublayers (0: eqs. 3-4 as printed)
    mlmDropout: 0.1,
    lambdaMim: 1,
    lambdaIL: 5, // Table VI default
    lambdaGla: 1,
    lambdaGl: 1, // Table VI default
    ramp: 'gaussian', // lambda_GLA = exp(-5 (1 - t/T)^2) for t < T, then 1; 'constant': 1 from step 0
    rampFraction: 0.3, // T = 30% of the run's steps (the paper's T epochs is unstated)
    tau1: 0.07, // learned (CLIP-style log temperature, clamped to [0.01, 1])
    learnTau1: 1,
    tau2: 0.25,
    tau3: 0.1,
    globalSimilarity: 'mean', // eq. 6 on M x D matrices: cosine of pooled rows ('frobenius': Frobenius cosine)
    localAttention: 'cosine', // eq. 7 on cosines ('dot': raw dot products as printed)
    normalizeLocal: 1, // eq. 8 on L2-normalised g_j and t_j
    textDropout: 0.1,
    seed: 0,
  };
}

/** The native configuration for MPMA options (recorded in checkpoints). */
export function mpmaConfig(o: MpmaOptions): NativeConfig {
  if (!o || !o.tokenizer) throw new ArgumentError('mpma: options.tokenizer is required', 'ERR_INVALID_ARG', 'mpma');
  const { tokenizer, preset, textWeights: _t, visionWeights: _v, ...rest } = o;
  const cfg = configDefaults(preset ?? 'small');
  for (const [k, v] of Object.entries(rest)) {
    if (v === undefined) continue;
    if (!(k in cfg) && !['textVocabSize', 'textMaxPositions', 'maxPositions', 'vitDropout', 'maeDim'].includes(k))
      throw new ArgumentError(`mpma: unknown option '${k}' (configuration keys: ${Object.keys(cfg).join(', ')})`, 'ERR_INVALID_ARG', 'mpma');
    cfg[k] = typeof v === 'boolean' ? Number(v) : (v as number | string | number[]);
  }
  Object.assign(cfg, tokenizerKeys(tokenizer));
  cfg.maxPositions = Math.max(512, tokenizer.maxLength + 2);
  if (cfg.textMaxPositions === undefined) cfg.textMaxPositions = Math.max(512, tokenizer.maxLength + 2);
  return cfg;
}

/**
 * Vocabulary keys: radkit's Tokenizer has ids 0 (BOS = EOS = PAD) .. vocabSize, and MPMA adds a
 * [MASK] row after them; a WordPiece vocabulary has its own [MASK], [CLS], [SEP] and [PAD].
 */
function tokenizerKeys(t: ReportTokenizer): NativeConfig {
  if (t instanceof WordPieceTokenizer) {
    const maskId = t.vocab.indexOf('[MASK]');
    if (maskId < 0) throw new ArgumentError('mpma: the WordPiece vocabulary has no [MASK] token', 'ERR_INVALID_ARG', 'mpma');
    const special = [t.clsId, t.sepId, t.padId];
    // Random replacements come from the ids after the special block ([MASK] and below are BERT's reserved rows).
    return { vocabSize: t.vocabSize, maskId, randomLow: Math.max(...special, maskId) + 1, randomHigh: t.vocabSize, specialIds: special, padId: t.padId, sharedSpecial: 0, textSlots: t.maxLength };
  }
  return { vocabSize: t.vocabSize + 2, maskId: t.vocabSize + 1, randomLow: 1, randomHigh: t.vocabSize + 1, specialIds: [0], padId: 0, sharedSpecial: 1, textSlots: t.maxLength };
}

/**
 * Loads Hugging Face CLIP vision weights into a model's ViT (`image.*`): `vision_model.` is dropped,
 * the RGB patch projection is summed over its colour channels for grey images, and text-tower or
 * projection tensors are reported as unexpected. Nothing is written when a shape does not fit.
 */
export function loadVisionWeights(model: Model, file: string): { loaded: number; missing: string[]; unexpected: string[] } {
  const { tensors } = readSafetensors(file);
  const renamed: Record<string, Tensor> = {};
  const made: Tensor[] = [];
  try {
    const shapes = model.tensorShapes();
    for (const [name, t] of Object.entries(tensors)) {
      if (!name.startsWith('vision_model.')) continue;
      const n = name.slice('vision_model.'.length);
      const want = shapes[`image.${n}`];
      if (n === 'embeddings.patch_embedding.weight' && want && t.shape[1] === 3 && want[1] === 1) {
        // Grey input: the sum over R, G, B of the filters sees a grey image as CLIP sees it in colour.
        const a = t.to('float32').toArray() as Float32Array;
        const [o, , p, q] = t.shape;
        const out = new Float32Array(o * p * q);
        for (let i = 0; i < o; i++) for (let c = 0; c < 3; c++) for (let k = 0; k < p * q; k++) out[i * p * q + k] += a[(i * 3 + c) * p * q + k];
        const g = Tensor.from(out, [o, 1, p, q]);
        made.push(g);
        renamed[n] = g;
      } else {
        renamed[n] = t;
      }
    }
    const r = model.loadTensors('image.', renamed);
    if (r.loaded === 0) throw new ArgumentError(`${model.kind}: ${file} has no CLIP vision tensor (vision_model.embeddings.patch_embedding.weight, ...)`, 'ERR_INVALID_ARG', model.kind);
    return { loaded: r.loaded, missing: r.missing, unexpected: [...r.unexpected, ...Object.keys(tensors).filter((k) => !k.startsWith('vision_model.'))] };
  } finally {
    Object.values(tensors).forEach((t) => t.dispose());
    made.forEach((t) => t.dispose());
  }
}

/** Creates an MPMA pre-training model in native memory (dispose it when done). */
export function mpma(options: MpmaOptions): Model {
  const model = Model.create('mpma', mpmaConfig(options), createOptions(MPMA));
  try {
    if (options.textWeights) loadTextWeights(model, options.textWeights);
    if (options.visionWeights) loadVisionWeights(model, options.visionWeights);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

/** Pre-training's optimiser (seed 004 section IV-C): AdamW 2e-4, weight decay 0.05, one rate for all. */
export const MPMA_PRETRAIN_RECIPE = {
  optimizer: 'adamw' as const,
  lr: 2e-4,
  visualLr: 2e-4,
  weightDecay: 0.05,
  schedule: { kind: 'cosine' as const, warmupFraction: 0.05 },
  clipNorm: 1,
  batchSize: 32,
  initBatches: 0,
};

export const MPMA = registerModelKind({
  name: 'mpma',
  summary: 'MPMA pre-training: MIM + MLM with MA-CMF + global-local alignment, Gaussian ramp (seed 004)',
  task: 'pretraining',
  presets: ['small', 'paper'],
  configDefaults,
  tokenizer: bertOrReportTokenizer,
  create: (c) => {
    const text = typeof c.flags.bert === 'string' ? bertTextOptions(c.flags.bert) : null;
    const f = c.flags;
    return mpma({
      tokenizer: c.tokenizer,
      preset: c.preset as MpmaPreset,
      seed: c.seed,
      ...(c.imageSize ? { imageSize: c.imageSize } : {}),
      ...(text ? { textWeights: text.textWeights, textHidden: text.textHidden, textLayers: text.textLayers, textHeads: text.textHeads, textIntermediate: text.textIntermediate, textMaxPositions: text.textMaxPositions } : {}),
      ...(typeof f.clip === 'string' ? { visionWeights: f.clip } : {}),
      ...(f['lambda-il'] !== undefined ? { lambdaIL: f['lambda-il'] } : {}),
      ...(f['lambda-gla'] !== undefined ? { lambdaGla: f['lambda-gla'] } : {}),
      ...(f['lambda-gl'] !== undefined ? { lambdaGl: f['lambda-gl'] } : {}),
      ...(f.ramp !== undefined ? { ramp: f.ramp } : {}),
      ...(f.fusion !== undefined ? { fusion: f.fusion } : {}),
      ...(f['memory-slots'] !== undefined ? { memorySlots: f['memory-slots'] } : {}),
      ...(f['norm-pix'] ? { normPixLoss: 1 } : {}),
    });
  },
  recipe: (c) => ({ ...MPMA_PRETRAIN_RECIPE, ...(c.batchSize ? { batchSize: c.batchSize } : {}) }),
  metric: 'negValLoss',
  views: () => 1,
  evaluate: mpmaEvaluation,
  trainFlags: {
    'lambda-il': { type: 'number', min: 0, help: 'weight of the MLM loss (eq. 10; 0 = no MLM)', default: 5 },
    'lambda-gla': { type: 'number', min: 0, help: 'weight of GLA under the ramp (0 = no GLA)', default: 1 },
    'lambda-gl': { type: 'number', min: 0, help: 'weight of the local alignment loss inside GLA', default: 1 },
    ramp: { type: 'string', choices: ['gaussian', 'constant'], default: 'gaussian', help: 'lambda_GLA schedule' },
    fusion: { type: 'string', choices: ['cmf', 'gap', 'gmp'], default: 'cmf', help: 'MLM fusion: MA-CMF (cmf) or pooled image (gap/gmp, Table V)' },
    'memory-slots': { type: 'integer', min: 0, max: 4096, help: 'MA-CMF memory slots per modality (0 = CMF)', default: 16 },
    'norm-pix': { type: 'boolean', help: 'MIM on per-patch normalised pixels (MAE normPixLoss)' },
    bert: { type: 'string', arg: 'DIR', help: 'Hugging Face BERT / CXR-BERT folder for the GLA text encoder (and its WordPiece tokenizer)' },
    clip: { type: 'string', arg: 'FILE', help: 'Hugging Face CLIP weights (.safetensors) for the ViT' },
  },
});
