// AdaMatch-Cyclic through the CLI, staged: radkit train --model vqgan, radkit tokenize-images, then
// radkit train --model adamatch-cyclic on the cached codes (both directions, evaluated on val), and
// radkit generate on that run: --image gives a report, --report an image PNG at the VQ's size;
// clear errors for bad command lines.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../lib/cli/main.js';
import { loadSharp } from '../../lib/data/image.js';
import { readR2Gen } from '../../lib/data/r2gen.js';
import { cyclicEvaluation, writeCyclicReport } from '../../lib/models/adamatch-cyclic.js';
import { loadCheckpoint } from '../../lib/train/checkpoint.js';
import * as radkit from '../../lib/index.js';
import { buildCodebooks } from '../../lib/align/codebooks.js';
import { cyclicHints, saveCyclicHints } from '../../lib/models/cyclic-hints.js';
import { readCyclicHints } from '../../lib/models/adamatch-cyclic.js';
import { writeTinyNeoXFolder } from '../unit/hf-tokenizer-fixtures.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-cli-cyclic-'));
const data = path.join(dir, 'synth');
const vq = path.join(dir, 'vq');
const codes = path.join(dir, 'codes.json');
const run = path.join(dir, 'cyclic');
let out: string[] = [];
let err: string[] = [];
function capture() {
  out = [];
  err = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
}
afterEach(() => vi.restoreAllMocks());

beforeAll(async () => {
  capture();
  expect(await main(['synth', '--out', data, '--train', '8', '--val', '2', '--test', '2', '--size', '48', '--views', '1'])).toBe(0);
  expect(await main(['train', '--model', 'vqgan', '--data', data, '--out', vq, '--epochs', '1', '--image-size', '32', '--batch-size', '4', '--progress', 'none', '--no-eval'])).toBe(0);
  expect(await main(['tokenize-images', '--checkpoint', vq, '--data', data, '--out', codes])).toBe(0);
  vi.restoreAllMocks();
}, 120_000);

