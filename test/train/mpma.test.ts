// MPMA end to end at a tiny size: pre-training learns (loss falls, the ramp rises, MLM beats a
// unigram guess, MIM beats the mean patch), its image.* weights start mpma-rg and mpma-probe
// exactly (and only those), and an init from a misfitting run or another kind stops before training.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import * as radkit from '../../lib/index.js';
import { main } from '../../lib/cli/main.js';
import { mpma } from '../../lib/models/mpma.js';
import { mpmaRg } from '../../lib/models/mpma-rg.js';
import { mpmaProbe } from '../../lib/models/mpma-probe.js';
import { pretrainingDiagnostics, writeMpmaPictures } from '../../lib/models/mpma-eval.js';
import { rocAuc } from '../../lib/metrics/auc.js';
import type { TrainOptions } from '../../lib/train/trainer.js';
import { modelWeights } from './run-weights.js';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { writeQuadrants } = require('./quadrants.cjs');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-mpma-'));
const dataDir = path.join(tmp, 'data');
const VIT = { imageSize: 32, patch: 8, vitDim: 32, vitLayers: 1, vitHeads: 2, vitIntermediate: 64 };
const TINY = { ...VIT, maeDim: 16, maeLayers: 1, maeHeads: 2, memorySlots: 2, mlmLayers: 1, mlmHeads: 2, textHidden: 16, textLayers: 1, textHeads: 2, textIntermediate: 32 };
let ds: ReturnType<typeof radkit.data.readR2Gen>;
let tokenizer: radkit.text.Tokenizer;

const weights = modelWeights;
const options = (outDir: string, extra: Partial<TrainOptions> = {}): TrainOptions => ({
  tokenizer, outDir, epochs: 1, batchSize: 16, imageSize: 32, progress: 'none', workers: 0, evaluate: false, initBatches: 0, ...extra,
});
const steps = (dir: string) =>
  fs.readFileSync(path.join(dir, 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.type === 'step');

const pretrained = path.join(tmp, 'pre');

beforeAll(async () => {
  await radkit.data.synthesize({ out: dataDir, train: 64, val: 16, test: 8, size: 32, seed: 4, views: 1 });
  ds = radkit.data.readR2Gen(path.join(dataDir, 'annotation.json'), { labels: path.join(dataDir, 'labels.json') });
  tokenizer = radkit.text.Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: 1 });
}, 120_000);

