import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataLoader, type Batch } from '../data/loader.js';
import { checkAugmentOptions, type AugmentOptions } from '../data/augment.js';
import { RESIZE_FILTERS, type FitMode, type ResizeFilter } from '../data/image.js';
import { readUnpaired, type R2GenDataset, type R2GenEntry, type SplitName, type UnpairedDataset } from '../data/r2gen.js';
import { UnpairedLoader, unpairedTensorBatch, type UnpairedBatch } from '../data/unpaired.js';
import { ArgumentError, DataError, OutOfMemoryError, RadkitError } from '../errors.js';
import { PRECISIONS, type GenerateOptions, type Model, type Precision, type TensorBatch } from '../models/model.js';
import { findModelKind, prepareBatch, type TrainingRecipe } from '../models/registry.js';
import { checkDevice, manualSeed } from '../runtime.js';
import { Tokenizer } from '../text/tokenizer.js';
import { HFReportTokenizer } from '../text/hf-report-tokenizer.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';
import { label } from '../text/labeler.js';
import { retrievalEvaluation } from '../align/evaluate.js';
import { cleanCheckpointLeftovers, readCheckpointMeta, restoreInto, writeCheckpoint, type CheckpointMeta, type Preprocessing } from './checkpoint.js';
import { generationEvaluation, GENERATION_METRICS, splitLoader } from './evaluate.js';
import { acquireRunLock } from './runlock.js';
import { agreeOnRun, evaluateDistributed, shardedEpoch, type ProcessGroup } from './distributed.js';
import { initFromRun, parseInitSpec, type InitReport, type InitSpec } from './init.js';
import { progressPrinter, type ProgressEvent } from './progress.js';
import { lrFactor, type Schedule } from './schedule.js';

export interface TrainOptions {
  /** Report generators need radkit's Tokenizer; alignment models also take a WordPieceTokenizer. */
  tokenizer: ReportTokenizer;
  /** Run folder: checkpoints/last, checkpoints/best, train-log.jsonl, metrics.json. */
  outDir: string;
  epochs: number;
  batchSize?: number;
  imageSize?: number;
  /** How each image becomes imageSize x imageSize: 'stretch' (default) or 'center-crop' (keeps the aspect ratio). Recorded in checkpoints; generation and evaluation use the same. */
  fit?: FitMode;
  /** Resize kernel (default 'lanczos3'), recorded like fit. */
  filter?: ResizeFilter;
  views?: number;
  optimizer?: 'adam' | 'adamw' | 'lamb';
  /** Adam/AdamW/LAMB moments and epsilon (defaults 0.9, 0.999, 1e-8). */
  optimizerOptions?: { beta1?: number; beta2?: number; eps?: number };
  /** Learning rate of everything but the visual extractor, and of the visual extractor. */
  lr?: number;
  visualLr?: number;
  /** visualLr as a fraction of lr when visualLr is not given (default: the kind's recipe, else 0.5). */
  visualLrFactor?: number;
  weightDecay?: number;
  schedule?: Schedule;
  /** Global gradient-norm clipping (0 = off). */
  clipNorm?: number;
  seed?: number;
  /**
   * Evaluation after each epoch (false: none; the last epoch is then "best"). Report generators are
   * scored on generated reports (default metric bleu4), alignment models (AdaMatch) by retrieval
   * (default metric meanRecall of R@1/5/10 both ways). checkpoints/best is the epoch with the highest
   * score; a tie goes to the later epoch.
   */
  evaluate?: false | { split?: SplitName; metric?: string; every?: number; generate?: GenerateOptions; maxItems?: number; test?: boolean };
  /**
   * 'auto' (default): continue from checkpoints/last when it exists (same model configuration and
   * tokenizer only, else ERR_CHECKPOINT); false: start over.
   */
  resume?: 'auto' | false;
  /** Data-driven initialisation (XProNet prototypes) from up to this many training batches (0 = off). */
  initBatches?: number;
  maxStepsPerEpoch?: number;
  signal?: AbortSignal;
  progress?: 'auto' | 'bar' | 'json' | 'none' | ((e: ProgressEvent) => void);
  /** Image decoding threads of the loader. */
  workers?: number;
  /**
   * Seeded augmentations of the training batches (train split only; image crop / affine / blur /
   * brightness / contrast / flip and sentence shuffling, `AugmentOptions`). Default: the kind's
   * (`ModelKind.augment`, none for most kinds); false: none. Recorded in the checkpoints'
   * trainOptions, so resuming with other augmentations is a settings difference.
   */
  augment?: AugmentOptions | false;
  /**
   * Where to train: 'cpu', 'cuda' or 'cuda:N' (default: where the model is). The model (parameters,
   * buffers, optimizer state) moves there and every batch follows it; checkpoints stay CPU archives,
   * so a run trained on CUDA generates on the CPU and resumes on either. A device that cannot be used
   * here is an ArgumentError ERR_DEVICE naming it and why, before any file is written.
   */
  device?: string;
  /**
   * 'float32' (default), 'bfloat16' (autocast forward, float32 master weights and optimizer state;
   * CUDA and CPU) or 'float16' (the same with dynamic loss scaling; CUDA only). Recorded in the
   * checkpoints' trainOptions; resuming with another precision is a settings difference.
   */
  precision?: Precision;
  /**
   * Staged runs: before the first epoch of a new run, copy the weights named `prefix*` from another
   * run's best checkpoint (`'RUN[:prefix]'` or { run, prefix }). What was copied, skipped or left
   * new is written to outDir/init.json and returned. Ignored when resuming (the run has its own weights).
   */
  init?: string | InitSpec;
  /**
   * Parameter-name prefixes to freeze (no gradient, in no optimizer group), e.g. ['visual.'].
   * Batch-norm running statistics are buffers, not parameters: they still follow the data.
   */
  freeze?: string[];
  /**
   * Resuming a run whose recorded settings differ from these (learning rates, batch size, image
   * size, schedule, ...) is an ERR_CHECKPOINT listing the differences; with true the run continues
   * with the new settings and records the change (trainOptions.settingsChanges).
   */
  forceNewSettings?: boolean;
  /**
   * CheXpert labels, for models that need them (ModelKind.needsLabels). 'auto' (default): the
   * dataset's when every study has them; for a dataset without any, radkit's rule labeler on the
   * reports (a 'labels' event says so and checkpoints record it); some studies with and some
   * without is an ERR_DATA naming them. 'labeler': radkit's labeler for every study.
   */
  labels?: 'auto' | 'labeler';
  /**
   * Data-parallel training over a process group (radkit.distributed.initProcessGroup; `radkit train
   * --nproc-per-node`): batchSize is the global batch, each rank reads its seeded shard of every epoch,
   * gradients are averaged over the ranks and cross-sample terms see the global batch; rank 0 alone
   * holds the run lock and writes checkpoints, logs and progress. Every rank calls train() alike.
   */
  distributed?: ProcessGroup;
  /**
   * The image and report sets of a kind that trains unpaired (`ModelKind.pairing`); default: read
   * (readUnpaired) from `unpaired/` beside the annotation file. Validation stays on the dataset's paired split.
   */
  unpaired?: UnpairedDataset;
}