describe('radkit train / generate --model adamatch-cyclic', () => {
  it('trains on the cached codes and evaluates both directions', async () => {
    capture();
    const code = await main(['train', '--model', 'adamatch-cyclic', '--data', data, '--out', run, '--codes', codes, '--vq', vq, '--hints', 'oracle', '--epochs', '1', '--image-size', '32', '--threshold', '1', '--progress', 'none']);
    expect(code, err.join('\n')).toBe(0);
    const meta = JSON.parse(fs.readFileSync(path.join(run, 'checkpoints', 'best', 'checkpoint.json'), 'utf8')) as { kind: string; config: Record<string, unknown> };
    expect(meta.kind).toBe('adamatch-cyclic');
    expect(meta.config.imageTokens).toBe(4); // 32 px, f16
    expect(meta.config.hints).toBe('oracle');
    const log = fs.readFileSync(path.join(run, 'train-log.jsonl'), 'utf8');
    for (const k of ['bleu4', 'ceMicroF1', 'imageCodeAccuracy', 'randomImageCodeAccuracy']) expect(log).toContain(`"${k}"`);
    expect(log).toMatch(/"text":/);
    expect(log).toMatch(/"image":/);
  }, 120_000);

  it('generates a report for an image and an image for a report', async () => {
    const image = path.join(data, 'images', fs.readdirSync(path.join(data, 'images'))[0], '0.png');
    capture();
    expect(await main(['generate', '--checkpoint', run, '--image', image, '--keywords', 'effusion', '--json'])).toBe(0);
    const r = JSON.parse(out.join('\n')) as { report: string; codes: number[]; keywords: string[] };
    expect(typeof r.report).toBe('string');
    expect(r.codes).toHaveLength(4);
    expect(r.keywords).toEqual(['effusion']);
    const png = path.join(dir, 'gen', 'x.png');
    capture();
    expect(await main(['generate', '--checkpoint', run, '--report', 'no acute cardiopulmonary process', '--out', png, '--json'])).toBe(0);
    const g = JSON.parse(out.join('\n')) as { codes: number[] };
    expect(g.codes).toHaveLength(4);
    const m = await loadSharp()(png).metadata();
    expect([m.width, m.height, m.channels]).toEqual([32, 32, 1]);
  }, 60_000);

  it('writes an HTML page with real, reconstructed and generated images and the hints used', async () => {
    const ck = await loadCheckpoint(run);
    const v = await loadCheckpoint(vq);
    try {
      const ds = readR2Gen(path.join(data, 'annotation.json'));
      const ev = await cyclicEvaluation(ck.model, ck.tokenizer, ds, { split: 'val', preprocessing: ck.meta.preprocessing });
      const page = path.join(dir, 'page.html');
      await writeCyclicReport(page, ck.model, ck.tokenizer, ds, ev, v.model);
      const html = fs.readFileSync(page, 'utf8');
      expect(html.match(/<img src="data:image\/png;base64,[A-Za-z0-9+/=]{20,}"/g)).toHaveLength(3 * ds.splits.val.length);
      expect(html).toContain('keywords read by image -&gt; report: ');
      expect(html).toContain('imageCodeAccuracy');
    } finally {
      ck.model.dispose();
      v.model.dispose();
    }
  }, 60_000);

  it("AdaMatch's hints (keywords per image, keypatch tokens per report) feed a run with --hints FILE", async () => {
    const ds = readR2Gen(path.join(data, 'annotation.json'), { labels: path.join(data, 'labels.json') });
    const tokenizer = radkit.text.Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: 1 });
    // An untrained tiny AdaMatch: the hints' mechanics, not their quality.
    const am = radkit.adamatch({ tokenizer, imageSize: 32, dims: [8, 16, 16, 16], depths: [1, 1, 1, 1], heads: [1, 2, 2, 2], reductions: [2, 1, 1, 1], textHidden: 16, textLayers: 1, textHeads: 2, textIntermediate: 32, embedDim: 12, classWeight: 0, seed: 3 });
    const v = await loadCheckpoint(vq);
    const hintsFile = path.join(dir, 'hints.json');
    try {
      const pre = { imageSize: 32, views: 1 } as never;
      const books = await buildCodebooks(am, tokenizer, ds, pre, { kappa0: 5, kappa2: 4, kappa3: 3 });
      const h = await cyclicHints(am, tokenizer, pre, books, v.model, ds, { nw: 3, np: 2 });
      saveCyclicHints(hintsFile, h);
      const read = readCyclicHints(hintsFile, 256);
      const all = Object.values(ds.splits).flat();
      expect(Object.keys(read.keywords).sort()).toEqual(all.map((e) => e.id).sort());
      for (const e of all) {
        expect(read.keywords[e.id].length).toBeGreaterThan(0);
        expect(read.keywords[e.id].length).toBeLessThanOrEqual(3);
        for (const k of read.keywords[e.id]) expect(books.keywords.keywords).toContain(k);
        expect(read.keypatchCodes[e.id]).toHaveLength(2);
      }
    } finally {
      am.dispose();
      v.model.dispose();
    }
    capture();
    const run2 = path.join(dir, 'cyclic-hints');
    expect(await main(['train', '--model', 'adamatch-cyclic', '--data', data, '--out', run2, '--codes', codes, '--vq', vq, '--hints', hintsFile, '--epochs', '1', '--image-size', '32', '--threshold', '1', '--progress', 'none', '--no-eval']), err.join('\n')).toBe(0);
    // A hints file that is not one is refused before training.
    fs.writeFileSync(path.join(dir, 'bad-hints.json'), '{"format":"other"}');
    capture();
    expect(await main(['train', '--model', 'adamatch-cyclic', '--data', data, '--out', path.join(dir, 'bad'), '--codes', codes, '--vq', vq, '--hints', path.join(dir, 'bad-hints.json'), '--epochs', '1', '--progress', 'none'])).toBe(1);
    expect(err.join('\n')).toMatch(/not a radkit hints file/);
  }, 120_000);

  it('--lm DIR: trains a GPT-NeoX folder on the Fig. 3-4 prompts, evaluates, and generates both ways with its tokenizer', async () => {
    const lmDir = path.join(dir, 'neox');
    await writeTinyNeoXFolder(lmDir);
    const r = path.join(dir, 'cyclic-lm');
    capture();
    expect(await main(['train', '--model', 'adamatch-cyclic', '--data', data, '--out', r, '--codes', codes, '--vq', vq, '--lm', lmDir, '--epochs', '1', '--image-size', '32', '--progress', 'none']), err.join('\n')).toBe(0);
    const meta = JSON.parse(fs.readFileSync(path.join(r, 'checkpoints', 'last', 'checkpoint.json'), 'utf8')) as { tokenizer: { kind: string }; config: Record<string, unknown> };
    expect(meta.tokenizer.kind).toBe('hf');
    expect(meta.config).toMatchObject({ vocabLayout: 'joint', lm: lmDir, imageTokens: 4 });
    expect(fs.readFileSync(path.join(r, 'train-log.jsonl'), 'utf8')).toContain('"imageCodeAccuracy"');
    const image = path.join(data, 'images', fs.readdirSync(path.join(data, 'images'))[0], '0.png');
    capture();
    expect(await main(['generate', '--checkpoint', r, '--image', image, '--max-length', '8', '--json']), err.join('\n')).toBe(0);
    expect(typeof (JSON.parse(out.join('\n')) as { report: string }).report).toBe('string');
    capture();
    expect(await main(['generate', '--checkpoint', r, '--report', 'No acute process.', '--out', path.join(dir, 'gen', 'lm.png'), '--json']), err.join('\n')).toBe(0);
    expect((JSON.parse(out.join('\n')) as { codes: number[] }).codes).toHaveLength(4);
    // The paper preset is dolly-v2-3b's: without --lm it is refused before any run content.
    const bad = path.join(dir, 'cyclic-paper');
    capture();
    expect(await main(['train', '--model', 'adamatch-cyclic', '--preset', 'paper', '--data', data, '--out', bad, '--codes', codes, '--vq', vq, '--epochs', '1', '--progress', 'none'])).toBe(1);
    expect(err.join('\n')).toMatch(/paper preset starts from a pretrained GPT-NeoX .* give --lm DIR/);
    expect(fs.existsSync(path.join(bad, 'checkpoints'))).toBe(false);
  }, 120_000);

  it('refuses bad command lines, naming what is wrong', async () => {
    const image = path.join(data, 'images', fs.readdirSync(path.join(data, 'images'))[0], '0.png');
    const cases: [string[], RegExp][] = [
      [['--image', image, '--report', 'x'], /exactly one of --image FILE .* or --report TEXT/],
      [[], /give at least 1 image file/],
      [['--report', 'no effusion'], /--report needs --out FILE.png/],
      [['--image', image, '--out', 'x.png'], /--out goes with --report/],
      [['--report', 'no effusion', '--out', path.join(dir, 'y.png'), '--keywords', 'a'], /--keywords are hints for --image/],
      [[image], /takes --image FILE or --report TEXT, not image arguments/],
      [['--report', 'zzzz qqqq', '--out', path.join(dir, 'z.png')], /none of its words is in the model's vocabulary/],
      [['--report', 'no effusion', '--out', path.join(dir, 'z.png'), '--method', 'beam'], /greedy or sampled/],
      [['--image', path.join(dir, 'missing.png')], /missing\.png/],
    ];
    for (const [args, re] of cases) {
      capture();
      expect(await main(['generate', '--checkpoint', run, ...args]), args.join(' ')).not.toBe(0);
      expect(err.join('\n'), args.join(' ')).toMatch(re);
    }
    // A flag of this kind on another kind's checkpoint.
    capture();
    expect(await main(['generate', '--checkpoint', vq, '--image', image])).toBe(2);
    expect(err.join('\n')).toMatch(/--image is a flag of another kind's generate; .* holds vqgan/);
  }, 60_000);
});
