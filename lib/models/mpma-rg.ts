/**
 * MPMA fine-tuned for report generation (seed 004 section IV-C): the ViT of `mpma` (same `image.*`
 * names and shapes, so `radkit train --model mpma-rg --init RUN:image.` copies the pre-trained
 * encoder) and an R2Gen-style encoder-decoder transformer over the tokens of every view (the paper
 * leaves the generation head unstated). AdamW with the pre-trained part at its own rate. The recipe
 * is 1e-3 for the task layers and 5e-4 for the ViT with a cosine schedule (5% warm-up): at a CPU
 * budget the generator starts from scratch and the small ViT is pre-trained briefly, far from
 * converged (the first recipe, 2e-4 / 1e-4 with step decay 0.8 per epoch, left the decoder near a
 * uniform guess after 95 steps: cross-entropy 4.9 of ln V = 5.3, BLEU-4 0). The paper's rates for a
 * converged encoder, 2e-4 / 5e-6, are `--lr 2e-4 --visual-lr 5e-6`.
 */
import { ArgumentError } from '../errors.js';
import { generationEvaluation } from '../train/evaluate.js';
import { Tokenizer } from '../text/tokenizer.js';
import type { NativeConfig } from '../../typings/model.js';
import { Model } from './model.js';
import { loadVisionWeights, mpmaVitDefaults, type MpmaPreset } from './mpma.js';
import { createOptions, registerModelKind } from './registry.js';

const HEADS = {
  small: { dModel: 128, heads: 4, dFF: 512, encoderLayers: 2, decoderLayers: 2 },
  paper: { dModel: 512, heads: 8, dFF: 512, encoderLayers: 3, decoderLayers: 3 },
} as const;

function configDefaults(preset: string): NativeConfig {
  // lambdaClass: not the paper's; > 0 adds an auxiliary label loss on the ViT's pooled patch tokens.
  return { ...mpmaVitDefaults(preset, 'mpma-rg'), ...HEADS[preset as MpmaPreset], dropout: 0.1, sourcePositions: 0, lambdaClass: 0, seed: 0 };
}

export interface MpmaRgOptions {
  tokenizer: Tokenizer;
  preset?: MpmaPreset;
  seed?: number;
  /** Hugging Face CLIP weights (.safetensors) for the ViT (instead of, or before, --init). */
  visionWeights?: string;
  [key: string]: unknown;
}

export function mpmaRgConfig(o: MpmaRgOptions): NativeConfig {
  if (!o || !(o.tokenizer instanceof Tokenizer)) throw new ArgumentError("mpma-rg: options.tokenizer must be radkit's Tokenizer (BOS = EOS = PAD = 0)", 'ERR_INVALID_ARG', 'mpma-rg');
  const { tokenizer, preset, visionWeights: _v, ...rest } = o;
  const cfg = configDefaults(preset ?? 'small');
  for (const [k, v] of Object.entries(rest)) {
    if (v === undefined) continue;
    if (!(k in cfg)) throw new ArgumentError(`mpma-rg: unknown option '${k}' (configuration keys: ${Object.keys(cfg).join(', ')})`, 'ERR_INVALID_ARG', 'mpma-rg');
    cfg[k] = v as number | string;
  }
  cfg.vocabSize = tokenizer.vocabSize + 1;
  cfg.maxPositions = Math.max(512, tokenizer.maxLength + 2);
  return cfg;
}

/** Creates an `mpma-rg` report generator (dispose it when done). */
export function mpmaRg(options: MpmaRgOptions): Model {
  const model = Model.create('mpma-rg', mpmaRgConfig(options), createOptions(MPMA_RG));
  if (options.visionWeights) {
    try {
      loadVisionWeights(model, options.visionWeights);
    } catch (err) {
      model.dispose();
      throw err;
    }
  }
  return model;
}

export const MPMA_RG = registerModelKind({
  name: 'mpma-rg',
  summary: 'MPMA report generation: pre-trained ViT + encoder-decoder (seed 004; --init RUN:image.)',
  task: 'generation',
  presets: ['small', 'paper'],
  configDefaults,
  create: (c) => {
    if (!(c.tokenizer instanceof Tokenizer)) throw new ArgumentError(`mpma-rg: decodes with radkit's Tokenizer, not ${c.tokenizer.constructor.name}`, 'ERR_INVALID_ARG', 'mpma-rg');
    return mpmaRg({ tokenizer: c.tokenizer, preset: c.preset as MpmaPreset, seed: c.seed, ...(c.imageSize ? { imageSize: c.imageSize } : {}), ...(typeof c.flags.clip === 'string' ? { visionWeights: c.flags.clip } : {}) });
  },
  recipe: () => ({ optimizer: 'adamw', lr: 1e-3, visualLr: 5e-4, weightDecay: 0.01, schedule: { kind: 'cosine', warmupFraction: 0.05 }, clipNorm: 1, batchSize: 16, initBatches: 0 }),
  metric: 'bleu4',
  views: (ds) => (ds.style === 'iu' ? 2 : 1),
  generate: { method: 'beam', beams: 3, maxLength: 60, noRepeatNgram: 3 },
  evaluate: generationEvaluation,
  trainFlags: {
    clip: { type: 'string', arg: 'FILE', help: 'Hugging Face CLIP weights (.safetensors) for the ViT' },
  },
});
