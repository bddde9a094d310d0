/**
 * MedRAT (seed 001): report generation trained from an image set and a report set that were never
 * paired and share only CheXpert labels. Shared memory (eq. 1), modality encoders, a shared
 * transformer encoder with self-attentive pooling (eqs. 2-3), a shared decoder trained by
 * auto-encoding reports from [z_global; augmented locals], multi-label SupCon (eq. 4) and BCE
 * classification (eq. 5) on the globals, total eq. 6. Generation reads the image's global and locals.
 * Native system: native/models/medrat.cc.
 */
import { Model, withResNetWeights } from './model.js';
import { Tokenizer } from '../text/tokenizer.js';
import { ArgumentError } from '../errors.js';
import { createOptions, registerModelKind } from './registry.js';
import { generationEvaluation } from '../train/evaluate.js';

export type MedRATPairing = 'unpaired' | 'paired';

/** MedRAT's generation switches (`generate({ systemOptions })`). */
export interface MedRATSystemOptions {
  /**
   * 'all' (default, the paper): the decoder reads the image's [z_global; Z_l]; 'none': z_global alone,
   * the patch locals masked out of its attention (a diagnostic; pairs with `vectorDropout: 1`).
   */
  imageLocals?: 'all' | 'none';
  /**
   * 'image' (default, the paper's inference): the decoder reads the image's encoding; 'report' (a
   * diagnostic of the auto-encoding path): it reconstructs `batch.tokens` from that report's own
   * [z_global; Z_l] (`imageLocals: 'none'` then masks the word locals); no memoryRows then.
   */
  source?: 'image' | 'report';
  [key: string]: string | number | boolean | undefined;
}
export type MedRATLocalAugment = 'dropout' | 'noise' | 'none';

/** MedRAT configuration. `preset: 'small'` trains on a CPU; `'paper'` is the paper-like size. */
export interface MedRATOptions {
  /** The report tokenizer (its vocabulary sizes the decoder; '.' ends sentences for shuffling). */
  tokenizer: Tokenizer;
  preset?: 'small' | 'paper';
  /** 'unpaired' (default): auto-encoding + auxiliary tasks; 'paired': image -> report (the ceiling). */
  pairing?: MedRATPairing;
  dModel?: number;
  heads?: number;
  dFF?: number;
  /** Layers of E_I and of E_R each. */
  modalityLayers?: number;
  /** Layers of the shared encoder E_S and of the shared decoder D_R. */
  encoderLayers?: number;
  decoderLayers?: number;
  resnetWidths?: number[];
  resnetBlocks?: number[];
  /** ResNet block: 'basic' (ResNet-18/34, the default) or 'bottleneck' (ResNet-50/101/152; stage widths are planes, x4 out). */
  resnetBlock?: 'basic' | 'bottleneck';
  /** Shared memory (eq. 1): on/off, rows M, top-K, temperature of the cosine softmax (1 = as printed). */
  memory?: boolean;
  memorySlots?: number;
  memoryTopK?: number;
  memoryTemperature?: number;
  /** Augmentation of the decoder's locals in training: vector dropout (p) or Gaussian noise (sigma). */
  localAugment?: MedRATLocalAugment;
  vectorDropout?: number;
  noiseSigma?: number;
  /** SupCon temperature (eq. 4). */
  contrastTemperature?: number;
  /** Eq. 6 weights of L_lang, L_con, L_cls. */
  gammaLang?: number;
  gammaContrast?: number;
  gammaClass?: number;
  /** Count uncertain labels as positive (U-ones); default: negative. */
  uncertainPositive?: boolean;
  /** Probability that a report view has its sentences shuffled. */
  textShuffle?: boolean | number;
  /** Native image augmentation of the two image views (crop, affine, blur, contrast). */
  imageAugment?: boolean;
  augmentCropP?: number;
  augmentAffineP?: number;
  augmentBlurP?: number;
  augmentContrast?: number;
  dropout?: number;
  seed?: number;
  /** ImageNet-style ResNet weights (.safetensors, torchvision names) for the visual extractor. */
  visualWeights?: string;
}

