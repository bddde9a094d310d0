/**
 * The prepared image cache: every image of a dataset decoded once (libvips, `./image.ts`) at one
 * preprocessing, stored as uint8 grey pixels in shards, so an epoch reads bytes instead of decoding.
 *
 * Layout of a cache folder (default `<annotation folder>/prepared/<H>x<W>-<fit>-<filter>/`):
 * - `manifest.json`: format, version, preprocessing (height, width, fit, filter, decoder versions),
 *   the annotation and image folder, `imagesPerShard`, the number of shards and images, `complete`;
 * - `shard-00000.bin`: `imagesPerShard` images of `height * width` bytes each, back to back
 *   (slot i of shard k holds image `k * imagesPerShard + i`); a few hundred MB each (`shardMB`);
 * - `shard-00000.json`: the shard's index: for each slot the source path (as the annotation writes
 *   it), its byte size and mtime at decoding, the study it was reached from, and `error` when the
 *   image could not be decoded (`onError: 'skip'`; the slot is zeros and is never served).
 * A shard is written to `*.tmp`, flushed and renamed, its index last: a shard without its index,
 * or with one that does not match the plan and the files on disk, is decoded again. So `prepare`
 * interrupted (even by kill -9) and run again continues at the first missing shard, and a
 * half-written shard is never read. The loader uses a cache only when `complete` is true.
 *
 * Reads are positional (`pread` on kept-open shard files), which costs what a memory map costs for
 * pages in the page cache, without needing the native addon.
 */
import * as fs from 'node:fs';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { ArgumentError, DataError, RadkitError } from '../errors.js';
import { checkImageOptions, loadSharp, readImageRaw, RESIZE_FILTERS, type FitMode, type ImageOptions, type ResizeFilter } from './image.js';
import type { DataIssue, OnError, R2GenDataset, SplitName } from './r2gen.js';

export const CACHE_FORMAT = 'radkit-prepared-images';
export const CACHE_VERSION = 1;

export interface CachePreprocessing {
  height: number;
  width: number;
  fit: FitMode;
  filter: ResizeFilter;
}

export interface CacheManifest {
  format: typeof CACHE_FORMAT;
  version: typeof CACHE_VERSION;
  preprocessing: CachePreprocessing & { decoder: string };
  annotation: string;
  imageDir: string;
  /** Views per study prepared (the first `views` images of each study), or null for all. */
  views: number | null;
  splits: SplitName[];
  imagesPerShard: number;
  shards: number;
  images: number;
  complete: boolean;
  /** Images that could not be decoded (onError 'skip'). */
  skipped: DataIssue[];
  startedAt: string;
  finishedAt?: string;
}

interface ShardItem {
  /** Path as the annotation writes it (relative to imageDir unless absolute). */
  path: string;
  size: number;
  mtimeMs: number;
  /** The study the image was reached from, for messages: `train study "id"`. */
  entry: string;
  error?: string;
}

interface ShardIndex {
  shard: number;
  bytesPerImage: number;
  items: ShardItem[];
}

/** The cache folder name of a preprocessing. */
export function cacheKey(p: CachePreprocessing): string {
  return `${p.height}x${p.width}-${p.fit}-${p.filter}`;
}

/** The default cache folder of a dataset and preprocessing: `<annotation folder>/prepared/<key>`. */
export function defaultCacheDir(dataset: R2GenDataset, p: CachePreprocessing): string {
  return path.join(path.dirname(dataset.annotationPath), 'prepared', cacheKey(p));
}

/** The decoder versions recorded in a manifest. */
export function decoderVersion(): string {
  const v = loadSharp().versions as { sharp?: string; vips: string };
  return `sharp ${v.sharp ?? '?'} / libvips ${v.vips}`;
}

const shardName = (k: number, ext: 'bin' | 'json') => `shard-${String(k).padStart(5, '0')}.${ext}`;

/** The key of an image in a cache: its path as the annotation writes it (absolute paths as given). */
export function cacheKeyOfPath(abs: string, raw: string): string {
  return path.isAbsolute(raw) ? abs : raw;
}

function absPathOf(imageDir: string, raw: string): string {
  return path.isAbsolute(raw) ? raw : path.join(imageDir, raw);
}

