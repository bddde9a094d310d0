/**
 * Hugging Face `tokenizer.json` tokenizers (byte-level BPE as GPT-NeoX / dolly, LLaMA's
 * SentencePiece-style BPE with byte fallback, WordPiece, Unigram) through `@huggingface/tokenizers`,
 * the pure-JS port of the Rust `tokenizers` library, plus what radkit needs around it: special-token
 * ids, left-padded batches for generation, and vocabulary extension (new tokens appended as added
 * tokens, e.g. the image tokens of a joint text + image vocabulary).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer as HFTokenizerImpl } from '@huggingface/tokenizers';
import { ArgumentError, TokenizerError } from '../errors.js';
import { Tensor } from '../tensor.js';

type Json = Record<string, unknown>;

interface AddedTokenJSON {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

const TOKENIZER_FILE = 'tokenizer.json';
const CONFIG_FILE = 'tokenizer_config.json';
const MODEL_TYPES = ['BPE', 'WordPiece', 'Unigram', 'WordLevel'];

/** Whether `json` looks like a Hugging Face tokenizer.json (a `model` with a `type` or a `vocab`). */
export function isHFTokenizerJSON(json: unknown): boolean {
  if (typeof json !== 'object' || json === null) return false;
  const model = (json as Json).model;
  return typeof model === 'object' && model !== null && ('type' in (model as Json) || 'vocab' in (model as Json));
}

function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return undefined;
}

export class HFTokenizer {
  readonly #json: Json;
  readonly #config: Json;
  #impl: HFTokenizerImpl;
  #vocabSize = 0;

  private constructor(json: Json, config: Json, file?: string) {
    this.#json = json;
    this.#config = config;
    this.#impl = HFTokenizer.#build(json, config, file);
    this.#vocabSize = this.#countVocab();
  }

