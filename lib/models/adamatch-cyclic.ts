/**
 * The `adamatch-cyclic` kind (seed 000 section 3.2): one GPT-NeoX-layout causal LM
 * (native/models/adamatch_cyclic.cc) that learns image -> report and report -> image together with
 * the response-only loss (eqs. 10-11), over one of two vocabularies:
 *   small preset, from scratch: `SpecialsVocabulary` ([0 PAD/BOS/EOS][radkit word ids]
 *     [<i2r> <r2i> <img> <kw> <kp> <resp>][VQ codes]) with task-token prompts;
 *   `--lm DIR` (the paper preset's dolly-v2-3b): the folder's BPE ids then the codes
 *     (`JointVocabulary`), the Fig. 3-4 text prompts, the folder's weights with the embedding and
 *     output rows grown by the codes (`lm-folder.ts`).
 *
 * Its image tokens are the cached codes of a `vqgan` run (`radkit tokenize-images`, `--codes FILE`;
 * the run itself, `--vq RUN`, decodes generated images). Hints (`--hints`):
 *   none    no Keywords / Keypatches section (Table 7's first row)
 *   oracle  keywords = the lexicon entities of the study's own report (first N_w = 10): the ceiling
 *           of what keywords can give; no keypatches
 *   FILE    a hints file of `radkit cyclic-hints` (lib/models/cyclic-hints.ts): AdaMatch's keywords
 *           for every image (textual codebook, top kappa1 per patch, N_w) and keypatches for every
 *           report (visual codebook, top kappa4 per word, N_p), each keypatch as one image token.
 * Every study of a training batch gives two sequences (one per direction). The codes and hints are
 * looked up by study id in the model's table (`cyclicTable`: `create` builds it with the dataset
 * and caches it; evaluation and generation find it, or build it from the model's configuration).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readImage } from '../data/image.js';
import type { Batch } from '../data/loader.js';
import type { R2GenDataset, R2GenEntry, SplitName } from '../data/r2gen.js';
import { ArgumentError, DataError, RadkitError } from '../errors.js';
import { evaluate as scoreTexts } from '../metrics/index.js';
import { headline } from '../train/evaluate.js';
import { writeHtmlReport } from '../report/html.js';
import { loadCheckpoint, type LoadedCheckpoint } from '../train/checkpoint.js';
import { extractEntities } from '../text/entities.js';
import { HFReportTokenizer } from '../text/hf-report-tokenizer.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';
import { Tokenizer } from '../text/tokenizer.js';
import type { NativeConfig } from '../../typings/model.js';
import { CYCLIC_LM_SMALL } from './cyclic-lm.js';
import { JointVocabulary, SpecialsVocabulary, encodePrompt, imagePrompt, leftPadPrompts, reportPrompt, specialsPrompt, type PromptPart } from './cyclic-prompts.js';
import { readImageCodes, type ImageCodesFile } from './image-codes.js';
import { loadLmWeights, readLmFolder } from './lm-folder.js';
import { decodeCodes, encodeImages, greyPng } from './vqgan.js';
import { Model, TensorBatch } from './model.js';
import { createOptions, registerModelKind, reportTokenizer, type BuildContext, type Evaluation, type EvaluationOptions, type FlagValues } from './registry.js';

export const CYCLIC_PRESETS = ['small', 'paper'] as const;
export type CyclicPreset = (typeof CYCLIC_PRESETS)[number];

/**
 * Every configuration key with its default. `textIds`, `codes`, `imageTokens` come from the run's
 * tokenizer (or `--lm` folder) and codes file; with `--lm` the LM's sizes come from its config.json.
 *   small: a from-scratch 5M GPT-NeoX over radkit's words (layout 'specials'), 64 tokens of 256 codes
 *   paper: a user's GPT-NeoX (dolly-v2-3b) from --lm DIR (layout 'joint'), bfloat16 weights,
 *          taming f16/1024 codes (256 tokens at 256 px)
 */
export function cyclicConfigDefaults(preset: string): NativeConfig {
  if (!(CYCLIC_PRESETS as readonly string[]).includes(preset)) throw new ArgumentError(`adamatch-cyclic: preset must be one of ${CYCLIC_PRESETS.join(', ')}, got '${String(preset)}'`, 'ERR_INVALID_ARG', 'adamatch-cyclic');
  const lm = { vocabLayout: 'specials', lm: '', rotaryDim: 0, ropeTheta: 10000, normEps: 1e-5, parallelResidual: 1, tieEmbeddings: 0, activation: 'gelu', bosId: 0, eosId: 0, padId: 0, reportRanges: [] as number[], lmDtype: 'float32' };
  const common = { textIds: 2, ...CYCLIC_LM_SMALL, ...lm, seed: 0, vq: '', codesFile: '', hints: 'none' };
  return preset === 'paper' ? { ...common, codes: 1024, imageTokens: 256, vocabLayout: 'joint', lmDtype: 'bfloat16' } : { ...common, codes: 256, imageTokens: 64 };
}

