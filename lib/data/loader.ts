/**
 * Batching with prefetch for R2Gen-style datasets.
 *
 * Images are read and decoded in `worker_threads` (a small pool), so iterating never blocks the
 * event loop; at most `prefetch` batches are in flight. Iteration is an async iterator:
 *
 * ```ts
 * const ds = readR2Gen('annotation.json');
 * const loader = new DataLoader(ds, { split: 'train', batchSize: 16, imageSize: 128, tokenizer });
 * for await (const batch of loader) { ... }   // batch.images.shape = [B, V, 1, H, W]
 * ```
 *
 * Batches are plain typed arrays (the native Tensor API wraps them):
 * - `images.data`: Float32Array, row-major `[B, V, 1, H, W]`, grey in [0, 1] (or normalised with
 *   `mean`/`std`). Studies with fewer than V images repeat their last image; extra images are dropped.
 * - `tokens` (with a tokenizer): `data` Int32Array `[B, L]`, BOS=EOS=PAD=0, R2Gen truncation;
 *   `mask` Uint8Array `[B, L]` (1 on real tokens, BOS/EOS included).
 * - `labels` (when the dataset has them): one `ReportLabels` per study, and `labelStates`
 *   Int32Array `[B, 14]` in CheXpert order: 0 absent, 1 positive, 2 negative, 3 uncertain.
 * A missing or corrupt image throws a `DataError` naming the file and the study (`onError: 'throw'`,
 * default) or drops that study from its batch and records it in `loader.issues` (`'skip'`); a batch
 * is then smaller than `batchSize`, never padded with wrong data.
 */
import { availableParallelism } from 'node:os';
import { readFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { labelStateMatrix, type ReportLabels } from '../text/chexpert.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';
import { checkImageOptions, decodeResize, imageLibPaths, imageLibs, type FitMode, type ImageOptions } from './image.js';
import { ArgumentError, RadkitError } from '../errors.js';
import { DataError, type DataIssue, type OnError, type R2GenDataset, type R2GenEntry, type SplitName } from './r2gen.js';
import { Rng, hashSeed } from './synth/rng.js';

export interface Batch {
  ids: string[];
  reports: string[];
  images: { data: Float32Array; shape: [number, number, 1, number, number] };
  tokens?: { data: Int32Array; mask: Uint8Array; shape: [number, number] };
  labels?: ReportLabels[];
  /** Label states [B, 14] in CheXpert order: 0 absent, 1 positive, 2 negative, 3 uncertain (`LABEL_STATES`). */
  labelStates?: { data: Int32Array; shape: [number, 14] };
  /** Ids of studies dropped from this batch with `onError: 'skip'`. */
  skipped: string[];
}

export interface LoaderOptions {
  split: SplitName;
  batchSize: number;
  /** Output image size: a number (square) or [height, width]. */
  imageSize: number | [number, number];
  /** Views per study (default: 2 for IU-style datasets, 1 for MIMIC-style). */
  views?: number;
  fit?: FitMode;
  mean?: number;
  std?: number;
  /** Shuffle the order (default: true for 'train', false otherwise), reproducibly from `seed` and `epoch`. */
  shuffle?: boolean;
  seed?: number;
  epoch?: number;
  dropLast?: boolean;
  tokenizer?: ReportTokenizer;
  maxLength?: number;
  /** Batches decoded ahead (default 2). */
  prefetch?: number;
  /** Decoding threads (default min(4, cores - 1), at least 1); 0 decodes on this thread (blocking). */
  workers?: number;
  onError?: OnError;
}

// ---------------------------------------------------------------------------------------------
// Worker pool: the worker runs `decodeResize`'s own source text, so compiled and TS-source runs match.

interface Pending {
  resolve: (d: Float32Array) => void;
  reject: (e: Error) => void;
}

const WORKER_SRC = (fnSrc: string) => `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const libs = { PNG: require(workerData.png).PNG, jpeg: require(workerData.jpeg) };
const decodeResize = (${fnSrc});
parentPort.on('message', (m) => {
  let buf;
  try { buf = fs.readFileSync(m.path); }
  catch (e) { parentPort.postMessage({ id: m.id, ok: false, error: 'cannot read image ' + m.path + ': ' + (e && e.code === 'ENOENT' ? 'file not found' : String(e && e.message)) }); return; }
  try {
    const r = decodeResize(buf, m.opts, libs);
    parentPort.postMessage({ id: m.id, ok: true, data: r.data }, [r.data.buffer]);
  } catch (e) {
    parentPort.postMessage({ id: m.id, ok: false, error: 'cannot decode image ' + m.path + ': ' + String(e && e.message) });
  }
});
`;

export class ImagePool {
  private workers: Worker[] = [];
  private pending = new Map<number, Pending>();
  private nextId = 0;
  private rr = 0;
  private closed = false;

  constructor(readonly size: number) {
    const paths = imageLibPaths();
    const src = WORKER_SRC(decodeResize.toString());
    for (let i = 0; i < size; i++) {
      const w = new Worker(src, { eval: true, workerData: paths });
      w.on('message', (m: { id: number; ok: boolean; data?: Float32Array; error?: string }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (this.pending.size === 0) for (const x of this.workers) x.unref(); // idle: never keep the process alive
        if (m.ok) p.resolve(m.data!);
        else p.reject(new RadkitError(m.error ?? 'image worker failed', 'ERR_DATA', 'ImagePool.decode'));
      });
      w.on('error', (e: unknown) => this.failAll(e instanceof Error ? e.message : String(e)));
      w.unref();
      this.workers.push(w);
    }
  }

  private failAll(why: string): void {
    for (const p of this.pending.values()) p.reject(new RadkitError(`image worker failed: ${why}`, 'ERR_WORKER', 'ImagePool.decode'));
    this.pending.clear();
  }

  decode(path: string, opts: ImageOptions): Promise<Float32Array> {
    if (this.closed) return Promise.reject(new RadkitError('ImagePool.decode: image pool is closed', 'ERR_WORKER', 'ImagePool.decode'));
    const id = this.nextId++;
    const w = this.workers[this.rr++ % this.workers.length];
    if (this.pending.size === 0) for (const x of this.workers) x.ref(); // work pending: keep the process alive
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, path, opts });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.failAll('closed');
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** In-thread decoding (workers: 0): async file reads, decode between event-loop turns. */
async function decodeHere(path: string, opts: ImageOptions): Promise<Float32Array> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new RadkitError(`cannot read image ${path}: ${err.code === 'ENOENT' ? 'file not found' : err.message}`, 'ERR_DATA', 'DataLoader');
  }
  await new Promise((r) => setImmediate(r));
  try {
    return decodeResize(buf, opts, imageLibs()).data;
  } catch (e) {
    throw new RadkitError(`cannot decode image ${path}: ${(e as Error).message}`, 'ERR_DATA', 'DataLoader');
  }
}

