import * as fs from 'node:fs';
import * as path from 'node:path';
import { RadkitError } from '../errors.js';
import { Model } from '../models/model.js';
import '../models/builtins.js';
import { createOptions, findModelKind } from '../models/registry.js';
import { Tokenizer } from '../text/tokenizer.js';
import { tokenizerFromJSON, type ReportTokenizerJSON } from '../text/report-tokenizer.js';
import type { WordPieceTokenizer } from '../text/wordpiece.js';

/** How images were prepared for the model (a checkpoint generates on new images with these). */
export interface Preprocessing {
  imageSize: number;
  views: number;
  mean?: number;
  std?: number;
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

/**
 * Writes a checkpoint directory atomically: everything goes to a temporary sibling first, then one
 * rename puts it in place (the previous version is moved aside and removed after). A crash at any
 * point leaves either the old or the new checkpoint whole; readCheckpoint() also recovers `.old`.
 */
export async function writeCheckpoint(dir: string, model: Model, meta: CheckpointMeta, withOptimizer = true): Promise<void> {
  const parent = path.dirname(dir);
  fs.mkdirSync(parent, { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  fs.mkdirSync(tmp, { recursive: true });
  try {
    await model.saveWeights(path.join(tmp, WEIGHTS), withOptimizer ? path.join(tmp, OPTIMIZER) : undefined);
    const fd = fs.openSync(path.join(tmp, META), 'w');
    fs.writeSync(fd, JSON.stringify(meta, null, 2));
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    const old = `${dir}.old`;
    fs.rmSync(old, { recursive: true, force: true });
    if (fs.existsSync(dir)) fs.renameSync(dir, old);
    fs.renameSync(tmp, dir);
    fs.rmSync(old, { recursive: true, force: true });
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** The checkpoint directory to read: `dir`, or its `.old` twin when a crash interrupted the swap. */
function resolveCheckpointDir(dir: string): string | null {
  if (fs.existsSync(path.join(dir, META))) return dir;
  if (fs.existsSync(path.join(`${dir}.old`, META))) return `${dir}.old`;
  return null;
}

export function readCheckpointMeta(dir: string): CheckpointMeta | null {
  const d = resolveCheckpointDir(dir);
  if (!d) return null;
  const meta = JSON.parse(fs.readFileSync(path.join(d, META), 'utf8')) as CheckpointMeta;
  if (meta.format !== 'radkit-checkpoint') throw new RadkitError(`${d}: not a radkit checkpoint`, 'ERR_CHECKPOINT', 'readCheckpoint');
  return meta;
}

/** Restores weights (and optimizer state when the model has an optimizer and the file exists). */
export async function restoreInto(model: Model, dir: string, withOptimizer: boolean): Promise<CheckpointMeta> {
  const d = resolveCheckpointDir(dir);
  if (!d) throw new RadkitError(`no checkpoint at ${dir}`, 'ERR_CHECKPOINT', 'restoreInto');
  const opt = path.join(d, OPTIMIZER);
  await model.loadWeights(path.join(d, WEIGHTS), withOptimizer && fs.existsSync(opt) ? opt : undefined);
  return readCheckpointMeta(d)!;
}

export interface LoadedCheckpoint {
  model: Model;
  /** radkit's Tokenizer for report generators; alignment models may carry a WordPieceTokenizer. */
  tokenizer: Tokenizer | WordPieceTokenizer;
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
 * or a run folder (its checkpoints/best, else checkpoints/last).
 */
export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  const found = findCheckpointDir(dir, 'loadCheckpoint');
  const meta = readCheckpointMeta(found)!;
  // The registry gives the kind's native system and generation defaults; a kind this process has
  // not registered still loads through the native system the checkpoint names.
  const kind = findModelKind(meta.kind);
  const options = kind ? createOptions(kind) : { nativeKind: meta.nativeKind ?? meta.kind };
  const model = Model.create(meta.kind, meta.config as Record<string, number>, options);
  try {
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