/** The configuration keys of a GPT-NeoX folder (`--lm DIR`) and its tokenizer. */
function lmFolderKeys(dir: string, tokenizer: HFReportTokenizer): NativeConfig {
  const c = readLmFolder(dir, tokenizer, { fn: LM_FN, arch: 'gpt_neox', layout: 'GPT-NeoX layout, as dolly-v2-3b' });
  if (c.attentionBias === false) throw new DataError({ file: path.join(dir, 'config.json'), message: 'adamatch-cyclic runs GPT-NeoX with attention biases (attention_bias is false)' }, LM_FN);
  return {
    textIds: c.vocabSize,
    hiddenSize: c.hiddenSize,
    numLayers: c.numLayers,
    numHeads: c.numHeads,
    intermediateSize: c.intermediateSize,
    maxPositions: c.maxPositions ?? 2048,
    rotaryDim: c.rotaryDim ?? c.hiddenSize / c.numHeads,
    ropeTheta: c.ropeTheta ?? 10000,
    normEps: c.normEps ?? 1e-5,
    parallelResidual: c.parallelResidual === false ? 0 : 1,
    tieEmbeddings: c.tieEmbeddings ? 1 : 0,
    activation: c.activation ?? 'gelu',
    bosId: tokenizer.bosId,
    eosId: tokenizer.eosId,
    padId: tokenizer.padId,
    vocabLayout: 'joint',
    lm: dir,
  };
}

const LM_FN = 'adamatch-cyclic --lm';

/** Hints of one study as the LM reads them (null: that section is left out). */
export interface CyclicStudy {
  codes: number[];
  keywords: string[] | null;
  keypatchCodes: number[] | null;
}

/** A hints file of `radkit cyclic-hints`: per study, AdaMatch's keywords for its image and keypatch codes for its report. */
export interface CyclicHintsFile {
  format: 'radkit-cyclic-hints';
  version: 1;
  settings: Record<string, unknown>;
  keywords: Record<string, string[]>;
  keypatchCodes: Record<string, number[]>;
}

export function readCyclicHints(file: string, nEmbed: number): CyclicHintsFile {
  let h: CyclicHintsFile;
  try {
    h = JSON.parse(fs.readFileSync(file, 'utf8')) as CyclicHintsFile;
  } catch (err) {
    throw new RadkitError(`adamatch-cyclic: hints file ${file} is not readable JSON (${(err as Error).message})`, 'ERR_DATA', 'readCyclicHints', { cause: err });
  }
  const bad = (what: string) => new RadkitError(`adamatch-cyclic: hints file ${file}: ${what}`, 'ERR_DATA', 'readCyclicHints');
  if (h?.format !== 'radkit-cyclic-hints' || h.version !== 1) throw bad("not a radkit hints file (format 'radkit-cyclic-hints', version 1; write one with radkit cyclic-hints)");
  for (const [id, k] of Object.entries(h.keywords ?? {})) if (!Array.isArray(k) || !k.every((w) => typeof w === 'string')) throw bad(`keywords of '${id}' must be strings`);
  for (const [id, c] of Object.entries(h.keypatchCodes ?? {}))
    if (!Array.isArray(c) || !c.every((x) => Number.isInteger(x) && x >= 0 && x < nEmbed)) throw bad(`keypatch codes of '${id}' must be whole numbers in [0, ${nEmbed})`);
  return h;
}

/** The keyword hints of `--hints oracle`: the distinct lexicon entities of the report, first `n`. */
export function oracleKeywords(report: string, n = 10): string[] {
  return [...new Set(extractEntities(report).map((e) => e.text))].slice(0, n);
}

/** The two vocabulary layouts of the LM (`config.vocabLayout`; see native/models/adamatch_cyclic.cc). */
export type CyclicLayout = 'specials' | 'joint';

/**
 * What the LM of one model needs besides its weights: the vocabulary, the prompts, the codes and
 * hints of every study. Layout 'specials' (a from-scratch LM over radkit's word ids): task-token
 * prompts (`specialsPrompt`). Layout 'joint' (a user's GPT-NeoX LM with its BPE tokenizer, `--lm`):
 * the Fig. 3-4 text prompts, image token = code + the LM's vocabulary rows. There the prompt ends at
 * "### Response:" and the report starts with its space (" The heart ..."): the text is the figures'
 * byte for byte and the report's first word is the token a BPE tokenizer gives it inside a sentence.
 */
