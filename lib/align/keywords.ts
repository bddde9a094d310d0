import { ArgumentError } from '../errors.js';
import { TensorBatch, type Model } from '../models/model.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';
import type { EmbeddedSplit } from './embed.js';
import { dot, meanUnit } from './vectors.js';

/** Keywords of a textual codebook embedded by AdaMatch's text encoder (one unit vector each). */
export interface KeywordBank {
  keywords: string[];
  /** [M, d] */
  embeddings: Float32Array;
  dim: number;
}

/**
 * Embeds the keywords of a textual codebook (seed 000 section 3.2.1) with the frozen text encoder:
 * each keyword is encoded on its own and its real word embeddings are averaged (then unit length),
 * so multi-word entities ("pleural effusion") get one vector.
 */
export async function embedKeywords(model: Model, tokenizer: ReportTokenizer, keywords: string[], batchSize = 64): Promise<KeywordBank> {
  if (!keywords.length) throw new ArgumentError('embedKeywords: the codebook has no keywords', 'ERR_INVALID_ARG', 'embedKeywords');
  const rows: Float32Array[] = [];
  let d = 0;
  for (let s = 0; s < keywords.length; s += batchSize) {
    const chunk = keywords.slice(s, s + batchSize);
    const enc = tokenizer.encodeBatch(chunk, { maxLength: tokenizer.maxLength });
    const tb = new TensorBatch({ tokens: { data: enc.data, mask: enc.mask, shape: enc.shape } });
    try {
      const out = await model.encode(tb);
      try {
        const [b, k, dim] = out.text.shape;
        d = dim;
        const text = out.text.toArray() as Float32Array;
        const mask = out.textMask.toArray() as Uint8Array;
        for (let i = 0; i < b; i++) rows.push(meanUnit(text.subarray(i * k * d, (i + 1) * k * d), k, d, (r) => mask[i * k + r] === 1));
      } finally {
        Object.values(out).forEach((t) => t.dispose());
      }
    } finally {
      tb.dispose();
    }
  }
  const embeddings = new Float32Array(rows.length * d);
  rows.forEach((r, i) => embeddings.set(r, i * d));
  return { keywords: [...keywords], embeddings, dim: d };
}

export interface PatchKeywords {
  /** Per adaptive patch: its top-kappa1 keywords and similarities. */
  perPatch: Array<Array<{ keyword: string; score: number }>>;
  /** The `top` best (patch, keyword) matches overall, one per keyword: the LLM hints of section 3.2.1. */
  top: Array<{ keyword: string; score: number; patch: number }>;
}

/**
 * Keywords of one image (section 3.2.1): the patch-word similarity s^P [M, N] between keyword
 * embeddings and the image's adaptive patches, top-kappa1 keywords per patch, and the `top` (10)
 * keywords with the highest similarities overall.
 */
export function keywordsForImage(bank: KeywordBank, e: EmbeddedSplit, index: number, kappa1 = 1, top = 10): PatchKeywords {
  const { patches: N, dim: d } = e;
  if (d !== bank.dim) throw new ArgumentError(`keywordsForImage: keyword width ${bank.dim} != patch width ${d}`, 'ERR_SHAPE', 'keywordsForImage');
  const M = bank.keywords.length;
  const perPatch: PatchKeywords['perPatch'] = [];
  const best = new Map<number, { score: number; patch: number }>();
  for (let n = 0; n < N; n++) {
    const base = (index * N + n) * d;
    const scores = Array.from({ length: M }, (_, m) => ({ m, s: dot(e.image, base, bank.embeddings, m * d, d) }));
    scores.sort((a, b) => b.s - a.s || a.m - b.m);
    const kept = scores.slice(0, kappa1);
    perPatch.push(kept.map((x) => ({ keyword: bank.keywords[x.m], score: x.s })));
    for (const x of kept) {
      const prev = best.get(x.m);
      if (!prev || x.s > prev.score) best.set(x.m, { score: x.s, patch: n });
    }
  }
  const ranked = [...best.entries()].map(([m, v]) => ({ keyword: bank.keywords[m], score: v.score, patch: v.patch }));
  ranked.sort((a, b) => b.score - a.score || a.keyword.localeCompare(b.keyword));
  return { perPatch, top: ranked.slice(0, top) };
}
