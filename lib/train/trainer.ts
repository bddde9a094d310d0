import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataLoader } from '../data/loader.js';
import type { R2GenDataset, SplitName } from '../data/r2gen.js';
import { ArgumentError, RadkitError } from '../errors.js';
import { TensorBatch, type GenerateOptions, type Model } from '../models/model.js';
import { manualSeed } from '../runtime.js';
import { Tokenizer } from '../text/tokenizer.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';
import { readCheckpointMeta, restoreInto, writeCheckpoint, type CheckpointMeta, type Preprocessing } from './checkpoint.js';
import { evaluateSplit } from './evaluate.js';
import { evaluateRetrieval } from '../align/evaluate.js';
import { modelTask } from '../models/tasks.js';
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
}

export interface TrainResult {
  outDir: string;
  epochs: number;
  best: CheckpointMeta['best'];
  history: { epoch: number; trainLoss: number; seconds: number; imagesPerSecond: number; metrics?: Record<string, number> }[];
}

const FN = 'train';

function check(o: TrainOptions): void {
  if (!o || typeof o !== 'object') throw new ArgumentError(`${FN}: options must be an object`, 'ERR_INVALID_ARG', FN);
  if (!o.tokenizer) throw new ArgumentError(`${FN}: options.tokenizer is required`, 'ERR_INVALID_ARG', FN);
  if (typeof o.outDir !== 'string' || !o.outDir) throw new ArgumentError(`${FN}: options.outDir must be a folder path`, 'ERR_INVALID_ARG', FN);
  if (!Number.isInteger(o.epochs) || o.epochs < 1) throw new ArgumentError(`${FN}: options.epochs must be a positive integer, got ${o.epochs}`, 'ERR_INVALID_ARG', FN);
  for (const k of ['lr', 'visualLr', 'batchSize', 'imageSize'] as const) {
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
  const o = options;
  const task = modelTask(model.kind);
  if (task === 'generation' && !(o.tokenizer instanceof Tokenizer))
    throw new ArgumentError(`${FN}: ${model.kind} generates reports and needs radkit's Tokenizer (BOS = EOS = PAD = 0), not ${o.tokenizer.constructor.name}`, 'ERR_INVALID_ARG', FN);
  // Alignment models match one (frontal) image to its report; report generators read every view.
  const pre: Preprocessing = { imageSize: o.imageSize ?? 128, views: o.views ?? (dataset.style === 'iu' && task === 'generation' ? 2 : 1) };
  const batchSize = o.batchSize ?? 16;
  const lr = o.lr ?? 1e-3;
  const visualLr = o.visualLr ?? lr / 2;
  const schedule = o.schedule ?? { kind: 'step', gamma: 0.8 };
  const seed = o.seed ?? 0;
  const evalCfg = o.evaluate === false ? null : { split: 'val' as SplitName, metric: task === 'retrieval' ? 'meanRecall' : 'bleu4', every: 1, ...(o.evaluate ?? {}) };
  fs.mkdirSync(o.outDir, { recursive: true });
  const ckptDir = path.join(o.outDir, 'checkpoints');
  const logPath = path.join(o.outDir, 'train-log.jsonl');
  const print = typeof o.progress === 'function' ? o.progress : progressPrinter(o.progress ?? 'auto');
  const emit = (e: ProgressEvent) => {
    fs.appendFileSync(logPath, `${JSON.stringify({ time: new Date().toISOString(), ...e })}\n`);
    print(e);
  };
  const trainOptions = { batchSize, lr, visualLr, schedule, seed, clipNorm: o.clipNorm ?? 1, optimizer: o.optimizer ?? 'adam', optimizerOptions: o.optimizerOptions, weightDecay: o.weightDecay, epochs: o.epochs, evaluate: evalCfg, preprocessing: pre };

  manualSeed(seed);
  model.setupOptimizer({ kind: o.optimizer ?? 'adam', lr, visualLr, weightDecay: o.weightDecay, ...o.optimizerOptions });
  const trainSet = dataset.splits.train;
  if (!trainSet.length) throw new ArgumentError(`${FN}: the dataset has no training studies`, 'ERR_INVALID_ARG', FN);
  const loaderFor = (epoch: number) =>
    new DataLoader(dataset, { split: 'train', batchSize, imageSize: pre.imageSize, views: pre.views, tokenizer: o.tokenizer, seed, epoch, workers: o.workers });
  const stepsPerEpoch = Math.min(loaderFor(0).length, o.maxStepsPerEpoch ?? Infinity);
  const totalSteps = stepsPerEpoch * o.epochs;

  let startEpoch = 0;
  let best: CheckpointMeta['best'] = null;
  let history: TrainResult['history'] = [];
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
  } else if ((o.initBatches ?? 8) > 0) {
    const batches: TensorBatch[] = [];
    for await (const b of loaderFor(0)) {
      batches.push(new TensorBatch(b));
      if (batches.length >= (o.initBatches ?? 8)) break;
    }
    try {
      await model.initializeFromData(batches);
    } finally {
      batches.forEach((b) => b.dispose());
    }
  }
  emit({ type: 'start', epochs: o.epochs, stepsPerEpoch, startEpoch, parameters: model.parameterCount });

  const meta = (epoch: number, metrics: Record<string, unknown>): CheckpointMeta => ({
    format: 'radkit-checkpoint',
    version: 1,
    kind: model.kind,
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
      const tb = new TensorBatch(batch);
      let r;
      try {
        r = await model.trainStep(tb, { clipNorm: o.clipNorm ?? 1 });
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
      const ev = task === 'retrieval' ? await evaluateRetrieval(model, o.tokenizer, dataset, split) : await evaluateSplit(model, o.tokenizer as Tokenizer, dataset, { ...split, generate: evalCfg.generate });
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
  return { outDir: o.outDir, epochs: o.epochs, best, history };
}