export class CyclicTable {
  readonly layout: CyclicLayout;
  readonly vocab: JointVocabulary;
  readonly imageTokens: number;
  readonly grid: [number, number];
  readonly codesFile: ImageCodesFile;
  readonly hints: string;
  /** The token that ends a report. */
  readonly eosId: number;
  readonly #hintsFile?: CyclicHintsFile;
  readonly #reports = new Map<string, string>();
  constructor(config: NativeConfig, readonly tokenizer: ReportTokenizer, dataset?: R2GenDataset) {
    const file = String(config.codesFile ?? '');
    if (!file) throw new ArgumentError('adamatch-cyclic: the image codes file is not set (radkit train --codes FILE, from radkit tokenize-images)', 'ERR_INVALID_ARG', 'adamatch-cyclic');
    this.layout = (config.vocabLayout ?? 'specials') as CyclicLayout;
    if (this.layout === 'joint') {
      if (!(tokenizer instanceof HFReportTokenizer)) throw new ArgumentError(`adamatch-cyclic: an LM from --lm needs its folder's tokenizer, not ${tokenizer.constructor.name}`, 'ERR_INVALID_ARG', 'adamatch-cyclic');
    } else if (!(tokenizer instanceof Tokenizer)) throw new ArgumentError(`adamatch-cyclic needs radkit's Tokenizer, not ${tokenizer.constructor.name} (or an LM with --lm DIR)`, 'ERR_INVALID_ARG', 'adamatch-cyclic');
    this.codesFile = readImageCodes(file);
    this.grid = this.codesFile.grid;
    this.imageTokens = this.grid[0] * this.grid[1];
    this.vocab = this.layout === 'joint' ? new JointVocabulary(Number(config.textIds), this.codesFile.nEmbed) : new SpecialsVocabulary(tokenizer.vocabSize + 1, this.codesFile.nEmbed);
    this.eosId = this.layout === 'joint' ? (tokenizer as HFReportTokenizer).eosId : 0;
    this.hints = String(config.hints ?? 'none');
    if (this.hints !== 'none' && this.hints !== 'oracle') this.#hintsFile = readCyclicHints(this.hints, this.codesFile.nEmbed);
    if (dataset) for (const s of ['train', 'val', 'test'] as const) for (const e of dataset.splits[s]) this.#reports.set(e.id, e.report);
  }
  /** Token ids of a text (no BOS/EOS): radkit word ids, or the BPE ids of the text as written. */
  words(text: string): number[] {
    if (this.tokenizer instanceof HFReportTokenizer) return this.tokenizer.hf.encode(text, { addSpecialTokens: false });
    return this.tokenizer.encode(text).slice(1, -1);
  }
  /** A report as the LM writes it (no EOS), cut at the tokenizer's maxLength - 2 tokens. */
  reportTokens(report: string): number[] {
    const text = this.tokenizer.clean(report);
    return this.words(this.layout === 'joint' ? ` ${text}` : text).slice(0, this.tokenizer.maxLength - 2);
  }
  /** Report text of generated ids. */
  decode(ids: readonly number[]): string {
    return this.tokenizer.decode(ids);
  }
  /** Ids a generated report may use: [1, textIds) for radkit words; every BPE id but the tokenizer's special ones (EOS is always allowed). */
  reportRanges(): number[] {
    if (this.layout === 'specials') return [1, (this.vocab as SpecialsVocabulary).textIds];
    const tok = this.tokenizer as HFReportTokenizer;
    const special = new Set([...tok.hf.specialIds, tok.bosId, tok.eosId, tok.padId]);
    const out: number[] = [];
    for (let id = 0; id < tok.vocabSize; id++) {
      if (special.has(id)) continue;
      if (out.length && out[out.length - 1] === id) out[out.length - 1] = id + 1;
      else out.push(id, id + 1);
    }
    return out;
  }
  /** The codes and hints of a study (`report`: its report, for oracle keywords when the table has no dataset). */
  study(id: string, report?: string): CyclicStudy {
    const codes = this.codesFile.codes[id];
    if (!codes) throw new RadkitError(`adamatch-cyclic: study '${id}' has no image codes in the codes file (run radkit tokenize-images over its split)`, 'ERR_DATA', 'adamatch-cyclic');
    return { codes, ...this.hintsOf(id, report) };
  }
  hintsOf(id: string, report?: string): { keywords: string[] | null; keypatchCodes: number[] | null } {
    if (this.hints === 'none') return { keywords: null, keypatchCodes: null };
    if (this.hints === 'oracle') {
      const r = report ?? this.#reports.get(id);
      if (r === undefined) throw new RadkitError(`adamatch-cyclic: oracle keywords of '${id}' need its report`, 'ERR_DATA', 'adamatch-cyclic');
      return { keywords: oracleKeywords(r), keypatchCodes: null };
    }
    const kw = this.#hintsFile!.keywords[id], kp = this.#hintsFile!.keypatchCodes[id];
    if (!kw || !kp) throw new RadkitError(`adamatch-cyclic: study '${id}' has no hints in ${this.hints} (run radkit cyclic-hints over its split)`, 'ERR_DATA', 'adamatch-cyclic');
    return { keywords: kw, keypatchCodes: kp };
  }
  /** The image -> report prompt of an image's codes with its keyword hints. */
  reportPrompt(codes: readonly number[], keywords: readonly string[] | null): number[] {
    if (this.layout === 'joint') return encodePrompt(withoutTrailingSpace(reportPrompt(codes, keywords)), (t) => this.words(t), this.vocab);
    return specialsPrompt('report', this.vocab as SpecialsVocabulary, { codes }, keywords, (t) => this.words(t));
  }
  /** The report -> image prompt of a report with keypatch codes. */
  imagePrompt(report: string, keypatchCodes: readonly number[] | null): number[] {
    if (this.layout === 'joint') {
      // Fig. 4 with the report's own tokens (cut like a response) after "### Input:"
      const [head, ...rest] = imagePrompt('', keypatchCodes) as [{ text: string }, ...PromptPart[]];
      return [...this.words(head.text.replace(/ $/, '')), ...this.reportTokens(report), ...encodePrompt(rest, (t) => this.words(t), this.vocab)];
    }
    const v = this.vocab as SpecialsVocabulary;
    const ids = [v.task('<r2i>'), ...this.reportTokens(report)];
    if (keypatchCodes) ids.push(v.task('<kp>'), v.task('<img>'), ...keypatchCodes.map((c) => v.imageToken(c)));
    ids.push(v.task('<resp>'), v.task('<img>'));
    return ids;
  }
}

