// Issue 17 reproductions through train() and the CLI (tiny XProNet on a tiny SynthCXR set):
// resume refuses changed settings and is bit-identical (item 5), one trainer per run folder
// (item 6), everything checkable is checked before the first step (item 7), training without
// labels (item 8), outputs beside the checkpoints (item 2), numeric flags (item 1).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import * as radkit from '../../lib/index.js';
import { weightsOf } from './run-weights.js';
import { main } from '../../lib/cli/main.js';
import { readCheckpointMeta } from '../../lib/train/checkpoint.js';
import { acquireRunLock, LOCK_FILE } from '../../lib/train/runlock.js';
import type { ProgressEvent } from '../../lib/train/progress.js';
import type { TrainOptions } from '../../lib/train/trainer.js';
import type { R2GenDataset } from '../../lib/data/r2gen.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-reltrain-'));
const dataDir = path.join(tmp, 'data');
const TINY = { preset: 'small' as const, dModel: 32, heads: 2, dFF: 64, encoderLayers: 1, decoderLayers: 1, resnetWidths: [4, 4, 8, 8, 16], resnetBlocks: [1, 1, 1, 1], prototypesPerClass: 2, topK: 2, seed: 1 };
let ds: R2GenDataset;
let tokenizer: radkit.text.Tokenizer;

beforeAll(async () => {
  radkit.setNumThreads(1);
  await radkit.data.synthesize({ out: dataDir, train: 8, val: 4, test: 4, size: 32, seed: 6, views: 1, workers: 1 });
  ds = radkit.data.readR2Gen(path.join(dataDir, 'annotation.json'), { labels: path.join(dataDir, 'labels.json') });
  tokenizer = radkit.text.Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: 1, maxLength: 24 });
}, 60_000);
afterEach(() => vi.restoreAllMocks());

const options = (outDir: string, extra: Partial<TrainOptions> = {}): TrainOptions => ({
  tokenizer, outDir, epochs: 1, batchSize: 4, imageSize: 32, lr: 2e-3, progress: 'none', workers: 0, initBatches: 1,
  evaluate: { split: 'val', generate: { method: 'greedy', maxLength: 6 } }, ...extra,
});

async function trainTiny(outDir: string, extra: Partial<TrainOptions> = {}, config: Record<string, unknown> = {}, data = ds) {
  const m = radkit.xpronet({ tokenizer, ...TINY, ...config });
  try {
    return await radkit.train(m, data, options(outDir, extra));
  } finally {
    m.dispose();
  }
}

const steps = (run: string) => (fs.existsSync(path.join(run, 'train-log.jsonl')) ? fs.readFileSync(path.join(run, 'train-log.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"type":"step"')).length : 0);

describe('resume (item 5)', () => {
  it('refuses changed settings with the list of differences, changes nothing, and --force-new-settings records the change', async () => {
    const run = path.join(tmp, 'settings');
    await trainTiny(run);
    const meta0 = fs.readFileSync(path.join(run, 'checkpoints', 'last', 'checkpoint.json'), 'utf8');
    await expect(trainTiny(run, { epochs: 2, lr: 3e-3, imageSize: 48 })).rejects.toMatchObject({
      code: 'ERR_CHECKPOINT',
      message: expect.stringMatching(/was trained with other settings[\s\S]*lr: 0\.002 -> 0\.003\n {2}preprocessing\.imageSize: 32 -> 48[\s\S]*--force-new-settings/),
    });
    expect(fs.readFileSync(path.join(run, 'checkpoints', 'last', 'checkpoint.json'), 'utf8')).toBe(meta0);
    const events: ProgressEvent[] = [];
    await trainTiny(run, { epochs: 2, lr: 3e-3, forceNewSettings: true, progress: (e) => void events.push(e) });
    const meta = readCheckpointMeta(path.join(run, 'checkpoints', 'last'))!;
    expect(meta.epoch).toBe(2);
    // The visual extractor's rate follows lr (visualLrFactor): both are listed.
    const differences = ['lr: 0.002 -> 0.003', 'visualLr: 0.001 -> 0.0015'];
    expect(meta.trainOptions.settingsChanges).toEqual([{ afterEpoch: 1, differences }]);
    expect(events.find((e) => e.type === 'settings')).toMatchObject({ afterEpoch: 1, differences });
  }, 120_000);

  it('a run stopped after an epoch and resumed ends with the weights of an uninterrupted run (random generators restored)', async () => {
    const whole = path.join(tmp, 'whole');
    const split = path.join(tmp, 'split');
    const config = { dropout: 0.3 };
    await trainTiny(whole, { epochs: 3 }, config);
    await trainTiny(split, { epochs: 1 }, config);
    // Another process would start with a fresh generator: draw from it to make sure nothing carries over.
    radkit.manualSeed(12345);
    await trainTiny(split, { epochs: 3 }, config);
    expect(await weightsOf(split)).toEqual(await weightsOf(whole));
  }, 120_000);
});

