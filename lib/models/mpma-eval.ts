/**
 * MPMA pre-training diagnostics (the `mpma` kind's evaluation) and pictures:
 *  - MIM: validation MSE on the masked patches (a fixed mask seed per batch) against predicting
 *    the split's mean patch everywhere (the trivial baseline), and against the split's per-position
 *    mean image (a stronger reference that has seen the evaluated images);
 *  - MLM: masked-token accuracy against always guessing the most frequent training word;
 *  - retrieval R@1/5/10 both ways with the global embeddings (lib/align);
 *  - the validation loss of eq. 10 at full lambda_GLA (model selection: negValLoss).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import type { R2GenDataset } from '../data/r2gen.js';
import type { Batch } from '../data/loader.js';
import { evaluateRetrieval } from '../align/evaluate.js';
import { RadkitError } from '../errors.js';
import { writeHtmlReport, type ReportItem } from '../report/html.js';
import { pngDataUri } from '../report/patches.js';
import type { Tensor } from '../tensor.js';
import { splitLoader } from '../train/evaluate.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';
import { WordPieceTokenizer } from '../text/wordpiece.js';
import { TensorBatch, type Model } from './model.js';
import type { Evaluation, EvaluationOptions } from './registry.js';

export interface PretrainingDiagnostics {
  /** MSE of the MAE reconstruction on masked patches, and of the split's mean image there. */
  mimMse: number;
  /** The trivial baseline: one mean patch (over every patch of the split) predicted everywhere. */
  meanPatchMse: number;
  /** A stronger reference: the split's per-position mean image. */
  meanImageMse: number;
  /** Masked-token accuracy, and that of always guessing the most frequent training word. */
  mlmAccuracy: number;
  unigramAccuracy: number;
  unigramToken: string;
  maskedPatches: number;
  maskedTokens: number;
  /** Mean validation loss (eq. 10 at lambda_GLA = 1). */
  valLoss: number;
  n: number;
}

const floats = (t: Tensor) => t.toArray() as Float32Array;
const ints = (t: Tensor) => Array.from(t.toArray() as BigInt64Array, Number);
const bools = (t: Tensor) => t.toArray() as Uint8Array;

/** The most frequent word id of the training reports (special tokens excluded). */
export function mostFrequentWord(tokenizer: ReportTokenizer, dataset: R2GenDataset): number {
  const special = tokenizer instanceof WordPieceTokenizer ? new Set([tokenizer.clsId, tokenizer.sepId, tokenizer.padId]) : new Set([0]);
  const counts = new Map<number, number>();
  for (const e of dataset.splits.train) for (const id of tokenizer.encode(e.report)) if (!special.has(id)) counts.set(id, (counts.get(id) ?? 0) + 1);
  let best = -1;
  let bestCount = -1;
  for (const [id, c] of counts) if (c > bestCount || (c === bestCount && id < best)) [best, bestCount] = [id, c];
  return best;
}

function diagnoseBatch(batch: Batch, seed: number): TensorBatch {
  return new TensorBatch(batch, { extras: { diagnose: { data: new Float32Array([seed]), shape: [] } } });
}