/** The prompt without the space after its last "### Response:" (it goes with the response's first token). */
function withoutTrailingSpace(parts: PromptPart[]): PromptPart[] {
  const last = parts[parts.length - 1];
  return 'text' in last ? [...parts.slice(0, -1), { text: last.text.replace(/ $/, '') }] : parts;
}

/** Right-padded sequences [B, T] with their masks: `lossMask` marks the response (from `start`). */
function sequenceTensors(seqs: { ids: number[]; start: number }[]): Record<string, { data: BigInt64Array; shape: number[]; dtype: 'int64' }> {
  const T = Math.max(...seqs.map((s) => s.ids.length));
  const B = seqs.length;
  const ids = new BigInt64Array(B * T), valid = new BigInt64Array(B * T), scored = new BigInt64Array(B * T);
  seqs.forEach((s, b) =>
    s.ids.forEach((id, t) => {
      ids[b * T + t] = BigInt(id);
      valid[b * T + t] = 1n;
      if (t >= s.start) scored[b * T + t] = 1n;
    }),
  );
  return { sequence: { data: ids, shape: [B, T], dtype: 'int64' }, sequenceMask: { data: valid, shape: [B, T], dtype: 'int64' }, lossMask: { data: scored, shape: [B, T], dtype: 'int64' } };
}

/** Left-padded prompts [B, P] and their mask (the last position of every row valid). */
export function promptTensors(prompts: readonly number[][]): Record<string, { data: BigInt64Array; shape: number[]; dtype: 'int64' }> {
  if (!prompts.length) throw new ArgumentError('adamatch-cyclic: no prompts', 'ERR_INVALID_ARG', 'adamatch-cyclic');
  const { ids, valid, shape } = leftPadPrompts(prompts);
  return { prompt: { data: ids, shape, dtype: 'int64' }, promptMask: { data: valid, shape, dtype: 'int64' } };
}

/** Both training sequences of every study of a batch: image -> report, then report -> image. */
export function cyclicSequences(table: CyclicTable, ids: readonly string[], reports: readonly string[]): { ids: number[]; start: number }[] {
  return ids.flatMap((id, i) => {
    const s = table.study(id, reports[i]);
    const rp = table.reportPrompt(s.codes, s.keywords);
    const ip = table.imagePrompt(reports[i], s.keypatchCodes);
    return [
      { ids: [...rp, ...table.reportTokens(reports[i]), table.eosId], start: rp.length },
      { ids: [...ip, ...s.codes.map((c) => table.vocab.imageToken(c))], start: ip.length },
    ];
  });
}

function prepareCyclicBatch(batch: Batch, model: Model, tokenizer: ReportTokenizer): TensorBatch {
  if (!batch.reports) throw new RadkitError('adamatch-cyclic: the batch has no report texts', 'ERR_INVALID_ARG', 'adamatch-cyclic');
  return new TensorBatch({}, { extras: sequenceTensors(cyclicSequences(cyclicTable(model, tokenizer), batch.ids, batch.reports)) });
}

/** Tables of loaded models, by configuration (codes file, hints) and tokenizer. */
const tables = new WeakMap<ReportTokenizer, Map<string, CyclicTable>>();
const tableKey = (config: NativeConfig) => `${config.codesFile}\n${config.hints}`;
function tablesOf(tokenizer: ReportTokenizer): Map<string, CyclicTable> {
  let byKey = tables.get(tokenizer);
  if (!byKey) tables.set(tokenizer, (byKey = new Map()));
  return byKey;
}

/** The table of a model of this kind (cached per tokenizer and configuration). */
export function cyclicTable(model: Model, tokenizer: ReportTokenizer, dataset?: R2GenDataset): CyclicTable {
  if (model.kind !== 'adamatch-cyclic') throw new ArgumentError(`cyclicTable: needs an adamatch-cyclic model, got ${model.kind}`, 'ERR_INVALID_ARG', 'cyclicTable');
  const key = tableKey(model.config);
  const byKey = tablesOf(tokenizer);
  let t = byKey.get(key);
  if (!t || (dataset && t.hints === 'oracle')) byKey.set(key, (t = new CyclicTable(model.config, tokenizer, dataset)));
  const expected = t.layout === 'joint' ? Number(model.config.textIds) : (t.vocab as SpecialsVocabulary).textIds;
  if (Number(model.config.textIds) !== expected || tokenizer.vocabSize > expected || Number(model.config.codes) !== t.vocab.codes || Number(model.config.imageTokens) !== t.imageTokens)
    throw new RadkitError(
      `adamatch-cyclic: the model was built for ${model.config.textIds} text ids, ${model.config.codes} codes and ${model.config.imageTokens} image tokens; the tokenizer (${tokenizer.vocabSize} ids) and ${model.config.codesFile} give ${expected}, ${t.vocab.codes} and ${t.imageTokens}`,
      'ERR_CHECKPOINT',
      'adamatch-cyclic',
    );
  return t;
}

/** Reports (decoded text) for image -> report prompts; text ids only, EOS ends a report. */
export async function generateCyclicReports(model: Model, table: CyclicTable, prompts: number[][], options: { maxLength?: number } = {}): Promise<string[]> {
  const tb = new TensorBatch({}, { extras: promptTensors(prompts) });
  try {
    const g = await model.generate(tb, { method: 'greedy', maxLength: options.maxLength ?? 60, systemOptions: { direction: 'report' } });
    return g.tokens.map((t) => table.decode(t));
  } finally {
    tb.dispose();
  }
}

