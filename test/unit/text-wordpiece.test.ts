import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WordPieceTokenizer, bertBasicTokenize } from '../../lib/text/wordpiece.js';
import { Tokenizer } from '../../lib/text/tokenizer.js';
import { loadTokenizer, tokenizerFromJSON, type ReportTokenizer } from '../../lib/text/report-tokenizer.js';
import { ArgumentError } from '../../lib/errors.js';

// id = index, as in a BERT vocab.txt.
const VOCAB = [
  '[PAD]', // 0
  '[UNK]', // 1
  '[CLS]', // 2
  '[SEP]', // 3
  '[MASK]', // 4
  'un', // 5
  '##aff', // 6
  '##able', // 7
  'the', // 8
  'heart', // 9
  'is', // 10
  'normal', // 11
  '.', // 12
  ',', // 13
  'no', // 14
  'effusion', // 15
  '##s', // 16
  'naive', // 17
  'etat', // 18
  '5', // 19
  ':', // 20
  '30', // 21
  '-', // 22
  't12', // 23
  'l', // 24
  '##1', // 25
  'Heart', // 26 (cased)
  '(', // 27
  ')', // 28
  'a', // 29
  '##a', // 30
];

const dir = mkdtempSync(join(tmpdir(), 'radkit-wp-'));
const vocabPath = join(dir, 'vocab.txt');
writeFileSync(vocabPath, VOCAB.join('\n') + '\n');
const tok = WordPieceTokenizer.fromVocabFile(vocabPath, { maxLength: 16 });

describe('WordPieceTokenizer: vocabulary', () => {
  it('reads vocab.txt with id = line index', () => {
    expect(tok.vocabSize).toBe(VOCAB.length);
    expect(tok.vocab).toEqual(VOCAB);
    expect([tok.padId, tok.unkId, tok.clsId, tok.sepId]).toEqual([0, 1, 2, 3]);
    expect(tok.tokenToId('effusion')).toBe(15);
    expect(tok.tokenToId('zebra')).toBe(1);
    expect(tok.idToToken(6)).toBe('##aff');
    expect(() => tok.idToToken(VOCAB.length)).toThrow(ArgumentError);
    expect(tok.maxLength).toBe(16);
    expect(tok.lowercase).toBe(true);
  });

  it('accepts CRLF line endings and a BOM, and defaults maxLength to 128', () => {
    const p = join(dir, 'crlf.txt');
    writeFileSync(p, '\ufeff' + VOCAB.join('\r\n'));
    const t = WordPieceTokenizer.fromVocabFile(p);
    expect(t.vocab).toEqual(VOCAB);
    expect(t.maxLength).toBe(128);
  });
});