describe('mpma pre-training', () => {
  it('learns: loss falls, lambda_GLA ramps from exp(-5) to 1, MLM beats the unigram guess, MIM beats the mean patch', async () => {
    const m = mpma({ tokenizer, ...TINY, seed: 1 });
    const before = await pretrainingDiagnostics(m, tokenizer, ds, { split: 'train', preprocessing: { imageSize: 32, views: 1 } });
    const r = await radkit.train(m, ds, options(pretrained, { epochs: 25, lr: 3e-3, visualLr: 3e-3 }));
    expect(r.best).not.toBeNull();
    const log = steps(pretrained);
    expect(log[0].parts.lambdaGLA).toBeCloseTo(Math.exp(-5), 6);
    expect(log[log.length - 1].parts.lambdaGLA).toBe(1);
    for (const k of ['mim', 'mlm', 'global', 'local', 'mlmAccuracy', 'tau1']) expect(log[0].parts[k]).toBeTypeOf('number');
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const first = log.slice(0, 4), last = log.slice(-4);
    expect(mean(last.map((e) => e.parts.mim))).toBeLessThan(mean(first.map((e) => e.parts.mim)));
    expect(mean(last.map((e) => e.parts.mlm))).toBeLessThan(0.9 * mean(first.map((e) => e.parts.mlm)));
    const after = await pretrainingDiagnostics(m, tokenizer, ds, { split: 'train', preprocessing: { imageSize: 32, views: 1 } });
    expect(after.mlmAccuracy).toBeGreaterThan(Math.max(before.mlmAccuracy, after.unigramAccuracy));
    // Words and positions reach the MLM decoder at the scale of the fused image rows (embedding
    // LayerNorm): without it this run stopped at 1.2x the unigram guess (0.186 vs 0.153).
    expect(after.mlmAccuracy).toBeGreaterThan(1.4 * after.unigramAccuracy);
    expect(after.mimMse).toBeLessThan(before.mimMse);
    expect(after.mimMse).toBeLessThan(after.meanPatchMse);
    expect(after.maskedPatches).toBe(64 * 12); // 75% of 16 patches of every image
    // pictures: masked input, reconstruction, attention (data URIs in one page)
    const page = await writeMpmaPictures(m, tokenizer, ds, { split: 'val', preprocessing: { imageSize: 32, views: 1 }, count: 2, file: path.join(tmp, 'pictures.html') });
    expect((fs.readFileSync(page, 'utf8').match(/data:image\/png/g) ?? []).length).toBe(8);
    m.dispose();
  }, 300_000);

  it('evaluates each epoch with the diagnostics and retrieval; refuses to generate', async () => {
    const m = mpma({ tokenizer, ...TINY, seed: 2, ramp: 'constant' });
    const dir = path.join(tmp, 'pre-eval');
    const r = await radkit.train(m, ds, options(dir, { evaluate: {} }));
    const h = r.history[0].metrics!;
    for (const k of ['negValLoss', 'mimMse', 'meanPatchMse', 'meanImageMse', 'mlmAccuracy', 'unigramAccuracy', 'meanRecall', 'i2tR1', 't2iR10']) expect(h[k], k).toBeTypeOf('number');
    expect(r.best!.metric).toBe('negValLoss');
    expect(steps(dir)[0].parts.lambdaGLA).toBe(1);
    const tb = new radkit.TensorBatch({ images: { data: new Float32Array(2 * 32 * 32), shape: [2, 1, 1, 32, 32] } });
    await expect(m.generate(tb)).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED' });
    tb.dispose();
    m.dispose();
  }, 300_000);

  it('rejects bad configurations', () => {
    expect(() => mpma({ tokenizer, ...TINY, fusion: 'sum' })).toThrow(/fusion/);
    expect(() => mpma({ tokenizer, ...TINY, maskRatio: 1 })).toThrow(/maskRatio/);
    expect(() => mpma({ tokenizer, ...TINY, lambdaIl: 5 })).toThrow(/unknown option 'lambdaIl'/);
    expect(() => mpma({ tokenizer, ...TINY, patch: 7 })).toThrow(/multiple/);
  });
});