/** The diagnostics on a split (one fixed mask seed per batch: 1000 + batch index). */
export async function pretrainingDiagnostics(model: Model, tokenizer: ReportTokenizer, dataset: R2GenDataset, o: EvaluationOptions): Promise<PretrainingDiagnostics> {
  const loader = splitLoader(dataset, o, tokenizer, o.batchSize ?? 32);
  const unigram = mostFrequentWord(tokenizer, dataset);
  let sse = 0, maskedPatches = 0, correct = 0, unigramHits = 0, maskedTokens = 0, lossSum = 0, n = 0;
  // Per pixel position: sums over all images (the mean image) and over masked occurrences.
  let all1: Float64Array | null = null, m1: Float64Array | null = null, m2: Float64Array | null = null, mCount: Float64Array | null = null;
  let imagesSeen = 0;
  let index = 0;
  for await (const batch of loader) {
    if (o.signal?.aborted) throw new RadkitError('mpma diagnostics: aborted', 'ERR_ABORTED', 'evaluate', { cause: o.signal.reason });
    const tb = diagnoseBatch(batch, 1000 + index++);
    let enc: Record<string, Tensor> = {};
    try {
      if (batch.ids.length >= 2) {
        const l = await model.evalLoss(tb);
        lossSum += l.loss * batch.ids.length;
        n += batch.ids.length;
      }
      enc = await model.encode(tb);
      const [B, Np, PP] = enc.mimTarget.shape;
      const target = floats(enc.mimTarget), pred = floats(enc.mimPredicted), mask = floats(enc.mimMask);
      const L = Np * PP;
      all1 ??= new Float64Array(L);
      m1 ??= new Float64Array(L);
      m2 ??= new Float64Array(L);
      mCount ??= new Float64Array(Np);
      for (let b = 0; b < B; b++) {
        for (let p = 0; p < Np; p++) {
          const masked = mask[b * Np + p] > 0.5;
          if (masked) {
            mCount[p]++;
            maskedPatches++;
          }
          let patchErr = 0;
          for (let k = 0; k < PP; k++) {
            const i = p * PP + k, x = target[b * L + i];
            all1[i] += x;
            if (masked) {
              m1[i] += x;
              m2[i] += x * x;
              const d = pred[b * L + i] - x;
              patchErr += d * d;
            }
          }
          if (masked) sse += patchErr / PP;
        }
      }
      imagesSeen += B;
      if (enc.mlmTargets) {
        const t = ints(enc.mlmTargets), p = ints(enc.mlmPredicted), c = bools(enc.mlmChosen);
        for (let i = 0; i < t.length; i++)
          if (c[i]) {
            maskedTokens++;
            if (p[i] === t[i]) correct++;
            if (t[i] === unigram) unigramHits++;
          }
      }
    } finally {
      tb.dispose();
      Object.values(enc).forEach((t) => t.dispose());
    }
  }
  // Mean-image baseline: sum over masked occurrences of (x - mu)^2, per pixel, from the sums.
  let baseSse = 0, patchSse = 0;
  if (all1 && m1 && m2 && mCount) {
    const Np = mCount.length, PP = all1.length / Np;
    for (let k = 0; k < PP; k++) {
      let a = 0, s1 = 0, s2 = 0;
      for (let p = 0; p < Np; p++) {
        a += all1[p * PP + k];
        s1 += m1[p * PP + k];
        s2 += m2[p * PP + k];
      }
      const mu = a / (imagesSeen * Np);
      patchSse += (s2 - 2 * mu * s1 + maskedPatches * mu * mu) / PP;
    }
  }
  if (all1 && m1 && m2 && mCount) {
    const PP = all1.length / mCount.length;
    for (let i = 0; i < all1.length; i++) {
      const mu = all1[i] / imagesSeen;
      baseSse += (m2[i] - 2 * mu * m1[i] + mCount[Math.floor(i / PP)] * mu * mu) / PP;
    }
  }
  return {
    mimMse: sse / Math.max(1, maskedPatches),
    meanPatchMse: patchSse / Math.max(1, maskedPatches),
    meanImageMse: baseSse / Math.max(1, maskedPatches),
    mlmAccuracy: correct / Math.max(1, maskedTokens),
    unigramAccuracy: unigramHits / Math.max(1, maskedTokens),
    unigramToken: tokenizer.decode([unigram]),
    maskedPatches,
    maskedTokens,
    valLoss: lossSum / Math.max(1, n),
    n: imagesSeen,
  };
}

/** The `mpma` kind's evaluation: diagnostics + retrieval; selection by negValLoss (higher is better). */
export async function mpmaEvaluation(model: Model, tokenizer: ReportTokenizer, dataset: R2GenDataset, o: EvaluationOptions): Promise<Evaluation> {
  const d = await pretrainingDiagnostics(model, tokenizer, dataset, o);
  const r = await evaluateRetrieval(model, tokenizer, dataset, o);
  const headline: Record<string, number> = {
    negValLoss: -d.valLoss,
    valLoss: d.valLoss,
    mimMse: d.mimMse,
    meanPatchMse: d.meanPatchMse,
    meanImageMse: d.meanImageMse,
    mlmAccuracy: d.mlmAccuracy,
    unigramAccuracy: d.unigramAccuracy,
    ...r.headline,
  };
  return { headline, record: { diagnostics: d, retrieval: r.metrics, maskSeeds: '1000 + batch index' } };
}

// ---------------------------------------------------------------- pictures

type Rgb = [number, number, number];

function png(width: number, height: number, pixel: (x: number, y: number) => Rgb): Buffer {
  const p = new PNG({ width, height });
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const [r, g, b] = pixel(x, y);
      const i = (y * width + x) * 4;
      p.data[i] = r;
      p.data[i + 1] = g;
      p.data[i + 2] = b;
      p.data[i + 3] = 255;
    }
  return PNG.sync.write(p, { colorType: 2 });
}

const clamp8 = (v: number) => Math.max(0, Math.min(255, Math.round(v)));

function heat(v: number): Rgb {
  // black -> red -> yellow -> white
  const t = Math.max(0, Math.min(1, v));
  return [clamp8(3 * t * 255), clamp8((3 * t - 1) * 255), clamp8((3 * t - 2) * 255)];
}

/**
 * Writes an HTML page of MPMA pictures for the first `count` studies of a split: the masked input,
 * the MAE reconstruction (visible patches kept, masked ones predicted), and GLA's word-to-patch
 * attention (eq. 7) averaged over the report's words and for its most focused word, over the image.
 */
