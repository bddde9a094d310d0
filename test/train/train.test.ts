import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';

const script = path.join(__dirname, 'train-script.cjs');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-train-'));
const dataDir = path.join(tmp, 'data');

function logOf(outDir: string) {
  return fs.readFileSync(path.join(outDir, 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
}

beforeAll(async () => {
  await radkit.data.synthesize({ out: dataDir, train: 48, val: 8, test: 8, size: 64, seed: 5 });
}, 120_000);

describe('training orchestration (tiny XProNet on SynthCXR)', () => {
  it('trains, lowers the loss, checkpoints every epoch and keeps the best', () => {
    const out = path.join(tmp, 'run-a');
    const r = spawnSync(process.execPath, [script, dataDir, out, '3'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout.trim().split('\n').pop()!).result;
    expect(result.history).toHaveLength(3);
    expect(result.history[2].trainLoss).toBeLessThan(result.history[0].trainLoss);
    expect(result.history[0].metrics.bleu4).toBeGreaterThanOrEqual(0);
    const meta = JSON.parse(fs.readFileSync(path.join(out, 'checkpoints/last/checkpoint.json'), 'utf8'));
    expect(meta.epoch).toBe(3);
    expect(meta.kind).toBe('xpronet');
    expect(meta.tokenizer.format).toBe('radkit-tokenizer');
    expect(meta.preprocessing).toEqual({ imageSize: 64, views: 2, fit: 'stretch', filter: 'lanczos3' });
    for (const f of ['weights.pt', 'optimizer.pt']) expect(fs.existsSync(path.join(out, 'checkpoints/last', f))).toBe(true);
    expect(fs.existsSync(path.join(out, 'checkpoints/best/weights.pt'))).toBe(true);
    const log = logOf(out);
    expect(log.filter((e) => e.type === 'step').length).toBe(3 * 6);
  }, 600_000);

  it('resumes after kill -9 from the last completed epoch', async () => {
    const out = path.join(tmp, 'run-b');
    const child = spawn(process.execPath, [script, dataDir, out, '3'], { stdio: 'ignore' });
    const ckpt = path.join(out, 'checkpoints/last/checkpoint.json');
    await new Promise<void>((resolve, reject) => {
      const t = setInterval(() => {
        if (fs.existsSync(ckpt)) {
          clearInterval(t);
          child.kill('SIGKILL');
          resolve();
        }
      }, 50);
      child.on('exit', () => {
        clearInterval(t);
        reject(new Error('the child finished before it could be killed'));
      });
    });
    await new Promise((r) => child.on('exit', r));
    const killedAt = JSON.parse(fs.readFileSync(ckpt, 'utf8')).epoch;
    expect(killedAt).toBeGreaterThanOrEqual(1);
    expect(killedAt).toBeLessThan(3);
    const r = spawnSync(process.execPath, [script, dataDir, out, '3'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const starts = logOf(out).filter((e) => e.type === 'start');
    expect(starts.at(-1).startEpoch).toBe(killedAt);
    const result = JSON.parse(r.stdout.trim().split('\n').pop()!).result;
    expect(result.history.map((h: { epoch: number }) => h.epoch)).toEqual([0, 1, 2]);
    expect(JSON.parse(fs.readFileSync(ckpt, 'utf8')).epoch).toBe(3);
  }, 600_000);

  it('refuses to resume a run into another tokenizer (mismatched weights), with a clear error', async () => {
    const ds = radkit.data.readR2Gen(path.join(dataDir, 'annotation.json'), { labels: path.join(dataDir, 'labels.json') });
    const tokenizer = radkit.text.Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: 3 }); // run-a used 1
    const model = radkit.xpronet({ tokenizer, preset: 'small', dModel: 64, heads: 4, dFF: 128, encoderLayers: 1, decoderLayers: 1, resnetWidths: [8, 8, 16, 16, 32], resnetBlocks: [1, 1, 1, 1], prototypesPerClass: 4, topK: 4, seed: 1 });
    try {
      await expect(radkit.train(model, ds, { tokenizer, outDir: path.join(tmp, 'run-a'), epochs: 4, batchSize: 8, imageSize: 64, progress: 'none', workers: 1 })).rejects.toMatchObject({
        code: 'ERR_CHECKPOINT',
        message: expect.stringMatching(/another xpronet configuration or tokenizer/),
      });
    } finally {
      model.dispose();
    }
  }, 120_000);

  it('a checkpoint loads on its own and generates for new images', async () => {
    const ck = await radkit.loadCheckpoint(path.join(tmp, 'run-a'));
    expect(ck.meta.kind).toBe('xpronet');
    const ds = radkit.data.readR2Gen(path.join(dataDir, 'annotation.json'), { labels: path.join(dataDir, 'labels.json') });
    const reports = await radkit.generateSplit(ck.model, ck.tokenizer, ds, { split: 'test', preprocessing: ck.meta.preprocessing, generate: { beams: 2, maxLength: 30, systemOptions: { labelSource: 'predicted' } } });
    expect(reports).toHaveLength(8);
    for (const r of reports) {
      expect(typeof r.hypothesis).toBe('string');
      expect((r.extras.wordPrototypes as { shape: number[] }).shape.at(-1)).toBe(4);
    }
    ck.model.dispose();
  }, 300_000);
});
