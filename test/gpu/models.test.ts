// The systems on CUDA (skipped without a CUDA device; bench/gpu-check.sh runs it on a GPU machine):
// one float64 training step on CUDA equals the CPU step (and a second one, through the moved
// optimizer state); checkpoints written on CUDA load on the CPU and back; bfloat16 and float16
// autocast steps stay within stated tolerances of float32; generation on CUDA gives the CPU's
// reports in float32; uint8 batches match float batches; 1,000 steps hold no GPU memory; a real CUDA
// out-of-memory step is an OutOfMemoryError that changes nothing, after which a small batch trains;
// AdaMatch-Cyclic's paper path (a GPT-NeoX folder, the LM in bfloat16) trains and generates on CUDA.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { Model, OutOfMemoryError, TensorBatch } from '../../lib/index.js';
import { adamatchCyclic, cyclicSequences, cyclicTable, cyclicTokenizer, generateCyclicImages, generateCyclicReports } from '../../lib/models/adamatch-cyclic.js';
import { writeTinyNeoXFolder } from '../unit/hf-tokenizer-fixtures.js';

const cuda = (() => {
  try {
    return radkit.info().cudaAvailable;
  } catch {
    return false;
  }
})();

const reports = ['the heart is normal in size .', 'there is a small left pleural effusion .', 'no acute cardiopulmonary abnormality .', 'mild cardiomegaly . lungs are clear .'];
const tokenizer = radkit.text.Tokenizer.build(reports, { threshold: 1 });
const SIDE = 64;
const XPRONET = { preset: 'small' as const, dModel: 32, heads: 2, dFF: 64, encoderLayers: 1, decoderLayers: 1, resnetWidths: [8, 8, 16, 16, 32], resnetBlocks: [1, 1, 1, 1], prototypesPerClass: 2, topK: 2, seed: 3, dropout: 0 };
const ADAMATCH = { tokenizer, imageSize: SIDE, dims: [8, 16, 16, 16], depths: [1, 1, 1, 1], heads: [1, 2, 2, 2], reductions: [2, 1, 1, 1], textHidden: 16, textLayers: 1, textHeads: 2, textIntermediate: 32, embedDim: 12, classWeight: 0, seed: 3, textDropout: 0 };

/** The systems checked step by step, each without random draws in its training step (dropout 0). */
const SYSTEMS: { name: string; create(): Model }[] = [
  { name: 'xpronet', create: () => radkit.xpronet({ tokenizer, ...XPRONET }) },
  { name: 'adamatch', create: () => radkit.adamatch(ADAMATCH as never) },
  // The VQ tokenizer: EMA codebook updates on the device; no dead-code restarts (they draw at random).
  { name: 'vqgan', create: () => radkit.models.vqgan({ resolution: SIDE, ch: 16, normGroups: 8, chMult: [1, 2], numResBlocks: 1, attnResolutions: [32], zChannels: 8, embedDim: 8, nEmbed: 16, deadCodeThreshold: 0, seed: 3 }) },
];

function labelStates(n: number): Int32Array {
  const s = new Int32Array(n * 14).fill(2);
  for (let i = 0; i < n; i++) s[i * 14 + (i % 14)] = 1;
  return s;
}

/** Grey levels 0-255 of B single-view studies (a fresh pattern per seed). */
function greyLevels(B: number, seed: number, side = SIDE): Uint8Array {
  return Uint8Array.from({ length: B * side * side }, (_, i) => (i * 37 + seed * 101 + ((i * i) % 13)) % 256);
}

function batch(B: number, seed: number, kind: 'float32' | 'float64' | 'uint8' = 'float32', side = SIDE): TensorBatch {
  const g = greyLevels(B, seed, side);
  const images = kind === 'uint8' ? g : kind === 'float64' ? Float64Array.from(g, (v) => v / 255) : Float32Array.from(g, (v) => v / 255);
  const rows = Array.from({ length: B }, (_, i) => reports[(i + seed) % reports.length]);
  const enc = tokenizer.encodeBatch(rows);
  return new TensorBatch({ images: { data: images, shape: [B, 1, 1, side, side] }, tokens: { data: enc.data, shape: enc.shape, mask: new Uint8Array() } as never, labelStates: { data: labelStates(B), shape: [B, 14] } });
}

