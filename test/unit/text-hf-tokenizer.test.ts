// Hugging Face tokenizer.json files written by the test (a GPT-NeoX-style byte-level BPE and a
// LLaMA-style SentencePiece BPE with byte fallback), read through radkit.text.loadTokenizer.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HFTokenizer } from '../../lib/text/hf-tokenizer.js';
import { loadTokenizer } from '../../lib/text/report-tokenizer.js';
import { TokenizerError } from '../../lib/errors.js';
import { byteLevelTokenizer, llamaTokenizer } from './hf-tokenizer-fixtures.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-hf-tok-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

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
