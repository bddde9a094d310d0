/**
 * AdaMatch-found hints of AdaMatch-Cyclic (seed 000 sections 3.2.1-3.2.2), for every study of the
 * chosen splits, from a frozen AdaMatch and its codebooks (`radkit codebooks`):
 *   keywords of an image: the textual codebook's keywords against the image's adaptive patches,
 *     top kappa1 per patch, the N_w best overall (`keywordsForImage`);
 *   keypatches of a report: the visual codebook's keypatches against the report's words, top
 *     kappa4 per word, the N_p best overall (`keypatchesForReport`); each keypatch becomes one code
 *     of the VQ tokenizer, so a report's keypatch hints are N_p image tokens. By default the code
 *     is read in context (the keypatch's training image encoded whole, the code of the cell under
 *     the box centre: `keypatchCodesInContext`); `keypatchToken: 'crop'` encodes the box cropped
 *     at f x f alone instead (`cropBox`, `keypatchCodes`), which on SynthCXR gave 2 codes in all.
 * The result is the hints file `adamatch-cyclic --hints FILE` reads.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Codebooks } from '../align/codebooks.js';
import { embedSplit } from '../align/embed.js';
import { keypatchesForReport } from '../align/keypatches.js';
import { keywordsForImage } from '../align/keywords.js';
import { readImage } from '../data/image.js';
import type { R2GenDataset, SplitName } from '../data/r2gen.js';
import { ArgumentError, RadkitError } from '../errors.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';
import type { Preprocessing } from '../train/checkpoint.js';
import type { CyclicHintsFile } from './adamatch-cyclic.js';
import { cropBox, downsamplingFactor, keypatchCodes, keypatchCodesInContext } from './cyclic-keypatches.js';
import type { Model } from './model.js';

export interface CyclicHintsOptions {
  splits?: SplitName[];
  /** Keywords kept per patch (1) and per image (N_w, 10). */
  kappa1?: number;
  nw?: number;
  /** Keypatches kept per word (5) and per report (N_p, 5). */
  kappa4?: number;
  np?: number;
  maxItems?: number;
  /** How a keypatch becomes a token: 'context' (default) or 'crop' (see the file comment). */
  keypatchToken?: 'context' | 'crop';
  workers?: number;
  signal?: AbortSignal;
}

/** Hints of every study of `splits` (default all three) from a frozen AdaMatch, its codebooks and a VQ tokenizer. */
export async function cyclicHints(adamatch: Model, tokenizer: ReportTokenizer, preprocessing: Preprocessing, codebooks: Codebooks, vq: Model, dataset: R2GenDataset, o: CyclicHintsOptions = {}): Promise<CyclicHintsFile> {
  const fn = 'cyclicHints';
  if (adamatch.kind !== 'adamatch') throw new ArgumentError(`${fn}: needs an adamatch model, got ${adamatch.kind}`, 'ERR_INVALID_ARG', fn);
  if (vq.kind !== 'vqgan') throw new ArgumentError(`${fn}: needs a vqgan tokenizer, got ${vq.kind}`, 'ERR_INVALID_ARG', fn);
  const kappa1 = o.kappa1 ?? 1, nw = o.nw ?? 10, kappa4 = o.kappa4 ?? 5, np = o.np ?? 5;
  const mode = o.keypatchToken ?? 'context';
  if (mode !== 'context' && mode !== 'crop') throw new ArgumentError(`${fn}: keypatchToken must be 'context' or 'crop', got '${String(mode)}'`, 'ERR_INVALID_ARG', fn);
  const f = downsamplingFactor(vq);
  const vqSize = Number(vq.config.resolution);
  if (!(vqSize > 0)) throw new ArgumentError(`${fn}: the vqgan tokenizer has no image size (config.resolution)`, 'ERR_INVALID_ARG', fn);
  const byId = new Map(Object.values(dataset.splits).flat().map((e) => [e.id, e]));
  const keywords: Record<string, string[]> = {};
  const chosen: Record<string, number[]> = {};
  const needed = new Set<number>();
  for (const split of o.splits ?? (['train', 'val', 'test'] as SplitName[])) {
    const e = await embedSplit(adamatch, dataset, { split, preprocessing, tokenizer, maxItems: o.maxItems, workers: o.workers, signal: o.signal });
    const K = e.words, d = e.dim;
    for (let i = 0; i < e.n; i++) {
      keywords[e.ids[i]] = keywordsForImage(codebooks.keywords, e, i, kappa1, nw).top.map((k) => k.keyword);
      const kp = keypatchesForReport(codebooks.visual, e.text.subarray(i * K * d, (i + 1) * K * d), e.textMask.subarray(i * K, (i + 1) * K), kappa4, np).top.map((k) => k.keypatch);
      chosen[e.ids[i]] = kp;
      kp.forEach((k) => needed.add(k));
    }
  }
  // One code per keypatch used, from its training image (boxes are in AdaMatch's input frame).
  const size = preprocessing.imageSize, side = mode === 'context' ? vqSize : size;
  // By study, so that one study's keypatches share a chunk and its image is read (and encoded) once.
  const kps = codebooks.visual.keypatches;
  const order = [...needed].sort((a, b) => (kps[a].study < kps[b].study ? -1 : kps[a].study > kps[b].study ? 1 : a - b));
  const codes = new Map<number, number>();
  for (let s = 0; s < order.length; s += 64) {
    const chunk = order.slice(s, s + 64);
    const read = new Map<string, Float32Array>();
    const images: Float32Array[] = [];
    for (const k of chunk) {
      const kp = kps[k];
      let pixels = read.get(kp.study);
      if (!pixels) {
        const entry = byId.get(kp.study);
        if (!entry) throw new RadkitError(`${fn}: keypatch ${k} comes from study '${kp.study}', which the dataset does not hold (codebooks of another dataset?)`, 'ERR_DATA', fn);
        pixels = (await readImage(entry.imagePaths[0], { height: side, width: side })).data;
        read.set(kp.study, pixels);
      }
      images.push(mode === 'context' ? pixels : cropBox(pixels, size, size, kp.box, size, f));
    }
    const boxes = chunk.map((k) => kps[k].box);
    const c = mode === 'context' ? await keypatchCodesInContext(vq, images, boxes, size, vqSize) : await keypatchCodes(vq, images);
    c.forEach((code, i) => codes.set(chunk[i], code));
  }
  const keypatchCodesById = Object.fromEntries(Object.entries(chosen).map(([id, kp]) => [id, kp.map((k) => codes.get(k)!)]));
  return {
    format: 'radkit-cyclic-hints',
    version: 1,
    settings: { kappa1, nw, kappa4, np, codebooks: codebooks.settings, keypatchesEncoded: order.length, keypatchToToken:
        mode === 'context'
          ? `the code under the box centre when the ${vqSize} px training image is encoded whole`
          : `box cropped at ${f} x ${f} (bilinear) from the ${size} px training image and encoded alone`,
    },
    keywords,
    keypatchCodes: keypatchCodesById,
  };
}

/** Writes a hints file (JSON). */
export function saveCyclicHints(file: string, h: CyclicHintsFile): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(h));
}