/**
 * What every run uses unless the model kind's recipe or the caller says otherwise (XProNet's
 * published recipe: Adam, step decay 0.8 per epoch, the visual extractor at half the rate).
 */
export const TRAIN_DEFAULTS = {
  batchSize: 16,
  optimizer: 'adam',
  lr: 1e-3,
  visualLrFactor: 0.5,
  schedule: { kind: 'step', gamma: 0.8 },
  clipNorm: 1,
  initBatches: 8,
  seed: 0,
  imageSize: 128,
} as const satisfies TrainingRecipe;

export interface TrainResult {
  outDir: string;
  epochs: number;
  best: CheckpointMeta['best'];
  history: { epoch: number; trainLoss: number; seconds: number; imagesPerSecond: number; metrics?: Record<string, number> }[];
  /** What `init` copied (fresh runs with `init` only). */
  init?: InitReport;
  /** Parameters frozen by `freeze`. */
  frozen: string[];
}

const FN = 'train';

const bad = (what: string, v: unknown) => new ArgumentError(`${FN}: options.${what}, got ${typeof v === 'string' ? `'${v}'` : String(v)}`, 'ERR_INVALID_ARG', FN);

/** Every option range- and type-checked before anything runs (the merged options: defaults, recipe, caller). */
function check(o: TrainOptions): void {
  if (!o || typeof o !== 'object') throw new ArgumentError(`${FN}: options must be an object`, 'ERR_INVALID_ARG', FN);
  if (!o.tokenizer) throw new ArgumentError(`${FN}: options.tokenizer is required`, 'ERR_INVALID_ARG', FN);
  if (typeof o.outDir !== 'string' || !o.outDir) throw new ArgumentError(`${FN}: options.outDir must be a folder path`, 'ERR_INVALID_ARG', FN);
  if (!Number.isInteger(o.epochs) || o.epochs < 1) throw new ArgumentError(`${FN}: options.epochs must be a positive integer, got ${o.epochs}`, 'ERR_INVALID_ARG', FN);
  if (o.freeze !== undefined && !(Array.isArray(o.freeze) && o.freeze.every((p) => typeof p === 'string' && p)))
    throw new ArgumentError(`${FN}: options.freeze must be an array of parameter-name prefixes`, 'ERR_INVALID_ARG', FN);
  for (const k of ['lr', 'visualLr', 'visualLrFactor'] as const) {
    const v = o[k];
    if (v !== undefined && !(typeof v === 'number' && v > 0 && Number.isFinite(v))) throw bad(`${k} must be a positive number`, v);
  }
  if (o.fit !== undefined && o.fit !== 'stretch' && o.fit !== 'center-crop') throw bad(`fit must be 'stretch' or 'center-crop'`, o.fit);
  if (o.filter !== undefined && !RESIZE_FILTERS.includes(o.filter)) throw bad(`filter must be one of ${RESIZE_FILTERS.join(', ')}`, o.filter);
  const ints: [keyof TrainOptions, number, number][] = [['batchSize', 1, 1 << 20], ['imageSize', 8, 8192], ['views', 1, 64], ['initBatches', 0, 1 << 20], ['maxStepsPerEpoch', 1, Number.MAX_SAFE_INTEGER], ['workers', 0, 256], ['seed', 0, Number.MAX_SAFE_INTEGER]];
  for (const [k, lo, hi] of ints) {
    const v = o[k];
    if (v !== undefined && !(Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi)) throw bad(`${k} must be a whole number in [${lo}, ${hi}]`, v);
  }
  for (const k of ['clipNorm', 'weightDecay'] as const) {
    const v = o[k];
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && Number.isFinite(v))) throw bad(`${k} must be a finite number >= 0`, v);
  }
  if (o.optimizer !== undefined && !['adam', 'adamw', 'lamb'].includes(o.optimizer)) throw bad("optimizer must be 'adam', 'adamw' or 'lamb'", o.optimizer);
  const s = o.schedule;
  if (s !== undefined) {
    if (!s || !['step', 'cosine', 'constant'].includes(s.kind)) throw bad("schedule.kind must be 'step', 'cosine' or 'constant'", s?.kind);
    if (s.kind === 'step' && s.gamma !== undefined && !(s.gamma > 0 && s.gamma <= 1)) throw bad('schedule.gamma must be in (0, 1]', s.gamma);
    if (s.kind === 'step' && s.everyEpochs !== undefined && !(Number.isInteger(s.everyEpochs) && s.everyEpochs >= 1)) throw bad('schedule.everyEpochs must be a positive whole number', s.everyEpochs);
    if (s.kind === 'cosine' && s.warmupSteps !== undefined && !(Number.isInteger(s.warmupSteps) && s.warmupSteps >= 0)) throw bad('schedule.warmupSteps must be a whole number >= 0', s.warmupSteps);
    if (s.kind === 'cosine' && s.warmupFraction !== undefined && !(s.warmupFraction >= 0 && s.warmupFraction < 1)) throw bad('schedule.warmupFraction must be in [0, 1)', s.warmupFraction);
  }
  const e = o.evaluate;
  if (e !== undefined && e !== false) {
    if (typeof e !== 'object' || e === null) throw bad('evaluate must be false or an object', e);
    if (e.split !== undefined && !['train', 'val', 'test'].includes(e.split)) throw bad("evaluate.split must be 'train', 'val' or 'test'", e.split);
    if (e.every !== undefined && !(Number.isInteger(e.every) && e.every >= 1)) throw bad('evaluate.every must be a positive whole number', e.every);
    if (e.maxItems !== undefined && !(Number.isInteger(e.maxItems) && e.maxItems >= 1)) throw bad('evaluate.maxItems must be a positive whole number', e.maxItems);
    if (e.metric !== undefined && (typeof e.metric !== 'string' || !e.metric)) throw bad('evaluate.metric must be a metric name', e.metric);
  }
  if (o.augment !== undefined && o.augment !== false) {
    try {
      checkAugmentOptions(o.augment);
    } catch (err) {
      throw new ArgumentError(`${FN}: options.augment: ${(err as Error).message.replace(/^augment: /, '')}`, 'ERR_INVALID_ARG', FN);
    }
  }
  if (o.resume !== undefined && o.resume !== 'auto' && o.resume !== false) throw bad("resume must be 'auto' or false", o.resume);
  if (o.labels !== undefined && o.labels !== 'auto' && o.labels !== 'labeler') throw bad("labels must be 'auto' or 'labeler'", o.labels);
  if (o.precision !== undefined && !PRECISIONS.includes(o.precision)) throw bad("precision must be 'float32', 'bfloat16' or 'float16'", o.precision);
  if (o.device !== undefined && (typeof o.device !== 'string' || !/^(cpu|cuda(:\d+)?)$/.test(o.device))) throw bad("device must be 'cpu', 'cuda' or 'cuda:N'", o.device);
}

