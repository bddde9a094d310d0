/**
 * Unpaired loading (MedRAT): two independently shuffled streams, images with labels and reports
 * with labels, that share nothing but the label space. Each batch holds `batchSize` images and
 * `reportBatchSize` reports from different studies. An epoch is `ceil(max(nImages, nReports) /
 * batch)` steps: the longer stream is read once, the shorter one is read whole and then again in a
 * new order as often as needed (every item of both streams appears at least once per epoch).
 *
 * Images go through the same machinery as the paired `DataLoader` (sharp or a prepared cache,
 * seeded augmentations); reports are tokenised after optional sentence shuffling. `tensorBatch(b)`
 * makes the `TensorBatch` a system trains on: images `[Bi, V, 1, H, W]`, tokens `[Br, L]`, labels
 * (the reports' label states) `[Br, 14]`, extras `imageLabels` `[Bi, 14]`, `paired: false`.
 * Validation and test stay paired: evaluate them with `evaluateSplit` on the R2Gen dataset.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { labelStateMatrix, type ReportLabels } from '../text/chexpert.js';
import { ArgumentError } from '../errors.js';
import { TensorBatch } from '../models/model.js';
import { cacheKey, cachePreprocessing } from './cache.js';
import { checkAugmentOptions, shuffleSentences } from './augment.js';
import { DataLoader, prefetching, type LoaderOptions } from './loader.js';
import type { DataIssue, R2GenDataset, R2GenEntry, UnpairedDataset } from './r2gen.js';
import { Rng, hashSeed } from './synth/rng.js';

/** The paired loader's image, seed, tokenizer, worker, error, cache and augmentation options, plus the two batch sizes. */
export interface UnpairedLoaderOptions
  extends Pick<LoaderOptions, 'imageSize' | 'fit' | 'filter' | 'mean' | 'std' | 'seed' | 'epoch' | 'tokenizer' | 'maxLength' | 'prefetch' | 'workers' | 'onError' | 'augment'> {
  /** Images per batch. */
  batchSize: number;
  /** Reports per batch (default `batchSize`). */
  reportBatchSize?: number;
  /** Views per image item (default 1: MedRAT reads the frontal view only). */
  views?: number;
  /** 'auto' (default): the prepared cache of the dataset the images belong to (`<image folder>/../prepared/<key>`), when there is one. */
  cache?: 'auto' | string | false;
}

export interface UnpairedBatch {
  imageIds: string[];
  images: { data: Float32Array; shape: [number, number, 1, number, number] };
  imageLabels: ReportLabels[];
  imageLabelStates: { data: Int32Array; shape: [number, 14] };
  reportIds: string[];
  /** Reports as tokenised (after sentence shuffling, when on). */
  reports: string[];
  tokens?: { data: Int32Array; mask: Uint8Array; shape: [number, number] };
  reportLabels: ReportLabels[];
  reportLabelStates: { data: Int32Array; shape: [number, 14] };
  /** Image items dropped with `onError: 'skip'`. */
  skipped: string[];
}

const FN = 'UnpairedLoader';

/** `n` indices from endless independently shuffled passes over `size` items (pass k seeded by k). */
function stream(size: number, n: number, seed: number, epoch: number, name: string): number[] {
  const out: number[] = [];
  for (let lap = 0; out.length < n; lap++) {
    const idx = Array.from({ length: size }, (_, i) => i);
    out.push(...new Rng(hashSeed('radkit-unpaired', name, seed, epoch, lap)).shuffle(idx));
  }
  return out.slice(0, n);
}

export class UnpairedLoader implements AsyncIterable<UnpairedBatch> {
  /** Problems met with `onError: 'skip'` (image items left out of their batch). */
  get issues(): DataIssue[] {
    return this.images.issues;
  }
  private readonly images: DataLoader;
  private readonly o: { batchSize: number; reportBatchSize: number; seed: number; epoch: number; prefetch: number };

