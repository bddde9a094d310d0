// Staged runs: a second run starts from the first run's weights under a prefix (init), may freeze
// them, and reports exactly what was copied, skipped and left new.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import * as radkit from '../../lib/index.js';
import { main } from '../../lib/cli/main.js';
import { parseInitSpec } from '../../lib/train/init.js';
import type { TrainOptions } from '../../lib/train/trainer.js';
import { modelWeights } from './run-weights.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-staged-'));
const dataDir = path.join(tmp, 'data');
const TINY = { preset: 'small' as const, dModel: 32, heads: 4, dFF: 64, encoderLayers: 1, decoderLayers: 1, resnetWidths: [8, 8, 8, 16, 16], resnetBlocks: [1, 1, 1, 1], prototypesPerClass: 2, topK: 2 };
let ds: ReturnType<typeof radkit.data.readR2Gen>;
let tokenizer: radkit.text.Tokenizer;

const weights = modelWeights;
const options = (outDir: string, extra: Partial<TrainOptions> = {}): TrainOptions => ({
  tokenizer, outDir, epochs: 1, batchSize: 8, imageSize: 32, progress: 'none', workers: 0, evaluate: false, initBatches: 0, ...extra,
});

beforeAll(async () => {
  await radkit.data.synthesize({ out: dataDir, train: 16, val: 4, test: 4, size: 32, seed: 2, views: 1 });
  ds = radkit.data.readR2Gen(path.join(dataDir, 'annotation.json'), { labels: path.join(dataDir, 'labels.json') });
  tokenizer = radkit.text.Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: 1 });
}, 120_000);

