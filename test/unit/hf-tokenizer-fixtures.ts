// tokenizer.json files for tests: a GPT-NeoX-style byte-level BPE and a LLaMA-style SentencePiece
// BPE with byte fallback, small enough to read; and a tiny GPT-NeoX folder around the first.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createCausalLM } from '../../lib/nn/causal-lm.js';
/** GPT-2's byte -> printable character table. */
export function bytesToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + n++);
  return out;
}

export function byteLevelTokenizer(): Record<string, unknown> {
  const vocab: Record<string, number> = { '<|endoftext|>': 0 };
  bytesToUnicode().forEach((c, i) => (vocab[c] = 1 + i));
  const merges = ['h e', 'l l', 'he ll', 'hell o', 'Ġ w', 'o r', 'Ġw or', 'l d', 'Ġwor ld', 'Ġ t', 'Ġt he'];
  for (const m of merges) vocab[m.replace(' ', '')] = Object.keys(vocab).length;
  const bl = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: 0, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: { type: 'NFC' },
    pre_tokenizer: bl,
    post_processor: bl,
    decoder: bl,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges },
  };
}

export function llamaTokenizer(): Record<string, unknown> {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  for (const c of ['▁', 'h', 'e', 'l', 'o', 'w', 'r', 'd', 't', 'a']) vocab[c] = Object.keys(vocab).length;
  const merges = ['l l', '▁ h', 'e ll', '▁h ell', '▁hell o', 'o r', '▁ w', '▁w or', 'l d', '▁wor ld'];
  for (const m of merges) vocab[m.replace(' ', '')] = Object.keys(vocab).length;
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }],
    },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges },
  };
}

/**
 * A tiny GPT-NeoX folder in dolly-v2's layout (config.json, model.safetensors, tokenizer.json and
 * tokenizer_config.json): the byte-level BPE above plus a special <|padding|>, <|endoftext|> as
 * BOS = EOS, and `spareRows` more embedding rows than the tokenizer has ids (dolly: 50,280 rows,
 * 50,277 ids). Returns the tokenizer's id count and the checkpoint's rows.
 */
export async function writeTinyNeoXFolder(dir: string, o: { seed?: number; spareRows?: number; maxPositions?: number } = {}): Promise<{ ids: number; rows: number }> {
  const tok = byteLevelTokenizer() as { model: { vocab: Record<string, number> }; added_tokens: object[] };
  const ids0 = Object.keys(tok.model.vocab).length;
  tok.added_tokens.push({ id: ids0, content: '<|padding|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const ids = ids0 + 1;
  const rows = ids + (o.spareRows ?? 3);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tok));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', pad_token: '<|padding|>' }));
  const lm = createCausalLM({ arch: 'gpt_neox', vocabSize: rows, hiddenSize: 32, numLayers: 1, numHeads: 2, intermediateSize: 64, maxPositions: o.maxPositions ?? 1024, rotaryDim: 8, bosId: 0, eosId: 0, padId: ids0 }, { seed: o.seed ?? 5 });
  try {
    await lm.save(dir);
  } finally {
    lm.dispose();
  }
  return { ids, rows };
}