describe('one trainer per run folder (item 6)', () => {
  it('train() into a folder another live trainer holds is an ERR_LOCKED naming it; nothing is trained', async () => {
    const run = path.join(tmp, 'locked');
    fs.mkdirSync(run, { recursive: true });
    const release = acquireRunLock(run, 'other trainer');
    try {
      await expect(trainTiny(run)).rejects.toMatchObject({ code: 'ERR_LOCKED', message: expect.stringMatching(new RegExp(`being trained by process ${process.pid}`)) });
      expect(fs.existsSync(path.join(run, 'checkpoints'))).toBe(false);
    } finally {
      release();
    }
  });
});

describe('the run-folder lock (item 6)', () => {
  it('a live holder is refused with its pid; a dead one (kill -9) is taken over; a reused pid is not the holder', async () => {
    const run = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-lock-'));
    const release = acquireRunLock(run, 'train');
    expect(() => acquireRunLock(run, 'train')).toThrow(new RegExp(`being trained by process ${process.pid}`));
    release();
    expect(fs.existsSync(path.join(run, LOCK_FILE))).toBe(false);
    // A child takes the lock and is killed with -9: the lock stays and is stale.
    const lib = path.resolve(__dirname, '../../dist/lib/train/runlock.js');
    const child = spawn(process.execPath, ['-e', `require(${JSON.stringify(lib)}).acquireRunLock(${JSON.stringify(run)}, 't'); console.log('locked'); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`the lock holder exited (${code}) before taking the lock; run npm run build:ts first`)));
    });
    expect(() => acquireRunLock(run, 'train')).toThrow(/being trained by process/);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const again = acquireRunLock(run, 'train');
    expect(JSON.parse(fs.readFileSync(path.join(run, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    again();
    // A lock naming a live pid that started at another time (the pid was reused) is stale.
    const file = path.join(run, LOCK_FILE);
    fs.writeFileSync(file, JSON.stringify({ pid: process.pid, host: os.hostname(), procStart: '1', since: 'then' }));
    acquireRunLock(run, 'train')();
    // An empty lock file (a writer killed between creating and filling it) is stale once old.
    fs.writeFileSync(file, '');
    const past = new Date(Date.now() - 60_000);
    fs.utimesSync(file, past, past);
    acquireRunLock(run, 'train')();
    expect(fs.readdirSync(run)).toEqual([]);
  });
});

describe('checked before the first step (item 7)', () => {
  it('an unknown metric, an empty evaluation split, a missing or broken image: errors before any step', async () => {
    const run = path.join(tmp, 'late');
    await expect(trainTiny(run, { evaluate: { metric: 'bogus' } })).rejects.toThrow(/evaluate.metric 'bogus' is not one of bleu1, .*ceExampleF1/);
    const noVal = { ...ds, splits: { ...ds.splits, val: [] } };
    await expect(trainTiny(run, {}, {}, noVal)).rejects.toThrow(/the evaluation split 'val' has no studies; .*evaluate: false, CLI --no-eval/);
    // A validation image that does not decode (and one training image that is missing).
    const broken = path.join(tmp, 'broken.png');
    fs.writeFileSync(broken, Buffer.from('\x89PNG\r\n\x1a\n garbage'));
    const badVal = { ...ds, splits: { ...ds.splits, val: [{ ...ds.splits.val[0], imagePaths: [broken] }, ...ds.splits.val.slice(1)] } };
    await expect(trainTiny(run, {}, {}, badVal)).rejects.toMatchObject({ code: 'ERR_DATA', message: expect.stringMatching(new RegExp(`val study "${ds.splits.val[0].id}".*broken\\.png`)) });
    const missing = { ...ds, splits: { ...ds.splits, train: [...ds.splits.train.slice(1), { ...ds.splits.train[0], imagePaths: ['/nonexistent/x.png'] }] } };
    await expect(trainTiny(run, {}, {}, missing)).rejects.toMatchObject({ code: 'ERR_DATA', message: expect.stringMatching(new RegExp(`train study "${ds.splits.train[0].id}": image not found: /nonexistent/x.png`)) });
    expect(steps(run)).toBe(0);
    expect(fs.existsSync(path.join(run, 'checkpoints'))).toBe(false);
    // And training without evaluation needs no validation split.
    const r = await trainTiny(path.join(tmp, 'noeval'), { evaluate: false }, {}, noVal);
    expect(r.best).toMatchObject({ metric: 'last', epoch: 1 });
  }, 120_000);
});

describe('training without labels (item 8)', () => {
  const unlabelled = () => radkit.data.readR2Gen(path.join(dataDir, 'annotation.json'));

  it('XProNet on a plain R2Gen set: labels from radkit\'s labeler, said and recorded; none at all when the configuration needs none', async () => {
    const events: ProgressEvent[] = [];
    const a = path.join(tmp, 'nolabels-a');
    await trainTiny(a, { progress: (e) => void events.push(e) }, {}, unlabelled());
    expect(events.find((e) => e.type === 'labels')).toEqual({ type: 'labels', source: 'labeler', studies: 12 });
    expect(readCheckpointMeta(path.join(a, 'checkpoints', 'last'))!.trainOptions.labels).toBe('labeler');
    const b = path.join(tmp, 'nolabels-b');
    events.length = 0;
    await trainTiny(b, { progress: (e) => void events.push(e), evaluate: { split: 'val', generate: { method: 'greedy', maxLength: 6, systemOptions: { labelSource: 'none' } } } }, { labelSource: 'none', lambdaImage: 0, lambdaText: 0, lambdaClass: 0 }, unlabelled());
    expect(events.some((e) => e.type === 'labels')).toBe(false);
    expect(readCheckpointMeta(path.join(b, 'checkpoints', 'last'))!.trainOptions.labels).toBe('none');
  }, 120_000);

  it('some studies without labels: an ERR_DATA naming them (or labels: labeler for all)', async () => {
    const labels = JSON.parse(fs.readFileSync(path.join(dataDir, 'labels.json'), 'utf8'));
    const gap = ds.splits.train[2].id;
    delete labels[gap];
    const partial = radkit.data.readR2Gen(path.join(dataDir, 'annotation.json'), { labels });
    await expect(trainTiny(path.join(tmp, 'partial'), {}, {}, partial)).rejects.toMatchObject({
      code: 'ERR_DATA',
      message: expect.stringMatching(new RegExp(`1 of 12 studies have no CheXpert labels \\(train "${gap}"\\).*labels: 'labeler'`)),
    });
    const r = await trainTiny(path.join(tmp, 'partial-labeler'), { labels: 'labeler' }, {}, partial);
    expect(r.history).toHaveLength(1);
  }, 120_000);
});

describe('CLI (items 1, 2)', () => {
  it('evaluate --checkpoint RUN/checkpoints/last writes beside the checkpoints, and a later train keeps the results', async () => {
    const run = path.join(tmp, 'cli-run');
    await trainTiny(run);
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const errors: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void errors.push(a.join(' ')));
    const last = path.join(run, 'checkpoints', 'last');
    expect(await main(['evaluate', '--checkpoint', last, '--data', dataDir, '--max-items', '2', '--method', 'greedy', '--max-length', '5']), errors.join('\n')).toBe(0);
    const results = path.join(run, 'eval-test-last', 'metrics.json');
    expect(fs.existsSync(results)).toBe(true);
    expect(fs.readdirSync(last).sort()).toEqual(['checkpoint.json', 'optimizer.pt', 'weights.pt']);
    expect(await main(['evaluate', '--checkpoint', last, '--data', dataDir, '--out', path.join(last, 'eval')])).toBe(1);
    expect(errors.at(-1)).toMatch(/lies inside .*last, a folder that training rewrites/);
    await trainTiny(run, { epochs: 2 });
    expect(fs.existsSync(results)).toBe(true);
    // Item 1: a views-per-study the checkpoint cannot read would drop images; images that do not
    // split into whole studies are refused too (one image alone is one study).
    const views = readCheckpointMeta(last)!.preprocessing.views;
    expect(views).toBe(2); // IU-style data: frontal + lateral
    const img = ds.splits.test[0].imagePaths[0];
    expect(await main(['generate', '--checkpoint', run, img, img, img, '--views-per-study', '3'])).toBe(2);
    expect(errors.at(-1)).toMatch(/--views-per-study 3: this checkpoint reads 2 views per study, so images past the first 2 of each study would be dropped/);
    expect(await main(['generate', '--checkpoint', run, img, img, img])).toBe(2);
    expect(errors.at(-1)).toMatch(/3 images do not split into studies of 2 .*--views-per-study 1/);
    expect(await main(['generate', '--checkpoint', run, img, '--method', 'greedy', '--max-length', '4'])).toBe(0);
  }, 120_000);
});
