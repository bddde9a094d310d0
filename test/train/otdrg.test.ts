// OTDRG end to end at a tiny size: ircp's eq. 2 and diseasenet's focal loss learn (diseasenet beats
// the majority state), otdrg pre-trains its LM on the reports and then trains only the LoRA
// adapters and projections (base, encoder and predictor untouched), its OT gradient matches finite
// differences of the entropic objective at the system level, the LM input holds the prompt and
// the label strings, generation reads predicted or oracle states, the staged chain
// ircp -> diseasenet -> otdrg runs through the CLI, and `--lm DIR` loads a tiny Hugging Face LLaMA
// written here (with clear errors before training for a tokenizer or LoRA targets that do not fit).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import * as radkit from '../../lib/index.js';
import { main } from '../../lib/cli/main.js';
import { ircp, ircpEvaluation } from '../../lib/models/ircp.js';
import { diseasenet, diseasenetEvaluation, majorityStates, stateScores } from '../../lib/models/diseasenet.js';
import { otdrg, otdrgConfig, otdrgEvaluation, otdrgTokenizer } from '../../lib/models/otdrg.js';
import { allLabelStrings, OTDRG_PROMPT } from '../../lib/models/otdrg-common.js';
import { TensorBatch } from '../../lib/models/model.js';
import type { TrainOptions } from '../../lib/train/trainer.js';
import { llamaTokenizer } from '../unit/hf-tokenizer-fixtures.js';
import { roundBF16 } from '../native/causal-lm-reference.js';
import { modelWeights, tensorAsFloat32, weightsOf } from './run-weights.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-otdrg-'));
const dataDir = path.join(tmp, 'data');
const SIZE = 64; // 2 x 2 patches per view with the ResNet's stride 32
let ds: ReturnType<typeof radkit.data.readR2Gen>;
let tokenizer: radkit.text.Tokenizer;
const pre = { imageSize: SIZE, views: 1 };

