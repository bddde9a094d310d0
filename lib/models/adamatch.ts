import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArgumentError } from '../errors.js';
import { readSafetensors } from '../io/safetensors.js';
import type { Tensor } from '../tensor.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';
import { WordPieceTokenizer } from '../text/wordpiece.js';
import { Model } from './model.js';
import { createOptions, registerModelKind, reportTokenizer, type FlagValues } from './registry.js';
import { retrievalEvaluation } from '../align/evaluate.js';
import type { R2GenDataset } from '../data/r2gen.js';

/** AdaMatch configuration (seed 000 section 3.1 and supplementary section 8). */
export interface AdaMatchOptions {
  /** The report tokenizer (radkit's, or a WordPieceTokenizer with `textWeights`); its vocabulary sizes the text encoder. */
  tokenizer: ReportTokenizer;
  /** 'small' trains on a CPU; 'paper' is PVT-medium + a BERT-base-sized text encoder at 256 px. */
  preset?: 'small' | 'paper';
  /** Input side in pixels (position embeddings are sized for it; other sizes are resampled). */
  imageSize?: number;
  /** Per-stage channels, transformer blocks, heads and spatial-reduction ratios (4 entries each). */
  dims?: number[];
  depths?: number[];
  heads?: number[];
  reductions?: number[];
  /**
   * Stage-1 patch embedding: 'linear' (the paper's FC over 4 x 4 patches; the 'paper' preset) or
   * 'conv' (two stride-2 conv + batch-norm + ReLU layers, the 'small' preset): without pretrained
   * weights a linear embedding followed by LayerNorm cannot see a flat region's brightness.
   */
  stem?: 'linear' | 'conv';
  /**
   * Normalisation inside the two projection heads (Linear -> norm -> ReLU -> Linear): 'batch', the
   * paper's batch norm (statistics over image patches and real words; it also centres the pooled
   * features of the classification head), or 'layer' (LayerNorm per row). Both presets use 'batch':
   * untrained encoders give near-identical features for every patch and image, and only batch
   * statistics remove that common part. Checkpoints without the field were made with 'layer'.
   */
  projectionNorm?: 'batch' | 'layer';
  /** AdaPatch in stages 2-4 (true) or fixed patch embedding (false: the paper's Table 5 ablation). */
  adaptive?: boolean;
  /** m: sampled points per side of an adaptive patch. */
  points?: number;
  /** Which stage's patches are aligned with words (1-4). */
  featureStage?: number;
  /** Joint embedding width d. */
  embedDim?: number;
  textHidden?: number;
  textLayers?: number;
  textHeads?: number;
  textIntermediate?: number;
  textMaxPositions?: number;
  /**
   * Weight of a disease-classification head on the pooled patch features (multi-label BCE on the
   * CheXpert labels), trained alongside the alignment loss. The paper pre-trains its image encoder
   * on this task; without such weights it is what lets a small encoder find the findings. Needs
   * labels in the batches. 'small' preset: 1; 'paper' preset: 0 (bring pretrained weights).
   */
  classWeight?: number;
  /** Contrastive temperature tau (initial value when learned). */
  temperature?: number;
  learnTemperature?: boolean;
  dropout?: number;
  textDropout?: number;
  seed?: number;
  /** Hugging Face BERT weights (.safetensors) for the text encoder; use the matching WordPieceTokenizer and text sizes. */
  textWeights?: string;
}

const PRESETS = {
  small: { stem: 'conv', projectionNorm: 'batch', classWeight: 1, imageSize: 128, dims: [32, 64, 128, 256], depths: [1, 1, 2, 1], heads: [1, 2, 4, 8], reductions: [8, 4, 2, 1], textHidden: 128, textLayers: 2, textHeads: 4, textIntermediate: 512 },
  paper: { stem: 'linear', projectionNorm: 'batch', classWeight: 0, imageSize: 256, dims: [64, 128, 320, 512], depths: [3, 4, 18, 3], heads: [1, 2, 5, 8], reductions: [8, 4, 2, 1], textHidden: 768, textLayers: 12, textHeads: 12, textIntermediate: 3072 },
} as const;