  constructor(
    readonly data: UnpairedDataset,
    readonly options: UnpairedLoaderOptions,
  ) {
    const o = options;
    if (!data || !Array.isArray(data.images) || !Array.isArray(data.reports)) throw new ArgumentError(`${FN}: data must be an UnpairedDataset (readUnpaired)`, 'ERR_INVALID_ARG', FN);
    if (data.images.length === 0 || data.reports.length === 0) throw new ArgumentError(`${FN}: needs at least one image and one report (got ${data.images.length} and ${data.reports.length})`, 'ERR_INVALID_ARG', FN);
    if (!o || !Number.isInteger(o.batchSize) || o.batchSize < 1) throw new ArgumentError(`${FN}: batchSize must be a positive integer, got ${o?.batchSize}`, 'ERR_INVALID_ARG', FN);
    const rb = o.reportBatchSize ?? o.batchSize;
    if (!Number.isInteger(rb) || rb < 1) throw new ArgumentError(`${FN}: reportBatchSize must be a positive integer, got ${rb}`, 'ERR_INVALID_ARG', FN);
    const prefetch = o.prefetch ?? 2;
    if (!Number.isInteger(prefetch) || prefetch < 1) throw new ArgumentError(`${FN}: prefetch must be a positive integer, got ${prefetch}`, 'ERR_INVALID_ARG', FN);
    if (o.augment !== undefined) checkAugmentOptions(o.augment);
    this.o = { batchSize: o.batchSize, reportBatchSize: rb, seed: o.seed ?? 0, epoch: o.epoch ?? 0, prefetch };
    // The image items as a one-split dataset, so the paired loader's decoding, cache and augmentation apply.
    const imageDir = data.imageDir ?? path.dirname(data.images[0].imagePaths[0]);
    const entries: R2GenEntry[] = data.images.map((x) => ({
      id: x.id,
      split: 'train',
      report: '',
      imagePaths: x.imagePaths,
      imagePathsRaw: x.imagePathsRaw ?? x.imagePaths,
      labels: x.labels,
    }));
    const imageSet: R2GenDataset = { style: 'iu', annotationPath: data.imagesFile ?? path.join(imageDir, 'images.json'), imageDir, splits: { train: entries, val: [], test: [] }, issues: [] };
    let cache = o.cache ?? 'auto';
    if (cache === 'auto') {
      const [H, W] = typeof o.imageSize === 'number' ? [o.imageSize, o.imageSize] : o.imageSize;
      const dir = path.join(path.dirname(imageDir), 'prepared', cacheKey(cachePreprocessing({ height: H, width: W, fit: o.fit, filter: o.filter })));
      cache = fs.existsSync(path.join(dir, 'manifest.json')) ? dir : false;
    }
    this.images = new DataLoader(imageSet, {
      split: 'train',
      batchSize: o.batchSize,
      imageSize: o.imageSize,
      views: o.views ?? 1,
      fit: o.fit,
      filter: o.filter,
      mean: o.mean,
      std: o.std,
      seed: this.o.seed,
      workers: o.workers,
      onError: o.onError,
      cache,
      augment: o.augment?.image ? { image: o.augment.image } : undefined,
    });
  }

  /** Steps per epoch: ceil(max(nImages / batchSize, nReports / reportBatchSize)). */
  get length(): number {
    return Math.max(Math.ceil(this.data.images.length / this.o.batchSize), Math.ceil(this.data.reports.length / this.o.reportBatchSize));
  }

  /** The image and report indices of each step of an epoch. */
  plan(epoch = this.o.epoch): Array<{ images: number[]; reports: number[] }> {
    const steps = this.length;
    const im = stream(this.data.images.length, steps * this.o.batchSize, this.o.seed, epoch, 'images');
    const rp = stream(this.data.reports.length, steps * this.o.reportBatchSize, this.o.seed, epoch, 'reports');
    const bi = this.o.batchSize;
    const br = this.o.reportBatchSize;
    // A stream that needs all the steps is read once (its last batch may be short); the other wraps.
    const nI = Math.ceil(this.data.images.length / bi) === steps ? this.data.images.length : steps * bi;
    const nR = Math.ceil(this.data.reports.length / br) === steps ? this.data.reports.length : steps * br;
    return Array.from({ length: steps }, (_, s) => ({ images: im.slice(s * bi, Math.min((s + 1) * bi, nI)), reports: rp.slice(s * br, Math.min((s + 1) * br, nR)) }));
  }

  epoch(epoch: number): AsyncIterable<UnpairedBatch> {
    return { [Symbol.asyncIterator]: () => this.iterate(epoch) };
  }

  [Symbol.asyncIterator](): AsyncIterator<UnpairedBatch> {
    return this.iterate(this.o.epoch);
  }

  private iterate(epoch: number): AsyncIterator<UnpairedBatch> {
    const steps = this.plan(epoch);
    return prefetching(steps.length, this.o.prefetch, (i) => this.makeBatch(steps[i], epoch));
  }

  private async makeBatch(step: { images: number[]; reports: number[] }, epoch: number): Promise<UnpairedBatch> {
    const ib = await this.images.batch(step.images, epoch);
    const imageLabels = ib.labels ?? [];
    const reps = step.reports.map((i) => this.data.reports[i]);
    const p = this.options.augment?.text?.shuffleSentences ?? 0;
    const reports = reps.map((r) => (p > 0 ? shuffleSentences(r.report, p, this.o.seed, epoch, r.id) : r.report));
    const reportLabels = reps.map((r) => r.labels);
    const out: UnpairedBatch = {
      imageIds: ib.ids,
      images: ib.images,
      imageLabels,
      imageLabelStates: { data: labelStateMatrix(imageLabels), shape: [imageLabels.length, 14] },
      reportIds: reps.map((r) => r.id),
      reports,
      reportLabels,
      reportLabelStates: { data: labelStateMatrix(reportLabels), shape: [reportLabels.length, 14] },
      skipped: ib.skipped,
    };
    const tok = this.options.tokenizer;
    if (tok) {
      const enc = tok.encodeBatch(reports, { maxLength: this.options.maxLength ?? tok.maxLength });
      out.tokens = { data: enc.data, mask: enc.mask, shape: enc.shape };
    }
    return out;
  }
}

/**
 * The tensors of an unpaired batch (`paired: false`): images, tokens, `labels` = the reports' label
 * states `[Br, 14]`, extras `imageLabels` `[Bi, 14]` (int64). The caller disposes it.
 */
export function unpairedTensorBatch(b: UnpairedBatch): TensorBatch {
  return new TensorBatch(
    { images: b.images, tokens: b.tokens, labelStates: b.reportLabelStates },
    { paired: false, extras: { imageLabels: { data: b.imageLabelStates.data, shape: b.imageLabelStates.shape, dtype: 'int64' } } },
  );
}