const options = (outDir: string, extra: Partial<TrainOptions> = {}): TrainOptions => ({
  tokenizer, outDir, epochs: 1, batchSize: 16, imageSize: SIZE, progress: 'none', workers: 0, evaluate: false, initBatches: 0, ...extra,
});
const steps = (dir: string) =>
  fs.readFileSync(path.join(dir, 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.type === 'step');
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
/** The first `batchSize` training studies, in order, as one frontal-view batch. */
const firstTrainBatch = async (batchSize: number) => {
  const loader = new radkit.data.DataLoader(ds, { split: 'train', batchSize, imageSize: SIZE, views: 1, tokenizer, shuffle: false, workers: 0 });
  for await (const b of loader) return b;
  throw new Error('the test set has no training batch');
};

beforeAll(async () => {
  await radkit.data.synthesize({ out: dataDir, train: 48, val: 8, test: 8, size: SIZE, seed: 7, views: 1 });
  ds = radkit.data.readR2Gen(path.join(dataDir, 'annotation.json'), { labels: path.join(dataDir, 'labels.json') });
  tokenizer = otdrgTokenizer(ds, { threshold: 1 }) as radkit.text.Tokenizer;
}, 120_000);

describe('ircp and diseasenet', () => {
  it('ircp: the eq. 2 loss falls; features keep a spread', async () => {
    const m = ircp({ preset: 'tiny', seed: 1 });
    try {
      const dir = path.join(tmp, 'ircp-learn');
      await radkit.train(m, ds, options(dir, { epochs: 8, lr: 3e-3, visualLr: 3e-3 }));
      const log = steps(dir).map((e) => e.parts.infonce);
      expect(mean(log.slice(-3))).toBeLessThan(mean(log.slice(0, 3)) - 0.05);
      const ev = await ircpEvaluation(m, tokenizer, ds, { split: 'val', preprocessing: pre });
      expect(ev.headline.featureSpread).toBeGreaterThan(0);
      expect(ev.headline.negValLoss).toBeCloseTo(-ev.headline.valLoss, 12);
    } finally {
      m.dispose();
    }
  });

  it('diseasenet: focal loss falls and the predictor beats the majority state on what it learned', async () => {
    const m = diseasenet({ preset: 'tiny', seed: 2, gamma: 2 });
    try {
      const dir = path.join(tmp, 'dn-learn');
      await radkit.train(m, ds, options(dir, { epochs: 25, lr: 5e-3, visualLr: 5e-3 }));
      const log = steps(dir).map((e) => e.parts.focal);
      expect(mean(log.slice(-3))).toBeLessThan(0.7 * mean(log.slice(0, 3)));
      const ev = await diseasenetEvaluation(m, tokenizer, ds, { split: 'train', preprocessing: pre });
      expect(ev.headline.accuracy).toBeGreaterThan(ev.headline.majorityAccuracy);
      expect(ev.headline.macroF1).toBeGreaterThan(ev.headline.majorityMacroF1);
    } finally {
      m.dispose();
    }
  }, 120_000);

  it('diseasenet: the head pools its per-patch logits by the mean (stateLseR 0) or log-sum-exp, as a float64 composite', async () => {
    const batch = await firstTrainBatch(3);
    const tb = new TensorBatch({ images: batch.images });
    const probs: Float32Array[] = [];
    try {
      for (const r of [0, 0.5, 8]) {
        const m = diseasenet({ preset: 'tiny', seed: 3, stateLseR: r }); // same seed: the same weights for every r
        try {
          const enc = await m.encode(tb);
          const z = enc.patchLogits.toArray() as Float32Array, p = enc.probabilities.toArray() as Float32Array;
          const [B, Np] = enc.patchLogits.shape;
          expect(enc.patchLogits.shape).toEqual([3, Np, 14, 4]);
          for (let b = 0; b < B; b++)
            for (let o = 0; o < 14; o++) {
              const pooled = [0, 1, 2, 3].map((s) => {
                const xs = Array.from({ length: Np }, (_, q) => z[((b * Np + q) * 14 + o) * 4 + s]);
                if (r === 0) return xs.reduce((a, x) => a + x, 0) / Np;
                const top = Math.max(...xs.map((x) => r * x));
                return (top + Math.log(xs.reduce((a, x) => a + Math.exp(r * x - top), 0) / Np)) / r;
              });
              const top = Math.max(...pooled), e = pooled.map((x) => Math.exp(x - top)), sum = e.reduce((a, x) => a + x, 0);
              for (let s = 0; s < 4; s++) expect(p[(b * 14 + o) * 4 + s]).toBeCloseTo(e[s] / sum, 5);
            }
          probs.push(p);
          Object.values(enc).forEach((t) => t.dispose());
        } finally {
          m.dispose();
        }
      }
      // the pooling changes what the same weights predict
      expect(Math.max(...probs[2].map((x, i) => Math.abs(x - probs[0][i])))).toBeGreaterThan(1e-3);
    } finally {
      tb.dispose();
    }
    expect(() => diseasenet({ preset: 'tiny', stateLseR: -1 })).toThrow(/stateLseR must be a finite number >= 0/);
  });

  it('state scores and the majority baseline by hand', () => {
    // observation 0 of 3 studies: truth 1, 1, 2; predicted 1, 2, 2 -> accuracy 2/3, F1(1) = 2/3, F1(2) = 2/3
    const truth = new Array(42).fill(0), pred = new Array(42).fill(0);
    [truth[0], truth[14], truth[28]] = [1, 1, 2];
    [pred[0], pred[14], pred[28]] = [1, 2, 2];
    const s = stateScores(pred, truth);
    expect(s.perObservation['No Finding'].accuracy).toBeCloseTo(2 / 3, 12);
    expect(s.perObservation['No Finding'].macroF1).toBeCloseTo(2 / 3, 12);
    expect(s.perObservation.Cardiomegaly).toEqual({ accuracy: 1, macroF1: 1 });
    const maj = majorityStates(ds);
    expect(maj).toHaveLength(14);
    for (const v of maj) expect([0, 1, 2, 3]).toContain(v);
  });
});

describe('otdrg', () => {
  it('builds the LM input from the prompt and the 14 x 4 "observation: state" strings', () => {
    const cfg = otdrgConfig({ tokenizer, preset: 'tiny' });
    const words = (text: string) => tokenizer.decode(tokenizer.encode(text).slice(1, -1)); // without BOS / EOS (id 0 ends decoding)
    expect(tokenizer.decode(cfg.promptIds as number[])).toBe(words(OTDRG_PROMPT));
    expect(tokenizer.decode(cfg.promptIds as number[])).toMatch(/^generate a comprehensive diagnosis report/);
    const L = cfg.labelTokenLength as number, ids = cfg.labelTokenIds as number[];
    expect(ids).toHaveLength(56 * L);
    const strings = allLabelStrings();
    expect(strings[4 * 2 + 1]).toBe('cardiomegaly: positive');
    for (let i = 0; i < 56; i++) expect(tokenizer.decode(ids.slice(i * L, (i + 1) * L).filter((x) => x >= 0))).toBe(words(strings[i]));
    // no word of the prompt or the labels is unknown to the tokenizer
    for (const id of [...(cfg.promptIds as number[]), ...ids.filter((x) => x >= 0)]) expect(tokenizer.decode([id])).not.toBe('<unk>');
    expect(() => otdrg({ tokenizer, preset: 'tiny', bogus: 1 })).toThrow(/unknown option 'bogus'/);
    expect(() => otdrg({ tokenizer, preset: 'tiny', costScale: 'log' })).toThrow(/costScale must be 'mean', 'ratio' or 'raw'/);
    expect(() => otdrg({ tokenizer, preset: 'tiny', lmPretrainInput: 'prompt' })).toThrow(/lmPretrainInput must be 'reports' or 'labelled'/);
    expect(() => otdrg({ tokenizer, preset: 'tiny', loraTargets: 'q_proj,query' })).toThrow(/no module named 'query'.*q_proj/);
  });

  it('pre-trains the LM on the reports, then trains only LoRA and the projections; the report loss falls', async () => {
    const m = otdrg({ tokenizer, preset: 'tiny', seed: 3, lmPretrainFraction: 0.5 });
    try {
      const before = modelWeights(m);
      const dir = path.join(tmp, 'otdrg-phases');
      await radkit.train(m, ds, options(dir, { epochs: 4, lr: 3e-3, visualLr: 1e-4, clipNorm: 1 }));
      const log = steps(dir);
      const phase1 = log.filter((e) => 'lm' in e.parts), phase2 = log.filter((e) => 'rg' in e.parts);
      expect(phase1.length).toBe(6); // half of 12 steps
      expect(phase2.length).toBe(6);
      expect(mean(phase1.slice(-2).map((e) => e.parts.lm))).toBeLessThan(mean(phase1.slice(0, 2).map((e) => e.parts.lm)));
      expect(mean(phase2.slice(-2).map((e) => e.parts.rg))).toBeLessThan(mean(phase2.slice(0, 2).map((e) => e.parts.rg)));
      for (const e of phase2) expect(e.parts.ot).toBeGreaterThan(0);
      const after = modelWeights(m);
      const changed = (prefix: string, pred: (n: string) => boolean = () => true) =>
        Object.keys(before).filter((n) => n.startsWith(prefix) && pred(n)).some((n) => before[n].some((v, i) => v !== after[n][i]));
      expect(changed('encoder.')).toBe(false);
      expect(changed('classifier.')).toBe(false);
      expect(changed('imageProjection.')).toBe(true);
      expect(changed('labelProjection.')).toBe(true);
      expect(changed('lm.', (n) => n.includes('lora_B'))).toBe(true);
      expect(changed('lm.', (n) => !n.includes('lora_'))).toBe(true); // the pre-training phase
    } finally {
      m.dispose();
    }
  }, 120_000);

  it('leaves the LM base exactly as loaded when there is no pre-training phase', async () => {
    const m = otdrg({ tokenizer, preset: 'tiny', seed: 4, lmPretrainFraction: 0 });
    try {
      const before = modelWeights(m);
      await radkit.train(m, ds, options(path.join(tmp, 'otdrg-lora'), { epochs: 1, lr: 3e-3 }));
      const after = modelWeights(m);
      const base = Object.keys(before).filter((n) => n.startsWith('lm.') && !n.includes('lora_'));
      expect(base.length).toBeGreaterThan(5);
      for (const n of base) expect(after[n]).toEqual(before[n]);
      expect(Object.keys(before).filter((n) => n.includes('lora_B')).some((n) => before[n].some((v, i) => v !== after[n][i]))).toBe(true);
    } finally {
      m.dispose();
    }
  }, 60_000);

  it('the OT gradient through ops.sinkhorn matches central differences of the entropic objective (system level)', async () => {
    // Prefixes off: the projections reach the loss through L_OT only. Raw cost (the mean scale is
    // detached by design), many iterations (the envelope gradient holds at convergence).
    const cfg = { tokenizer, preset: 'tiny' as const, seed: 5, lmPretrainFraction: 0, imagePrefix: 0, labelPrefix: 0, costScale: 'raw', iterations: 2000, epsilon: 0.5, lambda: 1 };
    const first = await firstTrainBatch(6);
    const batch = new TensorBatch(first);
    const name = 'labelProjection.bias';
    const probe = otdrg(cfg);
    const theta0 = Array.from(probe.namedTensors()[name].toArray() as Float32Array);
    const objective = async (theta: number[]) => {
      probe.loadTensors('', { [name]: radkit.Tensor.from(Float32Array.from(theta), [theta.length]) });
      return (await probe.evalLoss(batch)).parts.otObjective;
    };
    // Analytic: one Adam step with eps >> |g| and lr = eps moves theta by -g (1 - |g|/eps).
    const m = otdrg(cfg);
    try {
      m.setupOptimizer({ kind: 'adam', lr: 1e8, eps: 1e8, weightDecay: 0 });
      await m.trainStep(batch, { clipNorm: 0 });
      const theta1 = Array.from(m.namedTensors()[name].toArray() as Float32Array);
      const analytic = theta0.map((v, i) => v - theta1[i]);
      const h = 1e-2;
      let compared = 0;
      for (const i of [0, 1, 2, 3]) {
        const up = [...theta0], down = [...theta0];
        up[i] += h;
        down[i] -= h;
        const fd = ((await objective(up)) - (await objective(down))) / (2 * h);
        expect(Math.abs(analytic[i] - fd)).toBeLessThan(0.03 * Math.abs(fd) + 2e-4);
        if (Math.abs(fd) > 1e-3) compared++;
      }
      expect(compared).toBeGreaterThan(1); // not a comparison of zeros
    } finally {
      m.dispose();
      probe.dispose();
      batch.dispose();
    }
  }, 60_000);

  it("costScale 'ratio' puts the normaliser in the gradient: scaling both projections together leaves L_OT unchanged ('mean': it lowers L_OT at rate L_OT)", async () => {
    // Prefixes off: the projections reach the loss through L_OT only. Scaling every weight and bias
    // of both projections by s scales every distance by s, so d/ds L_OT(s theta) at s = 1 is
    // sum(g * theta) over their parameters: <T*, C> / m with the mean m detached, 0 with the ratio.
    const first = await firstTrainBatch(6);
    const batch = new TensorBatch(first);
    const names = ['imageProjection.weight', 'imageProjection.bias', 'labelProjection.weight', 'labelProjection.bias'];
    const scaleDerivative = async (costScale: string) => {
      // epsilon 0.01: a plan far from uniform (at the uniform plan the ratio is 1 whatever theta)
      const m = otdrg({ tokenizer, preset: 'tiny', seed: 6, lmPretrainFraction: 0, imagePrefix: 0, labelPrefix: 0, costScale, lambda: 1, epsilon: 0.01 });
      try {
        const theta0 = names.map((n) => Float64Array.from(m.namedTensors()[n].toArray() as Float32Array));
        const ot = (await m.evalLoss(batch)).parts.ot;
        // One Adam step with eps >> |g| and lr = eps moves theta by -g (1 - |g|/eps).
        m.setupOptimizer({ kind: 'adam', lr: 1e8, eps: 1e8, weightDecay: 0 });
        await m.trainStep(batch, { clipNorm: 0 });
        const theta1 = names.map((n) => m.namedTensors()[n].toArray() as Float32Array);
        let d = 0, g2 = 0, t2 = 0;
        theta0.forEach((t, j) => t.forEach((v, i) => {
          d += (v - theta1[j][i]) * v;
          g2 += (v - theta1[j][i]) ** 2;
          t2 += v * v;
        }));
        return { d, ot, g: Math.sqrt(g2), cosine: d / Math.sqrt(g2 * t2) };
      } finally {
        m.dispose();
      }
    };
    try {
      const detached = await scaleDerivative('mean'), ratio = await scaleDerivative('ratio');
      expect(detached.ot).toBeGreaterThan(0.5); // the scaled cost's <T*, C> is about 1
      expect(ratio.ot).toBeCloseTo(detached.ot, 5); // the same forward value
      expect(Math.abs(detached.d - detached.ot)).toBeLessThan(0.01 * detached.ot);
      // the ratio still has a gradient (contrast; small near the uniform plan: here 0.6% of the
      // detached mean's) ...
      expect(ratio.g).toBeGreaterThan(1e-3 * detached.g);
      expect(Math.abs(ratio.cosine)).toBeLessThan(1e-3); // ... orthogonal to the common scale
      expect(detached.cosine).toBeGreaterThan(0.1);
      expect(otdrgConfig({ tokenizer, preset: 'tiny' }).costScale).toBe('ratio');
    } finally {
      batch.dispose();
    }
  }, 60_000);

  it('label features at unit RMS make the cost vary along the labels and the plan leave the uniform one (raw scale: nearly constant)', async () => {
    const first = await firstTrainBatch(8);
    const batch = new TensorBatch(first);
    // Per patch: sd of the cost over the 14 labels / its mean; per study: total variation distance of T* to the uniform plan.
    const stats = async (labelFeatureScale: string) => {
      const m = otdrg({ tokenizer, preset: 'tiny', seed: 8, lmPretrainFraction: 0, labelFeatureScale, epsilon: 0.01 });
      try {
        const enc = await m.encode(batch);
        const cost = enc.cost.toArray() as Float32Array, plan = enc.plan.toArray() as Float32Array;
        const [B, Np, N] = enc.cost.shape;
        expect(enc.plan.shape).toEqual([B, Np, N]);
        Object.values(enc).forEach((t) => t.dispose());
        let spread = 0, tv = 0;
        for (let i = 0; i < B * Np; i++) {
          const row = Array.from(cost.subarray(i * N, (i + 1) * N)), mu = mean(row);
          spread += Math.sqrt(row.reduce((s, c) => s + (c - mu) ** 2, 0) / (N - 1)) / mu / (B * Np);
          for (let k = 0; k < N; k++) tv += Math.abs(plan[i * N + k] - 1 / (Np * N)) / 2 / B;
        }
        return { spread, tv };
      } finally {
        m.dispose();
      }
    };
    try {
      const raw = await stats('raw'), rms = await stats('rms');
      expect(raw.spread).toBeLessThan(0.02);
      expect(rms.spread).toBeGreaterThan(10 * raw.spread);
      expect(rms.tv).toBeGreaterThan(0.08);
      expect(rms.tv).toBeGreaterThan(3 * raw.tv);
      expect(() => otdrg({ tokenizer, preset: 'tiny', labelFeatureScale: 'unit' })).toThrow(/labelFeatureScale must be 'rms' or 'raw'/);
      expect(otdrgConfig({ tokenizer, preset: 'tiny' }).labelFeatureScale).toBe('rms');
    } finally {
      batch.dispose();
    }
  }, 60_000);

  it("lmPretrainInput 'labelled': the pre-trained LM reads the label text (its report loss is lower with the study's own states than with another's)", async () => {
    const m = otdrg({ tokenizer, preset: 'tiny', seed: 9, lmPretrainFraction: 0.99, lmPretrainInput: 'labelled', labelFeatureScale: 'rms' });
    const first = await firstTrainBatch(48);
    const own = new TensorBatch(first);
    // the same reports with the label states of the study 24 rows on
    const states = first.labelStates!;
    const shifted = Int32Array.from({ length: states.data.length }, (_, i) => states.data[(i + 24 * 14) % states.data.length]);
    const other = new TensorBatch({ ...first, labelStates: { ...states, data: shifted as typeof states.data } });
    try {
      m.setupOptimizer({ kind: 'adamw', lr: 1e-2, weightDecay: 0 });
      const losses: number[] = [];
      for (let step = 0; step < 60; step++) losses.push((await m.trainStep(own, { clipNorm: 1, step, totalSteps: 100 })).parts.lm);
      expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)));
      const a = (await m.evalLoss(own)).parts.lm, b = (await m.evalLoss(other)).parts.lm;
      expect(b - a).toBeGreaterThan(0.05);
    } finally {
      m.dispose();
      own.dispose();
      other.dispose();
    }
  }, 60_000);

  it('generates from predicted or oracle states and returns the transport plan', async () => {
    const m = otdrg({ tokenizer, preset: 'tiny', seed: 6, lmPretrainFraction: 0 });
    const dn = diseasenet({ preset: 'tiny', seed: 6 });
    try {
      // the predictor of otdrg is diseasenet's encoder + classifier
      const src = dn.namedTensors();
      m.loadTensors('', Object.fromEntries(Object.entries(src).filter(([n]) => n.startsWith('encoder.') || n.startsWith('classifier.'))));
      const loader = new radkit.data.DataLoader(ds, { split: 'val', batchSize: 4, imageSize: SIZE, views: 1, tokenizer, shuffle: false, workers: 0 });
      for await (const b of loader) {
        const tb = new TensorBatch(b);
        try {
          const predicted = await m.generate(tb, { maxLength: 5, systemOptions: { labelSource: 'predicted' } });
          const expectStates = await dn.encode(tb);
          expect(predicted.extras.states.data).toEqual(Array.from(expectStates.states.toArray() as BigInt64Array, Number));
          Object.values(expectStates).forEach((t) => t.dispose());
          const oracle = await m.generate(tb, { maxLength: 5, systemOptions: { labelSource: 'oracle' } });
          expect(oracle.extras.states.data).toEqual(Array.from(b.labelStates!.data));
          expect(oracle.extras.plan.shape).toEqual([4, 4, 14]);
          const rowSums = [0, 1, 2, 3].map((p) => oracle.extras.plan.data.slice(p * 14, p * 14 + 14).reduce((s, v) => s + v, 0));
          for (const r of rowSums) expect(r).toBeCloseTo(1 / 4, 4);
          expect(oracle.tokens).toHaveLength(4);
          await expect(m.generate(tb, { systemOptions: { labelSource: 'none' } })).rejects.toThrow(/labelSource must be 'predicted' or 'oracle'/);
        } finally {
          tb.dispose();
        }
        break;
      }
      const ev = await otdrgEvaluation(m, tokenizer, ds, { split: 'val', preprocessing: pre, generate: { maxLength: 5 }, oracle: true });
      expect(ev.headline.bleu4).toBeTypeOf('number');
      expect(ev.headline['oracle.ceMicroF1']).toBeTypeOf('number');
    } finally {
      m.dispose();
      dn.dispose();
    }
  }, 60_000);
});