/** Every configuration key AdaMatch reads with its default, for a preset (vocabulary sizes come from the tokenizer). */
function configDefaults(preset: string): Record<string, number | string | number[]> {
  const p = PRESETS[preset as keyof typeof PRESETS];
  if (!p) throw new ArgumentError(`adamatch: preset must be 'small' or 'paper', got '${String(preset)}'`, 'ERR_INVALID_ARG', 'adamatch');
  return {
    ...p,
    dims: [...p.dims],
    depths: [...p.depths],
    heads: [...p.heads],
    reductions: [...p.reductions],
    featureStage: 3,
    points: 3,
    embedDim: 256,
    temperature: 0.07,
    adaptive: 1,
    learnTemperature: 1,
    seed: 0,
  };
}

/** The native configuration for AdaMatch options (recorded in checkpoints). */
export function adamatchConfig(o: AdaMatchOptions): Record<string, number | string | number[]> {
  if (!o || !o.tokenizer) throw new ArgumentError('adamatch: options.tokenizer is required', 'ERR_INVALID_ARG', 'adamatch');
  const { tokenizer, preset, textWeights: _w, adaptive, learnTemperature, ...rest } = o;
  const cfg = configDefaults(preset ?? 'small');
  if (adaptive === false) cfg.adaptive = 0;
  if (learnTemperature === false) cfg.learnTemperature = 0;
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) cfg[k] = v as number | string | number[];
  // radkit's Tokenizer leaves id 0 (BOS/EOS/PAD) out of vocabSize; a WordPiece vocabulary counts every row.
  cfg.vocabSize = tokenizer instanceof WordPieceTokenizer ? tokenizer.vocabSize : tokenizer.vocabSize + 1;
  cfg.textMaxPositions = o.textMaxPositions ?? Math.max(512, tokenizer.maxLength + 2);
  cfg.padId = tokenizer instanceof WordPieceTokenizer ? tokenizer.padId : 0;
  return cfg;
}

/**
 * Loads Hugging Face BERT weights (e.g. BioClinicalBERT exported to safetensors) into the text
 * encoder: `bert.` prefixes are dropped, old `gamma`/`beta` LayerNorm names are mapped, and heads
 * the encoder does not have (pooler, MLM/NSP) are reported as unexpected. Nothing is written when a
 * shape does not fit. Throws when no tensor matches.
 */
export function loadTextWeights(model: Model, file: string): { loaded: number; missing: string[]; unexpected: string[] } {
  const { tensors } = readSafetensors(file);
  const renamed: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(tensors)) {
    const n = name.replace(/^bert\./, '').replace(/\.gamma$/, '.weight').replace(/\.beta$/, '.bias');
    renamed[n] = t;
  }
  try {
    const r = model.loadTensors('text.', renamed);
    if (r.loaded === 0) throw new ArgumentError(`adamatch: ${file} has no BERT tensor (embeddings.word_embeddings.weight, encoder.layer.0...)`, 'ERR_INVALID_ARG', 'adamatch');
    return r;
  } finally {
    Object.values(tensors).forEach((t) => t.dispose());
  }
}

/** Creates an AdaMatch model in native memory (dispose it when done). */
export function adamatch(options: AdaMatchOptions): Model {
  const model = Model.create('adamatch', adamatchConfig(options), createOptions(ADAMATCH));
  if (options.textWeights) {
    try {
      loadTextWeights(model, options.textWeights);
    } catch (err) {
      model.dispose();
      throw err;
    }
  }
  return model;
}

/**
 * AdaMatch's published optimisation (supplementary section 8): LAMB (beta 0.9/0.999, eps 1e-4), a
 * cosine schedule warming up linearly over the first quarter of training to
 * lr_b * sqrt(batch / 512), lr_b = 6e-3. Spread into `train()` options.
 */
export function adamatchTraining(batchSize: number, baseLr = 6e-3) {
  const lr = baseLr * Math.sqrt(batchSize / 512);
  return {
    optimizer: 'lamb' as const,
    lr,
    visualLr: lr,
    optimizerOptions: { beta1: 0.9, beta2: 0.999, eps: 1e-4 },
    schedule: { kind: 'cosine' as const, warmupFraction: 0.25 },
    batchSize,
  };
}

/**
 * AdaMatch options for a Hugging Face BERT folder (model.safetensors, vocab.txt, config.json), e.g.
 * BioClinicalBERT as the paper uses: the WordPiece tokenizer, the weights file and the encoder sizes.
 */
