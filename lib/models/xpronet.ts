import { Model, withResNetWeights } from './model.js';
import { Tokenizer } from '../text/tokenizer.js';
import { ArgumentError } from '../errors.js';
import { createOptions, registerModelKind } from './registry.js';
import { generationEvaluation } from '../train/evaluate.js';

/** XProNet configuration (seed 003). `preset: 'paper'` is the published size; `'small'` trains on a CPU. */
export interface XProNetOptions {
  /** The report tokenizer (its vocabulary sizes the decoder). */
  tokenizer: Tokenizer;
  preset?: 'small' | 'paper';
  dModel?: number;
  heads?: number;
  dFF?: number;
  encoderLayers?: number;
  decoderLayers?: number;
  /** ResNet widths: stem then 4 stages; blocks per stage. */
  resnetWidths?: number[];
  resnetBlocks?: number[];
  prototypesPerClass?: number;
  /** gamma: prototypes selected per head. */
  topK?: number;
  /** Improved multi-label contrastive loss: theta (1.5 IU, 1.75 MIMIC) and margin alpha. */
  theta?: number;
  alpha?: number;
  lambdaImage?: number;
  lambdaText?: number;
  lambdaClass?: number;
  dropout?: number;
  /** Which labels select the prototypes in training and, by default, in generation. */
  labelSource?: XProNetLabelSource;
  seed?: number;
  /** ImageNet-style ResNet weights (.safetensors, torchvision names: conv1.weight, layer1.0.bn1.weight, ...) for the visual extractor. */
  visualWeights?: string;
}

export type XProNetLabelSource = 'oracle' | 'predicted' | 'none';

/** XProNet's generation switches (`generate({ systemOptions })`). */
export interface XProNetSystemOptions {
  /** oracle: the batch's labels (needs them); predicted: the model's classifier; none: no prototype mask. Default: the config's. */
  labelSource?: XProNetLabelSource;
  [key: string]: string | number | boolean | undefined;
}

const LABEL_SOURCES = ['oracle', 'predicted', 'none'] as const;

const PRESETS = {
  paper: { dModel: 512, heads: 8, dFF: 512, encoderLayers: 3, decoderLayers: 3, resnetWidths: [64, 64, 128, 256, 512], resnetBlocks: [2, 2, 2, 2] },
  small: { dModel: 128, heads: 8, dFF: 256, encoderLayers: 2, decoderLayers: 2, resnetWidths: [16, 24, 32, 64, 96], resnetBlocks: [1, 1, 1, 1] },
} as const;

/** Every configuration key XProNet reads, with its default, for a preset. */
function configDefaults(preset: string): Record<string, number | string | number[]> {
  const p = PRESETS[preset as keyof typeof PRESETS];
  if (!p) throw new ArgumentError(`xpronet: preset must be 'small' or 'paper', got '${String(preset)}'`, 'ERR_INVALID_ARG', 'xpronet');
  return {
    ...p,
    resnetWidths: [...p.resnetWidths],
    resnetBlocks: [...p.resnetBlocks],
    prototypesPerClass: 20,
    topK: 15,
    theta: 1.5,
    alpha: 0.4,
    lambdaImage: 1,
    lambdaText: 0.1,
    lambdaClass: 1,
    dropout: 0.1,
    labelSource: 'oracle',
    seed: 0,
  };
}

/** The native configuration for XProNet options (recorded in checkpoints). */
export function xpronetConfig(o: XProNetOptions): Record<string, number | string | number[]> {
  if (!o || !o.tokenizer) throw new ArgumentError('xpronet: options.tokenizer is required', 'ERR_INVALID_ARG', 'xpronet');
  const { tokenizer, preset, visualWeights: _w, ...rest } = o;
  const cfg = configDefaults(preset ?? 'small');
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) cfg[k] = v as number | string | number[];
  cfg.vocabSize = tokenizer.vocabSize + 1;
  cfg.maxPositions = Math.max(512, tokenizer.maxLength + 2);
  return cfg;
}

/** Creates an XProNet model in native memory (dispose it when done). */
export function xpronet(options: XProNetOptions): Model {
  return withResNetWeights(Model.create('xpronet', xpronetConfig(options), createOptions(XPRONET)), options.visualWeights, 'visual.');
}

/**
 * XProNet in the registry: generation task, beam 3 with trigram blocking (the paper's decoding),
 * Adam with the visual extractor at half the learning rate and step decay 0.8 per epoch, k-means
 * prototype initialisation from the first training batches, model selection by BLEU-4.
 */
export const XPRONET = registerModelKind({
  name: 'xpronet',
  summary: 'XProNet report generator: cross-modal prototypes (seed 003)',
  task: 'generation',
  presets: ['small', 'paper'],
  configDefaults,
  create: (c) => {
    if (!(c.tokenizer instanceof Tokenizer)) throw new ArgumentError(`xpronet: decodes with radkit's Tokenizer, not ${c.tokenizer.constructor.name}`, 'ERR_INVALID_ARG', 'xpronet');
    return xpronet({ tokenizer: c.tokenizer, preset: c.preset as XProNetOptions['preset'], seed: c.seed, labelSource: c.flags['label-source'] as XProNetLabelSource | undefined });
  },
  recipe: () => ({ optimizer: 'adam', lr: 1e-3, visualLrFactor: 0.5, schedule: { kind: 'step', gamma: 0.8 }, clipNorm: 1, batchSize: 16, initBatches: 8 }),
  metric: 'bleu4',
  // Labels choose the prototypes (labelSource oracle/predicted) and feed the contrastive and
  // classification losses; with labelSource 'none' and those weights at 0 XProNet trains without them.
  needsLabels: (c) => c.labelSource !== 'none' || [c.lambdaImage, c.lambdaText, c.lambdaClass].some((w) => w === undefined || Number(w) > 0),
  views: (ds) => (ds.style === 'iu' ? 2 : 1),
  generate: { method: 'beam', beams: 3, maxLength: 60, noRepeatNgram: 3 },
  evaluate: generationEvaluation,
  trainFlags: {
    'label-source': { type: 'string', choices: LABEL_SOURCES, default: 'oracle', help: 'labels that select prototypes in training' },
  },
  generateFlags: {
    'label-source': { type: 'string', choices: LABEL_SOURCES, default: 'predicted', option: 'labelSource', help: 'labels that select prototypes (new images have none: predicted)' },
  },
});
