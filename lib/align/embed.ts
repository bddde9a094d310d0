import type { R2GenDataset, SplitName } from '../data/r2gen.js';
import { RadkitError } from '../errors.js';
import { TensorBatch, type Model } from '../models/model.js';
import type { Tensor } from '../tensor.js';
import type { Preprocessing } from '../train/checkpoint.js';
import { splitLoader } from '../train/evaluate.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';

/**
 * Patch and word embeddings of a split (AdaMatch `encode`), gathered into flat arrays so retrieval,
 * keypatch and pointing-game code can slice them freely. Texts are right-padded to the longest one.
 */
export interface EmbeddedSplit {
  ids: string[];
  reports: string[];
  /** [n, N, d] patch embeddings (unit rows). */
  image: Float32Array;
  /** [n, K, d] word embeddings; [n, K] 1 = real word. */
  text: Float32Array;
  textMask: Uint8Array;
  /** [n, N, 4] adaptive patches (cx, cy, w, h) in input pixels; [N, 4] the fixed grid. */
  boxes: Float32Array;
  fixedBoxes: Float32Array;
  n: number;
  patches: number;
  words: number;
  dim: number;
  grid: [number, number];
  imageSize: number;
}

export interface EmbedOptions {
  split: SplitName;
  preprocessing: Preprocessing;
  tokenizer: ReportTokenizer;
  batchSize?: number;
  /** At most this many studies (in dataset order). */
  maxItems?: number;
  workers?: number;
  signal?: AbortSignal;
}

const floats = (t: Tensor) => Float32Array.from(t.toArray() as Float32Array);

/** One `model.encode` result as an EmbeddedSplit (images and texts of the same studies). */
export function embeddedFromEncoding(enc: Record<string, Tensor>, ids: string[], reports: string[], imageSize: number): EmbeddedSplit {
  const [n, N, d] = enc.image ? enc.image.shape : [ids.length, 0, enc.text?.shape[2] ?? 0];
  const K = enc.text ? enc.text.shape[1] : 0;
  const g = enc.grid ? (enc.grid.toArray() as BigInt64Array) : [0n, 0n];
  return {
    ids,
    reports,
    image: enc.image ? floats(enc.image) : new Float32Array(0),
    text: enc.text ? floats(enc.text) : new Float32Array(0),
    textMask: enc.textMask ? Uint8Array.from(enc.textMask.toArray() as Uint8Array) : new Uint8Array(0),
    boxes: enc.boxes ? floats(enc.boxes) : new Float32Array(0),
    fixedBoxes: enc.fixedBoxes ? floats(enc.fixedBoxes) : new Float32Array(0),
    n,
    patches: N,
    words: K,
    dim: d,
    grid: [Number(g[0]), Number(g[1])],
    imageSize,
  };
}

/** Concatenates batches, right-padding texts to the longest. */
function concatEmbedded(parts: EmbeddedSplit[], imageSize: number): EmbeddedSplit {
  const n = parts.reduce((s, p) => s + p.n, 0);
  const first = parts[0];
  const N = first?.patches ?? 0, d = first?.dim ?? 0;
  const K = Math.max(0, ...parts.map((p) => p.words));
  const out: EmbeddedSplit = {
    ids: parts.flatMap((p) => p.ids),
    reports: parts.flatMap((p) => p.reports),
    image: new Float32Array(n * N * d),
    text: new Float32Array(n * K * d),
    textMask: new Uint8Array(n * K),
    boxes: new Float32Array(n * N * 4),
    fixedBoxes: first?.fixedBoxes ?? new Float32Array(0),
    n,
    patches: N,
    words: K,
    dim: d,
    grid: first?.grid ?? [0, 0],
    imageSize,
  };
  let row = 0;
  for (const p of parts) {
    out.image.set(p.image, row * N * d);
    out.boxes.set(p.boxes, row * N * 4);
    for (let i = 0; i < p.n; i++) {
      out.text.set(p.text.subarray(i * p.words * d, (i + 1) * p.words * d), (row + i) * K * d);
      out.textMask.set(p.textMask.subarray(i * p.words, (i + 1) * p.words), (row + i) * K);
    }
    row += p.n;
  }
  return out;
}

/** Encodes a split batch by batch on native worker threads. */
export async function embedSplit(model: Model, dataset: R2GenDataset, o: EmbedOptions): Promise<EmbeddedSplit> {
  const loader = splitLoader(dataset, o, o.tokenizer, 32);
  const parts: EmbeddedSplit[] = [];
  for await (const batch of loader) {
    if (o.signal?.aborted) throw new RadkitError('embedSplit: aborted', 'ERR_ABORTED', 'embedSplit', { cause: o.signal.reason });
    const tb = new TensorBatch(batch);
    let enc: Record<string, Tensor> = {};
    try {
      enc = await model.encode(tb);
      parts.push(embeddedFromEncoding(enc, batch.ids, batch.reports, o.preprocessing.imageSize));
    } finally {
      tb.dispose();
      Object.values(enc).forEach((t) => t.dispose());
    }
  }
  return concatEmbedded(parts, o.preprocessing.imageSize);
}
