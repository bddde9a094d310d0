/**
 * A cache of VQ image codes per study (AdaMatch-Cyclic's image tokens; `radkit tokenize-images`):
 * one JSON file holding the tokenizer it came from (kind, configuration, a hash of its weights),
 * the image size, the code grid and, for every study, the codes of its first view, row-major.
 * Written atomically (a temporary file renamed over it) every few batches, so an interrupted run
 * keeps what it finished and a rerun with the same tokenizer encodes only the studies missing.
 * A file made by another tokenizer or image size is refused, not mixed.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArgumentError, RadkitError } from '../errors.js';
import type { Model } from './model.js';
import { encodeImages } from './vqgan.js';
import { DataLoader } from '../data/loader.js';
import type { FitMode, ResizeFilter } from '../data/image.js';
import type { R2GenDataset, SplitName } from '../data/r2gen.js';

export interface ImageCodesFile {
  format: 'radkit-image-codes';
  version: 1;
  tokenizer: { kind: string; weightsSha256: string; config: Record<string, unknown> };
  imageSize: number;
  /** Codes per image: grid[0] x grid[1]. */
  grid: [number, number];
  nEmbed: number;
  /** Study id -> codes of its first view (row-major). */
  codes: Record<string, number[]>;
}

/** sha256 of a file's bytes (the identity of a tokenizer's weights). */
export function fileSha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Reads and checks a codes file (ERR_DATA naming the file and what is wrong). */
export function readImageCodes(file: string): ImageCodesFile {
  let parsed: ImageCodesFile;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as ImageCodesFile;
  } catch (err) {
    throw new RadkitError(`readImageCodes: ${file} is not readable JSON (${(err as Error).message})`, 'ERR_DATA', 'readImageCodes', { cause: err });
  }
  const bad = (what: string) => new RadkitError(`readImageCodes: ${file}: ${what}`, 'ERR_DATA', 'readImageCodes');
  if (parsed?.format !== 'radkit-image-codes' || parsed.version !== 1) throw bad("not a radkit image-codes file (format 'radkit-image-codes', version 1)");
  if (!Array.isArray(parsed.grid) || parsed.grid.length !== 2 || !parsed.grid.every((g) => Number.isInteger(g) && g > 0)) throw bad('grid must be two positive whole numbers');
  if (!Number.isInteger(parsed.nEmbed) || parsed.nEmbed < 2) throw bad('nEmbed must be a whole number >= 2');
  if (!parsed.codes || typeof parsed.codes !== 'object') throw bad('codes must be an object of study id -> codes');
  const n = parsed.grid[0] * parsed.grid[1];
  for (const [id, c] of Object.entries(parsed.codes))
    if (!Array.isArray(c) || c.length !== n || !c.every((x) => Number.isInteger(x) && x >= 0 && x < parsed.nEmbed)) throw bad(`study '${id}' needs ${n} whole codes in [0, ${parsed.nEmbed})`);
  return parsed;
}

function writeAtomic(file: string, data: ImageCodesFile): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeFileSync(fd, JSON.stringify(data));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

export interface TokenizeImagesOptions {
  /** The codes file (created, or continued when it holds codes of the same tokenizer). */
  file: string;
  /** sha256 of the tokenizer's weights file (its identity in the codes file). */
  weightsSha256: string;
  imageSize: number;
  /** How images become imageSize x imageSize (the tokenizer checkpoint's preprocessing; default 'stretch', 'lanczos3'). */
  fit?: FitMode;
  filter?: ResizeFilter;
  splits?: SplitName[];
  batchSize?: number;
  /** Save every this many batches (default 8). */
  saveEvery?: number;
  workers?: number;
  signal?: AbortSignal;
  /** Called after each batch with the studies encoded so far and the number to do. */
  onProgress?: (done: number, total: number) => void;
}

/** Encodes the first view of every study of `splits` (default all three) not yet in the file. */
export async function tokenizeImages(model: Model, dataset: R2GenDataset, o: TokenizeImagesOptions): Promise<{ file: string; encoded: number; kept: number; total: number }> {
  const fn = 'tokenizeImages';
  if (model.kind !== 'vqgan') throw new ArgumentError(`${fn}: needs a vqgan model, got ${model.kind}`, 'ERR_INVALID_ARG', fn);
  const splits = o.splits ?? ['train', 'val', 'test'];
  const nEmbed = Number(model.config.nEmbed);
  let data: ImageCodesFile | undefined;
  if (fs.existsSync(o.file)) {
    const old = readImageCodes(o.file);
    if (old.tokenizer.weightsSha256 !== o.weightsSha256 || old.imageSize !== o.imageSize || old.nEmbed !== nEmbed)
      throw new RadkitError(
        `${fn}: ${o.file} holds codes of another tokenizer or image size (weights ${old.tokenizer.weightsSha256.slice(0, 12)}, ${old.imageSize} px); remove it or write elsewhere`,
        'ERR_EXISTS',
        fn,
      );
    data = old;
  }
  const kept = data ? Object.keys(data.codes).length : 0;
  const wanted = splits.flatMap((s) => dataset.splits[s]);
  const todo = wanted.filter((e) => !data?.codes[e.id]);
  let encoded = 0;
  fs.mkdirSync(path.dirname(path.resolve(o.file)), { recursive: true });
  if (todo.length) {
    const sub: R2GenDataset = { ...dataset, splits: { train: todo, val: [], test: [] } };
    const loader = new DataLoader(sub, { split: 'train', batchSize: o.batchSize ?? 16, imageSize: o.imageSize, fit: o.fit, filter: o.filter, views: 1, shuffle: false, workers: o.workers });
    let batches = 0;
    for await (const batch of loader) {
      if (o.signal?.aborted) break;
      const r = await encodeImages(model, batch.images);
      const [, , gh, gw] = r.shape;
      data ??= { format: 'radkit-image-codes', version: 1, tokenizer: { kind: model.kind, weightsSha256: o.weightsSha256, config: model.config }, imageSize: o.imageSize, grid: [gh, gw], nEmbed, codes: {} };
      const n = gh * gw;
      batch.ids.forEach((id, i) => (data!.codes[id] = Array.from(r.codes.subarray(i * n, (i + 1) * n))));
      encoded += batch.ids.length;
      o.onProgress?.(encoded, todo.length);
      if (++batches % (o.saveEvery ?? 8) === 0) writeAtomic(o.file, data);
    }
  }
  if (data) writeAtomic(o.file, data);
  if (o.signal?.aborted) throw new RadkitError(`${fn}: aborted after ${encoded} of ${todo.length} studies (saved; run again to continue)`, 'ERR_ABORTED', fn, { cause: o.signal.reason });
  return { file: o.file, encoded, kept, total: wanted.length };
}