describe('WordPieceTokenizer: tokenization', () => {
  it('splits words greedily, longest match first, with ## continuations', () => {
    expect(tok.tokenize('unaffable')).toEqual(['un', '##aff', '##able']);
    expect(tok.tokenize('effusions')).toEqual(['effusion', '##s']);
    expect(tok.tokenize('aaa')).toEqual(['a', '##a', '##a']);
  });

  it('splits on punctuation and whitespace', () => {
    expect(tok.tokenize('The heart is normal.No effusion,')).toEqual(['the', 'heart', 'is', 'normal', '.', 'no', 'effusion', ',']);
    expect(tok.tokenize('5:30 t12-l1 (normal)')).toEqual(['5', ':', '30', 't12', '-', 'l', '##1', '(', 'normal', ')']);
    expect(bertBasicTokenize("it's 3.5cm; x/y")).toEqual(['it', "'", 's', '3', '.', '5cm', ';', 'x', '/', 'y']);
    // Unicode punctuation (P*): em dash, left/right double quotes, inverted question mark.
    expect(bertBasicTokenize('a\u2014b \u201cc\u201d \u00bfd')).toEqual(['a', '\u2014', 'b', '\u201c', 'c', '\u201d', '\u00bf', 'd']);
  });

  it('lower-cases and strips accents when lowercase, not otherwise', () => {
    expect(tok.tokenize('NAÏVE État HEART')).toEqual(['naive', 'etat', 'heart']);
    const cased = WordPieceTokenizer.fromVocab(VOCAB, { lowercase: false });
    expect(cased.tokenize('Heart heart HEART')).toEqual(['Heart', 'heart', '[UNK]']);
    expect(cased.basicTokenize('Naïve')).toEqual(['Naïve']);
  });

  it('drops control characters and treats tab/newline/NBSP as whitespace', () => {
    expect(bertBasicTokenize('the\u0000 heart\u200b\tis\nnormal\u00a0no\u0007effusion')).toEqual(['the', 'heart', 'is', 'normal', 'noeffusion']);
    expect(bertBasicTokenize('  \t\n ')).toEqual([]);
  });

  it('puts CJK ideographs in tokens of their own', () => {
    expect(bertBasicTokenize('ab\u4e2d\u6587c')).toEqual(['ab', '\u4e2d', '\u6587', 'c']);
  });

  it('maps an unknown word, or a word with an unmatched part, to a single [UNK]', () => {
    expect(tok.tokenize('zebra heart')).toEqual(['[UNK]', 'heart']);
    expect(tok.tokenize('unaffablex')).toEqual(['[UNK]']);
  });

  it('maps a word longer than maxCharsPerWord to [UNK]', () => {
    const t = WordPieceTokenizer.fromVocab(VOCAB, { maxCharsPerWord: 8 });
    expect(t.tokenize('unaffable unaffabl')).toEqual(['[UNK]', '[UNK]']);
    expect(t.tokenize('effusion')).toEqual(['effusion']);
    expect(tok.tokenize('a'.repeat(100))).toEqual(['a', ...Array(99).fill('##a')]);
    expect(tok.tokenize('a'.repeat(101))).toEqual(['[UNK]']);
  });
});

