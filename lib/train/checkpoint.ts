import * as fs from 'node:fs';
import * as path from 'node:path';
import { RadkitError } from '../errors.js';
import { Model } from '../models/model.js';
import '../models/builtins.js';
import { createOptions, findModelKind } from '../models/registry.js';
import { Tokenizer } from '../text/tokenizer.js';
import { tokenizerFromJSON, type ReportTokenizerJSON } from '../text/report-tokenizer.js';
import type { WordPieceTokenizer } from '../text/wordpiece.js';
import { checkDevice } from '../runtime.js';
import type { HFReportTokenizer } from '../text/hf-report-tokenizer.js';
import { RESIZE_FILTERS, type FitMode, type ResizeFilter } from '../data/image.js';

/** How images were prepared for the model (a checkpoint generates on new images with these). */
export interface Preprocessing {
  imageSize: number;
  views: number;
  mean?: number;
  std?: number;
  /** How an image becomes imageSize x imageSize (absent in older checkpoints: 'stretch'). */
  fit?: FitMode;
  /** The resize kernel (absent in older checkpoints: 'lanczos3'). */
  filter?: ResizeFilter;
}

/** checkpoint.json: everything besides the LibTorch archives. */
export interface CheckpointMeta {
  format: 'radkit-checkpoint';
  version: 1;
  /** The registered model kind. */
  kind: string;
  /** The native system computing it, when it is not `kind` (kinds built on another kind's system). */
  nativeKind?: string;
  config: Record<string, unknown>;
  tokenizer: ReportTokenizerJSON;
  preprocessing: Preprocessing;
  /** Epochs completed. */
  epoch: number;
  step: number;
  best: { metric: string; score: number; epoch: number } | null;
  metrics: Record<string, unknown>;
  trainOptions: Record<string, unknown>;
  savedAt: string;
}

const WEIGHTS = 'weights.pt';
const OPTIMIZER = 'optimizer.pt';
const META = 'checkpoint.json';

/** Whether a process with this id runs on this machine (EPERM: it runs, as another user). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A checkpoint folder that is whole: its metadata and weights are there (folders only ever appear whole, by rename). */
function isWhole(dir: string): boolean {
  return fs.existsSync(path.join(dir, META)) && fs.existsSync(path.join(dir, WEIGHTS));
}

