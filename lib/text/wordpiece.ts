/**
 * BERT WordPiece tokenizer, for text encoders initialised from user-supplied BERT weights (with
 * their `vocab.txt`). Behaves like Hugging Face `BertTokenizer` (the slow, Python one):
 *
 *  - BasicTokenizer: drops NUL, U+FFFD and control characters (Unicode category C*, but tab, LF and
 *    CR count as whitespace), turns whitespace (space, tab, LF, CR, category Zs) into spaces, puts
 *    spaces around CJK ideographs, NFC-normalises, splits on whitespace (Python `str.split()`),
 *    lower-cases and strips accents (NFD, combining marks Mn dropped) when `lowercase`, and makes
 *    every punctuation character (ASCII 33-47, 58-64, 91-96, 123-126, and Unicode P*) its own token.
 *  - WordpieceTokenizer: greedy longest-match-first over each word, continuation pieces prefixed
 *    with `##`; a word longer than `maxCharsPerWord` code points, or with a part no piece matches,
 *    becomes `[UNK]` as a whole.
 *
 * Special-token strings inside the input text are not kept whole (`[SEP]` -> `[`, `sep`, `]`).
 *
 * `encode` = `[CLS] ...pieces [SEP]`, truncated to `maxLength` so that it still ends with `[SEP]`.
 * `encodeBatch` right-pads with the `[PAD]` id (0 in BERT vocabularies). Ids are line indices in
 * `vocab.txt`; `vocabSize` is the number of lines (the embedding's row count).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { ReportTokenizer } from './report-tokenizer.js';
import { ArgumentError, TokenizerError } from '../errors.js';
import { asTokenizerError, inTokenizerFile, pySplit, readTokenizerJSON, type EncodedBatch } from './tokenizer.js';

export interface WordPieceOptions {
  /** Lower-case and strip accents (uncased BERT models). Default true. */
  lowercase?: boolean;
  /** Truncation length of `encode`, `[CLS]` and `[SEP]` included. Default 128. */
  maxLength?: number;
  unkToken?: string;
  clsToken?: string;
  sepToken?: string;
  padToken?: string;
  /** Words longer than this (in code points) become `[UNK]`. Default 100. */
  maxCharsPerWord?: number;
}

/** Serialised WordPiece tokenizer (what `toJSON` returns and checkpoints store). */
export interface WordPieceJSON {
  kind: 'wordpiece';
  version: 1;
  /** Tokens in id order: `vocab[i]` has id `i`. */
  vocab: string[];
  lowercase: boolean;
  maxLength: number;
  unkToken: string;
  clsToken: string;
  sepToken: string;
  padToken: string;
  maxCharsPerWord: number;
}

const CONTROL = /\p{C}/u;
const SPACE_SEP = /\p{Zs}/u;
const UNICODE_PUNCT = /\p{P}/u;
const COMBINING = /\p{Mn}/gu;

function isWhitespace(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || SPACE_SEP.test(ch);
}

function isControl(ch: string): boolean {
  if (ch === '\t' || ch === '\n' || ch === '\r') return false;
  return CONTROL.test(ch);
}

function isPunctuation(ch: string): boolean {
  const cp = ch.codePointAt(0)!;
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) return true;
  return UNICODE_PUNCT.test(ch);
}

function isCjk(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/** BERT BasicTokenizer: whitespace/punctuation split, optional lower-casing and accent stripping. */
export function bertBasicTokenize(text: string, lowercase = true): string[] {
  let cleaned = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp === 0 || cp === 0xfffd || isControl(ch)) continue;
    if (isWhitespace(ch)) cleaned += ' ';
    else if (isCjk(cp)) cleaned += ` ${ch} `;
    else cleaned += ch;
  }
  const out: string[] = [];
  for (let word of pySplit(cleaned.normalize('NFC'))) {
    if (lowercase) word = word.toLowerCase().normalize('NFD').replace(COMBINING, '');
    let cur = '';
    for (const ch of word) {
      if (isPunctuation(ch)) {
        if (cur) out.push(cur);
        out.push(ch);
        cur = '';
      } else cur += ch;
    }
    if (cur) out.push(cur);
  }
  return out;
}

function checkInt(name: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new ArgumentError(`wordpiece: ${name} must be an integer >= ${min}, got ${String(v)}`, 'ERR_INVALID_ARG', 'WordPieceTokenizer');
  return v;
}

export class WordPieceTokenizer implements ReportTokenizer {
  readonly lowercase: boolean;
  readonly maxLength: number;
  readonly maxCharsPerWord: number;
  readonly unkToken: string;
  readonly clsToken: string;
  readonly sepToken: string;
  readonly padToken: string;
  private readonly idx2token: string[];
  private readonly token2idx: Map<string, number>;
  private readonly specialIds: Set<number>;