export async function writeMpmaPictures(
  model: Model,
  tokenizer: ReportTokenizer,
  dataset: R2GenDataset,
  o: EvaluationOptions & { count?: number; file: string; title?: string; scores?: Record<string, Record<string, number>> },
): Promise<string> {
  const count = o.count ?? 6;
  const loader = splitLoader(dataset, { ...o, maxItems: count }, tokenizer, count);
  const items: ReportItem[] = [];
  let index = 0;
  for await (const batch of loader) {
    const tb = diagnoseBatch(batch, 1000 + index++);
    let enc: Record<string, Tensor> = {};
    try {
      enc = await model.encode(tb);
      const [B, Np, PP] = enc.mimTarget.shape;
      const P = Math.round(Math.sqrt(PP)), g = Math.round(Math.sqrt(Np)), S = g * P;
      const target = floats(enc.mimTarget), pred = floats(enc.mimPredicted), mask = floats(enc.mimMask);
      const att = enc.wordPatchAttention ? floats(enc.wordPatchAttention) : null;
      const words = enc.words ? bools(enc.words) : null;
      const T = enc.wordPatchAttention ? enc.wordPatchAttention.shape[1] : 0;
      const tokens = batch.tokens ? Array.from(batch.tokens.data) : [];
      const Tt = batch.tokens ? batch.tokens.shape[1] : 0;
      for (let b = 0; b < B; b++) {
        let lo = Infinity, hi = -Infinity;
        for (let i = 0; i < Np * PP; i++) {
          lo = Math.min(lo, target[b * Np * PP + i]);
          hi = Math.max(hi, target[b * Np * PP + i]);
        }
        const grey = (v: number) => clamp8(((v - lo) / Math.max(1e-6, hi - lo)) * 255);
        const at = (arr: Float32Array, x: number, y: number) => {
          const p = Math.floor(y / P) * g + Math.floor(x / P), k = (y % P) * P + (x % P);
          return { p, v: arr[(b * Np + p) * PP + k] };
        };
        const masked = png(S, S, (x, y) => {
          const { p, v } = at(target, x, y);
          if (mask[b * Np + p] > 0.5) return [40, 40, 90];
          const c = grey(v);
          return [c, c, c];
        });
        const recon = png(S, S, (x, y) => {
          const { p, v } = at(mask[b * Np + Math.floor(y / P) * g + Math.floor(x / P)] > 0.5 ? pred : target, x, y);
          void p;
          const c = grey(v);
          return [c, c, c];
        });
        const notes: string[] = [];
        const images = [pngDataUri(masked), pngDataUri(recon)];
        if (att && words) {
          const mean = new Float64Array(Np);
          let nWords = 0, bestWord = -1, bestPeak = -1;
          for (let j = 0; j < T; j++) {
            if (!words[b * T + j]) continue;
            nWords++;
            let peak = 0;
            for (let p = 0; p < Np; p++) {
              const a = att[(b * T + j) * Np + p];
              mean[p] += a;
              peak = Math.max(peak, a);
            }
            if (peak > bestPeak) [bestPeak, bestWord] = [peak, j];
          }
          const overlay = (map: (p: number) => number) => {
            let top = 0;
            for (let p = 0; p < Np; p++) top = Math.max(top, map(p));
            return png(S, S, (x, y) => {
              const { p, v } = at(target, x, y);
              const h = heat(map(p) / Math.max(1e-12, top));
              const c = grey(v) / 255;
              return [clamp8(0.5 * c * 255 + 0.5 * h[0]), clamp8(0.5 * c * 255 + 0.5 * h[1]), clamp8(0.5 * c * 255 + 0.5 * h[2])];
            });
          };
          if (nWords) {
            images.push(pngDataUri(overlay((p) => mean[p] / nWords)));
            images.push(pngDataUri(overlay((p) => att[(b * T + bestWord) * Np + p])));
            const word = tokenizer.decode([tokens[b * Tt + bestWord]]);
            notes.push(`pictures: masked input (${Math.round((100 * mask.slice(b * Np, (b + 1) * Np).reduce((s, v) => s + v, 0)) / Np)}% of patches), MAE reconstruction, word-to-patch attention (eq. 7) averaged over the words, attention of the most focused word '${word}'`);
          }
        }
        items.push({ id: batch.ids[b], images, reference: tokenizer.clean(batch.reports[b]), generated: {}, notes });
      }
    } finally {
      tb.dispose();
      Object.values(enc).forEach((t) => t.dispose());
    }
  }
  fs.mkdirSync(path.dirname(o.file), { recursive: true });
  writeHtmlReport(o.file, { title: o.title ?? 'MPMA pre-training pictures', scores: o.scores ?? {}, settings: { kind: model.kind, config: model.config, split: o.split }, items });
  return o.file;
}