describe('fine-tuning from mpma', () => {
  it('mpma-rg --init RUN:image. copies exactly the ViT, then trains and generates', async () => {
    const src = weights(mpma({ tokenizer, ...TINY }), ''); // names only (values checked against the run below)
    void src;
    const rg = mpmaRg({ tokenizer, ...VIT, dModel: 32, heads: 2, dFF: 64, encoderLayers: 1, decoderLayers: 1, seed: 3 });
    const dir = path.join(tmp, 'rg');
    const r = await radkit.train(rg, ds, options(dir, { init: `${pretrained}:image.`, epochs: 1 }));
    const ck = await radkit.loadCheckpoint(pretrained);
    const trained = weights(ck.model, 'image.');
    ck.model.dispose();
    expect([...r.init!.copied].sort()).toEqual(Object.keys(trained).sort());
    expect(r.init!.skipped).toEqual([]);
    expect(r.init!.new.every((n) => n.startsWith('transformer.'))).toBe(true);
    // After one epoch the ViT has moved from the copy (it is fine-tuned, not frozen) but started there:
    // check the copy itself through a zero-epoch view: a fresh model initialised the same way.
    const rg2 = mpmaRg({ tokenizer, ...VIT, dModel: 32, heads: 2, dFF: 64, encoderLayers: 1, decoderLayers: 1, seed: 3 });
    const r2 = await radkit.train(rg2, ds, options(path.join(tmp, 'rg-frozen'), { init: `${pretrained}:image.`, freeze: ['image.'] }));
    expect(r2.frozen.length).toBe(Object.keys(trained).length);
    const kept = weights(rg2, 'image.');
    for (const n of Object.keys(trained)) expect(kept[n], n).toEqual(trained[n]);
    const tb = new radkit.TensorBatch({ images: { data: new Float32Array(2 * 32 * 32), shape: [2, 1, 1, 32, 32] } });
    const g = await rg2.generate(tb, { maxLength: 8 });
    expect(g.tokens.length).toBe(2);
    tb.dispose();
    rg.dispose();
    rg2.dispose();
  }, 300_000);

  it("mpma-rg learns under its kind's recipe: the report cross-entropy falls far below a uniform guess", async () => {
    const rg = mpmaRg({ tokenizer, ...VIT, dModel: 32, heads: 2, dFF: 64, encoderLayers: 1, decoderLayers: 1, seed: 4 });
    const dir = path.join(tmp, 'rg-recipe');
    // No rates given: the recipe's. The first recipe (2e-4 / ViT 1e-4, step decay 0.8 per epoch) ended
    // this run at 0.98 ln V; the current one (1e-3 / 5e-4, cosine) at 0.65 ln V.
    await radkit.train(rg, ds, { tokenizer, outDir: dir, epochs: 20, batchSize: 8, imageSize: 32, progress: 'none', workers: 0, evaluate: false });
    const log = steps(dir);
    const uniform = Math.log(tokenizer.vocabSize + 1);
    const last = log.slice(-4).reduce((s, e) => s + e.parts.ce, 0) / 4;
    expect(log[0].parts.ce).toBeGreaterThan(0.9 * uniform);
    expect(last).toBeLessThan(0.75 * uniform);
    rg.dispose();
  }, 300_000);

  it('mpma-rg lambdaClass (not the paper): the auxiliary label loss is added with its weight and falls from ln 2 to the level of the label prior; off by default', async () => {
    const rg = mpmaRg({ tokenizer, ...VIT, dModel: 32, heads: 2, dFF: 64, encoderLayers: 1, decoderLayers: 1, lambdaClass: 5, seed: 4 });
    expect(Object.keys(rg.tensorShapes()).filter((n) => n.startsWith('classifier.')).sort()).toEqual(['classifier.bias', 'classifier.weight']);
    const dir = path.join(tmp, 'rg-class');
    await radkit.train(rg, ds, { tokenizer, outDir: dir, epochs: 30, batchSize: 16, imageSize: 32, progress: 'none', workers: 0, evaluate: false });
    const log = steps(dir);
    // The binary cross-entropy of the best constant guess (each observation's training frequency).
    const rates = radkit.text.CHEXPERT_OBSERVATIONS.map((o) => ds.splits.train.filter((e) => e.labels?.[o] === 'positive').length / ds.splits.train.length);
    const prior = rates.reduce((s, p) => s + (p > 0 && p < 1 ? -(p * Math.log(p) + (1 - p) * Math.log(1 - p)) : 0), 0) / rates.length;
    const last = log.slice(-8).reduce((s, e) => s + e.parts.class, 0) / 8;
    // This tiny run reaches about the prior (0.32 vs 0.32), not below it: the findings are faint at 32 px.
    expect(log[0].parts.class).toBeGreaterThan(0.6);
    expect(last).toBeLessThan(0.5);
    expect(last).toBeLessThan(1.15 * prior);
    expect(log.at(-1)!.loss).toBeCloseTo(log.at(-1)!.parts.ce + 5 * log.at(-1)!.parts.class, 4);
    rg.dispose();
    const plain = mpmaRg({ tokenizer, ...VIT, seed: 4 });
    expect(Object.keys(plain.tensorShapes()).some((n) => n.startsWith('classifier.'))).toBe(false);
    plain.dispose();
  }, 300_000);

  it('an init that does not fit (other sizes, another kind) is an error listing the misfits; nothing is trained', async () => {
    const rg = mpmaRg({ tokenizer, ...VIT, vitDim: 48, vitHeads: 2, vitIntermediate: 64, dModel: 32, heads: 2, dFF: 64, encoderLayers: 1, decoderLayers: 1 });
    const before = weights(rg, '');
    const dir = path.join(tmp, 'rg-misfit');
    await expect(radkit.train(rg, ds, options(dir, { init: `${pretrained}:image.` }))).rejects.toMatchObject({
      code: 'ERR_CHECKPOINT',
      message: expect.stringMatching(/do not fit this mpma-rg model; nothing was copied:\n {2}image\.\S+: shape \[\d+(, \d+)*\] does not fit \[\d+(, \d+)*\]/),
    });
    expect(weights(rg, '')).toEqual(before);
    expect(fs.existsSync(path.join(dir, 'checkpoints'))).toBe(false);
    // The whole pre-training run into a generator: its MAE, MLM and GLA tensors have no slot.
    await expect(radkit.train(rg, ds, options(path.join(tmp, 'rg-kind'), { init: pretrained }))).rejects.toMatchObject({
      code: 'ERR_CHECKPOINT',
      message: expect.stringMatching(/\(mpma\) do not fit this mpma-rg model[\s\S]*mae\.\S+: no tensor of that name in this mpma-rg model/),
    });
    expect(fs.existsSync(path.join(tmp, 'rg-kind', 'checkpoints'))).toBe(false);
    rg.dispose();
  }, 300_000);

  it('mpma-probe trains a linear layer on the frozen ViT and reports AUC per observation', async () => {
    const probe = mpmaProbe({ ...VIT, seed: 5 });
    const dir = path.join(tmp, 'probe');
    const r = await radkit.train(probe, ds, options(dir, { init: `${pretrained}:image.`, epochs: 2, evaluate: {} }));
    const ck = await radkit.loadCheckpoint(pretrained);
    const trained = weights(ck.model, 'image.');
    ck.model.dispose();
    const after = weights(probe, 'image.');
    for (const n of Object.keys(trained)) expect(after[n], n).toEqual(trained[n]); // no gradient reaches the encoder
    const h = r.history[1].metrics!;
    expect(h.auc).toBeGreaterThan(0);
    expect(h.auc).toBeLessThanOrEqual(1);
    expect(r.best!.metric).toBe('auc');
    probe.dispose();
  }, 300_000);

  it('mpma-probe pools the frozen tokens as configured: mean, cls, concat = [mean; cls], patches = every patch token', async () => {
    const loader = new radkit.data.DataLoader(ds, { split: 'test', batchSize: 4, imageSize: 32, views: 1, tokenizer, shuffle: false, workers: 0 });
    const it0 = loader[Symbol.asyncIterator]();
    const batch = (await it0.next()).value!;
    await it0.return?.(undefined);
    const tb = new radkit.TensorBatch(batch);
    const features: Record<string, { data: Float32Array; shape: number[] }> = {};
    for (const pool of ['mean', 'cls', 'concat', 'patches']) {
      const m = mpmaProbe({ ...VIT, probePool: pool, seed: 5 }); // the same seed: the same ViT
      const enc = await m.encode(tb);
      features[pool] = { data: enc.features.toArray() as Float32Array, shape: enc.features.shape };
      expect(enc.probabilities.shape).toEqual([4, 14]);
      Object.values(enc).forEach((t) => t.dispose());
      m.dispose();
    }
    tb.dispose();
    const D = VIT.vitDim, Np = (VIT.imageSize / VIT.patch) ** 2;
    expect(features.mean.shape).toEqual([4, D]);
    expect(features.cls.shape).toEqual([4, D]);
    expect(features.concat.shape).toEqual([4, 2 * D]);
    expect(features.patches.shape).toEqual([4, Np * D]);
    for (let b = 0; b < 4; b++)
      for (let d = 0; d < D; d++) {
        let sum = 0;
        for (let i = 0; i < Np; i++) sum += features.patches.data[b * Np * D + i * D + d];
        expect(features.mean.data[b * D + d]).toBeCloseTo(sum / Np, 5);
        expect(features.concat.data[b * 2 * D + d]).toBeCloseTo(features.mean.data[b * D + d], 6);
        expect(features.concat.data[b * 2 * D + D + d]).toBeCloseTo(features.cls.data[b * D + d], 6);
      }
    expect(() => mpmaProbe({ ...VIT, probePool: 'max' })).toThrow(/probePool/);
  }, 60_000);
});

