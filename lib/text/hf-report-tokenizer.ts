/**
 * A Hugging Face tokenizer (tokenizer.json) as a ReportTokenizer, so a report generator whose
 * language model brings its own vocabulary (OTDRG with `--lm DIR`) trains, evaluates and is
 * checkpointed like one with radkit's word Tokenizer. Reports encode as [BOS; text; EOS] padded with
 * the pad id (the EOS when the tokenizer has none); `clean` only collapses white space (the
 * tokenizer sees the report as written).
 */
import { TokenizerError } from '../errors.js';
import { HFTokenizer } from './hf-tokenizer.js';
import type { EncodedBatch } from './tokenizer.js';

export interface HFReportTokenizerJSON {
  kind: 'hf';
  tokenizer: Record<string, unknown>;
  maxLength: number;
  bosId: number;
  eosId: number;
  padId: number;
}

export class HFReportTokenizer {
  readonly hf: HFTokenizer;
  readonly maxLength: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;

  constructor(hf: HFTokenizer, options: { maxLength?: number; bosId?: number; eosId?: number; padId?: number; source?: string } = {}) {
    const where = options.source ? ` (${options.source})` : '';
    const bos = options.bosId ?? hf.bosId;
    const eos = options.eosId ?? hf.eosId;
    if (bos === undefined) throw new TokenizerError(`tokenizer${where}: has no bos_token; a report generator needs one`, 'HFReportTokenizer');
    if (eos === undefined) throw new TokenizerError(`tokenizer${where}: has no eos_token; a report generator needs one`, 'HFReportTokenizer');
    this.hf = hf;
    this.bosId = bos;
    this.eosId = eos;
    this.padId = options.padId ?? hf.padId ?? eos;
    this.maxLength = options.maxLength ?? 100;
  }

  /** DIR/tokenizer.json (and tokenizer_config.json) of a Hugging Face model folder. */
  static fromLmFolder(dir: string, maxLength = 100): HFReportTokenizer {
    return new HFReportTokenizer(HFTokenizer.load(dir), { maxLength, source: dir });
  }

  static fromJSON(json: HFReportTokenizerJSON): HFReportTokenizer {
    return new HFReportTokenizer(HFTokenizer.fromJSON(json.tokenizer), { maxLength: json.maxLength, bosId: json.bosId, eosId: json.eosId, padId: json.padId });
  }

  get vocabSize(): number {
    return this.hf.vocabSize;
  }

  clean(report: string): string {
    return report.replace(/\s+/g, ' ').trim();
  }

  /** Ids of a text without special tokens. */
  textIds(text: string): number[] {
    return this.hf.encode(this.clean(text), { addSpecialTokens: false });
  }

  encode(report: string, maxLength = this.maxLength): number[] {
    return [this.bosId, ...this.textIds(report).slice(0, Math.max(0, maxLength - 2)), this.eosId];
  }

  encodeBatch(reports: string[], opts: { maxLength?: number; padTo?: number } = {}): EncodedBatch {
    const rows = reports.map((r) => this.encode(r, opts.maxLength));
    const width = Math.max(opts.padTo ?? 0, ...rows.map((r) => r.length));
    const data = new Int32Array(rows.length * width).fill(this.padId);
    const mask = new Uint8Array(rows.length * width);
    rows.forEach((r, b) => r.forEach((id, j) => ((data[b * width + j] = id), (mask[b * width + j] = 1))));
    return { data, mask, shape: [rows.length, width], lengths: rows.map((r) => r.length) };
  }

  decode(ids: ArrayLike<number>): string {
    return this.hf.decode(Array.from(ids).filter((id) => id >= 0 && id < this.vocabSize), { skipSpecialTokens: true }).trim();
  }

  decodeBatch(batch: ArrayLike<number>[]): string[] {
    return batch.map((ids) => this.decode(ids));
  }

  toJSON(): HFReportTokenizerJSON {
    return { kind: 'hf', tokenizer: this.hf.toJSON(), maxLength: this.maxLength, bosId: this.bosId, eosId: this.eosId, padId: this.padId };
  }
}