function fsyncPath(p: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(p, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some file systems cannot fsync a directory; the renames below are still atomic.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

const TMP = /^(.*)\.tmp-(\d+)-[0-9a-z]+$/;

/**
 * Removes what interrupted writes of checkpoint `dir` left beside it: temporary folders of writers
 * that no longer run (all of them with `all`, for a caller that holds the run's lock), and puts a
 * lone `.old` copy back in place (a crash between the two renames of a replacement).
 */
export function cleanCheckpointLeftovers(dir: string, all = false): string[] {
  const parent = path.dirname(dir);
  const base = path.basename(dir);
  const removed: string[] = [];
  if (!fs.existsSync(parent)) return removed;
  for (const name of fs.readdirSync(parent)) {
    const m = TMP.exec(name);
    if (!m || m[1] !== base) continue;
    if (!all && processAlive(Number(m[2]))) continue;
    fs.rmSync(path.join(parent, name), { recursive: true, force: true });
    removed.push(name);
  }
  const old = `${dir}.old`;
  if (fs.existsSync(old)) {
    if (isWhole(dir)) fs.rmSync(old, { recursive: true, force: true });
    else if (isWhole(old)) {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.renameSync(old, dir);
    }
  }
  return removed;
}

/**
 * Writes a checkpoint folder crash-safely: everything goes to a temporary sibling first (files and
 * folder fsynced), then renames swap it in. At every point of the sequence a whole copy exists at
 * `dir` or, between the two renames, at `dir.old`; readers take that one (a kill -9 anywhere leaves
 * the old or the new checkpoint, never none), and the next write puts a lone `.old` back first.
 * Temporary folders of writers that died are removed.
 */
export async function writeCheckpoint(dir: string, model: Model, meta: CheckpointMeta, withOptimizer = true): Promise<void> {
  const parent = path.dirname(dir);
  fs.mkdirSync(parent, { recursive: true });
  cleanCheckpointLeftovers(dir);
  const tmp = `${dir}.tmp-${process.pid}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e9).toString(36)}`;
  fs.mkdirSync(tmp);
  try {
    await model.saveWeights(path.join(tmp, WEIGHTS), withOptimizer ? path.join(tmp, OPTIMIZER) : undefined);
    fs.writeFileSync(path.join(tmp, META), JSON.stringify(meta, null, 2));
    for (const f of fs.readdirSync(tmp)) fsyncPath(path.join(tmp, f));
    fsyncPath(tmp);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  const old = `${dir}.old`;
  // A lone .old (an earlier crash between the renames) is the only whole copy: back in place first.
  if (!isWhole(dir) && isWhole(old)) {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(old, dir);
  }
  fs.rmSync(old, { recursive: true, force: true });
  if (fs.existsSync(dir)) fs.renameSync(dir, old);
  fs.renameSync(tmp, dir);
  fsyncPath(parent);
  fs.rmSync(old, { recursive: true, force: true });
}

/** The checkpoint directory to read: `dir`, or its `.old` twin when a crash interrupted the swap. */
function resolveCheckpointDir(dir: string): string | null {
  if (isWhole(dir)) return dir;
  if (isWhole(`${dir}.old`)) return `${dir}.old`;
  return null;
}

const damaged = (file: string, what: string) =>
  new RadkitError(
    `${file}: ${what}; this checkpoint is damaged: restore the file, use the run's other checkpoint (checkpoints/best or checkpoints/last), or train the run again from scratch (resume: false / --no-resume)`,
    'ERR_CHECKPOINT',
    'readCheckpoint',
  );

/** checkpoint.json of `dir` (or of its `.old` twin), checked field by field; null when there is no checkpoint. */
export function readCheckpointMeta(dir: string): CheckpointMeta | null {
  const d = resolveCheckpointDir(dir);
  if (!d) return null;
  const file = path.join(d, META);
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(fs.readFileSync(file, 'utf8')) as CheckpointMeta;
  } catch (err) {
    throw damaged(file, `not valid JSON (${(err as Error).message})`);
  }
  if (!meta || typeof meta !== 'object' || meta.format !== 'radkit-checkpoint') throw new RadkitError(`${file}: not a radkit checkpoint (no "format": "radkit-checkpoint")`, 'ERR_CHECKPOINT', 'readCheckpoint');
  const isObject = (v: unknown) => !!v && typeof v === 'object' && !Array.isArray(v);
  const checks: [boolean, string][] = [
    [typeof meta.kind === 'string' && meta.kind.length > 0, '"kind" must name a model kind'],
    [isObject(meta.config), '"config" must be an object'],
    [isObject(meta.tokenizer), '"tokenizer" must be an object'],
    [isObject(meta.preprocessing) && Number.isInteger(meta.preprocessing.imageSize) && meta.preprocessing.imageSize > 0 && Number.isInteger(meta.preprocessing.views) && meta.preprocessing.views > 0,
      '"preprocessing" must hold a positive integer imageSize and views'],
    [!isObject(meta.preprocessing) || meta.preprocessing.fit === undefined || meta.preprocessing.fit === 'stretch' || meta.preprocessing.fit === 'center-crop',
      '"preprocessing.fit" must be "stretch" or "center-crop"'],
    [!isObject(meta.preprocessing) || meta.preprocessing.filter === undefined || RESIZE_FILTERS.includes(meta.preprocessing.filter),
      `"preprocessing.filter" must be one of ${RESIZE_FILTERS.join(', ')}`],
    [Number.isInteger(meta.epoch) && meta.epoch >= 0, '"epoch" must be a non-negative integer'],
    [meta.best === null || meta.best === undefined || (isObject(meta.best) && typeof meta.best.metric === 'string'), '"best" must be null or { metric, score, epoch }'],
  ];
  for (const [ok, what] of checks) if (!ok) throw damaged(file, what);
  return meta;
}

/** Restores weights (and the training state: optimizer moments and random generators, when the model has an optimizer and the file exists). */
export async function restoreInto(model: Model, dir: string, withOptimizer: boolean): Promise<CheckpointMeta> {
  const d = resolveCheckpointDir(dir);
  if (!d) throw new RadkitError(`no checkpoint at ${dir}`, 'ERR_CHECKPOINT', 'restoreInto');
  const meta = readCheckpointMeta(d)!;
  const opt = path.join(d, OPTIMIZER);
  await model.loadWeights(path.join(d, WEIGHTS), withOptimizer && fs.existsSync(opt) ? opt : undefined);
  return meta;
}

/**
 * The run folder that checkpoint folder `dir` belongs to (RUN for RUN/checkpoints/NAME), or null
 * for a checkpoint folder on its own.
 */
export function runOfCheckpoint(dir: string): string | null {
  const abs = path.resolve(dir);
  return path.basename(path.dirname(abs)) === 'checkpoints' ? path.dirname(path.dirname(abs)) : null;
}

/**
 * The default output folder of a command reading checkpoint argument `arg` (a run or checkpoint
 * folder): beside the checkpoints, never inside a folder that training rewrites. A run folder, or
 * its checkpoints/best, gives RUN/NAME; another checkpoint of a run RUN/NAME-CHECKPOINT; a
 * checkpoint folder outside a run the sibling CHECKPOINT-NAME.
 */
export function defaultOutputDir(arg: string, name: string, fn = 'radkit'): string {
  const found = path.resolve(findCheckpointDir(arg, fn));
  const run = runOfCheckpoint(found);
  if (run) {
    const which = path.basename(found);
    return path.join(run, which === 'best' ? name : `${name}-${which}`);
  }
  return path.join(path.dirname(found), `${path.basename(found)}-${name}`);
}

/**
 * Refuses an output path inside a folder that radkit rewrites (a checkpoint folder, or a run's
 * checkpoints/ folder): the next `train` would replace it and the outputs with it.
 */
export function checkOutputOutsideCheckpoints(out: string, fn: string): void {
  const rewritten = (a: string) =>
    fs.existsSync(path.join(a, META)) || (path.basename(a) === 'checkpoints' && ['last', 'best', 'last.old', 'best.old'].some((c) => fs.existsSync(path.join(a, c))));
  for (let a = path.resolve(out); ; a = path.dirname(a)) {
    if (rewritten(a))
      throw new RadkitError(
        `${fn}: ${out} lies inside ${a}, a folder that training rewrites (it would be replaced with everything in it); choose an output folder outside it, e.g. beside the run's checkpoints`,
        'ERR_INVALID_ARG',
        fn,
      );
    if (path.dirname(a) === a) return;
  }
}

export interface LoadedCheckpoint {
  model: Model;
  /** radkit's Tokenizer for report generators; alignment models may carry a WordPieceTokenizer, LMs with their own vocabulary an HFReportTokenizer. */
  tokenizer: Tokenizer | WordPieceTokenizer | HFReportTokenizer;
  meta: CheckpointMeta;
}

/** The checkpoint folder `dir` names: itself, or a run's checkpoints/best, else checkpoints/last. */
export function findCheckpointDir(dir: string, fn: string): string {
  const candidates = [dir, path.join(dir, 'checkpoints', 'best'), path.join(dir, 'checkpoints', 'last')];
  const found = candidates.find((c) => resolveCheckpointDir(c));
  if (!found) throw new RadkitError(`${fn}: no radkit checkpoint in ${dir} (looked for ${candidates.map((c) => path.join(c, META)).join(', ')})`, 'ERR_CHECKPOINT', fn);
  return found;
}

/**
 * Loads a checkpoint for generation on its own: `dir` is a checkpoint folder (with checkpoint.json)
 * or a run folder (its checkpoints/best, else checkpoints/last). `device` ('cpu' default, 'cuda',
 * 'cuda:N') places the model there (checkpoints are device-agnostic CPU archives); one that cannot be
 * used here is an ArgumentError ERR_DEVICE before anything is read.
 */
export async function loadCheckpoint(dir: string, where: { device?: string } = {}): Promise<LoadedCheckpoint> {
  const device = where.device === undefined ? undefined : checkDevice(where.device, 'loadCheckpoint');
  const found = findCheckpointDir(dir, 'loadCheckpoint');
  const meta = readCheckpointMeta(found)!;
  // The registry gives the kind's native system and generation defaults; a kind this process has
  // not registered still loads through the native system the checkpoint names.
  const kind = findModelKind(meta.kind);
  const options = kind ? createOptions(kind) : { nativeKind: meta.nativeKind ?? meta.kind };
  const model = Model.create(meta.kind, meta.config as Record<string, number>, options);
  try {
    if (device) model.to(device);
    await restoreInto(model, found, false);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return { model, tokenizer: tokenizerFromJSON(meta.tokenizer), meta };
}

/** The checkpoint's tokenizer as a report generator needs it (radkit's Tokenizer, BOS = EOS = PAD = 0). */
export function generationTokenizer(ck: LoadedCheckpoint, fn: string): Tokenizer {
  if (ck.tokenizer instanceof Tokenizer) return ck.tokenizer;
  throw new RadkitError(`${fn}: this ${ck.meta.kind} checkpoint has a ${ck.tokenizer.constructor.name}; report generation needs radkit's Tokenizer`, 'ERR_CHECKPOINT', fn);
}