describe("the MPMA ViT's input and positions", () => {
  // radkit's loader gives grey in [0, 1]. The patch projection has no bias (CLIP) and a LayerNorm
  // follows it (pre_layrnorm, and every block's), so on uncentred pixels a flat patch of brightness
  // c > 0 became c W 1 and then LN(W 1) whatever c: a bright square on a dark field was invisible
  // to mpma-rg (bench/mpma-controlled.ts: the generator wrote one report for every image). The
  // presets centre the pixels (CLIP's grey mean and std).
  const flat = (value: number) => new radkit.TensorBatch({ images: { data: new Float32Array(32 * 32).fill(value), shape: [1, 1, 1, 32, 32] } });
  const tokens = async (config: Record<string, unknown>, value: number) => {
    const m = mpmaProbe({ ...VIT, probePool: 'patches', seed: 6, ...config });
    const tb = flat(value);
    const enc = await m.encode(tb);
    const f = Float64Array.from(enc.features.toArray() as Float32Array);
    Object.values(enc).forEach((t) => t.dispose());
    tb.dispose();
    m.dispose();
    return f;
  };
  const relativeDistance = (a: Float64Array, b: Float64Array) => {
    let d = 0, n = 0;
    for (let i = 0; i < a.length; i++) (d += (a[i] - b[i]) ** 2), (n += a[i] ** 2);
    return Math.sqrt(d / n);
  };

  it('a dark and a bright flat image give different patch tokens under the presets; uncentred pixels (the old default) give nearly the same', async () => {
    const plain = mpmaProbe({ ...VIT });
    const cfg = plain.config as Record<string, unknown>;
    plain.dispose();
    expect(cfg.vitPixelMean).toBeCloseTo(0.449, 3);
    expect(cfg.vitPixelStd).toBeCloseTo(0.269, 3);
    const centred = relativeDistance(await tokens({}, 0.2), await tokens({}, 0.8));
    const old = { vitPixelMean: 0, vitPixelStd: 1, vitPositionInit: 'normal' };
    const uncentred = relativeDistance(await tokens(old, 0.2), await tokens(old, 0.8));
    expect(uncentred).toBeLessThan(0.1);
    expect(centred).toBeGreaterThan(0.5);
    expect(() => mpmaProbe({ ...VIT, vitPixelStd: 0 })).toThrow(/vitPixelStd/);
  }, 60_000);

  it("the presets start the positions at MAE's 2D sin-cos table (float64 reference); 'normal' is N(0, 0.02)", () => {
    const side = VIT.imageSize / VIT.patch, D = VIT.vitDim, q = D / 4;
    const m = mpmaProbe({ ...VIT, seed: 8 });
    const pos = modelWeights(m, 'image.embeddings.position_embedding.')['image.embeddings.position_embedding.weight'];
    m.dispose();
    expect(pos.length).toBe((1 + side * side) * D);
    for (let d = 0; d < D; d++) expect(pos[d]).toBe(0); // the class token's row
    for (let k = 0; k < side * side; k++) {
      const col = k % side, row = Math.floor(k / side);
      for (let i = 0; i < q; i++) {
        const w = Math.pow(10000, -i / q), at = (j: number) => pos[(1 + k) * D + j];
        expect(at(i)).toBeCloseTo(Math.sin(col * w), 6);
        expect(at(q + i)).toBeCloseTo(Math.cos(col * w), 6);
        expect(at(2 * q + i)).toBeCloseTo(Math.sin(row * w), 6);
        expect(at(3 * q + i)).toBeCloseTo(Math.cos(row * w), 6);
      }
    }
    const n = mpmaProbe({ ...VIT, vitPositionInit: 'normal', seed: 8 });
    const small = modelWeights(n, 'image.embeddings.position_embedding.')['image.embeddings.position_embedding.weight'];
    n.dispose();
    const rms = Math.sqrt(small.reduce((s, x) => s + x * x, 0) / small.length);
    expect(rms).toBeGreaterThan(0.01);
    expect(rms).toBeLessThan(0.03);
    expect(() => mpmaProbe({ ...VIT, vitPositionInit: 'fourier' })).toThrow(/positionInit/);
  });
});