// ---------------------------------------------------------------------------------------------

export class DataLoader implements AsyncIterable<Batch> {
  readonly entries: R2GenEntry[];
  readonly issues: DataIssue[] = [];
  private readonly img: ImageOptions;
  private readonly V: number;
  private readonly o: Required<Pick<LoaderOptions, 'batchSize' | 'prefetch' | 'workers' | 'onError' | 'dropLast' | 'shuffle' | 'seed' | 'epoch'>>;

  constructor(
    readonly dataset: R2GenDataset,
    readonly options: LoaderOptions,
  ) {
    const o = options;
    if (!o || !['train', 'val', 'test'].includes(o.split)) throw new ArgumentError(`DataLoader: split must be 'train', 'val' or 'test', got ${String(o?.split)}`, 'ERR_INVALID_ARG', 'DataLoader');
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new ArgumentError(`DataLoader: batchSize must be a positive integer, got ${o.batchSize}`, 'ERR_INVALID_ARG', 'DataLoader');
    const [H, W] = typeof o.imageSize === 'number' ? [o.imageSize, o.imageSize] : o.imageSize;
    this.img = checkImageOptions({ height: H, width: W, fit: o.fit, mean: o.mean, std: o.std });
    this.V = o.views ?? (dataset.style === 'iu' ? 2 : 1);
    if (!Number.isInteger(this.V) || this.V < 1) throw new ArgumentError(`DataLoader: views must be a positive integer, got ${o.views}`, 'ERR_INVALID_ARG', 'DataLoader');
    const workers = o.workers ?? Math.max(1, Math.min(4, availableParallelism() - 1));
    if (!Number.isInteger(workers) || workers < 0) throw new ArgumentError(`DataLoader: workers must be a non-negative integer, got ${workers}`, 'ERR_INVALID_ARG', 'DataLoader');
    const prefetch = o.prefetch ?? 2;
    if (!Number.isInteger(prefetch) || prefetch < 1) throw new ArgumentError(`DataLoader: prefetch must be a positive integer, got ${prefetch}`, 'ERR_INVALID_ARG', 'DataLoader');
    const onError = o.onError ?? 'throw';
    if (onError !== 'throw' && onError !== 'skip') throw new ArgumentError(`DataLoader: onError must be 'throw' or 'skip', got '${String(onError)}'`, 'ERR_INVALID_ARG', 'DataLoader');
    this.o = {
      batchSize: o.batchSize,
      prefetch,
      workers,
      onError,
      dropLast: o.dropLast ?? false,
      shuffle: o.shuffle ?? o.split === 'train',
      seed: o.seed ?? 0,
      epoch: o.epoch ?? 0,
    };
    this.entries = dataset.splits[o.split];
  }