/** Writes a file atomically: `<file>.tmp`, flushed, then renamed. */
function writeAtomic(file: string, data: Uint8Array | string): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    let off = 0;
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    while (off < bytes.length) off += fs.writeSync(fd, bytes, off, Math.min(bytes.length - off, 1 << 30));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

// ---------------------------------------------------------------------------------------------
// prepare

export interface PrepareOptions {
  /** Output size: a number (square) or [height, width]. */
  size: number | [number, number];
  fit?: FitMode;
  filter?: ResizeFilter;
  /** Prepare only the first `views` images of each study (default: all of them). */
  views?: number;
  /** Splits to prepare (default all three). */
  splits?: SplitName[];
  /** Cache folder (default `defaultCacheDir`). */
  out?: string;
  /** Shard size in MB (default 256); `imagesPerShard` wins when given. */
  shardMB?: number;
  imagesPerShard?: number;
  /** Images decoded at once (default: cores, at most 4: libuv's thread pool). */
  workers?: number;
  /** 'throw' (default): the first image that cannot be decoded fails with a DataError naming it and its study; 'skip': recorded and left out. */
  onError?: OnError;
  /** Called after each shard. */
  progress?: (p: { shard: number; shards: number; images: number; total: number; kept: boolean }) => void;
  signal?: AbortSignal;
  /** Refuse images over this many pixels from their header (ImageOptions.maxPixels). */
  maxPixels?: number;
}

export interface PrepareResult {
  dir: string;
  manifest: CacheManifest;
  /** Shards found complete and kept from an earlier, interrupted run. */
  keptShards: number;
  /** Shards decoded by this run. */
  writtenShards: number;
  seconds: number;
}

interface PlanItem {
  raw: string;
  abs: string;
  entry: string;
}

/** The images a prepare covers, in annotation order (splits in the given order), each once. */
function planImages(dataset: R2GenDataset, splits: SplitName[], views: number | null): PlanItem[] {
  const seen = new Set<string>();
  const out: PlanItem[] = [];
  for (const split of splits)
    for (const e of dataset.splits[split]) {
      const n = views === null ? e.imagePaths.length : Math.min(views, e.imagePaths.length);
      for (let v = 0; v < n; v++) {
        const raw = cacheKeyOfPath(e.imagePaths[v], e.imagePathsRaw[v]);
        if (seen.has(raw)) continue;
        seen.add(raw);
        out.push({ raw, abs: e.imagePaths[v], entry: `${split} study "${e.id}"` });
      }
    }
  return out;
}

function statOf(file: string): { size: number; mtimeMs: number } | undefined {
  try {
    const s = fs.statSync(file);
    return { size: s.size, mtimeMs: Math.floor(s.mtimeMs) };
  } catch {
    return undefined;
  }
}

function readShardIndex(dir: string, k: number): ShardIndex | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, shardName(k, 'json')), 'utf8')) as ShardIndex;
  } catch {
    return undefined;
  }
}

/**
 * Decodes every image of `dataset` (the chosen splits and views) once into a prepared cache. Run
 * again after an interruption, it keeps the complete shards that still match the files and
 * continues with the rest; a finished cache whose sources did not change is kept as it is.
 */