describe('mpma-rg reads its source', () => {
  // A report that is a function of something plainly visible: a bright square in one quadrant, the
  // report naming its size, side and zone (8 reports). Before the fixes mpma-rg wrote one report for
  // every image here (bench/mpma-controlled.ts: uncentred pixels hid the square; with centred pixels
  // alone it read the size but rarely where: the ViT's learned positions started at N(0, 0.02)
  // beside unit-scale patch tokens; the presets now start them at MAE's 2D sin-cos table).
  // Teacher-forced cross-entropy of the test reports with their own images, mirrored left-right (only
  // the side word changes meaning) and flipped top-bottom (only the zone word does).
  const flipLosses = async (config: Record<string, unknown>) => {
    const dir = path.join(tmp, 'quadrants');
    if (!fs.existsSync(path.join(dir, 'annotation.json'))) writeQuadrants(dir, { train: 192, val: 8, test: 32 }, 5, 48);
    const qds = radkit.data.readR2Gen(path.join(dir, 'annotation.json'), {});
    const qtok = radkit.text.Tokenizer.build(qds.splits.train.map((e) => e.report), { threshold: 1 });
    const rg = mpmaRg({ tokenizer: qtok, imageSize: 48, patch: 8, vitDim: 64, vitLayers: 1, vitHeads: 4, vitIntermediate: 128, dModel: 64, heads: 4, dFF: 128, encoderLayers: 1, decoderLayers: 1, seed: 7, ...config });
    await radkit.train(rg, qds, { tokenizer: qtok, outDir: fs.mkdtempSync(path.join(tmp, 'rg-quadrants-')), epochs: 20, lr: 2e-3, visualLr: 1e-3, batchSize: 16, imageSize: 48, views: 1, progress: 'none', workers: 0, evaluate: false });
    const loader = new radkit.data.DataLoader(qds, { split: 'test', batchSize: 32, imageSize: 48, views: 1, tokenizer: qtok, shuffle: false, workers: 0 });
    const it0 = loader[Symbol.asyncIterator]();
    const batch = (await it0.next()).value!;
    await it0.return?.(undefined);
    const S = 48, data = batch.images!.data as Float32Array, B = data.length / (S * S);
    const mirrored = new Float32Array(data.length), flipped = new Float32Array(data.length);
    for (let b = 0; b < B; b++)
      for (let y = 0; y < S; y++)
        for (let x = 0; x < S; x++) {
          mirrored[b * S * S + y * S + x] = data[b * S * S + y * S + (S - 1 - x)];
          flipped[b * S * S + y * S + x] = data[b * S * S + (S - 1 - y) * S + x];
        }
    const ce: Record<string, number> = {};
    for (const [name, images] of [['own', data], ['mirrored', mirrored], ['flipped', flipped]] as const) {
      const tb = new radkit.TensorBatch({ ...batch, images: { ...batch.images!, data: images } });
      ce[name] = (await rg.evalLoss(tb)).parts.ce;
      tb.dispose();
    }
    rg.dispose();
    return ce;
  };

  it('from scratch, its reports depend on where the square is: mirrored and flipped images raise the cross-entropy', async () => {
    // Measured: own 0.029, mirrored 0.401, flipped 0.555. With the old ViT input (vitPixelMean 0,
    // vitPixelStd 1, vitPositionInit 'normal') the same run gave 0.2382 for all three.
    const fixed = await flipLosses({});
    expect(fixed.mirrored).toBeGreaterThan(fixed.own + 0.1);
    expect(fixed.flipped).toBeGreaterThan(fixed.own + 0.1);
  }, 300_000);
});

