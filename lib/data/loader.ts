/**
 * Batching with prefetch for R2Gen-style datasets.
 *
 * Images come from a prepared cache (`radkit prepare`, `./cache.ts`) when one matches the requested
 * preprocessing, else they are decoded on the fly by sharp (libvips) on libuv's thread pool; either
 * way iterating never blocks the event loop, and at most `prefetch` batches are in flight:
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
 *
 * With `augment`, images are augmented natively with one seed per image (run seed, epoch, study id,
 * view), and reports' sentences shuffled, before normalisation and tokenising (`./augment.ts`).
 */
import { availableParallelism } from 'node:os';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { labelStateMatrix, type ReportLabels } from '../text/chexpert.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';
import { checkImageOptions, readImage, type FitMode, type ImageOptions, type ResizeFilter } from './image.js';
import { ArgumentError, RadkitError } from '../errors.js';
import { DataError, type DataIssue, type OnError, type R2GenDataset, type R2GenEntry, type SplitName } from './r2gen.js';
import { Rng, hashSeed } from './synth/rng.js';
import { PreparedCache, cacheKeyOfPath, cachePreprocessing, defaultCacheDir } from './cache.js';
import { augmentInPlace, checkAugmentOptions, imageSeed, shuffleSentences, type AugmentOptions } from './augment.js';

export interface Batch {
  ids: string[];
  /** Reports as tokenised (after text augmentation, when there is one). */
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
  /** Resize kernel (default 'lanczos3'). */
  filter?: ResizeFilter;
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
  /**
   * Images decoded at once (default min(4, cores - 1), at least 1); sharp decodes on libuv's thread
   * pool (4 threads unless UV_THREADPOOL_SIZE says otherwise). 0 decodes one image at a time.
   */
  workers?: number;
  onError?: OnError;
  /**
   * Prepared cache: 'auto' (default) uses `<annotation folder>/prepared/<H>x<W>-<fit>-<filter>` when
   * it exists and holds every image the split needs (else it decodes); a folder uses that cache (an
   * error when it is absent, made for another preprocessing or lacks an image); false always
   * decodes. A cache in use must be complete and its images unchanged since prepare (size, mtime),
   * else the loader refuses it with a DataError saying what to run.
   */
  cache?: 'auto' | string | false;
  /** Seeded augmentations (training only; see `./augment.ts`). Image augmentation needs the native addon. */
  augment?: AugmentOptions;
}

// ---------------------------------------------------------------------------------------------
// Decoding pool: a bound on the number of sharp decodes in flight.