export async function prepare(dataset: R2GenDataset, options: PrepareOptions): Promise<PrepareResult> {
  const fn = 'prepare';
  const t0 = performance.now();
  if (!options || typeof options !== 'object') throw new ArgumentError(`${fn}: options are required`, 'ERR_INVALID_ARG', fn);
  const [H, W] = typeof options.size === 'number' ? [options.size, options.size] : (options.size ?? [NaN, NaN]);
  const img: ImageOptions = checkImageOptions({ height: H, width: W, fit: options.fit ?? 'stretch', filter: options.filter ?? 'lanczos3', maxPixels: options.maxPixels });
  const pre: CachePreprocessing = { height: H, width: W, fit: img.fit!, filter: img.filter! };
  const views = options.views ?? null;
  if (views !== null && !(Number.isInteger(views) && views >= 1)) throw new ArgumentError(`${fn}: views must be a positive integer, got ${String(views)}`, 'ERR_INVALID_ARG', fn);
  const splits = options.splits ?? (['train', 'val', 'test'] as SplitName[]);
  const onError = options.onError ?? 'throw';
  if (onError !== 'throw' && onError !== 'skip') throw new ArgumentError(`${fn}: onError must be 'throw' or 'skip', got '${String(onError)}'`, 'ERR_INVALID_ARG', fn);
  const workers = options.workers ?? Math.max(1, Math.min(4, availableParallelism()));
  if (!Number.isInteger(workers) || workers < 1) throw new ArgumentError(`${fn}: workers must be a positive integer, got ${String(workers)}`, 'ERR_INVALID_ARG', fn);
  const bytesPerImage = H * W;
  const shardMB = options.shardMB ?? 256;
  if (!(shardMB > 0)) throw new ArgumentError(`${fn}: shardMB must be > 0, got ${String(shardMB)}`, 'ERR_INVALID_ARG', fn);
  const imagesPerShard = options.imagesPerShard ?? Math.max(1, Math.floor((shardMB * 1024 * 1024) / bytesPerImage));
  if (!Number.isInteger(imagesPerShard) || imagesPerShard < 1) throw new ArgumentError(`${fn}: imagesPerShard must be a positive integer, got ${String(imagesPerShard)}`, 'ERR_INVALID_ARG', fn);

  const dir = path.resolve(options.out ?? defaultCacheDir(dataset, pre));
  fs.mkdirSync(dir, { recursive: true });
  for (const f of fs.readdirSync(dir)) if (f.endsWith('.tmp')) fs.rmSync(path.join(dir, f), { force: true });

  const plan = planImages(dataset, splits, views);
  const shards = Math.ceil(plan.length / imagesPerShard);
  const decoder = decoderVersion();
  const manifestPath = path.join(dir, 'manifest.json');
  let previous: CacheManifest | undefined;
  try {
    previous = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as CacheManifest;
  } catch {
    previous = undefined;
  }
  // Shards of an earlier run are reusable only under the same layout and decoder.
  const reusable =
    !!previous &&
    previous.format === CACHE_FORMAT &&
    previous.version === CACHE_VERSION &&
    previous.imagesPerShard === imagesPerShard &&
    previous.preprocessing.decoder === decoder &&
    cacheKey(previous.preprocessing) === cacheKey(pre);
  const manifest: CacheManifest = {
    format: CACHE_FORMAT,
    version: CACHE_VERSION,
    preprocessing: { ...pre, decoder },
    annotation: dataset.annotationPath,
    imageDir: dataset.imageDir,
    views,
    splits,
    imagesPerShard,
    shards,
    images: plan.length,
    complete: false,
    skipped: [],
    startedAt: reusable && previous ? previous.startedAt : new Date().toISOString(),
  };
  writeAtomic(manifestPath, JSON.stringify(manifest, null, 1));
  // Shards beyond the plan (a smaller dataset than last time) go.
  for (const f of fs.readdirSync(dir)) {
    const m = /^shard-(\d{5})\.(bin|json)$/.exec(f);
    if (m && Number(m[1]) >= shards) fs.rmSync(path.join(dir, f), { force: true });
  }

  let kept = 0;
  let written = 0;
  const skipped: DataIssue[] = [];
  for (let k = 0; k < shards; k++) {
    if (options.signal?.aborted) throw new RadkitError(`${fn}: aborted after ${k} of ${shards} shards (run again to continue)`, 'ERR_ABORTED', fn, { cause: options.signal.reason });
    const items = plan.slice(k * imagesPerShard, (k + 1) * imagesPerShard);
    const stats = items.map((it) => statOf(it.abs));
    const old = reusable ? readShardIndex(dir, k) : undefined;
    const binPath = path.join(dir, shardName(k, 'bin'));
    const ok =
      old &&
      old.bytesPerImage === bytesPerImage &&
      old.items.length === items.length &&
      old.items.every((o, i) => o.path === items[i].raw && stats[i] !== undefined && o.size === stats[i]!.size && o.mtimeMs === stats[i]!.mtimeMs && (!o.error || onError === 'skip')) &&
      statOf(binPath)?.size === items.length * bytesPerImage;
    if (ok) {
      kept++;
      for (const o of old!.items) if (o.error) skipped.push({ file: absPathOf(dataset.imageDir, o.path), entry: o.entry, message: o.error });
      options.progress?.({ shard: k + 1, shards, images: Math.min((k + 1) * imagesPerShard, plan.length), total: plan.length, kept: true });
      continue;
    }
    fs.rmSync(path.join(dir, shardName(k, 'json')), { force: true });
    const buf = Buffer.alloc(items.length * bytesPerImage);
    const index: ShardItem[] = new Array(items.length);
    let next = 0;
    let failure: Error | undefined;
    const work = async () => {
      while (!failure && next < items.length) {
        if (options.signal?.aborted) {
          failure = new RadkitError(`${fn}: aborted during shard ${k + 1} of ${shards} (run again to continue)`, 'ERR_ABORTED', fn, { cause: options.signal.reason });
          return;
        }
        const i = next++;
        const it = items[i];
        const st = stats[i];
        try {
          if (!st) throw new DataError({ file: it.abs, message: 'file not found' }, fn);
          const raw = await readImageRaw(it.abs, img);
          const d = raw.data;
          const o = i * bytesPerImage;
          if (raw.maxValue === 255) buf.set(d as Uint8Array, o);
          else for (let j = 0; j < d.length; j++) buf[o + j] = Math.round((d[j] * 255) / raw.maxValue);
          index[i] = { path: it.raw, size: st.size, mtimeMs: st.mtimeMs, entry: it.entry };
        } catch (e) {
          const message = e instanceof DataError ? e.message.replace(`${e.file}: `, '') : (e as Error).message;
          if (onError === 'throw') {
            failure ??= new DataError({ file: it.abs, entry: it.entry, message }, fn);
            return;
          }
          skipped.push({ file: it.abs, entry: it.entry, message });
          index[i] = { path: it.raw, size: st?.size ?? -1, mtimeMs: st?.mtimeMs ?? -1, entry: it.entry, error: message };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(workers, items.length) }, work));
    if (failure) throw failure;
    writeAtomic(binPath, buf);
    writeAtomic(path.join(dir, shardName(k, 'json')), JSON.stringify({ shard: k, bytesPerImage, items: index } satisfies ShardIndex));
    written++;
    options.progress?.({ shard: k + 1, shards, images: Math.min((k + 1) * imagesPerShard, plan.length), total: plan.length, kept: false });
  }
  manifest.complete = true;
  manifest.skipped = skipped;
  manifest.finishedAt = new Date().toISOString();
  writeAtomic(manifestPath, JSON.stringify(manifest, null, 1));
  return { dir, manifest, keptShards: kept, writtenShards: written, seconds: (performance.now() - t0) / 1000 };
}

