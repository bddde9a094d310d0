/**
 * The model registry: one `ModelKind` entry per system says everything the trainer, the CLI and the
 * evaluation need to know about it (presets, configuration defaults, training recipe, batches, task,
 * evaluation, CLI flags). `lib/models/<kind>.ts` registers its entry; no command or trainer names a
 * kind in its own code, so adding a system touches its own files and the list of built-ins only.
 */
import { checkAugmentOptions, type AugmentOptions } from '../data/augment.js';
import type { Batch } from '../data/loader.js';
import type { R2GenDataset, SplitName } from '../data/r2gen.js';
import { ArgumentError } from '../errors.js';
import type { GenerateOptions } from '../generation.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';
import { Tokenizer } from '../text/tokenizer.js';
import type { LoadedCheckpoint, Preprocessing } from '../train/checkpoint.js';
import type { TrainOptions } from '../train/trainer.js';
import type { NativeConfig } from '../../typings/model.js';
import { TensorBatch, type Model } from './model.js';

/** What a kind is evaluated on, and so which evaluation and default metric the trainer uses. */
export type ModelTask = 'generation' | 'retrieval' | 'pretraining' | 'classification';

/** One CLI flag of a kind (`--name value`; kebab-case names). */
export interface FlagSpec {
  type: 'string' | 'number' | 'integer' | 'boolean';
  /** One line for `--help`. */
  help: string;
  choices?: readonly string[];
  /** Inclusive bounds for numbers. */
  min?: number;
  max?: number;
  /** The value's placeholder in `--help` (default VALUE, N or X by type). */
  arg?: string;
  /** The value when the flag is not given (shown in `--help`). */
  default?: string | number | boolean;
}

export type FlagSpecs = Record<string, FlagSpec>;
export type FlagValues = Record<string, string | number | boolean | undefined>;

/** What a kind is given to build a model for a training run. */
export interface BuildContext {
  dataset: R2GenDataset;
  tokenizer: ReportTokenizer;
  preset: string;
  seed: number;
  imageSize?: number;
  batchSize?: number;
  /** Values of the kind's own `trainFlags` (defaults applied). */
  flags: FlagValues;
}

/** A kind's training recipe: defaults under the user's `train()` options. */
export type TrainingRecipe = Partial<Omit<TrainOptions, 'tokenizer' | 'outDir' | 'signal' | 'progress' | 'init'>>;

export interface EvaluationOptions {
  split: SplitName;
  preprocessing: Preprocessing;
  maxItems?: number;
  workers?: number;
  signal?: AbortSignal;
  batchSize?: number;
  /** Generation options (report generators), over the kind's `generate` defaults. */
  generate?: GenerateOptions;
}

/** One evaluation: the flat numbers model selection reads, and what else is worth recording. */
export interface Evaluation {
  headline: Record<string, number>;
  record?: Record<string, unknown>;
}

/** The default training tokenizer: radkit's Tokenizer of the training reports (`--threshold`, default 3). */
export function reportTokenizer(dataset: R2GenDataset, flags: FlagValues): Tokenizer {
  return Tokenizer.build(dataset.splits.train.map((e) => e.report), { threshold: typeof flags.threshold === 'number' ? flags.threshold : 3 });
}

