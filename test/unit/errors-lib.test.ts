/**
 * Issue 16, part 7: every error radkit throws from `lib/` is a RadkitError subclass with a stable
 * `code`, and data errors name the file and the entry.
 *
 * (a) a static scan of lib/**\/*.ts for plain `new Error(` / `new TypeError(` / `new RangeError(`;
 * (b) real error paths, checked for the class, the code and the names in the message.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { ArgumentError, DataError, RadkitError, TokenizerError } from '../../lib/errors.js';
import * as radkit from '../../lib/index.js';
import { DataError as DataErrorFromR2Gen, readR2Gen, readUnpaired } from '../../lib/data/r2gen.js';
import { decodeResize, imageLibs, loadImage } from '../../lib/data/image.js';
import { DataLoader } from '../../lib/data/loader.js';
import { synthesize } from '../../lib/data/synth/index.js';
import { Tokenizer } from '../../lib/text/tokenizer.js';
import { WordPieceTokenizer } from '../../lib/text/wordpiece.js';
import { loadTokenizer, tokenizerFromJSON } from '../../lib/text/report-tokenizer.js';
import { bleu } from '../../lib/metrics/bleu.js';
import { loadWordNet } from '../../lib/metrics/wordnet.js';

const ROOT = resolve(__dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'radkit-errors-'));

function tsFiles(d: string): string[] {
  return readdirSync(d, { withFileTypes: true }).flatMap((e) => {
    const p = join(d, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.isFile() && e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Runs `f`, expecting it to throw; returns what it threw. */
function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new RadkitError('expected a throw', 'ERR_TEST');
}

async function rejected(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new RadkitError('expected a rejection', 'ERR_TEST');
}

function expectRadkit(e: unknown, cls: new (...a: never[]) => RadkitError, code: string, ...named: string[]): void {
  expect(e).toBeInstanceOf(RadkitError);
  expect(e).toBeInstanceOf(cls);
  expect((e as RadkitError).code).toBe(code);
  for (const n of named) expect((e as Error).message).toContain(n);
}

function writePng(p: string): void {
  const img = new PNG({ width: 4, height: 4 });
  img.data.fill(128);
  writeFileSync(p, PNG.sync.write(img));
}