// ---------------------------------------------------------------------------------------------
// reading

interface Slot {
  shard: number;
  slot: number;
  item: ShardItem;
}

/** An opened, complete cache: `read(path)` gives an image's uint8 pixels. */
export class PreparedCache {
  readonly bytesPerImage: number;
  private readonly slots = new Map<string, Slot>();
  private readonly fds: number[] = [];
  private closed = false;

  private constructor(
    readonly dir: string,
    readonly manifest: CacheManifest,
  ) {
    const fn = 'PreparedCache';
    const p = manifest.preprocessing;
    this.bytesPerImage = p.height * p.width;
    for (let k = 0; k < manifest.shards; k++) {
      const idx = readShardIndex(dir, k);
      const bin = path.join(dir, shardName(k, 'bin'));
      if (!idx || statOf(bin)?.size !== idx.items.length * this.bytesPerImage)
        throw new DataError({ file: path.join(dir, shardName(k, idx ? 'bin' : 'json')), message: `prepared cache shard ${k} is missing or damaged; run radkit prepare again` }, fn);
      idx.items.forEach((item, slot) => this.slots.set(item.path, { shard: k, slot, item }));
    }
    for (let k = 0; k < manifest.shards; k++) this.fds.push(fs.openSync(path.join(dir, shardName(k, 'bin')), 'r'));
  }