const PRESETS = {
  small: { dModel: 128, heads: 4, dFF: 256, modalityLayers: 1, encoderLayers: 2, decoderLayers: 2, resnetWidths: [16, 24, 32, 64, 96], resnetBlocks: [1, 1, 1, 1], memorySlots: 256, memoryTopK: 16 },
  // ResNet-101 (torchvision's layout: bottleneck blocks 3-4-23-3, 2048 output channels), so ImageNet
  // resnet101 weights load by name (visualWeights).
  paper: { dModel: 512, heads: 8, dFF: 2048, modalityLayers: 1, encoderLayers: 3, decoderLayers: 3, resnetWidths: [64, 64, 128, 256, 512], resnetBlocks: [3, 4, 23, 3], resnetBlock: 'bottleneck', memorySlots: 2048, memoryTopK: 32 },
} as const;

/** Every configuration key MedRAT reads, with its default, for a preset. */
function configDefaults(preset: string): Record<string, number | string | number[]> {
  const p = PRESETS[preset as keyof typeof PRESETS];
  if (!p) throw new ArgumentError(`medrat: preset must be 'small' or 'paper', got '${String(preset)}'`, 'ERR_INVALID_ARG', 'medrat');
  return {
    ...p,
    resnetWidths: [...p.resnetWidths],
    resnetBlocks: [...p.resnetBlocks],
    pairing: 'unpaired',
    memory: 1,
    memoryTemperature: 1,
    localAugment: 'dropout',
    vectorDropout: 0.9,
    noiseSigma: 5,
    contrastTemperature: 0.07,
    gammaLang: 1,
    gammaContrast: 1,
    gammaClass: 1,
    uncertainPositive: 0,
    textShuffle: 1,
    imageAugment: 1,
    augmentCropP: 0.8,
    augmentAffineP: 0.5,
    augmentBlurP: 0.3,
    augmentContrast: 0.3,
    dropout: 0.1,
    seed: 0,
  };
}

/** The native configuration for MedRAT options (recorded in checkpoints). */
export function medratConfig(o: MedRATOptions): Record<string, number | string | number[]> {
  if (!o || !(o.tokenizer instanceof Tokenizer)) throw new ArgumentError("medrat: options.tokenizer must be radkit's Tokenizer", 'ERR_INVALID_ARG', 'medrat');
  const { tokenizer, preset, visualWeights: _w, ...rest } = o;
  const cfg = configDefaults(preset ?? 'small');
  for (const [k, v] of Object.entries(rest)) {
    if (v === undefined) continue;
    // resnetBlock is a key of the paper preset only (the small preset's configuration, and so its
    // runs, stay as they were recorded before the key existed).
    if (!(k in cfg) && k !== 'resnetBlock') throw new ArgumentError(`medrat: unknown option '${k}'`, 'ERR_INVALID_ARG', 'medrat');
    cfg[k] = typeof v === 'boolean' ? Number(v) : (v as number | string | number[]);
  }
  cfg.vocabSize = tokenizer.vocabSize + 1;
  cfg.maxPositions = Math.max(512, tokenizer.maxLength + 2);
  cfg.sentenceEndIds = ['.', '!', '?'].filter((t) => tokenizer.vocab.includes(t)).map((t) => tokenizer.tokenToId(t));
  return cfg;
}

/** Creates a MedRAT model in native memory (dispose it when done). */
export function medrat(options: MedRATOptions): Model {
  return withResNetWeights(Model.create('medrat', medratConfig(options), createOptions(MEDRAT)), options.visualWeights, 'visual.');
}