/** Image codes (exactly imageTokens each) for report -> image prompts. */
export async function generateCyclicImages(model: Model, table: CyclicTable, prompts: number[][], options: { method?: 'greedy' | 'sample'; seed?: number; temperature?: number; topK?: number } = {}): Promise<number[][]> {
  const tb = new TensorBatch({}, { extras: promptTensors(prompts) });
  try {
    const g = await model.generate(tb, { method: options.method ?? 'greedy', seed: options.seed, temperature: options.temperature, topK: options.topK, systemOptions: { direction: 'image' } });
    return g.tokens.map((row) => {
      if (row.length !== table.imageTokens) throw new RadkitError(`adamatch-cyclic: a generated image has ${row.length} tokens, not ${table.imageTokens}`, 'ERR_RADKIT', 'adamatch-cyclic');
      return row.map((id) => table.vocab.codeOf(id));
    });
  } finally {
    tb.dispose();
  }
}

/**
 * The cycle image -> report -> image of each study: its image codes (with its keyword hints) give a
 * report (greedy, text ids only), and that generated report gives an image (exactly N image tokens,
 * greedy). Keypatch hints of the second leg: 'none' (no Keypatches section; what a run without
 * keypatches was trained on) or 'study' (the keypatches the table holds for the study, which come
 * from its reference report: not a closed cycle, a hint the generated report did not give).
 */
export async function cyclicRoundTrip(model: Model, table: CyclicTable, studies: readonly { id: string; report?: string }[], o: { keypatches?: 'none' | 'study'; batchSize?: number; maxLength?: number } = {}): Promise<{ reports: string[]; codes: number[][] }> {
  const keypatches = o.keypatches ?? 'none';
  if (keypatches !== 'none' && keypatches !== 'study') throw new ArgumentError(`cyclicRoundTrip: keypatches must be 'none' or 'study', got '${String(keypatches)}'`, 'ERR_INVALID_ARG', 'cyclicRoundTrip');
  const bs = o.batchSize ?? 32;
  const reports: string[] = [], codes: number[][] = [];
  for (let s = 0; s < studies.length; s += bs) {
    const chunk = studies.slice(s, s + bs).map((x) => table.study(x.id, x.report));
    const texts = await generateCyclicReports(model, table, chunk.map((st) => table.reportPrompt(st.codes, st.keywords)), { maxLength: o.maxLength });
    const prompts = texts.map((t, i) => table.imagePrompt(t, keypatches === 'study' ? chunk[i].keypatchCodes : null));
    reports.push(...texts);
    codes.push(...(await generateCyclicImages(model, table, prompts)));
  }
  return { reports, codes };
}

/** A seeded generator in [0, 1) (the random-image baseline). */
function lcg(seed: number): () => number {
  let s = (seed * 2654435761 + 1) % 2 ** 31;
  return () => ((s = (s * 1103515245 + 12345) % 2 ** 31), s / 2 ** 31);
}

/**
 * Scores both directions on a split: image -> report (caption and clinical-efficacy metrics,
 * greedy, text ids only) and report -> image (the share of generated codes equal to the study's
 * own codes, against the codes of a random training image).
 */
export async function cyclicEvaluation(model: Model, tokenizer: ReportTokenizer, dataset: R2GenDataset, o: EvaluationOptions): Promise<Evaluation> {
  const table = cyclicTable(model, tokenizer, dataset);
  const entries: R2GenEntry[] = dataset.splits[o.split as SplitName].slice(0, o.maxItems ?? Infinity);
  const bs = o.batchSize ?? 32;
  const hyps: string[] = [];
  const images: number[][] = [];
  for (let s = 0; s < entries.length; s += bs) {
    if (o.signal?.aborted) throw new RadkitError('adamatch-cyclic evaluation: aborted', 'ERR_ABORTED', 'adamatch-cyclic', { cause: o.signal.reason });
    const chunk = entries.slice(s, s + bs);
    const studies = chunk.map((e) => table.study(e.id, e.report));
    hyps.push(...(await generateCyclicReports(model, table, studies.map((st) => table.reportPrompt(st.codes, st.keywords)), { maxLength: o.generate?.maxLength })));
    images.push(...(await generateCyclicImages(model, table, studies.map((st, i) => table.imagePrompt(chunk[i].report, st.keypatchCodes)))));
  }
  const refs = entries.map((e) => tokenizer.clean(e.report));
  const haveLabels = entries.length > 0 && entries.every((e) => e.labels);
  const result = scoreTexts(hyps, refs.map((r) => [r]), { refLabels: haveLabels ? entries.map((e) => e.labels!) : undefined });
  const rand = lcg(Number(model.config.seed ?? 0));
  const train = dataset.splits.train.filter((e) => table.codesFile.codes[e.id]);
  let acc = 0, accRandom = 0;
  entries.forEach((e, i) => {
    const truth = table.codesFile.codes[e.id];
    acc += images[i].filter((c, k) => c === truth[k]).length / truth.length;
    if (train.length) {
      const other = table.codesFile.codes[train[Math.floor(rand() * train.length)].id];
      accRandom += other.filter((c, k) => c === truth[k]).length / truth.length;
    }
  });
  const n = Math.max(1, entries.length);
  const h = { ...headline(result), imageCodeAccuracy: acc / n, randomImageCodeAccuracy: accRandom / n, distinctReports: new Set(hyps).size };
  return {
    headline: h,
    record: {
      hints: table.hints,
      result,
      reports: entries.map((e, i) => ({ id: e.id, hypothesis: hyps[i], reference: refs[i], labels: e.labels, extras: { keywords: table.hintsOf(e.id, e.report).keywords, imageCodes: images[i] } })),
    },
  };
}