  /**
   * Opens the cache in `dir`. Throws a DataError naming the manifest when it is not a radkit
   * cache, or when it is incomplete (an interrupted prepare).
   */
  static open(dir: string): PreparedCache {
    const fn = 'PreparedCache.open';
    const manifestPath = path.join(dir, 'manifest.json');
    let m: CacheManifest;
    try {
      m = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as CacheManifest;
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new DataError({ file: manifestPath, message: err.code === 'ENOENT' ? 'no prepared cache here (manifest.json not found)' : `unreadable cache manifest: ${err.message}` }, fn);
    }
    if (m.format !== CACHE_FORMAT || m.version !== CACHE_VERSION) throw new DataError({ file: manifestPath, message: `not a radkit prepared cache of version ${CACHE_VERSION}` }, fn);
    if (!m.complete)
      throw new DataError(
        { file: manifestPath, message: `the prepared cache is incomplete (an interrupted prepare): run radkit prepare --data ... --size ${m.preprocessing.height} again to finish it, or load without the cache (cache: false)` },
        fn,
      );
    return new PreparedCache(path.resolve(dir), m);
  }

  /** Whether the cache was made for this preprocessing. */
  matches(p: CachePreprocessing): boolean {
    return cacheKey(this.manifest.preprocessing) === cacheKey(p);
  }

  has(rawPath: string): boolean {
    return this.slots.has(rawPath);
  }

  /** Whether the cache holds every one of these images (by their key, `cacheKeyOfPath`). */
  covers(paths: Array<{ raw: string }>): boolean {
    return paths.every((p) => this.slots.has(p.raw));
  }

  /**
   * Checks the cache against images of a dataset (path, size and mtime of each source); throws a
   * DataError naming the first image that is missing from the cache or changed since prepare.
   */
  verify(dataset: R2GenDataset, paths: Array<{ abs: string; raw: string; entry: string }>): void {
    const fn = 'PreparedCache.verify';
    const redo = `run radkit prepare --data ${path.dirname(dataset.annotationPath)} --size ${this.manifest.preprocessing.height} again, or load without the cache (cache: false)`;
    for (const p of paths) {
      const s = this.slots.get(p.raw);
      if (!s) throw new DataError({ file: path.join(this.dir, 'manifest.json'), entry: p.entry, message: `the prepared cache does not hold ${p.raw} (prepared for other splits or views, or the annotation changed): ${redo}` }, fn);
      if (s.item.error) continue; // reported as a decode failure when read
      const st = statOf(p.abs);
      if (!st || st.size !== s.item.size || st.mtimeMs !== s.item.mtimeMs)
        throw new DataError(
          { file: path.join(this.dir, 'manifest.json'), entry: p.entry, message: `the prepared cache is stale: ${p.abs} ${st ? 'changed' : 'is gone'} since it was prepared (size or mtime): ${redo}` },
          fn,
        );
    }
  }

  /** An image's uint8 pixels (`height * width`); rejects with an error naming the file when it could not be decoded at prepare time. */
  read(rawPath: string, into: Uint8Array = new Uint8Array(this.bytesPerImage)): Promise<Uint8Array> {
    const s = this.slots.get(rawPath);
    if (this.closed) return Promise.reject(new RadkitError('PreparedCache.read: the cache is closed', 'ERR_INVALID_ARG', 'PreparedCache.read'));
    if (!s) return Promise.reject(new RadkitError(`PreparedCache.read: ${rawPath} is not in the cache ${this.dir}`, 'ERR_DATA', 'PreparedCache.read'));
    if (s.item.error) return Promise.reject(new RadkitError(`cannot decode image ${absPathOf(this.manifest.imageDir, rawPath)}: ${s.item.error} (at prepare time)`, 'ERR_DATA', 'PreparedCache.read'));
    const n = this.bytesPerImage;
    return new Promise((resolve, reject) => {
      fs.read(this.fds[s.shard], into, 0, n, s.slot * n, (err, got) => {
        if (err) reject(new DataError({ file: path.join(this.dir, shardName(s.shard, 'bin')), message: `cannot read: ${err.message}` }, 'PreparedCache.read'));
        else if (got !== n) reject(new DataError({ file: path.join(this.dir, shardName(s.shard, 'bin')), message: `short read (${got} of ${n} bytes): damaged shard` }, 'PreparedCache.read'));
        else resolve(into);
      });
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fd of this.fds) fs.closeSync(fd);
  }
}

/** The default preprocessing fields of a loader's options, as a cache records them. */
export function cachePreprocessing(o: { height: number; width: number; fit?: FitMode; filter?: ResizeFilter }): CachePreprocessing {
  return { height: o.height, width: o.width, fit: o.fit ?? 'stretch', filter: o.filter ?? 'lanczos3' };
}

export { RESIZE_FILTERS };
