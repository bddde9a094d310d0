// Hugging Face tokenizer.json files written by the test (a GPT-NeoX-style byte-level BPE and a
// LLaMA-style SentencePiece BPE with byte fallback), read through radkit.text.loadTokenizer.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HFTokenizer } from '../../lib/text/hf-tokenizer.js';
import { loadTokenizer } from '../../lib/text/report-tokenizer.js';
import { TokenizerError } from '../../lib/errors.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-hf-tok-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** GPT-2's byte -> printable character table. */
function bytesToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + n++);
  return out;
}

function byteLevelTokenizer(): Record<string, unknown> {
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

function llamaTokenizer(): Record<string, unknown> {
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

function writeDir(name: string, json: Record<string, unknown>, config?: Record<string, unknown>): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
  if (config) fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return dir;
}

const texts = ['hello world', 'the hello, world!', '  two  spaces\tand a tab\n', 'héllo wörld 🙂 — ünïcode', '<|endoftext|> after'];

describe('HFTokenizer: byte-level BPE (GPT-NeoX / dolly)', () => {
  const dir = writeDir('neox', byteLevelTokenizer(), { eos_token: '<|endoftext|>', bos_token: '<|endoftext|>' });
  const tok = loadTokenizer(dir) as HFTokenizer;

  it('loads through text.loadTokenizer and applies the merges', () => {
    expect(tok).toBeInstanceOf(HFTokenizer);
    expect(tok.vocabSize).toBe(257 + 11);
    const ids = tok.encode('hello world');
    expect(ids.map((i) => tok.idToToken(i))).toEqual(['hello', 'Ġworld']);
    expect(tok.eosId).toBe(0);
    expect(tok.padId).toBe(0);
  });

  it('round-trips text, unicode and the special token', () => {
    for (const t of texts) expect(tok.decode(tok.encode(t))).toBe(t);
    expect(tok.encode('<|endoftext|> after')[0]).toBe(0);
    expect(tok.decode(tok.encode('<|endoftext|> after'), { skipSpecialTokens: true })).toBe(' after');
  });

  it('vocabulary extension: new tokens are matched whole and survive save/load', () => {
    const t = loadTokenizer(dir) as HFTokenizer;
    const ids = t.addTokens(['<img_0>', '<img_1>', 'hello']);
    expect(ids).toEqual([268, 269, tok.tokenToId('hello')]);
    expect(t.vocabSize).toBe(270);
    const enc = t.encode('hello<img_1><img_0> world');
    expect(enc.map((i) => t.idToToken(i))).toEqual(['hello', '<img_1>', '<img_0>', 'Ġworld']);
    expect(t.decode(enc)).toBe('hello<img_1><img_0> world');
    const saved = path.join(tmp, 'neox-extended');
    t.save(saved);
    const back = loadTokenizer(saved) as HFTokenizer;
    expect(back.vocabSize).toBe(270);
    expect(back.encode('<img_1>')).toEqual([269]);
    expect(() => t.decode([270])).toThrow(/outside the vocabulary \[0, 269\]/);
  });
});

describe('HFTokenizer: LLaMA-style SentencePiece BPE with byte fallback', () => {
  const file = path.join(writeDir('llama', llamaTokenizer(), { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' }), 'tokenizer.json');
  const tok = loadTokenizer(file) as HFTokenizer;

  it('adds BOS, merges with the ▁ prefix and falls back to bytes', () => {
    const ids = tok.encode('hello world');
    expect(ids.map((i) => tok.idToToken(i))).toEqual(['<s>', '▁hello', '▁world']);
    expect(tok.encode('hello world', { addSpecialTokens: false })[0]).not.toBe(1);
    const e = tok.encode('é', { addSpecialTokens: false }).map((i) => tok.idToToken(i));
    expect(e).toEqual(['▁', '<0xC3>', '<0xA9>']);
    expect(tok.bosId).toBe(1);
    expect(tok.eosId).toBe(2);
  });

  it('round-trips text through byte fallback', () => {
    for (const t of ['hello world', 'héllo wörld 🙂', 'a tad odd: 42%']) expect(tok.decode(tok.encode(t), { skipSpecialTokens: true })).toBe(t);
  });
});

describe('loadTokenizer errors', () => {
  it('names the file', () => {
    const bad = path.join(tmp, 'bad');
    fs.mkdirSync(bad, { recursive: true });
    fs.writeFileSync(path.join(bad, 'tokenizer.json'), '{"model": ');
    expect(() => loadTokenizer(bad)).toThrow(TokenizerError);
    expect(() => loadTokenizer(bad)).toThrow(/bad\/tokenizer\.json is not valid JSON/);
    expect(() => loadTokenizer(path.join(tmp, 'empty-dir-that-does-not-exist', 'tokenizer.json'))).toThrow(/cannot read/);
    fs.writeFileSync(path.join(bad, 'tokenizer.json'), JSON.stringify({ model: { type: 'Nope', vocab: {} } }));
    expect(() => loadTokenizer(bad)).toThrow(/cannot be used/);
  });
});