/** The headline metric names of the evaluations radkit knows, for checking evaluate.metric before training. */
function knownMetrics(evaluateWith: unknown): readonly string[] | null {
  if (evaluateWith === generationEvaluation) return GENERATION_METRICS;
  if (evaluateWith === retrievalEvaluation) return ['i2tR1', 'i2tR5', 'i2tR10', 't2iR1', 't2iR5', 't2iR10', 'meanRecall', 'chanceR1', 'n'];
  return null;
}

/** JSON with sorted keys, so recorded and new settings compare by value. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v ?? null);
}

/**
 * The settings of a run that resuming must keep (everything that changes the numbers of the
 * remaining steps), as `name: recorded -> now` lines. Settings the recorded run did not record
 * (an older radkit) are not compared; `epochs` may change unless the schedule depends on the total.
 */
export function settingsDifferences(recorded: Record<string, unknown>, now: Record<string, unknown>): string[] {
  const out: string[] = [];
  // The device changes no setting of the run: a run trained on CUDA may resume on the CPU and back.
  const skip = new Set(['init', 'settingsChanges', 'labelsNote', 'device']);
  const cosine = (x: Record<string, unknown>) => (x.schedule as { kind?: string } | undefined)?.kind === 'cosine';
  if (!cosine(recorded) && !cosine(now)) skip.add('epochs');
  const flat = (o: Record<string, unknown>, prefix = ''): Record<string, unknown> =>
    Object.fromEntries(
      Object.entries(o).flatMap(([k, v]) => (v && typeof v === 'object' && !Array.isArray(v) && !['schedule', 'generate'].includes(k) ? Object.entries(flat(v as Record<string, unknown>, `${prefix}${k}.`)) : [[`${prefix}${k}`, v]])),
    );
  const a = flat(recorded);
  const b = flat(now);
  for (const k of Object.keys(a).sort()) {
    if (skip.has(k.split('.')[0])) continue;
    if (canonical(a[k]) !== canonical(b[k])) out.push(`${k}: ${canonical(a[k])} -> ${canonical(b[k])}`);
  }
  return out;
}