export interface AdaMatchCyclicOptions {
  dataset: R2GenDataset;
  /** radkit's Tokenizer (from-scratch LM), or the `lm` folder's (`cyclicTokenizer`). */
  tokenizer: ReportTokenizer;
  /** Image codes file of radkit tokenize-images (every training study). */
  codes: string;
  /** The vqgan run the codes come from (decodes generated images). */
  vq: string;
  /** 'none' (default), 'oracle' or a radkit cyclic-hints file. */
  hints?: string;
  seed?: number;
  /** 'small' (default) or 'paper' (needs `lm`; bfloat16 weights). */
  preset?: CyclicPreset;
  /** A Hugging Face GPT-NeoX folder (config.json, safetensors, tokenizer.json; e.g. dolly-v2-3b) whose weights start the LM. */
  lm?: string;
  /** LM sizes over the small preset's (hiddenSize, numLayers, numHeads, intermediateSize, maxPositions); not with `lm`. */
  sizes?: Partial<typeof CYCLIC_LM_SMALL>;
}

/** The rows a joint vocabulary adds to a loaded GPT-NeoX: its embedding and output tables. */
const GROWN_ROWS = ['gpt_neox.embed_in.weight', 'embed_out.weight'];

/**
 * Creates an adamatch-cyclic model for training on `dataset` (checks that every training study has
 * codes, and hints when a hints file is given) and makes its table the one training batches read.
 * With `lm`, the folder's weights start the LM and its embedding and output rows grow by one row per
 * code, each new row at the mean of the folder's rows.
 */
export function adamatchCyclic(o: AdaMatchCyclicOptions): Model {
  const fn = 'adamatch-cyclic';
  if (typeof o.codes !== 'string' || !o.codes) throw new ArgumentError(`${fn}: --codes FILE is required (the image codes of radkit tokenize-images)`, 'ERR_INVALID_ARG', fn);
  if (typeof o.vq !== 'string' || !o.vq) throw new ArgumentError(`${fn}: --vq RUN is required (the vqgan run whose codes --codes holds; it decodes generated images)`, 'ERR_INVALID_ARG', fn);
  const preset = o.preset ?? 'small';
  const config = cyclicConfigDefaults(preset);
  if (o.lm !== undefined) {
    if (typeof o.lm !== 'string' || !o.lm) throw new ArgumentError(`${fn}: lm must be a folder path`, 'ERR_INVALID_ARG', fn);
    if (o.sizes) throw new ArgumentError(`${fn}: sizes and lm do not go together (the LM's sizes are its config.json's)`, 'ERR_INVALID_ARG', fn);
    if (!(o.tokenizer instanceof HFReportTokenizer)) throw new ArgumentError(`${fn}: lm needs the folder's tokenizer (cyclicTokenizer), not ${o.tokenizer.constructor.name}`, 'ERR_INVALID_ARG', fn);
    Object.assign(config, lmFolderKeys(o.lm, o.tokenizer));
  } else {
    if (preset === 'paper') throw new ArgumentError(`${fn}: the paper preset starts from a pretrained GPT-NeoX (dolly-v2-3b): give --lm DIR`, 'ERR_INVALID_ARG', fn);
    if (!(o.tokenizer instanceof Tokenizer)) throw new ArgumentError(`${fn} needs radkit's Tokenizer, not ${o.tokenizer.constructor.name} (or an LM folder with --lm DIR)`, 'ERR_INVALID_ARG', fn);
  }
  for (const [k, v] of Object.entries(o.sizes ?? {})) {
    if (!(k in CYCLIC_LM_SMALL)) throw new ArgumentError(`${fn}: unknown size '${k}' (sizes: ${Object.keys(CYCLIC_LM_SMALL).join(', ')})`, 'ERR_INVALID_ARG', fn);
    if (v !== undefined) config[k] = v;
  }
  Object.assign(config, { seed: o.seed ?? 0, vq: o.vq, codesFile: o.codes, hints: o.hints ?? 'none' });
  const table = new CyclicTable(config, o.tokenizer, o.dataset);
  const missing = o.dataset.splits.train.filter((e) => !table.codesFile.codes[e.id]);
  if (missing.length) throw new RadkitError(`${fn}: ${missing.length} training studies (e.g. '${missing[0].id}') have no codes in ${o.codes}; run radkit tokenize-images over the dataset`, 'ERR_DATA', fn);
  if (table.hints !== 'none' && table.hints !== 'oracle') for (const e of o.dataset.splits.train) table.hintsOf(e.id);
  Object.assign(config, { textIds: table.layout === 'joint' ? config.textIds : (table.vocab as SpecialsVocabulary).textIds, codes: table.vocab.codes, imageTokens: table.imageTokens, reportRanges: table.reportRanges() });
  const model = Model.create('adamatch-cyclic', config, createOptions(ADAMATCH_CYCLIC));
  if (o.lm !== undefined) {
    try {
      loadLmWeights(model, o.lm, { fn: LM_FN, layout: 'GPT-NeoX', grownRows: GROWN_ROWS, convertDtype: config.lmDtype === 'bfloat16' });
    } catch (err) {
      model.dispose();
      throw err;
    }
  }
  tablesOf(o.tokenizer).set(tableKey(config), table);  // the dataset's table (oracle hints need it) serves training
  return model;
}