describe('lib throws only RadkitError subclasses', () => {
  it('has no plain new Error( / new TypeError( / new RangeError( under lib/', () => {
    const pattern = /\bnew\s+(Error|TypeError|RangeError)\s*\(/;
    const offending: string[] = [];
    for (const f of tsFiles(join(ROOT, 'lib'))) {
      readFileSync(f, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (pattern.test(line)) offending.push(`${relative(ROOT, f)}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(offending, `plain errors thrown from lib (use a RadkitError subclass with a code):\n${offending.join('\n')}`).toEqual([]);
  });
});

describe('error paths: class, code, names', () => {
  it('DataError is one class, exported from errors, r2gen and the package root', () => {
    expect(DataErrorFromR2Gen).toBe(DataError);
    expect(radkit.DataError).toBe(DataError);
    expect(radkit.TokenizerError).toBe(TokenizerError);
    const e = new DataError({ file: '/x/a.json', entry: 'train[3] (id "q")', message: 'bad' }, 'fn');
    expect(e).toBeInstanceOf(RadkitError);
    expect(e.name).toBe('DataError');
    expect(e.message).toBe('/x/a.json: train[3] (id "q"): bad');
    expect([e.code, e.fn, e.file, e.entry]).toEqual(['ERR_DATA', 'fn', '/x/a.json', 'train[3] (id "q")']);
  });

  it('readR2Gen: missing file, malformed JSON, malformed entry, bad option', () => {
    const missing = join(dir, 'missing.json');
    const e1 = thrown(() => readR2Gen(missing)) as DataError;
    expectRadkit(e1, DataError, 'ERR_DATA', 'missing.json', 'file not found');
    expect(e1.file).toBe(missing);
    expect(e1.entry).toBeUndefined();

    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"train": [ {"id": 1,');
    expectRadkit(thrown(() => readR2Gen(broken)), DataError, 'ERR_DATA', 'broken.json', 'malformed JSON');

    const ann = join(dir, 'annotation.json');
    writeFileSync(ann, JSON.stringify({ train: [{ id: 'ok', report: 'clear', image_path: ['a.png'] }, { id: 'noreport', image_path: ['b.png'] }] }));
    const e3 = thrown(() => readR2Gen(ann)) as DataError;
    expectRadkit(e3, DataError, 'ERR_DATA', 'annotation.json', 'train[1] (id "noreport")', 'missing "report"');
    expect(e3.file).toBe(ann);
    expect(e3.entry).toBe('train[1] (id "noreport")');
    expect(e3.fn).toBe('readR2Gen');

    expectRadkit(thrown(() => readR2Gen(ann, { onError: 'warn' as 'skip' })), ArgumentError, 'ERR_INVALID_ARG', 'onError', 'warn');
    expectRadkit(thrown(() => readUnpaired(join(dir, 'nowhere'))), DataError, 'ERR_DATA', 'images.json', 'file not found');
  });

  it('loadImage and decodeResize: missing, corrupt and non-image files', () => {
    const corrupt = join(dir, 'corrupt.png');
    writeFileSync(corrupt, Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('broken')]));
    const e1 = thrown(() => loadImage(corrupt, { height: 2, width: 2 })) as DataError;
    expectRadkit(e1, DataError, 'ERR_DATA', 'corrupt.png', 'corrupt PNG');
    expect(e1.file).toBe(corrupt);

    const text = join(dir, 'text.jpg');
    writeFileSync(text, 'hello');
    expectRadkit(thrown(() => loadImage(text, { height: 2, width: 2 })), DataError, 'ERR_DATA', 'text.jpg', 'not a PNG or JPEG');
    expectRadkit(thrown(() => loadImage(join(dir, 'nope.png'), { height: 2, width: 2 })), DataError, 'ERR_DATA', 'nope.png', 'file not found');
    expectRadkit(thrown(() => loadImage(corrupt, { height: 0, width: 2 })), ArgumentError, 'ERR_INVALID_ARG', 'height and width');
    expectRadkit(thrown(() => decodeResize(Buffer.alloc(0), { height: 2, width: 2 }, imageLibs())), RadkitError, 'ERR_DATA', 'empty file');
  });

  it('DataLoader: a corrupt image names the annotation file, the study and the image (both decoding paths)', async () => {
    const d = join(dir, 'ds');
    mkdirSync(join(d, 'images', 's1'), { recursive: true });
    writePng(join(d, 'images', 's1', '0.png'));
    writeFileSync(join(d, 'images', 's1', '1.png'), 'not an image');
    const ann = join(d, 'annotation.json');
    writeFileSync(ann, JSON.stringify({ val: [{ id: 's1', report: 'clear lungs', image_path: ['s1/0.png', 's1/1.png'] }] }));
    const ds = readR2Gen(ann);
    for (const workers of [0, 1]) {
      const loader = new DataLoader(ds, { split: 'val', batchSize: 1, imageSize: 4, workers });
      const e = (await rejected(
        (async () => {
          for await (const b of loader) void b;
        })(),
      )) as DataError;
      expectRadkit(e, DataError, 'ERR_DATA', 'annotation.json', 'val study "s1"', '1.png');
      expect(e.file).toBe(ann);
      expect(e.entry).toBe('val study "s1"');
    }
    expectRadkit(thrown(() => new DataLoader(ds, { split: 'val', batchSize: 0, imageSize: 4 })), ArgumentError, 'ERR_INVALID_ARG', 'batchSize');
  });

  it('tokenizers: garbage JSON, unknown kinds, bad files name the file', () => {
    expectRadkit(thrown(() => Tokenizer.fromJSON({ garbage: true })), TokenizerError, 'ERR_TOKENIZER', 'format');
    expectRadkit(thrown(() => Tokenizer.fromJSON({ format: 'radkit-tokenizer', version: 1, vocab: ['a'] })), TokenizerError, 'ERR_TOKENIZER', '<unk>');
    expectRadkit(thrown(() => Tokenizer.fromJSON({ format: 'radkit-tokenizer', version: 1, vocab: ['<unk>'], mode: 'odd' })), TokenizerError, 'ERR_TOKENIZER', "mode 'odd'");
    expectRadkit(thrown(() => tokenizerFromJSON({ kind: 'bpe' })), TokenizerError, 'ERR_TOKENIZER', "'bpe'");
    expectRadkit(thrown(() => WordPieceTokenizer.fromJSON({ kind: 'wordpiece', vocab: ['x'] })), TokenizerError, 'ERR_TOKENIZER', '[UNK]');

    const notJson = join(dir, 'tok-garbage.json');
    writeFileSync(notJson, '{{{ not json');
    const e1 = thrown(() => loadTokenizer(notJson)) as TokenizerError;
    expectRadkit(e1, TokenizerError, 'ERR_TOKENIZER', 'tok-garbage.json', 'not valid JSON');
    expect(e1.file).toBe(notJson);

    const wrong = join(dir, 'tok-wrong.json');
    writeFileSync(wrong, JSON.stringify({ format: 'something-else' }));
    const e2 = thrown(() => loadTokenizer(wrong)) as TokenizerError;
    expectRadkit(e2, TokenizerError, 'ERR_TOKENIZER', 'tok-wrong.json', 'format');
    expect(e2.file).toBe(wrong);
    expectRadkit(thrown(() => Tokenizer.load(wrong)), TokenizerError, 'ERR_TOKENIZER', 'tok-wrong.json');
    expectRadkit(thrown(() => loadTokenizer(join(dir, 'no-tok.json'))), TokenizerError, 'ERR_TOKENIZER', 'no-tok.json', 'file not found');
    expectRadkit(thrown(() => WordPieceTokenizer.fromVocabFile(join(dir, 'vocab.txt'))), TokenizerError, 'ERR_TOKENIZER', 'vocab.txt', 'file not found');

    // caller mistakes stay argument errors
    expectRadkit(thrown(() => Tokenizer.build(['a b'], { threshold: 0 })), ArgumentError, 'ERR_INVALID_ARG', 'threshold');
    expectRadkit(thrown(() => Tokenizer.build(['a a a']).idToToken(99)), ArgumentError, 'ERR_INVALID_ARG', 'id 99');
  });

  it('metrics, WordNet and synthesize', async () => {
    expectRadkit(thrown(() => bleu(['a'], [['a'], ['b']])), ArgumentError, 'ERR_INVALID_ARG', 'metrics.bleu');
    const e = thrown(() => loadWordNet(join(dir, 'no-wordnet'))) as DataError;
    expectRadkit(e, DataError, 'ERR_DATA', join('no-wordnet', 'index.'), 'WordNet');
    expectRadkit(await rejected(synthesize({ out: '', train: 1, val: 0, test: 0 })), ArgumentError, 'ERR_INVALID_ARG', '"out"');
  });
});
