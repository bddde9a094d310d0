import { Model } from './model.js';
import type { Tokenizer } from '../text/tokenizer.js';
import { ArgumentError } from '../errors.js';

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
  labelSource?: 'oracle' | 'predicted' | 'none';
  seed?: number;
  /** ImageNet-style ResNet weights (.safetensors, torchvision names: conv1.weight, layer1.0.bn1.weight, ...) for the visual extractor. */
  visualWeights?: string;
}

const PRESETS = {
  paper: { dModel: 512, heads: 8, dFF: 512, encoderLayers: 3, decoderLayers: 3, resnetWidths: [64, 64, 128, 256, 512], resnetBlocks: [2, 2, 2, 2] },
  small: { dModel: 128, heads: 8, dFF: 256, encoderLayers: 2, decoderLayers: 2, resnetWidths: [16, 24, 32, 64, 96], resnetBlocks: [1, 1, 1, 1] },
} as const;

/** The native configuration for XProNet options (recorded in checkpoints). */
export function xpronetConfig(o: XProNetOptions): Record<string, number | string | number[]> {
  if (!o || !o.tokenizer) throw new ArgumentError('xpronet: options.tokenizer is required', 'ERR_INVALID_ARG', 'xpronet');
  const preset = PRESETS[o.preset ?? 'small'];
  if (!preset) throw new ArgumentError(`xpronet: preset must be 'small' or 'paper', got '${String(o.preset)}'`, 'ERR_INVALID_ARG', 'xpronet');
  const { tokenizer, preset: _p, visualWeights: _w, ...rest } = o;
  const cfg: Record<string, number | string | number[]> = {
    ...preset,
    resnetWidths: [...preset.resnetWidths],
    resnetBlocks: [...preset.resnetBlocks],
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
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) cfg[k] = v as number | string | number[];
  cfg.vocabSize = tokenizer.vocabSize + 1;
  cfg.maxPositions = Math.max(512, tokenizer.maxLength + 2);
  return cfg;
}

/** Creates an XProNet model in native memory (dispose it when done). */
export function xpronet(options: XProNetOptions): Model {
  const model = Model.create('xpronet', xpronetConfig(options));
  if (options.visualWeights) {
    try {
      const r = model.loadPretrained(options.visualWeights, 'visual.');
      if (r.loaded === 0) throw new ArgumentError(`xpronet: ${options.visualWeights} has no tensor named like the ResNet's (conv1.weight, layer1.0.conv1.weight, ...)`, 'ERR_INVALID_ARG', 'xpronet');
    } catch (err) {
      model.dispose();
      throw err;
    }
  }
  return model;
}