/** The training tokenizer: the `--lm` folder's tokenizer.json, or radkit's Tokenizer of the training reports. */
export function cyclicTokenizer(dataset: R2GenDataset, flags: FlagValues): ReportTokenizer {
  if (typeof flags.lm === 'string') return HFReportTokenizer.fromLmFolder(flags.lm);
  return reportTokenizer(dataset, flags);
}

function createCyclic(c: BuildContext): Model {
  const f = c.flags;
  return adamatchCyclic({
    dataset: c.dataset,
    tokenizer: c.tokenizer,
    codes: f.codes as string,
    vq: f.vq as string,
    hints: typeof f.hints === 'string' ? f.hints : 'none',
    seed: c.seed,
    preset: c.preset as CyclicPreset,
    ...(typeof f.lm === 'string' ? { lm: f.lm } : {}),
  });
}

/**
 * An HTML page of an adamatch-cyclic evaluation (`cyclicEvaluation`'s record): per study the real
 * image, its VQ reconstruction (the image the true codes decode to) and the image generated from
 * the report side by side, the reference and generated reports, and the hints each direction read.
 */
export async function writeCyclicReport(file: string, model: Model, tokenizer: ReportTokenizer, dataset: R2GenDataset, evaluation: Evaluation, vq: Model, o: { title?: string; scores?: Record<string, Record<string, number>>; maxItems?: number } = {}): Promise<void> {
  const table = cyclicTable(model, tokenizer, dataset);
  const reports = (evaluation.record?.reports ?? []) as { id: string; hypothesis: string; reference: string; extras: { keywords: string[] | null; imageCodes: number[] } }[];
  const byId = new Map(Object.values(dataset.splits).flat().map((e) => [e.id, e]));
  const uri = async (codes: number[]) => {
    const px = await decodeCodes(vq, codes, [1, table.grid[0], table.grid[1]]);
    const [H, W] = px.shape.slice(-2);
    return `data:image/png;base64,${(await greyPng(px.data, H, W)).toString('base64')}`;
  };
  const items = [];
  for (const r of reports.slice(0, o.maxItems ?? 50)) {
    const e = byId.get(r.id);
    const kp = table.hintsOf(r.id, e?.report).keypatchCodes;
    items.push({
      id: r.id,
      images: [...(e?.imagePaths.slice(0, 1) ?? []), await uri(table.codesFile.codes[r.id]), await uri(r.extras.imageCodes)],
      reference: r.reference,
      generated: { 'generated report (image -> report)': r.hypothesis },
      notes: [
        'images: real | its VQ reconstruction | generated from the reference report',
        `keywords read by image -> report: ${r.extras.keywords?.join(', ') || 'none'}`,
        `keypatch tokens read by report -> image: ${kp?.join(', ') || 'none'}`,
      ],
    });
  }
  writeHtmlReport(file, { title: o.title ?? `adamatch-cyclic (hints: ${table.hints})`, scores: o.scores ?? { 'adamatch-cyclic': evaluation.headline }, settings: { hints: table.hints, imageTokens: table.imageTokens, codes: table.vocab.codes, codesFile: table.codesFile.tokenizer }, items });
}

/**
 * `radkit generate --checkpoint RUN` on an adamatch-cyclic run: `--image FILE` writes a report for
 * the image (its VQ codes, read at the codes file's image size; `--keywords` as hints),
 * `--report TEXT --out FILE.png` generates an image (exactly N image tokens, decoded by the run's
 * VQ tokenizer). Prints JSON with `--json`.
 */
