// AdaMatch end to end on a controlled image-report set (a bright square in one quadrant, reports
// naming side, zone and size): it learns the alignment (loss falls, retrieval beats chance), and the
// CLI trains, retrieves, builds codebooks and explains images (PNG) and reports (keypatches).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { embedSplit } from '../../lib/align/embed.js';
import { retrievalMetrics, similarityMatrices } from '../../lib/align/retrieval.js';
import { adamatchTraining } from '../../lib/models/adamatch.js';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { writeQuadrants } = require('./quadrants.cjs');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-adamatch-train-'));
const data = path.join(tmp, 'data');
const main = path.resolve(__dirname, '../../dist/lib/cli/main.js');
const cli = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });
const TINY = { imageSize: 64, dims: [16, 32, 32, 32], depths: [1, 1, 1, 1], heads: [1, 2, 2, 2], reductions: [4, 2, 1, 1], textHidden: 32, textLayers: 1, textHeads: 2, textIntermediate: 64, embedDim: 32, classWeight: 0, seed: 1 };

beforeAll(() => {
  writeQuadrants(data, { train: 192, val: 32, test: 64 }, 3);
});

describe('AdaMatch training', () => {
  it('learns to align images with their reports (LAMB, cosine warm-up)', async () => {
    radkit.setNumThreads(1);
    const ds = radkit.data.readR2Gen(path.join(data, 'annotation.json'));
    const tokenizer = radkit.text.Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: 1 });
    const model = radkit.adamatch({ tokenizer, ...TINY });
    const out = path.join(tmp, 'lib-run');
    // peak LAMB rate 5e-3 at batch 16 (the recipe's lr_b * sqrt(16 / 512))
    const recipe = adamatchTraining(16, 5e-3 / Math.sqrt(16 / 512));
    expect(recipe.lr).toBeCloseTo(5e-3, 10);
    const r = await radkit.train(model, ds, { ...recipe, tokenizer, outDir: out, epochs: 8, imageSize: 64, progress: 'none', workers: 1 });
    const losses = r.history.map((h) => h.trainLoss);
    expect(losses[0]).toBeGreaterThan(Math.log(16) - 0.1); // chance level at the start
    expect(Math.min(...losses.slice(-3))).toBeLessThan(losses[0] - 0.3);
    // model selection ran on val retrieval; chance meanRecall at n = 32 is (1 + 5 + 10) / 3 / 32 = 16.7 %
    expect(r.best?.metric).toBe('meanRecall');
    expect(r.best!.score).toBeGreaterThan(1.5 * (100 * (16 / 3)) / 32);
    const meta = JSON.parse(fs.readFileSync(path.join(out, 'checkpoints/best/checkpoint.json'), 'utf8'));
    expect(meta.kind).toBe('adamatch');
    expect(meta.preprocessing).toEqual({ imageSize: 64, views: 1, fit: 'stretch', filter: 'lanczos3' });
    expect(meta.trainOptions.optimizer).toBe('lamb');
    // the best checkpoint reproduces its validation score on its own
    const ck = await radkit.loadCheckpoint(out);
    const e = await embedSplit(ck.model, ds, { split: 'val', preprocessing: ck.meta.preprocessing, tokenizer: ck.tokenizer });
    expect(retrievalMetrics(similarityMatrices(e)).meanRecall).toBeCloseTo(r.best!.score, 6);
    ck.model.dispose();
    model.dispose();
  }, 300_000);

  it('CLI: train --model adamatch, evaluate, retrieve, codebooks, explain', () => {
    const run = path.join(tmp, 'cli-run');
    const t = cli('train', '--model', 'adamatch', '--data', data, '--out', run, '--epochs', '1', '--image-size', '64', '--batch-size', '16', '--threshold', '1', '--progress', 'none');
    expect(t.status, t.stderr).toBe(0);
    expect(t.stderr).toMatch(/no CheXpert labels/);
    expect(JSON.parse(t.stdout).best.metric).toBe('meanRecall');

    const ev = cli('evaluate', '--checkpoint', run, '--data', data, '--split', 'test', '--out', path.join(tmp, 'eval'));
    expect(ev.status, ev.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(tmp, 'eval', 'metrics.json'), 'utf8')).headline.n).toBe(64);

    const rt = cli('retrieve', '--checkpoint', run, '--data', data, '--split', 'test', '--top', '3');
    expect(rt.status, rt.stderr).toBe(0);
    expect(rt.stdout).toMatch(/\| i2tR1 \|/);
    const matches = JSON.parse(fs.readFileSync(path.join(run, 'retrieval-test', 'matches.json'), 'utf8'));
    expect(matches).toHaveLength(64);
    expect(matches[0].reports).toHaveLength(3);
    expect(matches[0].images[0].score).toBeGreaterThanOrEqual(matches[0].images[2].score);
    const page = fs.readFileSync(path.join(run, 'retrieval-test', 'report.html'), 'utf8');
    expect(page.match(/data:image\/png;base64/g)?.length).toBe(40);
    expect(page).toMatch(/retrieved #1/);

    const img = path.join(data, 'images', 'test-0', '0.png');
    const noBooks = cli('explain', '--checkpoint', run, img, '--json');
    expect(noBooks.status, noBooks.stderr).toBe(0);
    expect(noBooks.stderr).toMatch(/no codebooks/);

    const cb = cli('codebooks', '--checkpoint', run, '--data', data, '--kappa2', '20', '--kappa3', '3');
    expect(cb.status, cb.stderr).toBe(0);
    expect(cb.stdout).toMatch(/keywords, \d+ keypatches from 192 training studies/);

    const ex = cli('explain', '--checkpoint', run, img, '--json', '--top', '4');
    expect(ex.status, ex.stderr).toBe(0);
    const [first] = JSON.parse(ex.stdout);
    expect(first.keywords.length).toBeGreaterThan(0);
    expect(first.keywords.length).toBeLessThanOrEqual(4);
    const png = fs.readFileSync(first.picture);
    expect(png.subarray(1, 4).toString()).toBe('PNG');

    const rep = cli('explain', '--checkpoint', run, '--report', 'small opacity in the left upper zone .', '--json');
    expect(rep.status, rep.stderr).toBe(0);
    const kp = JSON.parse(rep.stdout);
    expect(kp.top.length).toBeGreaterThan(0);
    expect(kp.top[0].study).toMatch(/^train-/);
    expect(kp.words.map((w: { word: string }) => w.word)).toContain('opacity');

    expect(cli('retrieve', '--checkpoint', path.join(tmp, 'nothing'), '--data', data).stderr).toMatch(/no radkit checkpoint/);
  }, 300_000);
});
