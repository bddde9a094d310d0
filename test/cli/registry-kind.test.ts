// Adding a model kind is a registry entry and nothing else: this file registers a toy captioner
// (a tiny XProNet-computed report generator with its own preset, flag, recipe and generation
// defaults) and trains, checkpoints, generates and evaluates it through the CLI.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../lib/cli/main.js';
import { synthesize } from '../../lib/data/synth/index.js';
import { Model } from '../../lib/models/model.js';
import { registerModelKind, unregisterModelKind, modelKind, type ModelKind } from '../../lib/models/registry.js';
import { generationEvaluation } from '../../lib/train/evaluate.js';
import { Tokenizer } from '../../lib/text/tokenizer.js';

const created: { flags: Record<string, unknown>; preset: string }[] = [];
const toyConfig = (preset: string) => ({
  dModel: preset === 'wide' ? 48 : 32, heads: 4, dFF: 64, encoderLayers: 1, decoderLayers: 1,
  resnetWidths: [8, 8, 8, 16, 16], resnetBlocks: [1, 1, 1, 1],
  prototypesPerClass: 2, topK: 1, theta: 1.5, alpha: 0.4, lambdaImage: 0, lambdaText: 0, lambdaClass: 0, dropout: 0, labelSource: 'none', seed: 0,
});

const TOY: ModelKind = {
  name: 'toy-captioner',
  summary: 'a toy report generator for the registry test',
  task: 'generation',
  nativeKind: 'xpronet',
  presets: ['tiny', 'wide'],
  configDefaults: toyConfig,
  create: (c) => {
    created.push({ flags: c.flags, preset: c.preset });
    const t = c.tokenizer as Tokenizer;
    const cfg = { ...toyConfig(c.preset), seed: c.seed, dropout: c.flags.dropout as number, vocabSize: t.vocabSize + 1, maxPositions: 128 };
    return Model.create('toy-captioner', cfg, { nativeKind: 'xpronet', generate: TOY.generate });
  },
  recipe: () => ({ lr: 3e-3, visualLrFactor: 1, schedule: { kind: 'step', gamma: 1 }, batchSize: 8, initBatches: 0 }),
  metric: 'rougeL',
  views: () => 1,
  generate: { method: 'greedy', maxLength: 12 },
  evaluate: generationEvaluation,
  trainFlags: { dropout: { type: 'number', min: 0, max: 0.9, default: 0.05, help: 'dropout of the toy' } },
};

let tmp: string;
const logs: string[] = [];
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-toy-kind-'));
  await synthesize({ out: path.join(tmp, 'data'), train: 24, val: 4, test: 4, size: 64, seed: 5, views: 1 });
  registerModelKind(TOY);
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void logs.push(a.join(' ')));
}, 120_000);
afterAll(() => {
  vi.restoreAllMocks();
  unregisterModelKind('toy-captioner');
});

describe('a model kind added through the registry alone', () => {
  it('is refused twice and listed by train --help', async () => {
    expect(() => registerModelKind(TOY)).toThrow(/already registered/);
    expect(modelKind('toy-captioner')).toBe(TOY);
    logs.length = 0;
    expect(await main(['train', '--help'])).toBe(0);
    expect(logs.join('\n')).toMatch(/toy-captioner +a toy report generator.*generation, presets tiny\|wide, metric rougeL/);
    expect(logs.join('\n')).toMatch(/--dropout X +dropout of the toy \(default 0.05\)/);
  });

  it('trains, checkpoints, generates and evaluates through the CLI', async () => {
    const run = path.join(tmp, 'run');
    const data = path.join(tmp, 'data');
    logs.length = 0;
    const code = await main(['train', '--model', 'toy-captioner', '--data', data, '--out', run, '--epochs', '2', '--image-size', '32', '--threshold', '1', '--dropout', '0.1', '--preset', 'wide', '--progress', 'none']);
    expect(code).toBe(0);
    expect(created.at(-1)).toMatchObject({ preset: 'wide', flags: { dropout: 0.1 } });
    const printed = JSON.parse(logs.join('\n'));
    expect(printed.best.metric).toBe('rougeL');
    const meta = JSON.parse(fs.readFileSync(path.join(run, 'checkpoints', 'best', 'checkpoint.json'), 'utf8'));
    expect(meta.kind).toBe('toy-captioner');
    expect(meta.nativeKind).toBe('xpronet');
    expect(meta.config.dModel).toBe(48);
    // The recipe reached the trainer: its learning rate, batch size and the kind's views.
    expect(meta.trainOptions).toMatchObject({ lr: 3e-3, visualLr: 3e-3, batchSize: 8 });
    expect(meta.preprocessing.views).toBe(1);
    const log = fs.readFileSync(path.join(run, 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(log.filter((e) => e.type === 'step')).toHaveLength(6); // 24 studies / 8 x 2 epochs

    const image = path.join(data, 'images', fs.readdirSync(path.join(data, 'images'))[0], '0.png');
    logs.length = 0;
    expect(await main(['generate', '--checkpoint', run, image, '--json'])).toBe(0);
    const gen = JSON.parse(logs.join('\n'));
    expect(gen).toHaveLength(1);
    expect(typeof gen[0].report).toBe('string');
    expect(gen[0].report.split(' ').length).toBeLessThanOrEqual(12); // the kind's maxLength default

    // A flag of another kind is refused for this checkpoint.
    expect(await main(['generate', '--checkpoint', run, image, '--label-source', 'oracle'])).toBe(2);

    const evalDir = path.join(tmp, 'eval');
    expect(await main(['evaluate', '--checkpoint', run, '--data', data, '--out', evalDir])).toBe(0);
    const m = JSON.parse(fs.readFileSync(path.join(evalDir, 'metrics.json'), 'utf8'));
    expect(m.checkpoint.kind).toBe('toy-captioner');
    expect(m.reports).toHaveLength(4);
    expect(m.generate).toMatchObject({ method: 'greedy', maxLength: 12 });
    expect(m.headline.rougeL).toBeGreaterThanOrEqual(0);
  }, 300_000);
});