/**
 * Where the training run takes CheXpert labels from. Returns the dataset to train on (with the
 * labeler's labels filled in when it derived them) and what it did.
 */
function labelledDataset(ds: R2GenDataset, needs: boolean | undefined, mode: 'auto' | 'labeler', splits: SplitName[], kind: string): { dataset: R2GenDataset; source: 'dataset' | 'labeler' | 'none'; derived: number } {
  const entries = splits.flatMap((s) => ds.splits[s]);
  const missing = entries.filter((e) => !e.labels);
  const derive = (all: boolean): R2GenDataset => {
    const withLabels = (list: R2GenEntry[]) => list.map((e) => (all || !e.labels ? { ...e, labels: label(e.report) } : e));
    return { ...ds, splits: { train: withLabels(ds.splits.train), val: withLabels(ds.splits.val), test: withLabels(ds.splits.test) } };
  };
  if (mode === 'labeler') return { dataset: derive(true), source: 'labeler', derived: entries.length };
  if (!missing.length) return { dataset: ds, source: 'dataset', derived: 0 };
  // A kind that needs none (or does not say): the batches carry labels where the dataset has them.
  if (needs !== true) return { dataset: ds, source: missing.length === entries.length ? 'none' : 'dataset', derived: 0 };
  if (missing.length === entries.length) return { dataset: derive(false), source: 'labeler', derived: entries.length };
  const names = missing.slice(0, 5).map((e) => `${e.split} "${e.id}"`).join(', ');
  throw new DataError(
    {
      file: ds.annotationPath,
      entry: `${missing[0].split} study "${missing[0].id}"`,
      message:
        `${missing.length} of ${entries.length} studies have no CheXpert labels (${names}${missing.length > 5 ? ', ...' : ''}) and this ${kind} configuration trains on labels: ` +
        "complete the labels (labels.json), or label every study with radkit's labeler (train option labels: 'labeler', CLI --derive-labels)",
    },
    FN,
  );
}

/**
 * Checks the data before the first step, so a problem does not cost a training epoch: every
 * training and evaluation image exists, and every evaluation image decodes.
 */
async function checkData(ds: R2GenDataset, evalCfg: { split: SplitName; maxItems?: number } | null, pre: Preprocessing, tokenizer: ReportTokenizer, workers: number | undefined): Promise<void> {
  const splits: SplitName[] = evalCfg && evalCfg.split !== 'train' ? ['train', evalCfg.split] : ['train'];
  for (const split of splits)
    for (const e of ds.splits[split])
      for (const p of e.imagePaths.slice(0, pre.views))
        if (!fs.existsSync(p)) throw new DataError({ file: ds.annotationPath, entry: `${split} study "${e.id}"`, message: `image not found: ${p}` }, FN);
  if (evalCfg) for await (const _ of splitLoader(ds, { split: evalCfg.split, preprocessing: pre, maxItems: evalCfg.maxItems, workers }, tokenizer, 16));
}

