/**
 * Report tokenizer.
 *
 * `mode: 'r2gen'` reproduces R2Gen's `modules/tokenizers.py` exactly:
 *  - `clean_report_iu_xray` / `clean_report_mimic_cxr` (chosen by `dataset`), including their quirks:
 *    the character class `[.,?;*!%^&_+():-\[\]{}]`, whose `:-\[` is a *range* (0x3A-0x5B), so it also
 *    deletes `;<=>?@` (and A-Z, already lower-cased) but keeps `-`, and turns `5:30` into `530`;
 *    the empty-sentence filter `sent_cleaner(sent) != []` that compares a string to a list and so
 *    never filters (empty sentences leave a stray ` . `, which `split()` then swallows);
 *    `'1. '` removed anywhere, `' 2. '`..`' 5. '` turned into `'. '`.
 *  - vocabulary from the training split only: tokens with count >= `threshold`, plus `<unk>`, sorted
 *    (code-point order, as Python sorts str), ids from 1; id 0 is BOS = EOS = PAD.
 *  - `encode` = R2Gen `__call__` (`[0] + ids + [0]`) followed by the dataset's `[:max_seq_length]`.
 *  - `decode` = R2Gen `decode` (stops at the first 0; a space before every token but the one at index 0).
 *
 * `mode: 'clean'` fixes those bugs: sentences split on `.`/`?`/`!`/`;` (not inside decimals), list
 * numbers removed only at sentence starts, punctuation dropped but decimals (`1.5`), times (`5:30`)
 * and hyphenated words kept as single tokens, empty sentences dropped. Vocabulary, ids and
 * truncation work the same way.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { ArgumentError, RadkitError, TokenizerError } from '../errors.js';

export type TokenizerMode = 'r2gen' | 'clean';
export type R2GenDataset = 'iu_xray' | 'mimic_cxr';

export interface TokenizerOptions {
  /** 'r2gen' (default): R2Gen's exact cleaning; 'clean': the fixed cleaning. */
  mode?: TokenizerMode;
  /** Which R2Gen cleaner to use in 'r2gen' mode. Default 'iu_xray'. */
  dataset?: R2GenDataset;
  /** Minimum count in the training split for a token to enter the vocabulary. R2Gen: 3 (IU), 10 (MIMIC). */
  threshold?: number;
  /** Truncation length of `encode` (R2Gen `max_seq_length`: 60 for IU, 100 for MIMIC). */
  maxLength?: number;
}

/** Serialised tokenizer (what `toJSON` returns and checkpoints store). */
export interface TokenizerJSON {
  format: 'radkit-tokenizer';
  version: 1;
  mode: TokenizerMode;
  dataset: R2GenDataset;
  threshold: number;
  maxLength: number;
  /** Tokens in id order: `vocab[i]` has id `i + 1`. */
  vocab: string[];
}

/** A batch of encoded reports, right-padded with 0. `data` is row-major `[B, L]`. */
export interface EncodedBatch {
  data: Int32Array;
  mask: Uint8Array;
  shape: [number, number];
  lengths: number[];
}

// Python's str.isspace() set, used by str.strip() and str.split() with no argument.
const PY_WS = '\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_STRIP = new RegExp(`^[${PY_WS}]+|[${PY_WS}]+$`, 'g');
const PY_SPLIT = new RegExp(`[${PY_WS}]+`);
// R2Gen's class, byte for byte. In a JS character class, as in Python's, `:-\[` is a range.
const R2GEN_PUNCT = /[.,?;*!%^&_+():-\[\]{}]/g;

const pyStrip = (s: string) => s.replace(PY_STRIP, '');
/** Python `str.split()` with no argument. */
export function pySplit(s: string): string[] {
  const t = pyStrip(s);
  return t === '' ? [] : t.split(PY_SPLIT);
}
const rep = (s: string, a: string, b: string) => s.split(a).join(b); // Python str.replace (all, left to right)

function sentCleaner(t: string): string {
  t = rep(t, '"', '');
  t = rep(t, '/', '');
  t = rep(t, '\\', '');
  t = rep(t, "'", '');
  return pyStrip(t).toLowerCase().replace(R2GEN_PUNCT, '');
}

