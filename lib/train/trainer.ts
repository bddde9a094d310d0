import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataLoader } from '../data/loader.js';
import type { R2GenDataset, SplitName } from '../data/r2gen.js';
import { ArgumentError, RadkitError } from '../errors.js';
import type { GenerateOptions, Model, TensorBatch } from '../models/model.js';
import { findModelKind, prepareBatch, type TrainingRecipe } from '../models/registry.js';
import { manualSeed } from '../runtime.js';
import { Tokenizer } from '../text/tokenizer.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';
import { readCheckpointMeta, restoreInto, writeCheckpoint, type CheckpointMeta, type Preprocessing } from './checkpoint.js';
import { generationEvaluation } from './evaluate.js';
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
   * (default metric meanRecall of R@1/5/10 both ways).
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

function check(o: TrainOptions): void {
  if (!o || typeof o !== 'object') throw new ArgumentError(`${FN}: options must be an object`, 'ERR_INVALID_ARG', FN);
  if (!o.tokenizer) throw new ArgumentError(`${FN}: options.tokenizer is required`, 'ERR_INVALID_ARG', FN);
  if (typeof o.outDir !== 'string' || !o.outDir) throw new ArgumentError(`${FN}: options.outDir must be a folder path`, 'ERR_INVALID_ARG', FN);
  if (!Number.isInteger(o.epochs) || o.epochs < 1) throw new ArgumentError(`${FN}: options.epochs must be a positive integer, got ${o.epochs}`, 'ERR_INVALID_ARG', FN);
  if (o.freeze !== undefined && !(Array.isArray(o.freeze) && o.freeze.every((p) => typeof p === 'string' && p)))
    throw new ArgumentError(`${FN}: options.freeze must be an array of parameter-name prefixes`, 'ERR_INVALID_ARG', FN);
  for (const k of ['lr', 'visualLr', 'batchSize', 'imageSize', 'visualLrFactor'] as const) {
    const v = o[k];
    if (v !== undefined && !(typeof v === 'number' && v > 0 && Number.isFinite(v))) throw new ArgumentError(`${FN}: options.${k} must be a positive number, got ${String(v)}`, 'ERR_INVALID_ARG', FN);
  }
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
  const o = layer<TrainOptions>(TRAIN_DEFAULTS as Partial<TrainOptions>, kind?.recipe?.({ batchSize: options.batchSize, dataset, flags: {} }) ?? {}, options);
  const task = kind?.task ?? 'generation';
  const evaluateWith = kind?.evaluate ?? generationEvaluation;
  if (task === 'generation' && !(o.tokenizer instanceof Tokenizer))
    throw new ArgumentError(`${FN}: ${model.kind} generates reports and needs radkit's Tokenizer (BOS = EOS = PAD = 0), not ${o.tokenizer.constructor.name}`, 'ERR_INVALID_ARG', FN);
  const pre: Preprocessing = { imageSize: o.imageSize!, views: o.views ?? kind?.views?.(dataset) ?? 1 };
  const batchSize = o.batchSize!;
  const lr = o.lr!;
  const visualLr = o.visualLr ?? lr * o.visualLrFactor!;
  const schedule = o.schedule!;
  const seed = o.seed!;
  const clipNorm = o.clipNorm!;
  const initBatches = o.initBatches!;
  const evalCfg = o.evaluate === false ? null : layer<Exclude<TrainOptions['evaluate'], false | undefined> & { split: SplitName; metric: string; every: number }>({ split: 'val', metric: kind?.metric ?? 'bleu4', every: 1 }, o.evaluate ?? {});
  const init = o.init === undefined ? undefined : parseInitSpec(o.init, FN);
  fs.mkdirSync(o.outDir, { recursive: true });
  const ckptDir = path.join(o.outDir, 'checkpoints');
  const logPath = path.join(o.outDir, 'train-log.jsonl');
  const print = typeof o.progress === 'function' ? o.progress : progressPrinter(o.progress ?? 'auto');
  const emit = (e: ProgressEvent) => {
    fs.appendFileSync(logPath, `${JSON.stringify({ time: new Date().toISOString(), ...e })}\n`);
    print(e);
  };
  const trainOptions = {
    batchSize, lr, visualLr, schedule, seed, clipNorm, optimizer: o.optimizer, optimizerOptions: o.optimizerOptions, weightDecay: o.weightDecay,
    epochs: o.epochs, evaluate: evalCfg, preprocessing: pre, init, freeze: o.freeze ?? [],
  };

  manualSeed(seed);
  const frozen = o.freeze?.length ? model.freeze(o.freeze) : [];
  model.setupOptimizer({ kind: o.optimizer, lr, visualLr, weightDecay: o.weightDecay, ...o.optimizerOptions });
  const trainSet = dataset.splits.train;
  if (!trainSet.length) throw new ArgumentError(`${FN}: the dataset has no training studies`, 'ERR_INVALID_ARG', FN);
  const loaderFor = (epoch: number) =>
    new DataLoader(dataset, { split: 'train', batchSize, imageSize: pre.imageSize, views: pre.views, tokenizer: o.tokenizer, seed, epoch, workers: o.workers, augment: kind?.augment });
  const stepsPerEpoch = Math.min(loaderFor(0).length, o.maxStepsPerEpoch ?? Infinity);
  const totalSteps = stepsPerEpoch * o.epochs;

  let startEpoch = 0;
  let best: CheckpointMeta['best'] = null;
  let history: TrainResult['history'] = [];
  let initReport: InitReport | undefined;
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
    await restoreInto(model, last, true);
    startEpoch = previous.epoch;
    best = previous.best;
    history = (previous.metrics.history as TrainResult['history']) ?? [];
  } else {
    if (init) {
      initReport = await initFromRun(model, init, FN);
      fs.writeFileSync(path.join(o.outDir, 'init.json'), JSON.stringify(initReport, null, 2));
      emit({ type: 'init', from: initReport.from, prefix: initReport.prefix, copied: initReport.copied.length, skipped: initReport.skipped.length, new: initReport.new.length });
    }
    if (initBatches > 0) {
      const batches: TensorBatch[] = [];
      try {
        for await (const b of loaderFor(0)) {
          batches.push(prepareBatch(model.kind, b));
          if (batches.length >= initBatches) break;
        }
        await model.initializeFromData(batches);
      } finally {
        batches.forEach((b) => b.dispose());
      }
    }
  }
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
    for await (const batch of loaderFor(epoch)) {
      if (o.signal?.aborted) throw new RadkitError(`${FN}: aborted during epoch ${epoch + 1}; the last completed epoch is checkpointed in ${last}`, 'ERR_ABORTED', FN);
      if (stepInEpoch >= stepsPerEpoch) break;
      const step = epoch * stepsPerEpoch + stepInEpoch;
      const f = lrFactor(schedule, epoch, step, totalSteps);
      model.setLearningRates(lr * f, visualLr * f);
      const tb = prepareBatch(model.kind, batch);
      let r;
      try {
        r = await model.trainStep(tb, { clipNorm, step, totalSteps });
      } finally {
        tb.dispose();
      }
      lossSum += r.loss * batch.ids.length;
      seen += batch.ids.length;
      stepInEpoch++;
      emit({ type: 'step', epoch, step, stepInEpoch, stepsPerEpoch, loss: r.loss, parts: r.parts, lr: lr * f, imagesPerSecond: seen / ((performance.now() - t0) / 1000) });
    }
    const seconds = (performance.now() - t0) / 1000;
    const entry: TrainResult['history'][number] = { epoch, trainLoss: lossSum / Math.max(1, seen), seconds, imagesPerSecond: seen / seconds };
    let isBest = !evalCfg;
    if (evalCfg && ((epoch + 1) % evalCfg.every === 0 || epoch + 1 === o.epochs)) {
      const split = { split: evalCfg.split, preprocessing: pre, maxItems: evalCfg.maxItems, signal: o.signal, workers: o.workers };
      const ev = await evaluateWith(model, o.tokenizer, dataset, { ...split, generate: evalCfg.generate });
      entry.metrics = ev.headline;
      const score = ev.headline[evalCfg.metric];
      if (score === undefined) throw new ArgumentError(`${FN}: evaluate.metric '${evalCfg.metric}' is not one of ${Object.keys(ev.headline).join(', ')}`, 'ERR_INVALID_ARG', FN);
      if (!best || score > best.score) {
        best = { metric: evalCfg.metric, score, epoch: epoch + 1 };
        isBest = true;
      }
    } else if (!evalCfg) {
      best = { metric: 'last', score: epoch + 1, epoch: epoch + 1 };
    }
    history.push(entry);
    if (isBest) await writeCheckpoint(path.join(ckptDir, 'best'), model, meta(epoch + 1, { history, epoch: entry }), false);
    await writeCheckpoint(last, model, meta(epoch + 1, { history, epoch: entry }), true);
    emit({ type: 'epoch', epoch, trainLoss: entry.trainLoss, seconds, metrics: entry.metrics, best: isBest });
    emit({ type: 'checkpoint', epoch, path: last });
  }
  fs.writeFileSync(path.join(o.outDir, 'metrics.json'), JSON.stringify({ best, history }, null, 2));
  emit({ type: 'done', epochs: o.epochs, best });
  return { outDir: o.outDir, epochs: o.epochs, best, history, init: initReport, frozen };
}

/** Later layers override earlier ones key by key; undefined values do not override. */
function layer<T>(...layers: Partial<T>[]): T {
  const out: Record<string, unknown> = {};
  for (const l of layers) for (const [k, v] of Object.entries(l)) if (v !== undefined) out[k] = v;
  return out as T;
}