describe('radkit train --model mpma / mpma-rg --init (CLI)', () => {
  it('pre-trains, fine-tunes from image., and stops on a misfit with exit 1', async () => {
    const common = ['--data', dataDir, '--epochs', '1', '--image-size', '32', '--threshold', '1', '--progress', 'none', '--batch-size', '8'];
    const logs: string[] = [];
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void logs.push(a.join(' ')));
    try {
      const pre = path.join(tmp, 'cli-pre');
      expect(await main(['train', '--model', 'mpma', ...common, '--out', pre, '--lambda-gl', '5', '--memory-slots', '0'])).toBe(0);
      const meta = JSON.parse(fs.readFileSync(path.join(pre, 'checkpoints', 'last', 'checkpoint.json'), 'utf8'));
      expect(meta.config.lambdaGl).toBe(5);
      expect(meta.config.memorySlots).toBe(0);
      const rg = path.join(tmp, 'cli-rg');
      expect(await main(['train', '--model', 'mpma-rg', ...common, '--out', rg, '--init', `${pre}:image.`])).toBe(0);
      const report = JSON.parse(fs.readFileSync(path.join(rg, 'init.json'), 'utf8'));
      expect(report.kind).toBe('mpma');
      expect(report.copied.every((n: string) => n.startsWith('image.'))).toBe(true);
      const bad = path.join(tmp, 'cli-bad');
      expect(await main(['train', '--model', 'mpma-rg', ...common.map((a) => (a === '32' ? '48' : a)), '--out', bad, '--init', `${pre}:image.`])).toBe(1);
      expect(logs.join('\n')).toMatch(/image\.embeddings\.position_embedding\.weight: shape \[5, 192\] does not fit \[10, 192\]/);
      expect(fs.existsSync(path.join(bad, 'checkpoints'))).toBe(false);
    } finally {
      vi.restoreAllMocks();
    }
  }, 300_000);
});

describe('rocAuc', () => {
  it('matches the Mann-Whitney statistic with mid-ranks', () => {
    expect(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBeCloseTo(0.75, 12);
    expect(rocAuc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1])).toBeCloseTo(0.5, 12);
    expect(rocAuc([1, 2, 3], [1, 1, 1])).toBeNaN();
    expect(rocAuc([3, 2, 1], [1, 0, 0])).toBe(1);
  });
});