export interface ModelKind {
  /** `--model` value and the `kind` recorded in checkpoints. */
  name: string;
  /** One line for `radkit train --help`. */
  summary: string;
  task: ModelTask;
  /** The native system computing it (default: `name`). */
  nativeKind?: string;
  /** Preset names; the first is the default. */
  presets: readonly string[];
  /** The native configuration with every default, for a preset (the configuration schema). */
  configDefaults(preset: string): NativeConfig;
  /** Builds the training tokenizer (default: radkit's Tokenizer from the training reports, CLI `--threshold`). */
  tokenizer?(dataset: R2GenDataset, flags: FlagValues): ReportTokenizer;
  /** Creates a fresh model for a training run. */
  create(ctx: BuildContext): Model;
  /** Training defaults: optimizer, learning rates, schedule, batch size, evaluation metric, ... */
  recipe?(ctx: { batchSize?: number; dataset: R2GenDataset; flags: FlagValues; config: NativeConfig }): TrainingRecipe;
  /** The validation metric that selects the best checkpoint. */
  metric: string;
  /** Views per study the model reads (default: 1). */
  views?(dataset: R2GenDataset): number;
  /**
   * Seeded augmentations of the training loader (train split only; `DataLoader` option `augment`):
   * image crop / affine / blur / brightness / contrast (native) and sentence shuffling. Default none.
   */
  augment?: AugmentOptions;
  /**
   * Whether a model of this configuration reads CheXpert labels in training (a loss on them, or
   * prototypes chosen by them). The trainer then takes them from the dataset, or, for a dataset
   * without labels, from radkit's labeler (and says so). Default: labels are used when the dataset
   * has them and not needed otherwise.
   */
  needsLabels?(config: NativeConfig): boolean;
  /**
   * How a model of this configuration trains (default 'paired'): 'unpaired' trains on a set of
   * labelled images and a set of labelled reports that share no study (`TrainOptions.unpaired`, by
   * default `unpaired/images.json` + `unpaired/reports.json` beside the annotation file), through
   * `UnpairedLoader` batches (`paired: false`, the images' label states in `extras.imageLabels`);
   * validation and test stay paired.
   */
  pairing?(config: NativeConfig): 'paired' | 'unpaired';
  /** Turns a loader batch into the system's tensors for `model`, whose reports `tokenizer` encodes (default: images, tokens and label states). */
  prepareBatch?(batch: Batch, model: Model, tokenizer: ReportTokenizer): TensorBatch;
  /**
   * Configuration keys that must agree with the run a model starts from (`--init`) when tensors
   * under `tensors` are copied from a run of `sourceKind`: the copied weights only mean what they
   * meant there under the same setting (e.g. otdrg's copy of diseasenet's state head and its
   * pooling). `keys` maps each key to what a source configuration without it means. A disagreement
   * is an ERR_CHECKPOINT naming the keys, before anything is copied.
   */
  initMustMatch?: readonly { sourceKind: string; tensors: string; keys: Record<string, number | string> }[];
  /** Generation defaults under every generate() call of this kind (report generators). */
  generate?: GenerateOptions;
  /** Scores a model on a split (the trainer's per-epoch evaluation and `radkit evaluate`). */
  evaluate?(model: Model, tokenizer: ReportTokenizer, dataset: R2GenDataset, options: EvaluationOptions): Promise<Evaluation>;
  /** CLI flags of `radkit train --model <name>` (besides the common ones), and how they reach `create`. */
  trainFlags?: FlagSpecs;
  /** Explanation lines of one generated report from its `generate()` extras, for `radkit report` (e.g. the memory rows a study read). */
  explain?(extras: Record<string, { shape: number[]; data: number[] }>): string[];
  /**
   * The kind's own `radkit generate` for checkpoints of it (a kind whose generation is not "reports
   * for images", e.g. both directions of AdaMatch-Cyclic): its flags (accepted by every generate
   * command line; refused for other kinds) and what it does with the loaded checkpoint.
   */
  generateCommand?: { flags: FlagSpecs; usage: string; run(ck: LoadedCheckpoint, values: FlagValues, positionals: string[]): Promise<number> };
  /** CLI flags of `radkit generate|evaluate` that become generation systemOptions (flag -> option name). */
  generateFlags?: Record<string, FlagSpec & { option: string }>;
}

const kinds = new Map<string, ModelKind>();

const NAME = /^[a-z][a-z0-9-]*$/;

/**
 * Adds a model kind (radkit's built-ins register themselves; applications and tests may add their
 * own). A second registration of a name replaces nothing: it is an ERR_INVALID_ARG.
 */
export function registerModelKind(kind: ModelKind): ModelKind {
  const fn = 'registerModelKind';
  if (!kind || typeof kind !== 'object') throw new ArgumentError(`${fn}: kind must be an object`, 'ERR_INVALID_ARG', fn);
  if (typeof kind.name !== 'string' || !NAME.test(kind.name)) throw new ArgumentError(`${fn}: name must be lower-case letters, digits and dashes, got '${String(kind.name)}'`, 'ERR_INVALID_ARG', fn);
  if (kinds.has(kind.name)) throw new ArgumentError(`${fn}: a model kind named '${kind.name}' is already registered`, 'ERR_INVALID_ARG', fn);
  if (!kind.presets?.length) throw new ArgumentError(`${fn}: ${kind.name} needs at least one preset`, 'ERR_INVALID_ARG', fn);
  for (const f of ['configDefaults', 'create'] as const)
    if (typeof kind[f] !== 'function') throw new ArgumentError(`${fn}: ${kind.name}.${f} must be a function`, 'ERR_INVALID_ARG', fn);
  if (kind.augment !== undefined) checkAugmentOptions(kind.augment);
  kinds.set(kind.name, kind);
  return kind;
}

/** Removes a kind registered by an application or test; returns whether it was there. */
export function unregisterModelKind(name: string): boolean {
  return kinds.delete(name);
}

/** The registered kinds, in registration order. */
export function modelKinds(): ModelKind[] {
  return [...kinds.values()];
}

/** The kind called `name`, or undefined. */
export function findModelKind(name: string): ModelKind | undefined {
  return kinds.get(name);
}

/** The kind called `name`; an ERR_INVALID_ARG listing the registered kinds otherwise. */
export function modelKind(name: string, fn = 'modelKind'): ModelKind {
  const k = kinds.get(name);
  if (!k) throw new ArgumentError(`${fn}: unknown model kind '${name}' (registered: ${[...kinds.keys()].join(', ') || 'none'})`, 'ERR_INVALID_ARG', fn);
  return k;
}

/** What a model of `kind` is evaluated on ('generation' for kinds this process does not know). */
export function modelTask(kind: string): ModelTask {
  return kinds.get(kind)?.task ?? 'generation';
}

/** The tensors of a loader batch as the model's kind wants them. */
export function prepareBatch(model: Model, tokenizer: ReportTokenizer, batch: Batch): TensorBatch {
  const k = kinds.get(model.kind);
  return k?.prepareBatch ? k.prepareBatch(batch, model, tokenizer) : new TensorBatch(batch);
}

/** The options of Model.create for a kind (its native system and generation defaults). */
export function createOptions(kind: ModelKind): { nativeKind: string; generate?: GenerateOptions } {
  return { nativeKind: kind.nativeKind ?? kind.name, generate: kind.generate };
}