describe('CLI: the staged chain and --lm DIR', () => {
  const common = () => ['--data', dataDir, '--image-size', String(SIZE), '--batch-size', '16', '--preset', 'tiny', '--progress', 'none', '--threshold', '1'];

  it('ircp -> diseasenet -> otdrg via --init, then evaluate and generate', async () => {
    const r1 = path.join(tmp, 'cli-ircp'), r2 = path.join(tmp, 'cli-dn'), r3 = path.join(tmp, 'cli-otdrg');
    vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      expect(await main(['train', '--model', 'ircp', ...common(), '--out', r1, '--epochs', '1', '--no-eval'])).toBe(0);
      expect(await main(['train', '--model', 'diseasenet', ...common(), '--out', r2, '--epochs', '1', '--init', `${r1}:encoder.`])).toBe(0);
      const init2 = JSON.parse(fs.readFileSync(path.join(r2, 'init.json'), 'utf8'));
      expect(init2.copied.every((n: string) => n.startsWith('encoder.'))).toBe(true);
      expect(init2.new.some((n: string) => n.startsWith('classifier.'))).toBe(true);
      expect(await main(['train', '--model', 'otdrg', ...common(), '--out', r3, '--epochs', '2', '--init', r2, '--iterations', '20', '--lambda', '0.5'])).toBe(0);
      const init3 = JSON.parse(fs.readFileSync(path.join(r3, 'init.json'), 'utf8'));
      expect(init3.copied.some((n: string) => n.startsWith('classifier.'))).toBe(true);
      expect(init3.copied.some((n: string) => n.startsWith('encoder.'))).toBe(true);
      // the predictor inside otdrg is diseasenet's, weight for weight
      const dnWeights = await weightsOf(r2);
      const otWeights = await weightsOf(r3);
      for (const n of Object.keys(dnWeights).filter((k) => k.startsWith('classifier.') || k.startsWith('encoder.'))) expect(otWeights[n]).toEqual(dnWeights[n]);
      const meta = JSON.parse(fs.readFileSync(path.join(r3, 'checkpoints', 'best', 'checkpoint.json'), 'utf8'));
      expect(meta.config).toMatchObject({ lambda: 0.5, iterations: 20, epsilon: 0.1, costScale: 'ratio', loraRank: 8 });
      expect(await main(['evaluate', '--checkpoint', r3, '--data', dataDir, '--split', 'test', '--states', 'oracle', '--max-length', '8'])).toBe(0);
      const ev = JSON.parse(fs.readFileSync(path.join(r3, 'eval-test', 'metrics.json'), 'utf8'));
      expect(ev.labelSource).toBe('oracle');
      const image = ds.splits.test[0].imagePaths[0];
      expect(await main(['generate', '--checkpoint', r3, image, '--max-length', '6'])).toBe(0);

      // A predictor trained with log-sum-exp pooling: otdrg must pool its copied head the same way.
      const r2lse = path.join(tmp, 'cli-dn-lse'), bad = path.join(tmp, 'cli-otdrg-pooling');
      expect(await main(['train', '--model', 'diseasenet', ...common(), '--out', r2lse, '--epochs', '1', '--no-eval', '--state-lse-r', '4', '--init', `${r1}:encoder.`])).toBe(0);
      expect(JSON.parse(fs.readFileSync(path.join(r2lse, 'checkpoints', 'last', 'checkpoint.json'), 'utf8')).config.stateLseR).toBe(4);
      const errors: string[] = [];
      vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void errors.push(a.join(' ')));
      expect(await main(['train', '--model', 'otdrg', ...common(), '--out', bad, '--epochs', '1', '--no-eval', '--init', r2lse])).toBe(1);
      expect(errors.join('\n')).toMatch(/config\.stateLseR: 4 in the diseasenet run, 0 here/);
      expect(fs.existsSync(path.join(bad, 'checkpoints'))).toBe(false);
      // the encoder alone may come from it (the head is not copied)
      const encOnly = path.join(tmp, 'cli-otdrg-encoder-only');
      expect(await main(['train', '--model', 'otdrg', ...common(), '--out', encOnly, '--epochs', '1', '--no-eval', '--init', `${r2lse}:encoder.`]), errors.join('\n')).toBe(0);
    } finally {
      vi.restoreAllMocks();
    }
  }, 240_000);

  it('--lm DIR: a tiny Hugging Face LLaMA written here is loaded and stays frozen; misfits fail before training', async () => {
    const lmDir = path.join(tmp, 'tiny-llama');
    const tok = llamaTokenizer();
    fs.mkdirSync(lmDir, { recursive: true });
    fs.writeFileSync(path.join(lmDir, 'tokenizer.json'), JSON.stringify(tok));
    fs.writeFileSync(path.join(lmDir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<s>', eos_token: '</s>' }));
    const vocab = Object.keys((tok.model as { vocab: object }).vocab).length;
    const lm = radkit.nn.createCausalLM({ arch: 'llama', vocabSize: vocab, hiddenSize: 16, numLayers: 1, numHeads: 2, intermediateSize: 32, maxPositions: 2048, bosId: 1, eosId: 2 }, { seed: 9 });
    await lm.save(lmDir);
    lm.dispose();
    const saved = radkit.readSafetensors(path.join(lmDir, 'model.safetensors')).tensors;
    const run = path.join(tmp, 'cli-lm');
    const errors: string[] = [];
    vi.spyOn(console, 'log').mockImplementation(() => {});
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void errors.push(a.join(' ')));
    try {
      const code = await main(['train', '--model', 'otdrg', ...common(), '--out', run, '--epochs', '1', '--no-eval', '--lm', lmDir]);
      expect(code, errors.join('\n')).toBe(0);
      const w = await weightsOf(run);
      for (const [name, t] of Object.entries(saved)) expect(w[`lm.${name}`]).toEqual(Array.from(t.toArray() as Float32Array)); // loaded, and frozen
      const meta = JSON.parse(fs.readFileSync(path.join(run, 'checkpoints', 'last', 'checkpoint.json'), 'utf8'));
      expect(meta.tokenizer.kind).toBe('hf');
      expect(meta.config).toMatchObject({ lmVocabSize: 279 + 0 * vocab, lmHidden: 16, bosId: 1, eosId: 2, lmPretrainFraction: 0 });
      const ck = await radkit.loadCheckpoint(run);
      try {
        expect(ck.tokenizer.decode(ck.tokenizer.encode('hello world'))).toBe('hello world');
      } finally {
        ck.model.dispose();
      }
      // The paper preset computes the LM in bfloat16: the float32 folder's weights are rounded into it.
      const paper = otdrg({ tokenizer: otdrgTokenizer(ds, { lm: lmDir }), preset: 'paper', lm: lmDir });
      try {
        const name = 'model.layers.0.self_attn.q_proj.weight';
        const got = tensorAsFloat32(paper, `lm.${name}`);
        expect(got.dtype).toBe('bfloat16');
        expect(got.values).toEqual(Array.from(saved[name].toArray() as Float32Array).map(roundBF16));
      } finally {
        paper.dispose();
      }
      // radkit generate decodes with the checkpoint's own (Hugging Face) tokenizer
      const logged: string[] = [];
      vi.mocked(console.log).mockImplementation((...a: unknown[]) => void logged.push(a.join(' ')));
      expect(await main(['generate', '--checkpoint', run, ds.splits.test[0].imagePaths[0], '--max-length', '4', '--json']), errors.join('\n')).toBe(0);
      const gen = JSON.parse(logged.join('\n'));
      expect(gen).toHaveLength(1);
      expect(gen[0].report).toBeTypeOf('string');
      expect(gen[0].states).toHaveLength(14);

      // A tokenizer that does not belong to the checkpoint (more ids than vocab_size) and LoRA
      // targets the checkpoint lacks: errors naming the problem, before any run folder content.
      const small = path.join(tmp, 'tiny-llama-small-vocab');
      fs.cpSync(lmDir, small, { recursive: true });
      const cfg = JSON.parse(fs.readFileSync(path.join(small, 'config.json'), 'utf8'));
      fs.writeFileSync(path.join(small, 'config.json'), JSON.stringify({ ...cfg, vocab_size: 100 }));
      const bad1 = path.join(tmp, 'cli-lm-bad1'), bad2 = path.join(tmp, 'cli-lm-bad2'), bad3 = path.join(tmp, 'cli-lm-bad3');
      errors.length = 0;
      expect(await main(['train', '--model', 'otdrg', ...common(), '--out', bad1, '--epochs', '1', '--lm', small])).toBe(1);
      expect(errors.join('\n')).toMatch(/tokenizer .* has 279 ids but the checkpoint's vocabulary has 100 rows/);
      errors.length = 0;
      expect(await main(['train', '--model', 'otdrg', ...common(), '--out', bad2, '--epochs', '1', '--lm', lmDir, '--lora-targets', 'q_proj,query_key_value'])).toBe(1);
      expect(errors.join('\n')).toMatch(/no module named 'query_key_value'.*q_proj/);
      // weights without one of the base tensors
      const partial = path.join(tmp, 'tiny-llama-partial');
      fs.mkdirSync(partial);
      for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(lmDir, f), path.join(partial, f));
      const kept = Object.fromEntries(Object.entries(saved).filter(([n]) => !n.endsWith('v_proj.weight')));
      radkit.writeSafetensors(path.join(partial, 'model.safetensors'), kept);
      errors.length = 0;
      expect(await main(['train', '--model', 'otdrg', ...common(), '--out', bad3, '--epochs', '1', '--lm', partial])).toBe(1);
      expect(errors.join('\n')).toMatch(/model\.layers\.0\.self_attn\.v_proj\.weight: not in the checkpoint/);
      for (const d of [bad1, bad2, bad3]) expect(fs.existsSync(path.join(d, 'checkpoints'))).toBe(false);
    } finally {
      vi.restoreAllMocks();
      Object.values(saved).forEach((t) => t.dispose());
    }
  }, 180_000);
});