function finishR2Gen(t: string): string {
  for (const [a, b] of [
    ['1. ', ''],
    ['. 2. ', '. '],
    ['. 3. ', '. '],
    ['. 4. ', '. '],
    ['. 5. ', '. '],
    [' 2. ', '. '],
    [' 3. ', '. '],
    [' 4. ', '. '],
    [' 5. ', '. '],
  ]) {
    t = rep(t, a, b);
  }
  const sents = pyStrip(t).toLowerCase().split('. ');
  // `if sent_cleaner(sent) != []` is always true in R2Gen: nothing is filtered.
  return sents.map(sentCleaner).join(' . ') + ' .';
}

/** R2Gen `clean_report_iu_xray`, exactly. */
export function cleanReportIuXray(report: string): string {
  let t = report;
  for (let i = 0; i < 3; i++) t = rep(t, '..', '.');
  return finishR2Gen(t);
}

/** R2Gen `clean_report_mimic_cxr`, exactly. */
export function cleanReportMimicCxr(report: string): string {
  let t = rep(report, '\n', ' ');
  for (let i = 0; i < 7; i++) t = rep(t, '__', '_');
  for (let i = 0; i < 6; i++) t = rep(t, '  ', ' ');
  for (let i = 0; i < 8; i++) t = rep(t, '..', '.');
  return finishR2Gen(t);
}

/** The fixed cleaner of `mode: 'clean'`. */
export function cleanReportFixed(report: string): string {
  const t = report
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .replace(/(^|[.!?;:]\s*)\(?\d{1,2}[.)](?=\s)/g, '$1'); // list numbers at sentence starts only
  const sents = t.split(/(?<!\d)[.](?!\d)|[.](?=\s|$)|[?!;]/);
  const out: string[] = [];
  for (const s of sents) {
    const toks = s.match(/[a-z0-9]+(?:[.:\-/][a-z0-9]+)*/g);
    if (toks && toks.length > 0) out.push(toks.join(' ') + ' .');
  }
  return out.join(' ');
}