describe('WordPieceTokenizer: encode / decode', () => {
  it('encodes as [CLS] pieces [SEP]', () => {
    expect(tok.encode('The heart is normal.')).toEqual([2, 8, 9, 10, 11, 12, 3]);
    expect(tok.encode('unaffable zebra')).toEqual([2, 5, 6, 7, 1, 3]);
    expect(tok.encode('')).toEqual([2, 3]);
  });

  it('truncates so the result still ends with [SEP]', () => {
    expect(tok.encode('The heart is normal.', 5)).toEqual([2, 8, 9, 10, 3]);
    expect(tok.encode('The heart is normal.', 2)).toEqual([2, 3]);
    expect(tok.encode('The heart is normal.', 7)).toEqual([2, 8, 9, 10, 11, 12, 3]);
    const long = 'normal '.repeat(40);
    const ids = tok.encode(long);
    expect(ids.length).toBe(16);
    expect(ids).toEqual([2, ...Array(14).fill(11), 3]);
    expect(() => tok.encode('x', 1)).toThrow(/maxLength/);
  });

  it('encodeBatch right-pads with the [PAD] id and masks real tokens', () => {
    const b = tok.encodeBatch(['The heart is normal.', 'no effusion', '']);
    expect(b.shape).toEqual([3, 7]);
    expect(b.lengths).toEqual([7, 4, 2]);
    expect(Array.from(b.data)).toEqual([2, 8, 9, 10, 11, 12, 3, 2, 14, 15, 3, 0, 0, 0, 2, 3, 0, 0, 0, 0, 0]);
    expect(Array.from(b.mask)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
  });

  it('encodeBatch honours maxLength and padTo (cut sequences keep [SEP])', () => {
    const b = tok.encodeBatch(['The heart is normal.', 'no'], { maxLength: 4 });
    expect(b.shape).toEqual([2, 4]);
    expect(Array.from(b.data)).toEqual([2, 8, 9, 3, 2, 14, 3, 0]);
    const p = tok.encodeBatch(['The heart is normal.', 'no'], { padTo: 5 });
    expect(p.shape).toEqual([2, 5]);
    expect(Array.from(p.data)).toEqual([2, 8, 9, 10, 3, 2, 14, 3, 0, 0]);
    expect(Array.from(p.mask)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
    expect(p.lengths).toEqual([5, 3]);
  });

  it('pads with a [PAD] id that is not 0', () => {
    const v = ['[UNK]', '[CLS]', '[SEP]', 'x', '[PAD]'];
    const t = WordPieceTokenizer.fromVocab(v);
    const b = t.encodeBatch(['x x', 'x']);
    expect(Array.from(b.data)).toEqual([1, 3, 3, 2, 1, 3, 2, 4]);
    expect(Array.from(b.mask)).toEqual([1, 1, 1, 1, 1, 1, 1, 0]);
  });

  it('decodes, merging ## continuations, dropping [CLS]/[PAD] and stopping at [SEP]', () => {
    expect(tok.decode([2, 5, 6, 7, 9, 16, 12, 3, 0, 0])).toBe('unaffable hearts .');
    expect(tok.decode(Int32Array.from([8, 9, 1, 3, 14]))).toBe('the heart [UNK]');
    expect(tok.decode([])).toBe('');
    expect(tok.decodeBatch([[2, 14, 15, 3], [2, 3]])).toEqual(['no effusion', '']);
    expect(() => tok.decode([999])).toThrow(ArgumentError);
  });

  it('round-trips decode(encode(x)) to clean(x)', () => {
    const reports = ['The heart is normal. No effusions, (unaffable) t12-l1 no 5:30.', 'NAÏVE  État'];
    for (const r of reports) {
      expect(tok.clean(r)).not.toBe('');
      expect(tok.decode(tok.encode(r, 64))).toBe(tok.clean(r));
    }
    expect(tok.clean('The heart is normal. No effusions,')).toBe('the heart is normal . no effusions ,');
  });
});

describe('WordPieceTokenizer: serialisation', () => {
  it('toJSON / fromJSON round-trips', () => {
    const t = WordPieceTokenizer.fromVocab(VOCAB, { lowercase: false, maxLength: 32, maxCharsPerWord: 50 });
    const j = t.toJSON();
    expect(j).toEqual({
      kind: 'wordpiece',
      version: 1,
      vocab: VOCAB,
      lowercase: false,
      maxLength: 32,
      unkToken: '[UNK]',
      clsToken: '[CLS]',
      sepToken: '[SEP]',
      padToken: '[PAD]',
      maxCharsPerWord: 50,
    });
    const back = WordPieceTokenizer.fromJSON(JSON.parse(JSON.stringify(j)));
    expect(back.toJSON()).toEqual(j);
    expect(back.encode('Heart heart')).toEqual(t.encode('Heart heart'));
  });

  it('save / load and loadTokenizer', () => {
    const p = join(dir, 'wp.json');
    tok.save(p);
    expect(WordPieceTokenizer.load(p).toJSON()).toEqual(tok.toJSON());
    const l = loadTokenizer(p);
    expect(l).toBeInstanceOf(WordPieceTokenizer);
    expect(l.encode('no effusion')).toEqual([2, 14, 15, 3]);

    const r2 = Tokenizer.build(['the heart is normal .', 'the heart is normal .', 'the heart is normal .'], { threshold: 3 });
    const p2 = join(dir, 'r2gen.json');
    r2.save(p2);
    const l2 = loadTokenizer(p2);
    expect(l2).toBeInstanceOf(Tokenizer);
    expect(l2.toJSON()).toEqual(r2.toJSON());
    expect(() => loadTokenizer(join(dir, 'nope.json'))).toThrow(/cannot read .*nope\.json/);
  });

  it('tokenizerFromJSON dispatches on kind', () => {
    const wp = tokenizerFromJSON(JSON.parse(JSON.stringify(tok)));
    expect(wp).toBeInstanceOf(WordPieceTokenizer);
    expect(wp.toJSON()).toEqual(tok.toJSON());

    const r2 = Tokenizer.build(['a b .', 'a b .', 'a b .'], { threshold: 3, maxLength: 10 });
    const back = tokenizerFromJSON(JSON.parse(JSON.stringify(r2)));
    expect(back).toBeInstanceOf(Tokenizer);
    expect(back.encode('a b c.')).toEqual(r2.encode('a b c.'));
    expect(back.toJSON()).toEqual(r2.toJSON());

    expect(() => tokenizerFromJSON({ kind: 'bpe', vocab: [] })).toThrow(/unknown tokenizer kind 'bpe'/);
    expect(() => tokenizerFromJSON({})).toThrow(/format/);
  });

  it('both tokenizers are usable as ReportTokenizer', () => {
    const r2 = Tokenizer.build(['a b .', 'a b .', 'a b .'], { threshold: 3 });
    const all: ReportTokenizer[] = [tok, r2];
    expect(all.map((t) => t.encodeBatch(['a b'], { maxLength: 3 }).shape)).toEqual([
      [1, 3],
      [1, 3],
    ]);
  });
});

describe('WordPieceTokenizer: errors', () => {
  it('names a missing vocab file', () => {
    expect(() => WordPieceTokenizer.fromVocabFile(join(dir, 'missing.txt'))).toThrow(/cannot read vocab file .*missing\.txt: file not found/);
  });

  it('rejects an empty vocab file', () => {
    const p = join(dir, 'empty.txt');
    writeFileSync(p, '');
    expect(() => WordPieceTokenizer.fromVocabFile(p)).toThrow(/vocab file .*empty\.txt is empty/);
    writeFileSync(p, '\n\n');
    expect(() => WordPieceTokenizer.fromVocabFile(p)).toThrow(/is empty/);
    expect(() => WordPieceTokenizer.fromVocab([])).toThrow(/vocabulary is empty/);
  });

  it('names missing special tokens', () => {
    const p = join(dir, 'nospecial.txt');
    writeFileSync(p, ['[PAD]', '[CLS]', 'the', 'heart'].join('\n'));
    expect(() => WordPieceTokenizer.fromVocabFile(p)).toThrow(/lacks special tokens \[UNK\] \(unkToken\), \[SEP\] \(sepToken\) \(in .*nospecial\.txt\)/);
    expect(() => WordPieceTokenizer.fromVocab(['[UNK]', '[CLS]', '[SEP]', 'x'])).toThrow(/lacks special token \[PAD\] \(padToken\)/);
    // Custom special tokens are looked up by their own names.
    const t = WordPieceTokenizer.fromVocab(['<pad>', '<unk>', '<s>', '</s>', 'x'], { padToken: '<pad>', unkToken: '<unk>', clsToken: '<s>', sepToken: '</s>' });
    expect(t.encode('x y')).toEqual([2, 4, 1, 3]);
  });

  it('validates options and JSON', () => {
    expect(() => WordPieceTokenizer.fromVocab(VOCAB, { maxLength: 1 })).toThrow(/maxLength must be an integer >= 2/);
    expect(() => WordPieceTokenizer.fromVocab(VOCAB, { maxCharsPerWord: 0 })).toThrow(/maxCharsPerWord/);
    expect(() => WordPieceTokenizer.fromJSON({ vocab: VOCAB })).toThrow(/kind must be 'wordpiece'/);
    expect(() => WordPieceTokenizer.fromJSON({ kind: 'wordpiece', version: 2, vocab: VOCAB })).toThrow(/unsupported version 2/);
    expect(() => WordPieceTokenizer.fromJSON({ kind: 'wordpiece', vocab: [1, 2] })).toThrow(/"vocab" must be an array of strings/);
    expect(() => WordPieceTokenizer.fromJSON({ kind: 'wordpiece', vocab: VOCAB, lowercase: 'yes' })).toThrow(/lowercase must be a boolean/);
    expect(() => tok.encodeBatch(['x'], { padTo: 1 })).toThrow(/padTo/);
  });
});