/** Decodes image files with sharp, at most `size` at once. */
export class ImagePool {
  private active = 0;
  private queue: Array<() => void> = [];
  private closed = false;

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new ArgumentError(`ImagePool: size must be a positive integer, got ${size}`, 'ERR_INVALID_ARG', 'ImagePool');
  }

  /** Grey float32 pixels of a file (a RadkitError ERR_DATA naming the file when it cannot be read or decoded). */
  async decode(file: string, opts: ImageOptions): Promise<Float32Array> {
    if (this.closed) throw new RadkitError('ImagePool.decode: image pool is closed', 'ERR_WORKER', 'ImagePool.decode');
    if (this.active >= this.size) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    try {
      return (await readImage(file, opts)).data;
    } catch (e) {
      if (e instanceof DataError) throw new RadkitError(`cannot decode image ${e.message}`, 'ERR_DATA', 'ImagePool.decode');
      throw e;
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/**
 * An async iterator over `count` items made by `make(i)`, at most `prefetch` in flight; the first
 * failure stops it (and is thrown when its item is reached); `return()` stops it early.
 */
export function prefetching<T>(count: number, prefetch: number, make: (i: number) => Promise<T>): AsyncIterator<T> {
  const inflight: Array<Promise<T>> = [];
  let next = 0;
  let done = false;
  const fill = () => {
    while (!done && inflight.length < prefetch && next < count) {
      const p = make(next++);
      p.catch(() => undefined); // handled when consumed
      inflight.push(p);
    }
  };
  const finish = () => {
    done = true;
    inflight.length = 0;
  };
  return {
    next: async (): Promise<IteratorResult<T>> => {
      if (done) return { done: true, value: undefined };
      fill();
      const head = inflight.shift();
      if (!head) {
        finish();
        return { done: true, value: undefined };
      }
      try {
        const b = await head;
        fill();
        return { done: false, value: b };
      } catch (e) {
        finish();
        throw e;
      }
    },
    return: async (): Promise<IteratorResult<T>> => {
      finish();
      return { done: true, value: undefined };
    },
  };
}

// Opened caches, by folder and manifest mtime (a loader per epoch reopens nothing).
const openCaches = new Map<string, { mtimeMs: number; cache: PreparedCache }>();

function openCache(dir: string): PreparedCache {
  const abs = path.resolve(dir);
  const m = fs.statSync(path.join(abs, 'manifest.json'), { throwIfNoEntry: false });
  const hit = openCaches.get(abs);
  if (hit && m && hit.mtimeMs === m.mtimeMs) return hit.cache;
  if (hit) {
    hit.cache.close();
    openCaches.delete(abs);
  }
  const cache = PreparedCache.open(abs);
  if (m) openCaches.set(abs, { mtimeMs: m.mtimeMs, cache });
  return cache;
}

// ---------------------------------------------------------------------------------------------

export class DataLoader implements AsyncIterable<Batch> {
  readonly entries: R2GenEntry[];
  readonly issues: DataIssue[] = [];
  /** The prepared cache the images come from, or undefined when they are decoded on the fly. */
  readonly cache?: PreparedCache;
  private readonly img: ImageOptions;
  private readonly V: number;
  private loadView?: (entry: R2GenEntry, v: number) => Promise<Float32Array | Uint8Array>;
  private readonly augment?: AugmentOptions;
  private readonly o: Required<Pick<LoaderOptions, 'batchSize' | 'prefetch' | 'workers' | 'onError' | 'dropLast' | 'shuffle' | 'seed' | 'epoch'>>;

  constructor(
    readonly dataset: R2GenDataset,
    readonly options: LoaderOptions,
  ) {
    const o = options;
    if (!o || !['train', 'val', 'test'].includes(o.split)) throw new ArgumentError(`DataLoader: split must be 'train', 'val' or 'test', got ${String(o?.split)}`, 'ERR_INVALID_ARG', 'DataLoader');
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new ArgumentError(`DataLoader: batchSize must be a positive integer, got ${o.batchSize}`, 'ERR_INVALID_ARG', 'DataLoader');
    const [H, W] = typeof o.imageSize === 'number' ? [o.imageSize, o.imageSize] : o.imageSize;
    this.img = checkImageOptions({ height: H, width: W, fit: o.fit, filter: o.filter, mean: o.mean, std: o.std });
    this.V = o.views ?? (dataset.style === 'iu' ? 2 : 1);
    if (!Number.isInteger(this.V) || this.V < 1) throw new ArgumentError(`DataLoader: views must be a positive integer, got ${o.views}`, 'ERR_INVALID_ARG', 'DataLoader');
    const workers = o.workers ?? Math.max(1, Math.min(4, availableParallelism() - 1));
    if (!Number.isInteger(workers) || workers < 0) throw new ArgumentError(`DataLoader: workers must be a non-negative integer, got ${workers}`, 'ERR_INVALID_ARG', 'DataLoader');
    const prefetch = o.prefetch ?? 2;
    if (!Number.isInteger(prefetch) || prefetch < 1) throw new ArgumentError(`DataLoader: prefetch must be a positive integer, got ${prefetch}`, 'ERR_INVALID_ARG', 'DataLoader');
    const onError = o.onError ?? 'throw';
    if (onError !== 'throw' && onError !== 'skip') throw new ArgumentError(`DataLoader: onError must be 'throw' or 'skip', got '${String(onError)}'`, 'ERR_INVALID_ARG', 'DataLoader');
    if (o.augment !== undefined) this.augment = checkAugmentOptions(o.augment);
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
    this.cache = this.findCache(o.cache ?? 'auto');
  }

  /** The cache to read from (checked against every image of the split), or undefined. */
  private findCache(choice: 'auto' | string | false): PreparedCache | undefined {
    if (choice === false) return undefined;
    if (typeof choice !== 'string') throw new ArgumentError(`DataLoader: cache must be 'auto', a folder or false, got ${String(choice)}`, 'ERR_INVALID_ARG', 'DataLoader');
    const pre = cachePreprocessing(this.img);
    const dir = choice === 'auto' ? defaultCacheDir(this.dataset, pre) : choice;
    if (choice === 'auto' && !fs.existsSync(path.join(dir, 'manifest.json'))) return undefined;
    const cache = openCache(dir);
    if (!cache.matches(pre)) {
      const p = cache.manifest.preprocessing;
      throw new DataError(
        { file: path.join(cache.dir, 'manifest.json'), message: `the prepared cache holds ${p.height}x${p.width} ${p.fit} ${p.filter} images, the loader wants ${pre.height}x${pre.width} ${pre.fit} ${pre.filter}` },
        'DataLoader',
      );
    }
    const wanted: Array<{ abs: string; raw: string; entry: string }> = [];
    for (const e of this.entries)
      for (let v = 0; v < Math.min(this.V, e.imagePaths.length); v++)
        wanted.push({ abs: e.imagePaths[v], raw: cacheKeyOfPath(e.imagePaths[v], e.imagePathsRaw[v]), entry: `${e.split} study "${e.id}"` });
    // 'auto' skips a cache made for other splits or views; one it covers must be fresh.
    if (choice === 'auto' && !cache.covers(wanted)) return undefined;
    cache.verify(this.dataset, wanted);
    return cache;
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

  /** One image's pixels: uint8 from the cache (scaled when the batch is assembled) or grey [0, 1] floats decoded. */
  private source(): (entry: R2GenEntry, v: number) => Promise<Float32Array | Uint8Array> {
    const raw: ImageOptions = { ...this.img, mean: undefined, std: undefined };
    const cache = this.cache;
    if (cache) return (e, v) => cache.read(cacheKeyOfPath(e.imagePaths[v], e.imagePathsRaw[v]));
    const pool = new ImagePool(Math.max(1, this.o.workers));
    return (e, v) => pool.decode(e.imagePaths[v], raw);
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
    return prefetching(groups.length, this.o.prefetch, (i) => this.batch(groups[i], epoch));
  }

  /**
   * The batch of the given studies (indices into `entries`), in that order, as an epoch's iteration
   * makes it (`epoch` seeds the augmentations; default `options.epoch`).
   */
  async batch(group: number[], epoch = this.o.epoch): Promise<Batch> {
    for (const i of group)
      if (!Number.isInteger(i) || i < 0 || i >= this.entries.length) throw new ArgumentError(`DataLoader.batch: index ${i} is not one of the ${this.entries.length} studies`, 'ERR_INVALID_ARG', 'DataLoader.batch');
    this.loadView ??= this.source();
    const load = this.loadView;
    const { height: H, width: W } = this.img;
    const V = this.V;
    const HW = H * W;
    const studies = group.map((i) => this.entries[i]);
    const results = await Promise.all(
      studies.map(async (e) => {
        const views = Array.from({ length: V }, (_, v) => Math.min(v, e.imagePaths.length - 1));
        const uniq = [...new Set(views)];
        const got = await Promise.allSettled(uniq.map((v) => load(e, v)));
        const bad = got.find((g) => g.status === 'rejected') as PromiseRejectedResult | undefined;
        if (bad) return { e, error: (bad.reason as Error).message };
        const byView = new Map(uniq.map((v, k) => [v, (got[k] as PromiseFulfilledResult<Float32Array | Uint8Array>).value]));
        return { e, views: views.map((v) => byView.get(v)!) };
      }),
    );
    const kept: Array<{ e: R2GenEntry; views: Array<Float32Array | Uint8Array> }> = [];
    const skipped: string[] = [];
    for (const r of results) {
      if ('error' in r && r.error !== undefined) {
        const issue: DataIssue = { file: this.dataset.annotationPath, entry: `${r.e.split} study "${r.e.id}"`, message: r.error };
        if (this.o.onError === 'throw') throw new DataError(issue, 'DataLoader');
        this.issues.push(issue);
        skipped.push(r.e.id);
      } else kept.push(r as { e: R2GenEntry; views: Array<Float32Array | Uint8Array> });
    }
    const B = kept.length;
    const data = new Float32Array(B * V * HW);
    const inv = 1 / 255;
    kept.forEach((k, b) =>
      k.views.forEach((img, v) => {
        const off = (b * V + v) * HW;
        if (img instanceof Uint8Array) for (let i = 0; i < HW; i++) data[off + i] = img[i] * inv;
        else data.set(img, off);
      }),
    );
    const aug = this.augment;
    if (aug?.image && B > 0) {
      // A view repeated for a study with fewer images gets its own seed (its own augmentation).
      const seeds = kept.flatMap((k) => Array.from({ length: V }, (_, v) => imageSeed(this.o.seed, epoch, k.e.id, v)));
      await augmentInPlace(data, [B * V, 1, H, W], seeds, aug.image);
    }
    const mean = this.img.mean ?? 0;
    const std = this.img.std ?? 1;
    if (mean !== 0 || std !== 1) for (let i = 0; i < data.length; i++) data[i] = (data[i] - mean) / std;
    const p = aug?.text?.shuffleSentences ?? 0;
    const batch: Batch = {
      ids: kept.map((k) => k.e.id),
      reports: kept.map((k) => (p > 0 ? shuffleSentences(k.e.report, p, this.o.seed, epoch, k.e.id) : k.e.report)),
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
