import { readImage } from '../data/image.js';
import { TensorBatch, type Model } from '../models/model.js';
import { drawAdaptivePatches, type PatchDrawing } from '../report/patches.js';
import type { Tensor } from '../tensor.js';
import type { Preprocessing } from '../train/checkpoint.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';
import type { Codebooks } from './codebooks.js';
import { embeddedFromEncoding, type EmbeddedSplit } from './embed.js';
import { keypatchesForReport } from './keypatches.js';
import { keywordsForImage } from './keywords.js';

export interface ImageExplanation {
  image: string;
  /** Adaptive patches (cx, cy, w, h) and their fixed grid centres, in input pixels. */
  patches: Array<{ box: [number, number, number, number]; fixedCentre: [number, number] }>;
  /** The image's 10 best keywords (with codebooks): keyword, similarity, the patch it matched. */
  keywords?: Array<{ keyword: string; score: number; patch: number }>;
  /** PNG: the drawn patches (the keyword patches, or the most shifted ones) with centre-shift arrows. */
  png: Buffer;
}

/** Patches of study i of an embedding, as drawings. */
export function patchDrawings(e: EmbeddedSplit, i: number): PatchDrawing[] {
  const out: PatchDrawing[] = [];
  for (let n = 0; n < e.patches; n++) {
    const b = (i * e.patches + n) * 4;
    out.push({ box: [e.boxes[b], e.boxes[b + 1], e.boxes[b + 2], e.boxes[b + 3]], fixedCentre: [e.fixedBoxes[n * 4], e.fixedBoxes[n * 4 + 1]] });
  }
  return out;
}

/** The `count` patches whose centres moved furthest from their fixed patch. */
export function mostShifted(p: PatchDrawing[], count: number): number[] {
  const shift = (d: PatchDrawing) => Math.hypot(d.box[0] - d.fixedCentre[0], d.box[1] - d.fixedCentre[1]);
  return p.map((d, n) => ({ n, s: shift(d) })).sort((a, b) => b.s - a.s || a.n - b.n).slice(0, count).map((x) => x.n);
}

/**
 * Explains images with a frozen AdaMatch: adaptive patches, keywords from the textual codebook
 * (section 3.2.1, when codebooks are given) and a picture (Fig. 8 style).
 */
export async function explainImages(model: Model, preprocessing: Preprocessing, files: string[], codebooks?: Codebooks, top = 10): Promise<ImageExplanation[]> {
  const S = preprocessing.imageSize;
  const data = new Float32Array(files.length * S * S);
  // Decode each file once: the picture shows the [0, 1] pixels, the model reads them normalised.
  const mean = preprocessing.mean ?? 0, std = preprocessing.std ?? 1;
  const raw = await Promise.all(
    files.map(async (f, i) => {
      const px = (await readImage(f, { height: S, width: S, fit: preprocessing.fit, filter: preprocessing.filter })).data;
      data.set(mean === 0 && std === 1 ? px : px.map((x) => (x - mean) / std), i * S * S);
      return px;
    }),
  );
  const tb = new TensorBatch({ images: { data, shape: [files.length, 1, 1, S, S] } });
  let enc: Record<string, Tensor> = {};
  let e: EmbeddedSplit;
  try {
    enc = await model.encode(tb);
    e = embeddedFromEncoding(enc, files, files.map(() => ''), S);
  } finally {
    tb.dispose();
    Object.values(enc).forEach((t) => t.dispose());
  }
  return files.map((image, i) => {
    const patches = patchDrawings(e, i);
    const kw = codebooks ? keywordsForImage(codebooks.keywords, e, i, 1, top).top : undefined;
    const drawn: PatchDrawing[] = kw
      ? kw.map((k) => ({ ...patches[k.patch], label: k.keyword, score: k.score }))
      : mostShifted(patches, top).map((n) => patches[n]);
    const png = drawAdaptivePatches({ data: raw[i], width: S, height: S }, drawn);
    return { image, patches: patches.map(({ box, fixedCentre }) => ({ box, fixedCentre })), keywords: kw, png };
  });
}

export interface ReportExplanation {
  report: string;
  /** Per real word (its decoded token): the best keypatches (training study, patch box, similarity). */
  words: Array<{ word: string; keypatches: Array<{ study: string; box: [number, number, number, number]; score: number }> }>;
  /** The 5 best keypatches overall (the hints of section 3.2.2). */
  top: Array<{ study: string; box: [number, number, number, number]; score: number; word: string }>;
}

/** Keypatches of a report text from the visual codebook (section 3.2.2). */
export async function explainReport(model: Model, tokenizer: ReportTokenizer, report: string, codebooks: Codebooks, kappa4 = 5, top = 5): Promise<ReportExplanation> {
  const enc = tokenizer.encodeBatch([report], { maxLength: tokenizer.maxLength });
  const tb = new TensorBatch({ tokens: { data: enc.data, mask: enc.mask, shape: enc.shape } });
  let out: Record<string, Tensor> = {};
  try {
    out = await model.encode(tb);
    const text = Float32Array.from(out.text.toArray() as Float32Array);
    const mask = Uint8Array.from(out.textMask.toArray() as Uint8Array);
    const ids = Array.from(enc.data);
    const r = keypatchesForReport(codebooks.visual, text, mask, kappa4, top);
    const kp = (c: number) => codebooks.visual.keypatches[c];
    const word = (k: number) => tokenizer.decode([ids[k]]) || String(ids[k]);
    return {
      report,
      words: r.perWord.map((w) => ({ word: word(w.word), keypatches: w.matches.map((m) => ({ study: kp(m.keypatch).study, box: kp(m.keypatch).box, score: m.score })) })),
      top: r.top.map((t) => ({ study: kp(t.keypatch).study, box: kp(t.keypatch).box, score: t.score, word: word(t.word) })),
    };
  } finally {
    tb.dispose();
    Object.values(out).forEach((t) => t.dispose());
  }
}