/**
 * Trains `model` on `dataset` (R2Gen format) and keeps its run folder up to date: a checkpoint after
 * every epoch (weights, optimizer, config, vocabulary, preprocessing, metrics; written atomically),
 * the best one by the chosen validation metric, and a JSON-lines log. After a crash, `kill -9` or an
 * abort, calling train() again with the same outDir resumes after the last completed epoch
 * (a run of another configuration or tokenizer there is an ERR_CHECKPOINT, not a silent mismatch).
 * Every training step runs on a native worker thread.
 */
export async function train(model: Model, dataset: R2GenDataset, options: TrainOptions): Promise<TrainResult> {
  check(options);
  const kind = findModelKind(model.kind);
  // Defaults, then the kind's recipe, then the caller's options (undefined never overrides).
  const o = layer<TrainOptions>(TRAIN_DEFAULTS as Partial<TrainOptions>, kind?.recipe?.({ batchSize: options.batchSize, dataset, flags: {}, config: model.config }) ?? {}, options);
  check(o);
  const task = kind?.task ?? 'generation';
  const evaluateWith = kind?.evaluate ?? generationEvaluation;
  // A kind that builds its own tokenizer may decode with a language model's (HFReportTokenizer).
  if (task === 'generation' && !(o.tokenizer instanceof Tokenizer) && !(o.tokenizer instanceof HFReportTokenizer && kind?.tokenizer))
    throw new ArgumentError(`${FN}: ${model.kind} generates reports and needs radkit's Tokenizer (BOS = EOS = PAD = 0), not ${o.tokenizer.constructor.name}`, 'ERR_INVALID_ARG', FN);
  const pre: Preprocessing = { imageSize: o.imageSize!, views: o.views ?? kind?.views?.(dataset) ?? 1, fit: o.fit ?? 'stretch', filter: o.filter ?? 'lanczos3' };
  const batchSize = o.batchSize!;
  const lr = o.lr!;
  const visualLr = o.visualLr ?? lr * o.visualLrFactor!;
  const schedule = o.schedule!;
  const seed = o.seed!;
  const clipNorm = o.clipNorm!;
  const initBatches = o.initBatches!;
  const evalCfg = o.evaluate === false ? null : layer<Exclude<TrainOptions['evaluate'], false | undefined> & { split: SplitName; metric: string; every: number }>({ split: 'val', metric: kind?.metric ?? 'bleu4', every: 1 }, o.evaluate ?? {});
  const init = o.init === undefined ? undefined : parseInitSpec(o.init, FN);

  // Everything that can be checked before the first step is checked here, before any file is written.
  if (!dataset?.splits?.train?.length) throw new ArgumentError(`${FN}: the dataset has no training studies`, 'ERR_INVALID_ARG', FN);
  if (evalCfg) {
    if (!dataset.splits[evalCfg.split]?.length)
      throw new ArgumentError(`${FN}: the evaluation split '${evalCfg.split}' has no studies; give a dataset with one, evaluate on another split, or train without evaluation (evaluate: false, CLI --no-eval)`, 'ERR_INVALID_ARG', FN);
    const known = knownMetrics(evaluateWith);
    if (known && !known.includes(evalCfg.metric)) throw new ArgumentError(`${FN}: evaluate.metric '${evalCfg.metric}' is not one of ${known.join(', ')}`, 'ERR_INVALID_ARG', FN);
  }
  const labelSplits: SplitName[] = evalCfg && evalCfg.split !== 'train' ? ['train', evalCfg.split] : ['train'];
  const labelled = labelledDataset(dataset, kind?.needsLabels?.(model.config), o.labels ?? 'auto', labelSplits, model.kind);
  const ds = labelled.dataset;
  const unpaired = kind?.pairing?.(model.config) === 'unpaired' ? (o.unpaired ?? unpairedBeside(dataset)) : null;

  // The device and precision must work here (ERR_DEVICE names the device and why not) before any
  // file is written or the model moves.
  o.device = o.device === undefined ? model.device : checkDevice(o.device, FN);
  o.precision = o.precision ?? 'float32';
  if (o.precision === 'float16' && !o.device.startsWith('cuda'))
    throw new ArgumentError(`${FN}: precision 'float16' (with loss scaling) runs on CUDA only; this run's device is ${o.device}: use 'bfloat16' or 'float32'`, 'ERR_INVALID_ARG', FN);
  if (o.precision !== 'float32' && model.dtype !== 'float32')
    throw new ArgumentError(`${FN}: precision '${o.precision}' keeps float32 master weights, but the model's parameters are ${model.dtype}`, 'ERR_INVALID_ARG', FN);

  fs.mkdirSync(o.outDir, { recursive: true });
  const release = o.distributed && o.distributed.rank !== 0 ? () => undefined : acquireRunLock(o.outDir, FN);
  try {
    await checkData(ds, evalCfg, pre, o.tokenizer, o.workers);
    return await trainLocked(model, ds, o, { kind, evaluateWith, pre, batchSize, lr, visualLr, schedule, seed, clipNorm, initBatches, evalCfg, init, labelled, unpaired });
  } finally {
    release();
  }
}