  private constructor(tokens: string[], opts: WordPieceOptions) {
    if (tokens.length === 0) throw new ArgumentError('wordpiece: vocabulary is empty', 'ERR_INVALID_ARG', 'WordPieceTokenizer');
    this.lowercase = opts.lowercase ?? true;
    if (typeof this.lowercase !== 'boolean') throw new ArgumentError(`wordpiece: lowercase must be a boolean, got ${String(this.lowercase)}`, 'ERR_INVALID_ARG', 'WordPieceTokenizer');
    this.maxLength = checkInt('maxLength', opts.maxLength ?? 128, 2);
    this.maxCharsPerWord = checkInt('maxCharsPerWord', opts.maxCharsPerWord ?? 100, 1);
    this.unkToken = opts.unkToken ?? '[UNK]';
    this.clsToken = opts.clsToken ?? '[CLS]';
    this.sepToken = opts.sepToken ?? '[SEP]';
    this.padToken = opts.padToken ?? '[PAD]';
    this.idx2token = tokens.slice();
    // As in Hugging Face `load_vocab`: a duplicated line maps to its last index.
    this.token2idx = new Map(tokens.map((t, i) => [t, i]));
    const missing: string[] = [];
    for (const [opt, t] of [
      ['unkToken', this.unkToken],
      ['clsToken', this.clsToken],
      ['sepToken', this.sepToken],
      ['padToken', this.padToken],
    ] as const) {
      if (typeof t !== 'string' || t === '') throw new ArgumentError(`wordpiece: ${opt} must be a non-empty string`, 'ERR_INVALID_ARG', 'WordPieceTokenizer');
      if (!this.token2idx.has(t)) missing.push(`${t} (${opt})`);
    }
    if (missing.length > 0) throw new ArgumentError(`wordpiece: vocabulary lacks special token${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`, 'ERR_INVALID_ARG', 'WordPieceTokenizer');
    this.specialIds = new Set([this.clsId, this.sepId, this.padId]);
  }

  /** From tokens in id order (`tokens[i]` has id `i`), e.g. the lines of `vocab.txt`. */
  static fromVocab(tokens: string[], opts: WordPieceOptions = {}): WordPieceTokenizer {
    if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string')) throw new ArgumentError('wordpiece: vocabulary must be an array of strings', 'ERR_INVALID_ARG', 'WordPieceTokenizer.fromVocab');
    return new WordPieceTokenizer(tokens, opts);
  }