/** `radkit report` lines: the shared-memory rows a study's image patches read (top K each), most read first. */
export function memoryRowsRead(extras: Record<string, { shape: number[]; data: number[] }>): string[] {
  const m = extras.memoryRows;
  if (!m || !Array.isArray(m.data) || m.data.length === 0) return [];
  const counts = new Map<number, number>();
  for (const r of m.data) if (r >= 0) counts.set(r, (counts.get(r) ?? 0) + 1);
  const top = [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  const patches = m.shape[0] ?? 0;
  return [`shared memory: ${counts.size} distinct rows read by ${patches} patches (top ${m.shape[1] ?? 0} each); most read: ${top.slice(0, 12).map(([r, c]) => `${r} (x${c})`).join(', ')}`];
}

/**
 * MedRAT in the registry: trains unpaired with `--unpaired` (the sets in `unpaired/` beside the
 * annotation file), else paired (image -> report, the same model as a ceiling); validation on the
 * paired val split, model selection by CE micro-F1 of image -> report generation.
 */
export const MEDRAT = registerModelKind({
  name: 'medrat',
  summary: 'MedRAT report generator trained from unpaired images and reports (seed 001)',
  task: 'generation',
  presets: ['small', 'paper'],
  configDefaults,
  create: (c) => {
    if (!(c.tokenizer instanceof Tokenizer)) throw new ArgumentError(`medrat: decodes with radkit's Tokenizer, not ${c.tokenizer.constructor.name}`, 'ERR_INVALID_ARG', 'medrat');
    const f = c.flags;
    return medrat({
      tokenizer: c.tokenizer,
      preset: c.preset as MedRATOptions['preset'],
      seed: c.seed,
      pairing: f.unpaired === true ? 'unpaired' : 'paired',
      localAugment: f['local-augment'] as MedRATLocalAugment | undefined,
      vectorDropout: f['vector-dropout'] as number | undefined,
      memory: f['no-memory'] === true ? false : undefined,
      memoryTemperature: f['memory-temperature'] as number | undefined,
      gammaContrast: f['gamma-contrast'] as number | undefined,
      gammaClass: f['gamma-class'] as number | undefined,
    });
  },
  recipe: () => ({ optimizer: 'adam', lr: 1e-3, visualLrFactor: 0.5, schedule: { kind: 'step', gamma: 0.8 }, clipNorm: 1, batchSize: 16, initBatches: 0 }),
  metric: 'ceMicroF1',
  needsLabels: () => true,
  pairing: (c) => (c.pairing === 'paired' ? 'paired' : 'unpaired'),
  views: () => 1,
  generate: { method: 'beam', beams: 3, maxLength: 60, noRepeatNgram: 3 },
  evaluate: generationEvaluation,
  explain: memoryRowsRead,
  generateFlags: {
    'image-locals': { type: 'string', choices: ['all', 'none'], default: 'all', option: 'imageLocals', help: "decoder reads the image's global and patch locals (all, the paper) or the global alone (none)" },
  },
  trainFlags: {
    unpaired: { type: 'boolean', help: 'train from unpaired/images.json + unpaired/reports.json beside the annotation (default: paired, the ceiling)' },
    'local-augment': { type: 'string', choices: ['dropout', 'noise', 'none'], default: 'dropout', help: "decoder locals in training: vector dropout p 0.9, Gaussian noise sigma 5, or none" },
    'vector-dropout': { type: 'number', min: 0, max: 1, default: 0.9, help: 'probability that vector dropout masks a report local out of the decoder (1: the decoder reads the global alone)' },
    'no-memory': { type: 'boolean', help: 'without the shared memory (ablation)' },
    'memory-temperature': { type: 'number', min: 1e-6, default: 1, help: 'temperature of the memory cosine softmax (1 = eq. 1 as printed)' },
    'gamma-contrast': { type: 'number', min: 0, default: 1, help: 'weight of the SupCon loss (eq. 6 gamma2)' },
    'gamma-class': { type: 'number', min: 0, default: 1, help: 'weight of the classification loss (eq. 6 gamma3)' },
  },
});