interface Resolved {
  kind: ReturnType<typeof findModelKind>;
  evaluateWith: NonNullable<NonNullable<ReturnType<typeof findModelKind>>['evaluate']>;
  pre: Preprocessing;
  batchSize: number;
  lr: number;
  visualLr: number;
  schedule: Schedule;
  seed: number;
  clipNorm: number;
  initBatches: number;
  evalCfg: (Exclude<TrainOptions['evaluate'], false | undefined> & { split: SplitName; metric: string; every: number }) | null;
  init: InitSpec | undefined;
  labelled: { source: 'dataset' | 'labeler' | 'none'; derived: number };
  unpaired: UnpairedDataset | null;
}

async function trainLocked(model: Model, dataset: R2GenDataset, o: TrainOptions, r: Resolved): Promise<TrainResult> {
  const { evaluateWith, pre, batchSize, lr, visualLr, schedule, seed, clipNorm, initBatches, evalCfg, init } = r;
  const ckptDir = path.join(o.outDir, 'checkpoints');
  const logPath = path.join(o.outDir, 'train-log.jsonl');
  const print = typeof o.progress === 'function' ? o.progress : progressPrinter(o.progress ?? 'auto');
  const emit = (e: ProgressEvent) => {
    if (o.distributed && o.distributed.rank !== 0) return;  // rank 0 logs for the group
    fs.appendFileSync(logPath, `${JSON.stringify({ time: new Date().toISOString(), ...e })}\n`);
    print(e);
  };
  // the kind's augmentations unless the caller gives its own (or false: none)
  const augment = o.augment === false ? undefined : (o.augment ?? r.kind?.augment);
  const loaderFor = (epoch: number): AsyncIterable<Batch | UnpairedBatch> & { length: number } =>
    r.unpaired
      ? new UnpairedLoader(r.unpaired, { batchSize, imageSize: pre.imageSize, fit: pre.fit, filter: pre.filter, views: pre.views, tokenizer: o.tokenizer, seed, epoch, workers: o.workers, augment })
      : new DataLoader(dataset, { split: 'train', batchSize, imageSize: pre.imageSize, fit: pre.fit, filter: pre.filter, views: pre.views, tokenizer: o.tokenizer, seed, epoch, workers: o.workers, augment });
  const stepsPerEpoch = Math.min(loaderFor(0).length, o.maxStepsPerEpoch ?? Infinity);
  const totalSteps = stepsPerEpoch * o.epochs;
  let trainOptions: Record<string, unknown> = {
    batchSize, lr, visualLr, schedule, seed, clipNorm, optimizer: o.optimizer, optimizerOptions: o.optimizerOptions, weightDecay: o.weightDecay,
    epochs: o.epochs, evaluate: evalCfg, preprocessing: pre, init, freeze: o.freeze ?? [], maxStepsPerEpoch: o.maxStepsPerEpoch ?? null, labels: r.labelled.source, precision: o.precision, device: o.device,
    ...(augment ? { augment } : {}),
    ...(r.unpaired ? { unpaired: { imagesFile: r.unpaired.imagesFile ?? null, reportsFile: r.unpaired.reportsFile ?? null, images: r.unpaired.images.length, reports: r.unpaired.reports.length } } : {}),
  };

  // Leftovers of interrupted checkpoint writes (this process holds the run's lock: none is live).
  if (!o.distributed || o.distributed.rank === 0) for (const name of ['last', 'best']) cleanCheckpointLeftovers(path.join(ckptDir, name), true);
  if (o.distributed)
    await agreeOnRun(o.distributed, { kind: model.kind, config: model.config, tokenizer: o.tokenizer.toJSON(), settings: trainOptions, trainStudies: dataset.splits.train.length, batchSize, unpaired: !!r.unpaired });
  const last = path.join(ckptDir, 'last');
  const previous = o.resume === false ? null : readCheckpointMeta(last);
  if (previous) {
    if (previous.kind !== model.kind) throw new RadkitError(`${FN}: ${last} holds a ${previous.kind} checkpoint, not ${model.kind}`, 'ERR_CHECKPOINT', FN);
    // Resuming into another configuration or vocabulary would load mismatched weights.
    if (JSON.stringify(previous.config) !== JSON.stringify(model.config) || JSON.stringify(previous.tokenizer) !== JSON.stringify(o.tokenizer.toJSON()))
      throw new RadkitError(
        `${FN}: ${last} holds a run of another ${model.kind} configuration or tokenizer; use a new outDir, or resume: false to train from scratch there`,
        'ERR_CHECKPOINT',
        FN,
      );
    // ... and other settings would continue it silently as another run than the one recorded.
    const recorded = { ...(previous.trainOptions ?? {}) };
    const differences = settingsDifferences({ preprocessing: previous.preprocessing, ...recorded }, trainOptions);
    if (differences.length && !o.forceNewSettings)
      throw new RadkitError(
        `${FN}: ${last} was trained with other settings; resuming would continue it as another run:\n  ${differences.join('\n  ')}\n` +
          'Train with the recorded settings, into a new outDir, from scratch (resume: false / --no-resume), or continue with the new ones (forceNewSettings / --force-new-settings).',
        'ERR_CHECKPOINT',
        FN,
      );
    const changes = [...((recorded.settingsChanges as unknown[]) ?? []), ...(differences.length ? [{ afterEpoch: previous.epoch, differences }] : [])];
    if (changes.length) trainOptions = { ...trainOptions, settingsChanges: changes };
    if (differences.length) emit({ type: 'settings', afterEpoch: previous.epoch, differences });
  }

  // Staged weights first: a failed init (it writes nothing then) leaves the model unfrozen and without an optimizer.
  const initReport: InitReport | undefined = !previous && init ? await initFromRun(model, init, FN) : undefined;
  model.to(o.device!);
  manualSeed(seed);
  const frozen = o.freeze?.length ? model.freeze(o.freeze) : [];
  model.setupOptimizer({ kind: o.optimizer, lr, visualLr, weightDecay: o.weightDecay, ...o.optimizerOptions });

  let startEpoch = 0;
  let best: CheckpointMeta['best'] = null;
  let history: TrainResult['history'] = [];
  if (r.labelled.source === 'labeler') emit({ type: 'labels', source: 'labeler', studies: r.labelled.derived });
  if (previous) {
    // Weights, optimizer moments and the random generators' state: the rest of the run is the one
    // an uninterrupted run would have trained (same data order: the loader's is seeded per epoch).
    await restoreInto(model, last, true);
    startEpoch = previous.epoch;
    best = previous.best;
    history = (previous.metrics.history as TrainResult['history']) ?? [];
  } else {
    if (initReport) {
      fs.writeFileSync(path.join(o.outDir, 'init.json'), JSON.stringify(initReport, null, 2));
      emit({ type: 'init', from: initReport.from, prefix: initReport.prefix, copied: initReport.copied.length, skipped: initReport.skipped.length, new: initReport.new.length });
    }
    if (initBatches > 0) {
      const batches: TensorBatch[] = [];
      try {
        for await (const b of loaderFor(0)) {
          batches.push(tensorsOf(model, o.tokenizer, b));
          if (batches.length >= initBatches) break;
        }
        await model.initializeFromData(batches);
      } finally {
        batches.forEach((b) => b.dispose());
      }
    }
  }
  // Every rank starts from rank 0's weights and buffers.
  if (o.distributed) emit({ type: 'distributed', worldSize: o.distributed.worldSize, ...model.setDistributed(o.distributed) });
  emit({ type: 'start', epochs: o.epochs, stepsPerEpoch, startEpoch, parameters: model.parameterCount, frozen: frozen.length });

  const meta = (epoch: number, metrics: Record<string, unknown>): CheckpointMeta => ({
    format: 'radkit-checkpoint',
    version: 1,
    kind: model.kind,
    ...(model.nativeKind !== model.kind ? { nativeKind: model.nativeKind } : {}),
    config: model.config,
    tokenizer: o.tokenizer.toJSON(),
    preprocessing: pre,
    epoch,
    step: epoch * stepsPerEpoch,
    best,
    metrics,
    trainOptions,
    savedAt: new Date().toISOString(),
  });

  for (let epoch = startEpoch; epoch < o.epochs; epoch++) {
    const t0 = performance.now();
    let lossSum = 0;
    let seen = 0;
    let stepInEpoch = 0;
    for await (const batch of o.distributed ? shardedEpoch(loaderFor(epoch) as DataLoader, epoch, batchSize, o.distributed) : loaderFor(epoch)) {
      if (o.signal?.aborted) throw new RadkitError(`${FN}: aborted during epoch ${epoch + 1}; the last completed epoch is checkpointed in ${last}`, 'ERR_ABORTED', FN);
      if (stepInEpoch >= stepsPerEpoch) break;
      const step = epoch * stepsPerEpoch + stepInEpoch;
      const f = lrFactor(schedule, epoch, step, totalSteps);
      model.setLearningRates(lr * f, visualLr * f);
      const tb = tensorsOf(model, o.tokenizer, batch);
      let res;
      try {
        res = await model.trainStep(tb, { clipNorm, step, totalSteps, precision: o.precision });
      } catch (err) {
        // The step changed nothing (native restores the model); the run's checkpoints are as the last epoch left them.
        if (err instanceof OutOfMemoryError)
          throw new OutOfMemoryError(
            `${FN}: ${err.message}; ${epoch > 0 ? `the last completed epoch (${epoch}) is checkpointed in ${last}` : 'no epoch has completed, so nothing is checkpointed yet'}`,
            err.code,
            FN,
            { cause: err },
          );
        throw err;
      } finally {
        tb.dispose();
      }
      const rows = 'imageIds' in batch ? batch.imageIds.length : batch.ids.length;
      lossSum += res.loss * rows;
      seen += rows;
      stepInEpoch++;
      emit({ type: 'step', epoch, step, stepInEpoch, stepsPerEpoch, loss: res.loss, parts: res.parts, lr: lr * f, imagesPerSecond: seen / ((performance.now() - t0) / 1000) });
    }
    const seconds = (performance.now() - t0) / 1000;
    const entry: TrainResult['history'][number] = { epoch, trainLoss: lossSum / Math.max(1, seen), seconds, imagesPerSecond: seen / seconds };
    let isBest = !evalCfg;
    if (evalCfg && ((epoch + 1) % evalCfg.every === 0 || epoch + 1 === o.epochs)) {
      const split = { split: evalCfg.split, preprocessing: pre, maxItems: evalCfg.maxItems, signal: o.signal, workers: o.workers };
      const ev = o.distributed
        ? await evaluateDistributed(evaluateWith, model, o.tokenizer, dataset, { ...split, generate: evalCfg.generate }, o.distributed)
        : await evaluateWith(model, o.tokenizer, dataset, { ...split, generate: evalCfg.generate });
      entry.metrics = ev.headline;
      const score = ev.headline[evalCfg.metric];
      if (score === undefined) throw new ArgumentError(`${FN}: evaluate.metric '${evalCfg.metric}' is not one of ${Object.keys(ev.headline).join(', ')}`, 'ERR_INVALID_ARG', FN);
      // A tie goes to the later epoch: a metric that sits on a plateau (e.g. CE micro-F1 while every
      // report labels to the same set) then keeps the weights trained longest, not epoch 1's.
      if (!best || score >= best.score) {
        best = { metric: evalCfg.metric, score, epoch: epoch + 1 };
        isBest = true;
      }
    } else if (!evalCfg) {
      best = { metric: 'last', score: epoch + 1, epoch: epoch + 1 };
    }
    history.push(entry);
    const writes = !o.distributed || o.distributed.rank === 0;  // every rank holds the same weights
    if (isBest && writes) await writeCheckpoint(path.join(ckptDir, 'best'), model, meta(epoch + 1, { history, epoch: entry }), false);
    if (writes) await writeCheckpoint(last, model, meta(epoch + 1, { history, epoch: entry }), true);
    emit({ type: 'epoch', epoch, trainLoss: entry.trainLoss, seconds, metrics: entry.metrics, best: isBest });
    emit({ type: 'checkpoint', epoch, path: last });
  }
  if (!o.distributed || o.distributed.rank === 0) fs.writeFileSync(path.join(o.outDir, 'metrics.json'), JSON.stringify({ best, history }, null, 2));
  emit({ type: 'done', epochs: o.epochs, best });
  return { outDir: o.outDir, epochs: o.epochs, best, history, init: initReport, frozen };
}

