import * as fs from 'node:fs';
import * as path from 'node:path';
import type { R2GenDataset } from '../data/r2gen.js';
import { RadkitError } from '../errors.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import type { Model } from '../models/model.js';
import { Tensor } from '../tensor.js';
import type { Preprocessing } from '../train/checkpoint.js';
import { buildTextualCodebook, type TextualCodebook } from '../text/entities.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';
import { embedSplit } from './embed.js';
import { buildVisualCodebook, type VisualCodebook } from './keypatches.js';
import { embedKeywords, type KeywordBank } from './keywords.js';

/** Both codebooks of AdaMatch-Cyclic (seed 000 sections 3.2.1-3.2.2), for one frozen model. */
export interface Codebooks {
  textual: TextualCodebook;
  keywords: KeywordBank;
  visual: VisualCodebook;
  settings: { kappa0: number; kappa2: number; kappa3: number; trainStudies: number };
}

export interface CodebookOptions {
  /** Keywords per entity group (200). */
  kappa0?: number;
  /** Training pairs in the visual codebook (1000) and keypatches per pair (20). */
  kappa2?: number;
  kappa3?: number;
  /** Encode at most this many training studies (default all). */
  maxItems?: number;
  workers?: number;
  signal?: AbortSignal;
}

/** Builds the textual codebook from training reports and the visual codebook from training images. */
export async function buildCodebooks(model: Model, tokenizer: ReportTokenizer, dataset: R2GenDataset, preprocessing: Preprocessing, o: CodebookOptions = {}): Promise<Codebooks> {
  const kappa0 = o.kappa0 ?? 200, kappa2 = o.kappa2 ?? 1000, kappa3 = o.kappa3 ?? 20;
  const train = o.maxItems ? dataset.splits.train.slice(0, o.maxItems) : dataset.splits.train;
  const textual = buildTextualCodebook(train.map((e) => e.report), kappa0);
  const keywords = await embedKeywords(model, tokenizer, textual.keywords);
  const e = await embedSplit(model, dataset, { split: 'train', preprocessing, tokenizer, maxItems: o.maxItems, workers: o.workers, signal: o.signal });
  const visual = buildVisualCodebook(e, kappa2, kappa3);
  return { textual, keywords, visual, settings: { kappa0, kappa2, kappa3, trainStudies: e.n } };
}

const JSON_FILE = 'codebooks.json';
const TENSOR_FILE = 'codebooks.safetensors';

/** Writes `dir/codebooks.json` (entities, keypatch records) and `dir/codebooks.safetensors` (embeddings). */
export function saveCodebooks(dir: string, c: Codebooks): void {
  fs.mkdirSync(dir, { recursive: true });
  const kw = Tensor.from(c.keywords.embeddings, [c.keywords.keywords.length, c.keywords.dim]);
  const vp = Tensor.from(c.visual.embeddings, [c.visual.keypatches.length, c.visual.dim]);
  try {
    writeSafetensors(path.join(dir, TENSOR_FILE), { keywords: kw, keypatches: vp });
  } finally {
    kw.dispose();
    vp.dispose();
  }
  const meta = { format: 'radkit-codebooks', version: 1, settings: c.settings, textual: c.textual, keywords: c.keywords.keywords, keypatches: c.visual.keypatches };
  fs.writeFileSync(path.join(dir, JSON_FILE), JSON.stringify(meta));
}

export function hasCodebooks(dir: string): boolean {
  return fs.existsSync(path.join(dir, JSON_FILE)) && fs.existsSync(path.join(dir, TENSOR_FILE));
}

export function loadCodebooks(dir: string): Codebooks {
  if (!hasCodebooks(dir)) throw new RadkitError(`no codebooks in ${dir} (build them with radkit codebooks --checkpoint ... --data ...)`, 'ERR_CHECKPOINT', 'loadCodebooks');
  const meta = JSON.parse(fs.readFileSync(path.join(dir, JSON_FILE), 'utf8'));
  if (meta.format !== 'radkit-codebooks') throw new RadkitError(`${dir}/${JSON_FILE} is not a radkit codebook file`, 'ERR_CHECKPOINT', 'loadCodebooks');
  const { tensors } = readSafetensors(path.join(dir, TENSOR_FILE));
  try {
    const kw = tensors.keywords, vp = tensors.keypatches;
    return {
      textual: meta.textual,
      keywords: { keywords: meta.keywords, embeddings: Float32Array.from(kw.toArray() as Float32Array), dim: kw.shape[1] },
      visual: { keypatches: meta.keypatches, embeddings: Float32Array.from(vp.toArray() as Float32Array), dim: vp.shape[1] },
      settings: meta.settings,
    };
  } finally {
    Object.values(tensors).forEach((t) => t.dispose());
  }
}