  static #build(json: Json, config: Json, file?: string): HFTokenizerImpl {
    if (!isHFTokenizerJSON(json)) throw new TokenizerError(`HFTokenizer: ${file ?? 'the JSON'} is not a Hugging Face tokenizer.json (no model)`, 'HFTokenizer', file);
    const type = (json.model as Json).type;
    if (type !== undefined && !MODEL_TYPES.includes(type as string))
      throw new TokenizerError(`HFTokenizer: ${file ?? 'tokenizer.json'} cannot be used: model type ${JSON.stringify(type)} is not one of ${MODEL_TYPES.join(', ')}`, 'HFTokenizer', file);
    try {
      return new HFTokenizerImpl({ added_tokens: [], normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...json }, config);
    } catch (e) {
      throw new TokenizerError(`HFTokenizer: ${file ?? 'tokenizer.json'} cannot be used: ${(e as Error).message}`, 'HFTokenizer', file);
    }
  }

  /** From the parsed tokenizer.json (and tokenizer_config.json, for bos/eos/pad names and decoding clean-up). */
  static fromJSON(json: unknown, config: unknown = {}): HFTokenizer {
    if (typeof config !== 'object' || config === null) throw new TokenizerError('HFTokenizer: tokenizer_config must be an object', 'HFTokenizer');
    return new HFTokenizer(structuredClone(json) as Json, { clean_up_tokenization_spaces: false, ...(config as Json) });
  }

  /** Reads DIR/tokenizer.json (+ DIR/tokenizer_config.json when present), or a tokenizer.json file. */
  static load(dirOrFile: string): HFTokenizer {
    const fn = 'text.loadTokenizer';
    const isDir = fs.existsSync(dirOrFile) && fs.statSync(dirOrFile).isDirectory();
    const file = isDir ? path.join(dirOrFile, TOKENIZER_FILE) : dirOrFile;
    const dir = path.dirname(file);
    const read = (f: string): Json => {
      let text: string;
      try {
        text = fs.readFileSync(f, 'utf8');
      } catch (e) {
        throw new TokenizerError(`${fn}: cannot read ${f}: ${(e as Error).message}`, fn, f);
      }
      try {
        return JSON.parse(text) as Json;
      } catch (e) {
        throw new TokenizerError(`${fn}: ${f} is not valid JSON (${(e as Error).message})`, fn, f);
      }
    };
    const json = read(file);
    const cfgFile = path.join(dir, CONFIG_FILE);
    const config = fs.existsSync(cfgFile) ? read(cfgFile) : {};
    return new HFTokenizer(json, { clean_up_tokenization_spaces: false, ...config }, file);
  }

  /** Ids 0 .. vocabSize-1 (model vocabulary and added tokens). */
  get vocabSize(): number {
    return this.#vocabSize;
  }

  get bosId(): number | undefined {
    return this.#special('bos_token');
  }

  get eosId(): number | undefined {
    return this.#special('eos_token');
  }

  /** The pad token's id (falls back to EOS, as generation usually does). */
  get padId(): number | undefined {
    return this.#special('pad_token') ?? this.eosId;
  }

  /** Ids of the added tokens marked special (e.g. GPT-NeoX's <|endoftext|> and <|padding|>), ascending. */
  get specialIds(): number[] {
    const added = (this.#json.added_tokens as AddedTokenJSON[] | undefined) ?? [];
    return added.filter((t) => t.special).map((t) => t.id).sort((a, b) => a - b);
  }

  tokenToId(token: string): number | undefined {
    return this.#impl.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.#impl.id_to_token(id);
  }

  /** Token ids of `text` (with the post-processor's special tokens, e.g. LLaMA's BOS, unless addSpecialTokens is false). */
  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    if (typeof text !== 'string') throw new ArgumentError(`HFTokenizer.encode: text must be a string, got ${typeof text}`, 'ERR_INVALID_ARG', 'HFTokenizer.encode');
    return this.#impl.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  /** Text of ids (special tokens kept unless skipSpecialTokens). */
  decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): string {
    const list = Array.from(ids);
    for (const id of list)
      if (!Number.isInteger(id) || id < 0 || id >= this.#vocabSize)
        throw new ArgumentError(`HFTokenizer.decode: id ${id} is outside the vocabulary [0, ${this.#vocabSize - 1}]`, 'ERR_INVALID_ARG', 'HFTokenizer.decode');
    return this.#impl.decode(list, { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  /**
   * Left-padded int64 ids [B, T] and mask [B, T] (1 = token) for `CausalLM.generate` / `logits`.
   * Pads with padId (or `padId`).
   */
  encodeBatch(texts: string[], options: { addSpecialTokens?: boolean; padId?: number } = {}): { ids: Tensor; attentionMask: Tensor; lengths: number[] } {
    const fn = 'HFTokenizer.encodeBatch';
    if (!Array.isArray(texts) || texts.length === 0) throw new ArgumentError(`${fn}: texts must be a non-empty array of strings`, 'ERR_INVALID_ARG', fn);
    const rows = texts.map((t) => this.encode(t, options));
    const pad = options.padId ?? this.padId ?? 0;
    const width = Math.max(1, ...rows.map((r) => r.length));
    if (rows.some((r) => r.length === 0)) throw new ArgumentError(`${fn}: a text encodes to no token; generation needs at least one`, 'ERR_INVALID_ARG', fn);
    const ids = new BigInt64Array(rows.length * width).fill(BigInt(pad));
    const mask = new BigInt64Array(rows.length * width);
    rows.forEach((r, b) => r.forEach((id, j) => {
      const at = b * width + width - r.length + j;
      ids[at] = BigInt(id);
      mask[at] = 1n;
    }));
    return { ids: Tensor.from(ids, [rows.length, width]), attentionMask: Tensor.from(mask, [rows.length, width]), lengths: rows.map((r) => r.length) };
  }

  /**
   * Vocabulary extension: appends the tokens that are not in the vocabulary yet as added tokens
   * (matched whole, before the model splits text), and returns every token's id. Resize the
   * model to `vocabSize` afterwards (`CausalLM.resizeVocab`, or `extendVocabulary`).
   */
  addTokens(tokens: string[], options: { special?: boolean } = {}): number[] {
    const fn = 'HFTokenizer.addTokens';
    if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== 'string' || t.length === 0))
      throw new ArgumentError(`${fn}: tokens must be an array of non-empty strings`, 'ERR_INVALID_ARG', fn);
    const added = (this.#json.added_tokens as AddedTokenJSON[] | undefined) ?? [];
    const next: AddedTokenJSON[] = [...added];
    const ids: number[] = [];
    let id = this.#vocabSize;
    for (const content of tokens) {
      const existing = this.tokenToId(content) ?? next.find((t) => t.content === content)?.id;
      if (existing !== undefined) {
        ids.push(existing);
        continue;
      }
      next.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: options.special ?? false });
      ids.push(id++);
    }
    const json = { ...this.#json, added_tokens: next };
    this.#impl = HFTokenizer.#build(json, this.#config);  // throws before anything changes
    this.#json.added_tokens = next;
    this.#vocabSize = this.#countVocab();
    return ids;
  }

  /** The tokenizer.json content (added tokens included). */
  toJSON(): Json {
    return structuredClone(this.#json);
  }

  /** Writes DIR/tokenizer.json and DIR/tokenizer_config.json. */
  save(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, TOKENIZER_FILE), JSON.stringify(this.#json));
    fs.writeFileSync(path.join(dir, CONFIG_FILE), JSON.stringify(this.#config, null, 2));
  }

  #special(key: string): number | undefined {
    const name = tokenContent(this.#config[key]);
    return name === undefined ? undefined : this.tokenToId(name);
  }

  #countVocab(): number {
    let max = -1;
    for (const id of this.#impl.get_vocab(true).values()) if (id > max) max = id;
    return max + 1;
  }
}