function weights(m: Model): Record<string, Float64Array> {
  const named = m.namedTensors();
  const out = Object.fromEntries(Object.entries(named).filter(([, t]) => t.dtype.startsWith('float')).map(([k, t]) => [k, Float64Array.from(t.to('cpu').toArray() as ArrayLike<number>)]));
  Object.values(named).forEach((t) => t.dispose());
  return out;
}

function maxAbsDiff(a: Record<string, Float64Array>, b: Record<string, Float64Array>): number {
  let worst = 0;
  for (const k of Object.keys(a)) for (let i = 0; i < a[k].length; i++) worst = Math.max(worst, Math.abs(a[k][i] - b[k][i]));
  return worst;
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);

describe.skipIf(!cuda)('every system on CUDA', () => {
  for (const sys of SYSTEMS)
    it(`${sys.name}: two float64 training steps on CUDA equal the CPU steps`, async () => {
      const cpu = sys.create();
      const gpu = sys.create();
      expect(maxAbsDiff(weights(cpu), weights(gpu))).toBe(0);
      cpu.to('cpu', 'float64');
      for (const m of [cpu, gpu]) m.setupOptimizer({ kind: 'adam', lr: 1e-3 });
      // The optimizer exists before the move: its (empty, then filled) state follows the parameters.
      gpu.to('cuda', 'float64');
      expect(gpu.device).toBe('cuda:0');
      expect(gpu.dtype).toBe('float64');
      for (const seed of [1, 2]) {
        const b = batch(4, seed, 'float64');
        const a = await cpu.trainStep(b, { clipNorm: 1 });
        const c = await gpu.trainStep(b, { clipNorm: 1 });
        b.dispose();
        expect(rel(c.loss, a.loss), `loss ${c.loss} vs ${a.loss}`).toBeLessThan(1e-9);
        expect(rel(c.gradNorm, a.gradNorm), `gradNorm ${c.gradNorm} vs ${a.gradNorm}`).toBeLessThan(1e-7);
        // Adam moves each weight by about lr = 1e-3; float64 sums in another order differ by far less.
        expect(maxAbsDiff(weights(gpu), weights(cpu))).toBeLessThan(1e-9);
      }
      cpu.dispose();
      gpu.dispose();
    }, 120_000);

  it('checkpoints are device-agnostic: written on CUDA, read on the CPU, and back (weights and optimizer state)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-gpu-ckpt-'));
    const gpu = radkit.xpronet({ tokenizer, ...XPRONET });
    gpu.setupOptimizer({ kind: 'adam', lr: 1e-3 });
    gpu.to('cuda');
    const b = batch(4, 1);
    await gpu.trainStep(b);
    await gpu.saveWeights(path.join(dir, 'w.pt'), path.join(dir, 'o.pt'));
    const cpu = radkit.xpronet({ tokenizer, ...XPRONET, seed: 9 });
    cpu.setupOptimizer({ kind: 'adam', lr: 1e-3 });
    await cpu.loadWeights(path.join(dir, 'w.pt'), path.join(dir, 'o.pt'));
    expect(cpu.device).toBe('cpu');
    expect(maxAbsDiff(weights(cpu), weights(gpu))).toBe(0);
    // The next step from the loaded state matches on both devices (float32: within rounding).
    const b2 = batch(4, 2);
    const x = await gpu.trainStep(b2);
    const y = await cpu.trainStep(b2);
    expect(rel(x.loss, y.loss)).toBeLessThan(1e-4);
    expect(maxAbsDiff(weights(cpu), weights(gpu))).toBeLessThan(1e-4);
    // And a CPU checkpoint loads into a CUDA model.
    await cpu.saveWeights(path.join(dir, 'w2.pt'), path.join(dir, 'o2.pt'));
    await gpu.loadWeights(path.join(dir, 'w2.pt'), path.join(dir, 'o2.pt'));
    expect(gpu.device).toBe('cuda:0');
    expect(maxAbsDiff(weights(cpu), weights(gpu))).toBe(0);
    await gpu.trainStep(b);
    [b, b2].forEach((t) => t.dispose());
    [cpu, gpu].forEach((m) => m.dispose());
  }, 120_000);

  // Tolerances as on the CPU (test/native/model-device.test.ts): bfloat16 loss within 2% and
  // gradient norm within 10% of float32; float16 (10 significant bits) within 1% and 5%.
  it('bfloat16 and float16 CUDA steps stay within tolerance of float32; master weights stay float32; float16 reports its loss scale', async () => {
    const b = batch(8, 3);
    const step = async (precision: radkit.models.Precision) => {
      const m = radkit.xpronet({ tokenizer, ...XPRONET }).to('cuda');
      m.setupOptimizer({ kind: 'adam', lr: 1e-3 });
      const r = await m.trainStep(b, { clipNorm: 0, precision });
      expect(m.dtype).toBe('float32');
      m.dispose();
      return r;
    };
    const f32 = await step('float32');
    const bf16 = await step('bfloat16');
    const f16 = await step('float16');
    expect(rel(bf16.loss, f32.loss)).toBeLessThan(0.02);
    expect(rel(bf16.gradNorm, f32.gradNorm)).toBeLessThan(0.1);
    expect(rel(f16.loss, f32.loss)).toBeLessThan(0.01);
    expect(f16.lossScale).toBeGreaterThan(0);
    if (!f16.skipped) expect(rel(f16.gradNorm, f32.gradNorm)).toBeLessThan(0.05);
    // float16 training falls: the scale settles and the loss drops on a fixed batch.
    const m = radkit.xpronet({ tokenizer, ...XPRONET }).to('cuda');
    m.setupOptimizer({ kind: 'adam', lr: 1e-3 });
    const first = (await m.trainStep(b, { precision: 'float16' })).loss;
    let last = first;
    let applied = 0;
    for (let i = 0; i < 40; i++) {
      const r = await m.trainStep(b, { precision: 'float16' });
      last = r.loss;
      if (!r.skipped) applied++;
    }
    expect(applied).toBeGreaterThan(30);
    expect(last).toBeLessThan(0.7 * first);
    m.dispose();
    b.dispose();
  }, 120_000);

  it('generation on CUDA gives the CPU reports in float32 (greedy and beam 3); uint8 batches give the float batch\'s loss', async () => {
    const cpu = radkit.xpronet({ tokenizer, ...XPRONET });
    cpu.setupOptimizer({ kind: 'adam', lr: 2e-3 });
    const train = batch(8, 4);
    for (let i = 0; i < 30; i++) await cpu.trainStep(train);
    const gpu = radkit.xpronet({ tokenizer, ...XPRONET, seed: 7 });
    const named = cpu.namedTensors();
    gpu.loadTensors('', named);
    Object.values(named).forEach((t) => t.dispose());
    gpu.to('cuda');
    const test = batch(8, 5);
    for (const opts of [{ method: 'greedy' as const, maxLength: 20 }, { method: 'beam' as const, beams: 3, maxLength: 20 }]) {
      const a = await cpu.generate(test, { ...opts, systemOptions: { labelSource: 'predicted' } });
      const c = await gpu.generate(test, { ...opts, systemOptions: { labelSource: 'predicted' } });
      expect(c.tokens).toEqual(a.tokens);
      for (let i = 0; i < a.scores.length; i++) expect(Math.abs(c.scores[i] - a.scores[i])).toBeLessThan(1e-3);
    }
    const f = batch(8, 6);
    const u = batch(8, 6, 'uint8');
    const lf = await gpu.evalLoss(f);
    const lu = await gpu.evalLoss(u);
    expect(rel(lu.loss, lf.loss)).toBeLessThan(1e-6);
    [train, test, f, u].forEach((t) => t.dispose());
    [cpu, gpu].forEach((m) => m.dispose());
  }, 120_000);

  it('1,000 training steps hold no GPU memory and no tensor handles afterwards', async () => {
    const m = radkit.xpronet({ tokenizer, ...XPRONET }).to('cuda');
    m.setupOptimizer({ kind: 'adam', lr: 1e-4 });
    const b = batch(4, 8, 'uint8');
    for (let i = 0; i < 20; i++) await m.trainStep(b);
    radkit.cudaSynchronize();
    const before = radkit.cudaMemory()!.allocatedBytes;
    const handles = radkit.memory().liveTensors;
    for (let i = 0; i < 1000; i++) await m.trainStep(b, { precision: i % 2 ? 'bfloat16' : 'float32' });
    radkit.cudaSynchronize();
    expect(radkit.cudaMemory()!.allocatedBytes).toBe(before);
    expect(radkit.memory().liveTensors).toBe(handles);
    b.dispose();
    m.dispose();
  }, 300_000);

  it('a CUDA out-of-memory step is an OutOfMemoryError naming the batch; the model is as it was and a small batch then trains', async () => {
    // The small preset's 64-channel stem at 1024 px on 512 studies needs 34 GB per activation.
    const m = radkit.xpronet({ tokenizer, preset: 'small', seed: 3 }).to('cuda');
    m.setupOptimizer({ kind: 'adam', lr: 1e-4 });
    const small = batch(2, 1);
    await m.trainStep(small);
    const before = weights(m);
    const huge = batch(512, 2, 'uint8', 1024);
    let err: unknown;
    try {
      await m.trainStep(huge);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OutOfMemoryError);
    expect(err).toMatchObject({ code: 'ERR_OUT_OF_MEMORY', message: expect.stringMatching(/training step of this xpronet model on cuda:0 at precision float32 \(batch: images \[512, 1, 1, 1024, 1024\] uint8/) });
    expect(maxAbsDiff(weights(m), before)).toBe(0);
    await m.trainStep(small);
    expect(maxAbsDiff(weights(m), before)).toBeGreaterThan(0);
    [small, huge].forEach((t) => t.dispose());
    m.dispose();
  }, 120_000);
  it('adamatch-cyclic, paper preset (a GPT-NeoX folder, bfloat16 LM): the loss falls on CUDA; generation stays in range', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-gpu-cyclic-'));
    await radkit.data.synthesize({ out: path.join(dir, 'data'), train: 16, val: 2, test: 2, size: 32, seed: 4, views: 1 });
    const ds = radkit.data.readR2Gen(path.join(dir, 'data', 'annotation.json'));
    const codes: Record<string, number[]> = {};
    Object.values(ds.splits).flat().forEach((e, i) => (codes[e.id] = [i % 8, (i + 1) % 8, (i * 3) % 8, 7 - (i % 8)]));
    const codesFile = path.join(dir, 'codes.json');
    fs.writeFileSync(codesFile, JSON.stringify({ format: 'radkit-image-codes', version: 1, tokenizer: { kind: 'vqgan', weightsSha256: '0'.repeat(64), config: {} }, imageSize: 32, grid: [2, 2], nEmbed: 8, codes }));
    const lm = path.join(dir, 'neox');
    await writeTinyNeoXFolder(lm);
    const tok = cyclicTokenizer(ds, { lm });
    const m = adamatchCyclic({ dataset: ds, tokenizer: tok, codes: codesFile, vq: 'unused', lm, preset: 'paper' });
    try {
      m.setupOptimizer({ kind: 'adamw', lr: 3e-3 });
      m.to('cuda');
      const t = cyclicTable(m, tok, ds);
      const train = ds.splits.train;
      const seqs = cyclicSequences(t, train.map((e) => e.id), train.map((e) => e.report));
      const T = Math.max(...seqs.map((q) => q.ids.length));
      const ids = new BigInt64Array(seqs.length * T), valid = new BigInt64Array(seqs.length * T), scored = new BigInt64Array(seqs.length * T);
      seqs.forEach((q, b) => q.ids.forEach((id, j) => ((ids[b * T + j] = BigInt(id)), (valid[b * T + j] = 1n), (scored[b * T + j] = j >= q.start ? 1n : 0n))));
      const i64 = (data: BigInt64Array) => ({ data, shape: [seqs.length, T], dtype: 'int64' as const });
      const b = new TensorBatch({}, { extras: { sequence: i64(ids), sequenceMask: i64(valid), lossMask: i64(scored) } });
      const losses: number[] = [];
      for (let k = 0; k < 30; k++) losses.push((await m.trainStep(b, { clipNorm: 1 })).loss);
      b.dispose();
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(losses.slice(-3).reduce((x, y) => x + y) / 3).toBeLessThan(0.8 * (losses.slice(0, 3).reduce((x, y) => x + y) / 3));
      const reports = await generateCyclicReports(m, t, ds.splits.test.map((e) => t.reportPrompt(t.study(e.id).codes, null)), { maxLength: 8 });
      expect(reports.every((r) => typeof r === 'string')).toBe(true);
      for (const c of await generateCyclicImages(m, t, ds.splits.test.map((e) => t.imagePrompt(e.report, null)))) expect(c.length === 4 && c.every((x) => x >= 0 && x < 8)).toBe(true);
    } finally {
      m.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