  /** From a BERT `vocab.txt`: one token per line, id = line index (0-based). */
  static fromVocabFile(path: string, opts: WordPieceOptions = {}): WordPieceTokenizer {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new TokenizerError(`wordpiece: cannot read vocab file ${path}: ${code === 'ENOENT' ? 'file not found' : (e as Error).message}`, 'WordPieceTokenizer.fromVocabFile', path);
    }
    if (text.startsWith('\ufeff')) text = text.slice(1);
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop(); // final newline, as Python readlines()
    const tokens = lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
    if (tokens.length === 0 || tokens.every((t) => t.trim() === '')) throw new TokenizerError(`wordpiece: vocab file ${path} is empty`, 'WordPieceTokenizer.fromVocabFile', path);
    return inTokenizerFile(path, 'WordPieceTokenizer.fromVocabFile', () => new WordPieceTokenizer(tokens, opts));
  }

  /** Number of vocabulary entries (lines of vocab.txt): the embedding's row count. */
  get vocabSize(): number {
    return this.idx2token.length;
  }

  /** Tokens in id order (`vocab[i]` has id `i`). */
  get vocab(): readonly string[] {
    return this.idx2token.slice();
  }

  get unkId(): number {
    return this.token2idx.get(this.unkToken)!;
  }
  get clsId(): number {
    return this.token2idx.get(this.clsToken)!;
  }
  get sepId(): number {
    return this.token2idx.get(this.sepToken)!;
  }
  get padId(): number {
    return this.token2idx.get(this.padToken)!;
  }

  tokenToId(token: string): number {
    return this.token2idx.get(token) ?? this.unkId;
  }

  idToToken(id: number): string {
    const t = Number.isInteger(id) && id >= 0 ? this.idx2token[id] : undefined;
    if (t === undefined) throw new ArgumentError(`wordpiece: no token with id ${id}`, 'ERR_INVALID_ARG', 'WordPieceTokenizer.idToToken');
    return t;
  }

  /** WordPiece split of one word (already basic-tokenized): greedy longest match, `##` continuations. */
  private wordPieces(word: string, out: string[]): void {
    const chars = Array.from(word);
    if (chars.length > this.maxCharsPerWord) {
      out.push(this.unkToken);
      return;
    }
    const pieces: string[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let cur: string | undefined;
      while (start < end) {
        const sub = (start > 0 ? '##' : '') + chars.slice(start, end).join('');
        if (this.token2idx.has(sub)) {
          cur = sub;
          break;
        }
        end--;
      }
      if (cur === undefined) {
        out.push(this.unkToken);
        return;
      }
      pieces.push(cur);
      start = end;
    }
    out.push(...pieces);
  }

  /** The basic-tokenized words (lower-cased, punctuation split) before WordPiece. */
  basicTokenize(text: string): string[] {
    return bertBasicTokenize(text, this.lowercase);
  }

  /** WordPiece tokens of `text`, without `[CLS]`/`[SEP]`. */
  tokenize(text: string): string[] {
    const out: string[] = [];
    for (const w of this.basicTokenize(text)) this.wordPieces(w, out);
    return out;
  }

  /** The report as the model sees it, space-separated words (what `decode(encode(report))` gives when nothing is cut or unknown). */
  clean(report: string): string {
    return this.basicTokenize(report).join(' ');
  }

  /** `[CLS] ...pieces [SEP]`, the pieces cut so the result has at most `maxLength` ids and still ends with `[SEP]`. */
  encode(report: string, maxLength: number = this.maxLength): number[] {
    checkInt('maxLength', maxLength, 2);
    if (typeof report !== 'string') throw new ArgumentError(`wordpiece: report must be a string, got ${typeof report}`, 'ERR_INVALID_ARG', 'WordPieceTokenizer.encode');
    const pieces = this.tokenize(report);
    const ids = [this.clsId];
    const n = Math.min(pieces.length, maxLength - 2);
    for (let i = 0; i < n; i++) ids.push(this.token2idx.get(pieces[i])!);
    ids.push(this.sepId);
    return ids;
  }

  /**
   * Encodes and right-pads with the `[PAD]` id to the longest, or to `padTo` (sequences are then
   * truncated to at most `padTo`, still ending with `[SEP]`). `mask` is 1 on real tokens, `[CLS]`
   * and `[SEP]` included.
   */
  encodeBatch(reports: string[], opts: { maxLength?: number; padTo?: number } = {}): EncodedBatch {
    let maxLen = opts.maxLength ?? this.maxLength;
    if (opts.padTo !== undefined) maxLen = Math.min(maxLen, checkInt('padTo', opts.padTo, 2));
    const seqs = reports.map((r) => this.encode(r, maxLen));
    const L = opts.padTo ?? Math.max(1, ...seqs.map((s) => s.length));
    const data = new Int32Array(seqs.length * L).fill(this.padId);
    const mask = new Uint8Array(seqs.length * L);
    seqs.forEach((s, b) => {
      data.set(s, b * L);
      mask.fill(1, b * L, b * L + s.length);
    });
    return { data, mask, shape: [seqs.length, L], lengths: seqs.map((s) => s.length) };
  }

  /**
   * Tokens joined by spaces, `##` continuations merged into the previous word. `[CLS]` and `[PAD]`
   * are dropped and decoding stops at the first `[SEP]` (end of sequence); `[UNK]` is kept.
   */
  decode(ids: ArrayLike<number>): string {
    const words: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = Number(ids[i]);
      if (id === this.sepId) break;
      if (this.specialIds.has(id)) continue;
      const t = this.idToToken(id);
      if (t.startsWith('##') && words.length > 0) words[words.length - 1] += t.slice(2);
      else words.push(t);
    }
    return words.join(' ');
  }

  decodeBatch(batch: ArrayLike<number>[]): string[] {
    return Array.from(batch, (ids) => this.decode(ids));
  }

  toJSON(): WordPieceJSON {
    return {
      kind: 'wordpiece',
      version: 1,
      vocab: this.idx2token.slice(),
      lowercase: this.lowercase,
      maxLength: this.maxLength,
      unkToken: this.unkToken,
      clsToken: this.clsToken,
      sepToken: this.sepToken,
      padToken: this.padToken,
      maxCharsPerWord: this.maxCharsPerWord,
    };
  }

  static fromJSON(json: unknown): WordPieceTokenizer {
    const j = json as Partial<WordPieceJSON> | null;
    const FN = 'WordPieceTokenizer.fromJSON';
    if (!j || typeof j !== 'object' || j.kind !== 'wordpiece') throw new TokenizerError("wordpiece: not a WordPiece tokenizer JSON (kind must be 'wordpiece')", FN);
    if (j.version !== undefined && j.version !== 1) throw new TokenizerError(`wordpiece: unsupported version ${String(j.version)}`, FN);
    if (!Array.isArray(j.vocab) || !j.vocab.every((t) => typeof t === 'string')) throw new TokenizerError('wordpiece: "vocab" must be an array of strings', FN);
    for (const k of ['unkToken', 'clsToken', 'sepToken', 'padToken'] as const) {
      if (j[k] !== undefined && typeof j[k] !== 'string') throw new TokenizerError(`wordpiece: "${k}" must be a string`, FN);
    }
    const vocab = j.vocab;
    return asTokenizerError(FN, () => new WordPieceTokenizer(vocab, {
      lowercase: j.lowercase,
      maxLength: j.maxLength,
      maxCharsPerWord: j.maxCharsPerWord,
      unkToken: j.unkToken,
      clsToken: j.clsToken,
      sepToken: j.sepToken,
      padToken: j.padToken,
    }));
  }

  save(path: string): void {
    writeFileSync(path, JSON.stringify(this.toJSON()) + '\n');
  }

  static load(path: string): WordPieceTokenizer {
    const json = readTokenizerJSON(path);
    return inTokenizerFile(path, 'WordPieceTokenizer.load', () => WordPieceTokenizer.fromJSON(json));
  }
}