describe('staged runs', () => {
  it('parses RUN[:prefix]', () => {
    expect(parseInitSpec('runs/a')).toEqual({ run: 'runs/a', prefix: '' });
    expect(parseInitSpec('runs/a:visual.')).toEqual({ run: 'runs/a', prefix: 'visual.' });
    expect(parseInitSpec('C:/runs/a')).toEqual({ run: 'C:/runs/a', prefix: '' });
    expect(() => parseInitSpec('')).toThrow(/RUN\[:prefix\]/);
  });

  it('copies the named weights of another run, freezes them, and reports every tensor', async () => {
    const first = path.join(tmp, 'first');
    const a = radkit.xpronet({ tokenizer, ...TINY, seed: 1 });
    await radkit.train(a, ds, options(first));
    const trained = weights(a, 'visual.');
    a.dispose();

    const second = path.join(tmp, 'second');
    const b = radkit.xpronet({ tokenizer, ...TINY, seed: 2 });
    const fresh = weights(b, 'visual.');
    expect(fresh).not.toEqual(trained);
    const r = await radkit.train(b, ds, options(second, { init: `${first}:visual.`, freeze: ['visual.'] }));
    // The frozen visual parameters hold exactly the first run's values after a training epoch, and
    // so do its batch norms' running statistics (they stay in evaluation mode under a freeze).
    expect(r.frozen.length).toBeGreaterThan(0);
    expect(r.frozen.every((n) => n.startsWith('visual.'))).toBe(true);
    const after = weights(b, 'visual.');
    for (const n of r.frozen) expect(after[n], n).toEqual(trained[n]);
    const statistics = Object.keys(trained).filter((n) => /running_(mean|var)$|num_batches_tracked$/.test(n));
    expect(statistics.length).toBeGreaterThan(0);
    for (const n of statistics) expect(after[n], n).toEqual(trained[n]);
    expect(r.frozen.some((n) => JSON.stringify(fresh[n]) !== JSON.stringify(trained[n]))).toBe(true);
    const report = JSON.parse(fs.readFileSync(path.join(second, 'init.json'), 'utf8'));
    expect(report).toEqual(r.init);
    expect(report.from).toBe(path.join(first, 'checkpoints', 'best'));
    expect([...report.copied].sort()).toEqual(Object.keys(trained).sort());
    expect(report.skipped).toEqual([]);
    expect(report.new.length).toBeGreaterThan(0);
    expect(report.new.some((n: string) => n.startsWith('visual.'))).toBe(false);
    const meta = JSON.parse(fs.readFileSync(path.join(second, 'checkpoints', 'last', 'checkpoint.json'), 'utf8'));
    expect(meta.trainOptions.init).toEqual({ run: first, prefix: 'visual.' });
    expect(meta.trainOptions.freeze).toEqual(['visual.']);
    b.dispose();

    // A model whose shapes differ: an error listing every misfit, nothing trained; with partial,
    // what does not fit is skipped with the reason and the rest copied.
    const third = path.join(tmp, 'third');
    const c = radkit.xpronet({ tokenizer, ...TINY, dModel: 48, seed: 3 });
    const before = weights(c, '');
    await expect(radkit.train(c, ds, options(third, { init: first }))).rejects.toMatchObject({
      code: 'ERR_CHECKPOINT',
      message: expect.stringMatching(/do not fit this xpronet model; nothing was copied:\n {2}\S+: shape \[\d+(, \d+)*\] does not fit \[\d+(, \d+)*\]/),
    });
    expect(weights(c, '')).toEqual(before);
    expect(fs.existsSync(path.join(third, 'checkpoints'))).toBe(false);
    const r3 = await radkit.train(c, ds, options(third, { init: { run: first, partial: true } }));
    expect(r3.init!.copied.some((n) => n.startsWith('visual.'))).toBe(true);
    expect(r3.init!.skipped.length).toBeGreaterThan(0);
    expect(r3.init!.skipped[0].reason).toMatch(/shape \[.*\] does not fit \[.*\]/);
    c.dispose();

    // Nothing under the prefix, or nothing that fits: an error, and the run is not started.
    const d = radkit.xpronet({ tokenizer, ...TINY });
    await expect(radkit.train(d, ds, options(path.join(tmp, 'fourth'), { init: `${first}:nothing.` }))).rejects.toMatchObject({ code: 'ERR_CHECKPOINT', message: expect.stringMatching(/no tensor whose name starts with 'nothing.'/) });
    expect(fs.existsSync(path.join(tmp, 'fourth', 'checkpoints'))).toBe(false);
    // ... and the model is as it was: not frozen, no optimizer, so a corrected call trains it.
    const again = await radkit.train(d, ds, options(path.join(tmp, 'fifth'), { init: `${first}:visual.`, freeze: ['visual.'] }));
    expect(again.frozen.length).toBe(r.frozen.length);
    d.dispose();
  }, 300_000);

  it('radkit train --init RUN:prefix --freeze prefix', async () => {
    const common = ['--data', dataDir, '--epochs', '1', '--image-size', '32', '--threshold', '1', '--progress', 'none', '--batch-size', '8'];
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      expect(await main(['train', ...common, '--out', path.join(tmp, 'cli-a')])).toBe(0);
      const out = path.join(tmp, 'cli-b');
      expect(await main(['train', ...common, '--out', out, '--seed', '4', '--init', `${path.join(tmp, 'cli-a')}:visual.`, '--freeze', 'visual.'])).toBe(0);
      const report = JSON.parse(fs.readFileSync(path.join(out, 'init.json'), 'utf8'));
      expect(report.kind).toBe('xpronet');
      expect(report.copied.length).toBeGreaterThan(10);
      expect(report.skipped).toEqual([]);
      const meta = JSON.parse(fs.readFileSync(path.join(out, 'checkpoints', 'last', 'checkpoint.json'), 'utf8'));
      expect(meta.trainOptions.freeze).toEqual(['visual.']);
      // A prefix that freezes nothing is an error before training.
      expect(await main(['train', ...common, '--out', path.join(tmp, 'cli-c'), '--freeze', 'visul.'])).toBe(1);
      expect(fs.existsSync(path.join(tmp, 'cli-c', 'checkpoints'))).toBe(false);
    } finally {
      vi.restoreAllMocks();
    }
  }, 300_000);
});