  /** Number of batches per epoch. */
  get length(): number {
    const n = this.entries.length;
    return this.o.dropLast ? Math.floor(n / this.o.batchSize) : Math.ceil(n / this.o.batchSize);
  }

  /** Study order for an epoch (shuffled reproducibly from seed and epoch when shuffling). */
  order(epoch = this.o.epoch): number[] {
    const idx = this.entries.map((_, i) => i);
    return this.o.shuffle ? new Rng(hashSeed('radkit-loader', this.o.seed, epoch)).shuffle(idx) : idx;
  }

  /** Iterates one epoch (`options.epoch`, or the given one). */
  epoch(epoch: number): AsyncIterable<Batch> {
    return { [Symbol.asyncIterator]: () => this.iterate(epoch) };
  }

  [Symbol.asyncIterator](): AsyncIterator<Batch> {
    return this.iterate(this.o.epoch);
  }

  private iterate(epoch: number): AsyncIterator<Batch> {
    const order = this.order(epoch);
    const bs = this.o.batchSize;
    const groups: number[][] = [];
    for (let s = 0; s < order.length; s += bs) {
      const g = order.slice(s, s + bs);
      if (g.length < bs && this.o.dropLast) break;
      groups.push(g);
    }
    const pool = this.o.workers > 0 && groups.length > 0 ? new ImagePool(Math.min(this.o.workers, Math.max(1, order.length))) : undefined;
    const decode = (p: string) => (pool ? pool.decode(p, this.img) : decodeHere(p, this.img));
    const inflight: Array<Promise<Batch>> = [];
    let next = 0;
    let done = false;
    const fill = () => {
      while (!done && inflight.length < this.o.prefetch && next < groups.length) {
        const p = this.makeBatch(groups[next++], decode);
        p.catch(() => undefined); // handled when consumed
        inflight.push(p);
      }
    };
    const finish = async () => {
      done = true;
      inflight.length = 0;
      if (pool) await pool.close();
    };
    return {
      next: async (): Promise<IteratorResult<Batch>> => {
        if (done) return { done: true, value: undefined };
        fill();
        const head = inflight.shift();
        if (!head) {
          await finish();
          return { done: true, value: undefined };
        }
        try {
          const b = await head;
          fill();
          return { done: false, value: b };
        } catch (e) {
          await finish();
          throw e;
        }
      },
      return: async (): Promise<IteratorResult<Batch>> => {
        await finish();
        return { done: true, value: undefined };
      },
    };
  }

  private async makeBatch(group: number[], decode: (p: string) => Promise<Float32Array>): Promise<Batch> {
    const { height: H, width: W } = this.img;
    const V = this.V;
    const studies = group.map((i) => this.entries[i]);
    const results = await Promise.all(
      studies.map(async (e) => {
        const paths = Array.from({ length: V }, (_, v) => e.imagePaths[Math.min(v, e.imagePaths.length - 1)]);
        const uniq = [...new Set(paths)];
        const got = await Promise.allSettled(uniq.map((p) => decode(p)));
        const bad = got.find((g) => g.status === 'rejected') as PromiseRejectedResult | undefined;
        if (bad) return { e, error: (bad.reason as Error).message };
        const byPath = new Map(uniq.map((p, k) => [p, (got[k] as PromiseFulfilledResult<Float32Array>).value]));
        return { e, views: paths.map((p) => byPath.get(p)!) };
      }),
    );
    const kept: Array<{ e: R2GenEntry; views: Float32Array[] }> = [];
    const skipped: string[] = [];
    for (const r of results) {
      if ('error' in r && r.error !== undefined) {
        const issue: DataIssue = { file: this.dataset.annotationPath, entry: `${r.e.split} study "${r.e.id}"`, message: r.error };
        if (this.o.onError === 'throw') throw new DataError(issue, 'DataLoader');
        this.issues.push(issue);
        skipped.push(r.e.id);
      } else kept.push(r as { e: R2GenEntry; views: Float32Array[] });
    }
    const B = kept.length;
    const data = new Float32Array(B * V * H * W);
    kept.forEach((k, b) => k.views.forEach((img, v) => data.set(img, (b * V + v) * H * W)));
    const batch: Batch = {
      ids: kept.map((k) => k.e.id),
      reports: kept.map((k) => k.e.report),
      images: { data, shape: [B, V, 1, H, W] },
      skipped,
    };
    const tok = this.options.tokenizer;
    if (tok) {
      const enc = tok.encodeBatch(batch.reports, { maxLength: this.options.maxLength ?? tok.maxLength });
      batch.tokens = { data: enc.data, mask: enc.mask, shape: enc.shape };
    }
    if (kept.length > 0 && kept.every((k) => k.e.labels)) {
      batch.labels = kept.map((k) => k.e.labels!);
      batch.labelStates = { data: labelStateMatrix(batch.labels), shape: [B, 14] };
    }
    return batch;
  }
}