async function cyclicGenerate(ck: LoadedCheckpoint, values: FlagValues, positionals: string[]): Promise<number> {
  const fn = 'radkit generate';
  const bad = (msg: string) => new ArgumentError(`${fn}: ${msg}`, 'ERR_INVALID_ARG', fn);
  if (positionals.length) throw bad(`an adamatch-cyclic checkpoint takes --image FILE or --report TEXT, not image arguments (${positionals[0]})`);
  const image = values.image as string | undefined, report = values.report as string | undefined;
  if ((image === undefined) === (report === undefined)) throw bad('give exactly one of --image FILE (image -> report) or --report TEXT (report -> image)');
  if (report !== undefined && typeof values.out !== 'string') throw bad('--report needs --out FILE.png (where the generated image goes)');
  if (image !== undefined && values.out !== undefined) throw bad('--out goes with --report; a report is printed');
  if (values.keywords !== undefined && image === undefined) throw bad('--keywords are hints for --image');
  const table = cyclicTable(ck.model, ck.tokenizer);
  const vqDir = String(ck.model.config.vq);
  if (!vqDir || !fs.existsSync(vqDir)) throw new RadkitError(`${fn}: the VQ tokenizer run this model was trained with (${vqDir || 'none recorded'}) is not there`, 'ERR_CHECKPOINT', fn);
  const vq = await loadCheckpoint(vqDir);
  try {
    if (vq.meta.kind !== 'vqgan') throw new RadkitError(`${fn}: ${vqDir} holds ${vq.meta.kind}, not a vqgan run`, 'ERR_CHECKPOINT', fn);
    const size = table.codesFile.imageSize;
    if (image !== undefined) {
      const img = await readImage(image, { height: size, width: size });
      const enc = await encodeImages(vq.model, { data: img.data, shape: [1, 1, 1, size, size] });
      if (enc.shape[2] !== table.grid[0] || enc.shape[3] !== table.grid[1]) throw new RadkitError(`${fn}: ${vqDir} gives a ${enc.shape[2]} x ${enc.shape[3]} code grid, the model reads ${table.grid.join(' x ')}`, 'ERR_CHECKPOINT', fn);
      const codes = Array.from(enc.codes);
      const keywords = typeof values.keywords === 'string' ? values.keywords.split(',').map((k) => k.trim()).filter(Boolean) : null;
      const [text] = await generateCyclicReports(ck.model, table, [table.reportPrompt(codes, keywords)], { maxLength: values['max-length'] as number | undefined });
      if (values.json) console.log(JSON.stringify({ image, report: text, keywords, codes }, null, 2));
      else console.log(`${image}\n  ${text}\n`);
      return 0;
    }
    if (table.tokenizer instanceof Tokenizer) {
      const tok = table.tokenizer, unk = tok.tokenToId('<unk>');
      if (!table.reportTokens(report!).some((w) => w !== unk && /[a-z0-9]/i.test(tok.vocab[w - 1] ?? ''))) throw bad(`--report: none of its words is in the model's vocabulary ('${report!.slice(0, 60)}')`);
    } else if (!report!.trim()) throw bad('--report is empty');
    const method = (values.method as string | undefined) ?? 'greedy';
    if (method !== 'greedy' && method !== 'sample') throw bad(`--method ${method}: images are generated greedy or sampled`);
    const [codes] = await generateCyclicImages(ck.model, table, [table.imagePrompt(report!, null)], { method, seed: values.seed as number | undefined, temperature: values.temperature as number | undefined, topK: values['top-k'] as number | undefined });
    const px = await decodeCodes(vq.model, codes, [1, table.grid[0], table.grid[1]]);
    const [H, W] = px.shape.slice(-2);
    const out = values.out as string;
    fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
    fs.writeFileSync(out, await greyPng(px.data, H, W));
    if (values.json) console.log(JSON.stringify({ report, image: out, codes }, null, 2));
    else console.log(`wrote ${out} (${codes.length} image tokens)`);
    return 0;
  } finally {
    vq.model.dispose();
  }
}

export const ADAMATCH_CYCLIC = registerModelKind({
  name: 'adamatch-cyclic',
  summary: 'AdaMatch-Cyclic: one causal LM (GPT-NeoX layout) over words and VQ image tokens, image <-> report with keyword/keypatch hints (seed 000; --codes FILE --vq RUN)',
  task: 'generation',
  presets: CYCLIC_PRESETS,
  configDefaults: cyclicConfigDefaults,
  tokenizer: cyclicTokenizer,
  create: createCyclic,
  // A pretrained LM (--lm) is fully fine-tuned with AdamW at the paper's 5e-6 (dolly-v2-3b, batch 24 per GPU there).
  recipe: (c: { batchSize?: number; config: NativeConfig }) => {
    const lr = c.config.lm ? 5e-6 : 1e-3;
    return { optimizer: 'adamw', lr, visualLr: lr, weightDecay: 0.01, schedule: { kind: 'cosine', warmupFraction: 0.05 }, clipNorm: 1, batchSize: c.batchSize ?? 16, initBatches: 0 };
  },
  metric: 'bleu4',
  views: () => 1,
  prepareBatch: prepareCyclicBatch,
  generate: { method: 'greedy', maxLength: 60 },
  evaluate: cyclicEvaluation,
  generateCommand: {
    usage: 'radkit generate --checkpoint RUN (--image FILE [--keywords A,B] | --report TEXT --out FILE.png)',
    flags: {
      image: { type: 'string', arg: 'FILE', help: 'image -> report: the image (read at the codes file\'s size, encoded by the run\'s VQ tokenizer)' },
      keywords: { type: 'string', arg: 'A,B', help: 'with --image: comma-separated keyword hints (default: no Keywords section)' },
      report: { type: 'string', arg: 'TEXT', help: 'report -> image: the report (exactly N image tokens, decoded to a PNG)' },
      out: { type: 'string', arg: 'FILE', help: 'with --report: the PNG to write' },
    },
    run: cyclicGenerate,
  },
  trainFlags: {
    codes: { type: 'string', arg: 'FILE', help: 'image codes of every study (radkit tokenize-images --checkpoint VQ_RUN)' },
    vq: { type: 'string', arg: 'RUN', help: 'the vqgan run whose codes --codes holds (decodes generated images; radkit import-vq makes one from taming VQ-GAN weights)' },
    lm: { type: 'string', arg: 'DIR', help: 'Hugging Face GPT-NeoX folder (config.json, safetensors, tokenizer.json; the paper preset\'s dolly-v2-3b) whose weights start the LM; the Fig. 3-4 text prompts' },
    hints: { type: 'string', arg: 'none|oracle|FILE', default: 'none', help: 'keyword/keypatch hints: none, oracle (entities of the study\'s own report), or a radkit cyclic-hints file (AdaMatch\'s)' },
  },
});
