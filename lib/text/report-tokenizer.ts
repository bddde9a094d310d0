/**
 * What data loading, training, evaluation and checkpoints need from a report tokenizer, so the
 * R2Gen-style `Tokenizer` and the BERT `WordPieceTokenizer` can be used interchangeably.
 *
 * Id conventions differ: `Tokenizer` uses 0 for BOS = EOS = PAD and `vocabSize` excludes id 0
 * (models use `vocabSize + 1` logits); `WordPieceTokenizer` uses `[CLS] ... [SEP]`, pads with the
 * `[PAD]` id and `vocabSize` counts every vocabulary entry.
 */
import * as fs from 'node:fs';
import { TokenizerError } from '../errors.js';
import { HFTokenizer, isHFTokenizerJSON } from './hf-tokenizer.js';
import { HFReportTokenizer, type HFReportTokenizerJSON } from './hf-report-tokenizer.js';
import { Tokenizer, inTokenizerFile, readTokenizerJSON, type EncodedBatch, type TokenizerJSON } from './tokenizer.js';
import { WordPieceTokenizer, type WordPieceJSON } from './wordpiece.js';

export type ReportTokenizerJSON = TokenizerJSON | WordPieceJSON | HFReportTokenizerJSON;

export interface ReportTokenizer {
  /** Default truncation length of `encode` (special tokens included). */
  readonly maxLength: number;
  readonly vocabSize: number;
  /** The report text as the tokenizer sees it (reference text for metrics). */
  clean(report: string): string;
  encode(report: string, maxLength?: number): number[];
  encodeBatch(reports: string[], opts?: { maxLength?: number; padTo?: number }): EncodedBatch;
  decode(ids: ArrayLike<number>): string;
  decodeBatch(batch: ArrayLike<number>[]): string[];
  toJSON(): ReportTokenizerJSON;
}

// Compile-time check that both tokenizers satisfy the interface.
type Satisfies<T extends U, U> = T;
export type _TokenizerIsReportTokenizer = Satisfies<Tokenizer, ReportTokenizer>;
export type _WordPieceIsReportTokenizer = Satisfies<WordPieceTokenizer, ReportTokenizer>;
export type _HFReportIsReportTokenizer = Satisfies<HFReportTokenizer, ReportTokenizer>;

/** Rebuilds a tokenizer from `toJSON()` output: `kind: 'wordpiece'` -> WordPiece, `kind: 'hf'` -> HFReportTokenizer, no `kind` -> `Tokenizer`. */
export function tokenizerFromJSON(json: unknown): Tokenizer | WordPieceTokenizer | HFReportTokenizer {
  if (json && typeof json === 'object' && 'kind' in json) {
    const kind = (json as { kind: unknown }).kind;
    if (kind === 'wordpiece') return WordPieceTokenizer.fromJSON(json);
    if (kind === 'hf') return HFReportTokenizer.fromJSON(json as HFReportTokenizerJSON);
    throw new TokenizerError(`tokenizer: unknown tokenizer kind '${String(kind)}'`, 'tokenizerFromJSON');
  }
  return Tokenizer.fromJSON(json);
}

/**
 * Loads a tokenizer: a Hugging Face folder (DIR/tokenizer.json) or tokenizer.json file as an
 * HFTokenizer, or a radkit tokenizer saved as JSON (`Tokenizer.save` or `WordPieceTokenizer.save`).
 */
export function loadTokenizer(path: string): Tokenizer | WordPieceTokenizer | HFTokenizer | HFReportTokenizer {
  if (typeof path === 'string' && fs.existsSync(path) && fs.statSync(path).isDirectory()) return HFTokenizer.load(path);
  const json = readTokenizerJSON(path);
  if (isHFTokenizerJSON(json)) return HFTokenizer.load(path);
  return inTokenizerFile(path, 'loadTokenizer', () => tokenizerFromJSON(json));
}