function sortCodepoints(a: string, b: string): number {
  // Python sorts str by code point; JS `<` compares UTF-16 units, which differs above U+FFFF.
  const A = Array.from(a, (c) => c.codePointAt(0)!);
  const B = Array.from(b, (c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(A.length, B.length); i++) if (A[i] !== B[i]) return A[i] - B[i];
  return A.length - B.length;
}

export class Tokenizer {
  readonly mode: TokenizerMode;
  readonly dataset: R2GenDataset;
  readonly threshold: number;
  readonly maxLength: number;
  private readonly idx2token: string[]; // index 0 unused ('' placeholder for PAD/BOS/EOS)
  private readonly token2idx: Map<string, number>;

  private constructor(vocab: string[], opts: Required<TokenizerOptions>) {
    this.mode = opts.mode;
    this.dataset = opts.dataset;
    this.threshold = opts.threshold;
    this.maxLength = opts.maxLength;
    this.idx2token = ['', ...vocab];
    this.token2idx = new Map(vocab.map((t, i) => [t, i + 1]));
    if (!this.token2idx.has('<unk>')) throw new TokenizerError('tokenizer: vocabulary lacks <unk>', 'Tokenizer');
  }

  private static defaults(opts: TokenizerOptions): Required<TokenizerOptions> {
    const dataset = opts.dataset ?? 'iu_xray';
    const mode = opts.mode ?? 'r2gen';
    if (mode !== 'r2gen' && mode !== 'clean') throw new ArgumentError(`tokenizer: unknown mode '${String(mode)}'`, 'ERR_INVALID_ARG', 'Tokenizer');
    if (dataset !== 'iu_xray' && dataset !== 'mimic_cxr') throw new ArgumentError(`tokenizer: unknown dataset '${String(dataset)}'`, 'ERR_INVALID_ARG', 'Tokenizer');
    const threshold = opts.threshold ?? (dataset === 'iu_xray' ? 3 : 10);
    const maxLength = opts.maxLength ?? (dataset === 'iu_xray' ? 60 : 100);
    if (!Number.isInteger(threshold) || threshold < 1) throw new ArgumentError(`tokenizer: threshold must be a positive integer, got ${threshold}`, 'ERR_INVALID_ARG', 'Tokenizer');
    if (!Number.isInteger(maxLength) || maxLength < 2) throw new ArgumentError(`tokenizer: maxLength must be an integer >= 2, got ${maxLength}`, 'ERR_INVALID_ARG', 'Tokenizer');
    return { mode, dataset, threshold, maxLength };
  }

  /** Builds the vocabulary from training-split reports (R2Gen `create_vocabulary`). */
  static build(trainReports: Iterable<string>, opts: TokenizerOptions = {}): Tokenizer {
    const o = Tokenizer.defaults(opts);
    const counts = new Map<string, number>();
    const clean = Tokenizer.cleanerFor(o.mode, o.dataset);
    let i = 0;
    for (const r of trainReports) {
      if (typeof r !== 'string') throw new ArgumentError(`tokenizer: training report #${i} is not a string`, 'ERR_INVALID_ARG', 'Tokenizer.build');
      for (const t of pySplit(clean(r))) counts.set(t, (counts.get(t) ?? 0) + 1);
      i++;
    }
    const vocab = [...counts].filter(([, c]) => c >= o.threshold).map(([t]) => t);
    vocab.push('<unk>');
    vocab.sort(sortCodepoints);
    return new Tokenizer(vocab, o);
  }

  /** Builds from an R2Gen `annotation.json` object, using its `train` split only. */
  static fromAnnotation(ann: { train: Array<{ report: string }> }, opts: TokenizerOptions = {}): Tokenizer {
    if (!ann || !Array.isArray(ann.train)) throw new ArgumentError('tokenizer: annotation has no "train" array', 'ERR_INVALID_ARG', 'Tokenizer.fromAnnotation');
    return Tokenizer.build(
      ann.train.map((e, i) => {
        if (!e || typeof e.report !== 'string') throw new ArgumentError(`tokenizer: annotation train[${i}] has no string "report"`, 'ERR_INVALID_ARG', 'Tokenizer.fromAnnotation');
        return e.report;
      }),
      opts,
    );
  }

  private static cleanerFor(mode: TokenizerMode, dataset: R2GenDataset): (r: string) => string {
    if (mode === 'clean') return cleanReportFixed;
    return dataset === 'iu_xray' ? cleanReportIuXray : cleanReportMimicCxr;
  }

  /** The cleaned report text (R2Gen `clean_report`). */
  clean(report: string): string {
    return Tokenizer.cleanerFor(this.mode, this.dataset)(report);
  }

  /** Number of tokens including `<unk>`, excluding id 0 (R2Gen `get_vocab_size`). Models use `vocabSize + 1` logits. */
  get vocabSize(): number {
    return this.idx2token.length - 1;
  }

  /** Tokens in id order (`vocab[i]` has id `i + 1`). */
  get vocab(): readonly string[] {
    return this.idx2token.slice(1);
  }

  tokenToId(token: string): number {
    return this.token2idx.get(token) ?? this.token2idx.get('<unk>')!;
  }

  idToToken(id: number): string {
    const t = this.idx2token[id];
    if (id <= 0 || t === undefined) throw new ArgumentError(`tokenizer: no token with id ${id}`, 'ERR_INVALID_ARG', 'Tokenizer.idToToken');
    return t;
  }

  /** `[0, ...ids, 0]` truncated to `maxLength` (R2Gen: `tokenizer(report)[:max_seq_length]`; a cut drops the final 0). */
  encode(report: string, maxLength: number = this.maxLength): number[] {
    const ids = [0];
    for (const t of pySplit(this.clean(report))) ids.push(this.tokenToId(t));
    ids.push(0);
    return ids.slice(0, maxLength);
  }

  /** Encodes and right-pads with 0 to the longest (R2Gen `collate_fn`), or to `padTo`. */
  encodeBatch(reports: string[], opts: { maxLength?: number; padTo?: number } = {}): EncodedBatch {
    const seqs = reports.map((r) => this.encode(r, opts.maxLength ?? this.maxLength));
    const L = opts.padTo ?? Math.max(1, ...seqs.map((s) => s.length));
    const data = new Int32Array(seqs.length * L);
    const mask = new Uint8Array(seqs.length * L);
    seqs.forEach((s, b) => {
      for (let j = 0; j < Math.min(L, s.length); j++) {
        data[b * L + j] = s[j];
        mask[b * L + j] = 1;
      }
    });
    return { data, mask, shape: [seqs.length, L], lengths: seqs.map((s) => Math.min(L, s.length)) };
  }

  /** R2Gen `decode`: stops at the first 0; tokens joined by single spaces. */
  decode(ids: ArrayLike<number>): string {
    let txt = '';
    for (let i = 0; i < ids.length; i++) {
      const id = Number(ids[i]);
      if (id > 0) {
        if (i >= 1) txt += ' ';
        txt += this.idToToken(id);
      } else break;
    }
    return txt;
  }

  decodeBatch(batch: ArrayLike<number>[]): string[] {
    return Array.from(batch, (ids) => this.decode(ids));
  }

  toJSON(): TokenizerJSON {
    return {
      format: 'radkit-tokenizer',
      version: 1,
      mode: this.mode,
      dataset: this.dataset,
      threshold: this.threshold,
      maxLength: this.maxLength,
      vocab: this.idx2token.slice(1),
    };
  }

  static fromJSON(json: unknown): Tokenizer {
    const j = json as Partial<TokenizerJSON> | null;
    const FN = 'Tokenizer.fromJSON';
    if (!j || typeof j !== 'object' || j.format !== 'radkit-tokenizer') throw new TokenizerError('tokenizer: not a radkit tokenizer JSON (format field missing)', FN);
    if (j.version !== 1) throw new TokenizerError(`tokenizer: unsupported version ${String(j.version)}`, FN);
    if (!Array.isArray(j.vocab) || !j.vocab.every((t) => typeof t === 'string')) throw new TokenizerError('tokenizer: "vocab" must be an array of strings', FN);
    if (new Set(j.vocab).size !== j.vocab.length) throw new TokenizerError('tokenizer: "vocab" has duplicates', FN);
    const vocab = j.vocab;
    return asTokenizerError(FN, () => new Tokenizer(vocab, Tokenizer.defaults({ mode: j.mode, dataset: j.dataset, threshold: j.threshold, maxLength: j.maxLength })));
  }

  save(path: string): void {
    writeFileSync(path, JSON.stringify(this.toJSON()) + '\n');
  }

  static load(path: string): Tokenizer {
    const json = readTokenizerJSON(path);
    return inTokenizerFile(path, 'Tokenizer.load', () => Tokenizer.fromJSON(json));
  }
}

/** The JSON of a saved tokenizer file, with errors naming the file (shared by every tokenizer kind). */
export function readTokenizerJSON(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (e as Error).message;
    throw new TokenizerError(`tokenizer: cannot read ${path}: ${why}`, 'readTokenizerJSON', path);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`tokenizer: ${path} is not valid JSON: ${(e as Error).message}`, 'readTokenizerJSON', path);
  }
}

/**
 * Runs `build`, turning a RadkitError raised on the way (a bad option read from the JSON, a
 * vocabulary without a special token) into a TokenizerError: the data is at fault, not the caller.
 */
export function asTokenizerError<T>(fn: string, build: () => T): T {
  try {
    return build();
  } catch (e) {
    if (e instanceof RadkitError && !(e instanceof TokenizerError)) throw new TokenizerError(e.message, fn);
    throw e;
  }
}

/** Runs `build` (reading a tokenizer from `path`); a RadkitError it raises is rethrown as a TokenizerError naming the file. */
export function inTokenizerFile<T>(path: string, fn: string, build: () => T): T {
  try {
    return build();
  } catch (e) {
    if (e instanceof RadkitError) throw new TokenizerError(`${e.message} (in ${path})`, fn, path);
    throw e;
  }
}