export function bertTextOptions(dir: string, maxLength = 128): Pick<AdaMatchOptions, 'tokenizer' | 'textWeights' | 'textHidden' | 'textLayers' | 'textHeads' | 'textIntermediate' | 'textMaxPositions'> {
  const file = (n: string) => path.join(dir, n);
  for (const n of ['model.safetensors', 'vocab.txt'])
    if (!fs.existsSync(file(n))) throw new ArgumentError(`adamatch: ${dir} has no ${n} (a BERT folder needs model.safetensors, vocab.txt and config.json)`, 'ERR_INVALID_ARG', 'adamatch');
  let cfg: { do_lower_case?: boolean; hidden_size?: number; num_hidden_layers?: number; num_attention_heads?: number; intermediate_size?: number; max_position_embeddings?: number } = {};
  if (fs.existsSync(file('config.json'))) {
    try {
      cfg = JSON.parse(fs.readFileSync(file('config.json'), 'utf8'));
    } catch (err) {
      throw new ArgumentError(`adamatch: ${file('config.json')} is not valid JSON (${(err as Error).message}); it should be the BERT folder's Hugging Face config.json`, 'ERR_INVALID_ARG', 'adamatch');
    }
    if (!cfg || typeof cfg !== 'object' || Array.isArray(cfg)) throw new ArgumentError(`adamatch: ${file('config.json')} must hold a JSON object (a Hugging Face config.json)`, 'ERR_INVALID_ARG', 'adamatch');
  }
  const tokenizer = WordPieceTokenizer.fromVocabFile(file('vocab.txt'), { lowercase: cfg.do_lower_case ?? true, maxLength });
  return {
    tokenizer,
    textWeights: file('model.safetensors'),
    textHidden: cfg.hidden_size ?? 768,
    textLayers: cfg.num_hidden_layers ?? 12,
    textHeads: cfg.num_attention_heads ?? 12,
    textIntermediate: cfg.intermediate_size ?? 3072,
    textMaxPositions: cfg.max_position_embeddings ?? 512,
  };
}

/**
 * The training tokenizer of kinds with a BERT-style text encoder (AdaMatch, MPMA): a BERT folder's
 * WordPiece vocabulary (`--bert DIR`), else radkit's built from the training reports (`--threshold`).
 */
export function bertOrReportTokenizer(ds: R2GenDataset, flags: FlagValues) {
  if (typeof flags.bert === 'string') return bertTextOptions(flags.bert).tokenizer;
  return reportTokenizer(ds, flags);
}

/**
 * AdaMatch in the registry: retrieval task (model selection by the mean of R@1/5/10 both ways),
 * one frontal view, the published LAMB recipe (adamatchTraining), and the classification head only
 * when the training set has CheXpert labels.
 */
export const ADAMATCH = registerModelKind({
  name: 'adamatch',
  summary: 'AdaMatch image-report alignment: adaptive patches, patch-word matching (seed 000)',
  task: 'retrieval',
  presets: ['small', 'paper'],
  configDefaults,
  tokenizer: bertOrReportTokenizer,
  create: (c) => {
    // The classification head (stand-in for the paper's classification pre-training) needs labels.
    const labelled = c.dataset.splits.train.every((e) => e.labels);
    if (!labelled) console.error('radkit train: the dataset has no CheXpert labels; training AdaMatch without its classification head');
    const text = typeof c.flags.bert === 'string' ? bertTextOptions(c.flags.bert) : null;
    return adamatch({ tokenizer: c.tokenizer, preset: c.preset as AdaMatchOptions['preset'], seed: c.seed, adaptive: !c.flags['fixed-patches'], imageSize: c.imageSize, classWeight: labelled ? undefined : 0, ...(text ? { ...text, tokenizer: c.tokenizer } : {}) });
  },
  recipe: (c) => adamatchTraining(c.batchSize ?? 32),
  metric: 'meanRecall',
  needsLabels: (c) => Number(c.classWeight ?? 0) > 0,
  evaluate: retrievalEvaluation,
  trainFlags: {
    'fixed-patches': { type: 'boolean', help: 'no AdaPatch: fixed patch embedding (the ablation)' },
    bert: { type: 'string', arg: 'DIR', help: 'Hugging Face BERT folder (model.safetensors + vocab.txt + config.json): text encoder and WordPiece tokenizer' },
  },
});