/** The tensors of a paired loader batch (as the kind wants them) or of an unpaired one. */
function tensorsOf(model: Model, tokenizer: ReportTokenizer, b: Batch | UnpairedBatch): TensorBatch {
  return 'imageIds' in b ? unpairedTensorBatch(b) : prepareBatch(model, tokenizer, b);
}

/**
 * The unpaired sets beside a dataset's annotation file (`unpaired/images.json`, `unpaired/reports.json`,
 * as `radkit synth --unpaired` writes them), read and checked (every entry labelled with known
 * observations, every image present) before a run folder is touched: a DataError names the file.
 */
function unpairedBeside(dataset: R2GenDataset): UnpairedDataset {
  const dir = path.join(path.dirname(dataset.annotationPath), 'unpaired');
  for (const f of ['images.json', 'reports.json'])
    if (!fs.existsSync(path.join(dir, f)))
      throw new DataError({ file: path.join(dir, f), message: 'not found: a model that trains unpaired reads labelled images and labelled reports from here (radkit synth --unpaired writes them), or give train() options.unpaired' }, FN);
  const u = readUnpaired(dir, { imageDir: dataset.imageDir });
  for (const x of u.images)
    for (const p of x.imagePaths.slice(0, 1))
      if (!fs.existsSync(p)) throw new DataError({ file: u.imagesFile ?? path.join(dir, 'images.json'), entry: `image "${x.id}"`, message: `image not found: ${p}` }, FN);
  return u;
}

/** Later layers override earlier ones key by key; undefined values do not override. */
function layer<T>(...layers: Partial<T>[]): T {
  const out: Record<string, unknown> = {};
  for (const l of layers) for (const [k, v] of Object.entries(l)) if (v !== undefined) out[k] = v;
  return out as T;
}
