// Issue 17 reproductions on the native model handle: a failed training step leaves the model as it
// was (item 4), batches and configurations a model cannot use fail in radkit's words before any
// work (items 12, 14), loads check everything before changing anything (item 14), and the training
// state carries the random generators (item 5).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { Model, Tensor, TensorBatch } from '../../lib/index.js';
import { bertTextOptions } from '../../lib/models/adamatch.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-model-rel-'));
const reports = ['the heart is normal in size .', 'there is a small left pleural effusion .', 'no acute cardiopulmonary abnormality .', 'mild cardiomegaly . lungs are clear .'];
const tokenizer = radkit.text.Tokenizer.build(reports, { threshold: 1 });
const TINY = { preset: 'small' as const, dModel: 32, heads: 2, dFF: 64, encoderLayers: 1, decoderLayers: 1, resnetWidths: [4, 4, 8, 8, 16], resnetBlocks: [1, 1, 1, 1], prototypesPerClass: 2, topK: 2, seed: 3 };

function labelStates(n: number): Int32Array {
  const s = new Int32Array(n * 14).fill(2);
  for (let i = 0; i < n; i++) s[i * 14 + (i % 14)] = 1;
  return s;
}

function batch(opts: { images?: Float32Array; B?: number; tokens?: number[][] } = {}): TensorBatch {
  const B = opts.B ?? 4;
  const images = opts.images ?? Float32Array.from({ length: B * 32 * 32 }, (_, i) => ((i * 37) % 101) / 101);
  const enc = tokenizer.encodeBatch(reports.slice(0, B));
  const tokens = opts.tokens ? { data: Int32Array.from(opts.tokens.flat()), shape: [opts.tokens.length, opts.tokens[0].length] as [number, number] } : { data: enc.data, shape: enc.shape };
  return new TensorBatch({ images: { data: images, shape: [B, 1, 1, 32, 32] }, tokens: { ...tokens, mask: new Uint8Array() } as never, labelStates: { data: labelStates(B), shape: [B, 14] } });
}

function snapshot(m: Model): Record<string, number[]> {
  const named = m.namedTensors();
  const out = Object.fromEntries(Object.entries(named).map(([k, t]) => [k, Array.from(t.toArray() as ArrayLike<number | bigint>, Number)]));
  Object.values(named).forEach((t) => t.dispose());
  return out;
}

function model(overrides: Record<string, unknown> = {}): Model {
  const m = radkit.xpronet({ tokenizer, ...TINY, ...overrides });
  m.setupOptimizer({ kind: 'adam', lr: 1e-3 });
  return m;
}

describe('a failed training step leaves the model exactly as it was (item 4)', () => {
  it('non-finite images are refused before anything runs: weights, batch-norm statistics and optimizer state unchanged', async () => {
    const a = model();
    const b = model();
    const good = batch();
    // Dropout draws from the global generator: each model's step starts from the same seed.
    const step = async (m: Model, x: TensorBatch) => {
      radkit.manualSeed(7);
      return m.trainStep(x);
    };
    await step(a, good);
    await step(b, good);
    const before = snapshot(a);
    const images = Float32Array.from({ length: 4 * 32 * 32 }, () => 0.5);
    images[3 * 1024 + 5] = Number.NaN;
    const poisoned = batch({ images });
    await expect(step(a, poisoned)).rejects.toMatchObject({ code: 'ERR_NOT_FINITE', message: expect.stringMatching(/non-finite values .* in 1 of 4 studies \(first: row 3\); nothing was changed/) });
    expect(snapshot(a)).toEqual(before);
    // The optimizer state too: the next good step gives both models the same weights.
    await step(a, good);
    await step(b, good);
    expect(snapshot(a)).toEqual(snapshot(b));
    // And it still generates and saves.
    const g = await a.generate(good, { method: 'greedy', maxLength: 5, systemOptions: { labelSource: 'predicted' } });
    expect(g.tokens).toHaveLength(4);
    [a, b].forEach((m) => m.dispose());
    [good, poisoned].forEach((x) => x.dispose());
  });

  it('a step that fails after its forward pass (a non-finite loss) puts the batch-norm statistics and random generators back', async () => {
    const m = model({ dropout: 0.3 });
    m.setLearningRates(1e8, 1e8);
    const good = batch();
    let failed = false;
    for (let i = 0; i < 12 && !failed; i++) {
      const before = snapshot(m);
      radkit.manualSeed(5);
      try {
        await m.trainStep(good);
      } catch (err) {
        expect(err).toMatchObject({ code: 'ERR_NOT_FINITE', message: expect.stringMatching(/the model is as it was/) });
        failed = true;
        expect(snapshot(m)).toEqual(before);
        // The generator is where it was before the step: the same draw as right after seeding.
        const x = Tensor.randn([3]);
        radkit.manualSeed(5);
        const y = Tensor.randn([3]);
        expect(Array.from(x.toArray() as Float32Array)).toEqual(Array.from(y.toArray() as Float32Array));
        x.dispose();
        y.dispose();
      }
    }
    expect(failed, 'an enormous learning rate should make the loss non-finite').toBe(true);
    m.dispose();
    good.dispose();
  });
});

describe('batches a model cannot use fail in radkit\'s words (item 14)', () => {
  it('empty batch, float64 images, out-of-vocabulary token ids, too many positions', async () => {
    const m = model();
    const before = snapshot(m);
    const empty = new TensorBatch({ images: { data: new Float32Array(0), shape: [0, 1, 1, 32, 32] } });
    await expect(m.trainStep(empty)).rejects.toMatchObject({ code: 'ERR_SHAPE', message: expect.stringMatching(/the batch is empty \(0 studies\)/) });
    await expect(m.generate(empty)).rejects.toMatchObject({ code: 'ERR_SHAPE' });
    // From JavaScript (no types) a Float64Array reaches the model as float64 images.
    const f64 = new TensorBatch({ images: { data: new Float64Array(32 * 32) as unknown as Float32Array, shape: [1, 1, 1, 32, 32] } });
    await expect(m.generate(f64)).rejects.toMatchObject({ code: 'ERR_DTYPE', message: expect.stringMatching(/batch.images is float64 but this xpronet model computes in float32: convert/) });
    const oov = batch({ B: 1, tokens: [[0, 3, tokenizer.vocabSize + 40, 0]] });
    await expect(m.trainStep(oov)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(new RegExp(`token id ${tokenizer.vocabSize + 40} but this xpronet model's vocabulary has ${tokenizer.vocabSize + 1} ids`)) });
    const long = batch({ B: 1, tokens: [Array.from({ length: 600 }, () => 1)] });
    await expect(m.trainStep(long)).rejects.toMatchObject({ code: 'ERR_SHAPE', message: expect.stringMatching(/at most 512 \(config.maxPositions\)/) });
    expect(snapshot(m)).toEqual(before);
    m.dispose();
    [empty, f64, oov, long].forEach((x) => x.dispose());
  });
});

describe('configurations are range-checked before anything is allocated (items 12, 14)', () => {
  it('a huge configuration is an ERR_OUT_OF_MEMORY at once; zero, fractional and negative sizes are refused', () => {
    const t0 = performance.now();
    expect(() => radkit.xpronet({ tokenizer, ...TINY, dModel: 65536, heads: 8 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_MEMORY', message: expect.stringMatching(/nothing was allocated/) }));
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(() => radkit.xpronet({ tokenizer, ...TINY, heads: 0 })).toThrow(/config.heads must be in \[1, /);
    expect(() => radkit.xpronet({ tokenizer, ...TINY, dModel: 32.5 })).toThrow(/config.dModel must be a whole number, got 32.5/);
    expect(() => radkit.xpronet({ tokenizer, ...TINY, resnetWidths: [4, 4, -8, 8, 16] })).toThrow(/resnetWidths must lie in/);
    expect(() => radkit.xpronet({ tokenizer, ...TINY, dropout: 1 })).toThrow(/dropout must be in \[0, 1\)/);
    expect(() => radkit.adamatch({ tokenizer, preset: 'small', textHeads: 0 })).toThrow(/config.textHeads must be in \[1, /);
  });
});

describe('no silent dtype conversions when loading weights (item 12)', () => {
  it('float64 into float32 or integers into floats only when asked; float16 widens exactly', () => {
    const m = model();
    const shape = m.namedTensors();
    const n = shape['classifier.bias'].shape[0];
    Object.values(shape).forEach((t) => t.dispose());
    const f64 = Tensor.from(new Float64Array(n).fill(0.1), [n]);
    expect(() => m.loadTensors('', { 'classifier.bias': f64 })).toThrow(
      expect.objectContaining({ code: 'ERR_DTYPE', message: expect.stringMatching(/'classifier.bias' is float64 but classifier.bias is float32: converting would change values/) }),
    );
    expect(m.loadTensors('', { 'classifier.bias': f64 }, { skipMismatched: true }).skipped[0].reason).toMatch(/dtype float64 is not float32/);
    const ints = Tensor.from(new Int32Array(n).fill(3), [n], { dtype: 'int32' });
    expect(() => m.loadTensors('', { 'classifier.bias': ints })).toThrow(/is int32 but classifier.bias is float32/);
    expect(m.loadTensors('', { 'classifier.bias': f64 }, { convertDtype: true }).loaded).toBe(1);
    const half = Tensor.from(new Float32Array(n).fill(0.5), [n]).to('float16');
    expect(m.loadTensors('', { 'classifier.bias': half }).loaded).toBe(1);
    const back = m.namedTensors();
    expect(Array.from(back['classifier.bias'].toArray() as Float32Array)).toEqual(new Array(n).fill(0.5));
    Object.values(back).forEach((t) => t.dispose());
    [f64, ints, half].forEach((t) => t.dispose());
    m.dispose();
  });
});

describe('loads check everything first and name the file (item 14)', () => {
  it('weights of another kind or configuration, or a damaged archive: ERR_CHECKPOINT, the model unchanged', async () => {
    const a = model();
    const before = snapshot(a);
    const other = model({ dModel: 48 });
    const w = path.join(tmp, 'other-weights.pt');
    await other.saveWeights(w);
    await expect(a.loadWeights(w)).rejects.toMatchObject({
      code: 'ERR_CHECKPOINT',
      message: expect.stringMatching(/other-weights\.pt does not hold the weights of this xpronet model \(another model kind or configuration\?\); the model was not changed:\n {2}another shape or dtype: .*\[32, 32\] \(the model's is float32 \[48, 48\]\)|other-weights\.pt does not hold the weights/),
    });
    expect(snapshot(a)).toEqual(before);
    const align = radkit.adamatch({ tokenizer, preset: 'small' });
    const aw = path.join(tmp, 'adamatch-weights.pt');
    await align.saveWeights(aw);
    await expect(a.loadWeights(aw)).rejects.toMatchObject({ code: 'ERR_CHECKPOINT', message: expect.stringMatching(/adamatch-weights\.pt does not hold the weights of this xpronet model[\s\S]*missing: /) });
    const junk = path.join(tmp, 'junk.pt');
    fs.writeFileSync(junk, 'not an archive');
    await expect(a.loadWeights(junk)).rejects.toMatchObject({ code: 'ERR_CHECKPOINT', message: expect.stringMatching(/junk\.pt is not a readable LibTorch archive .*the model was not changed/) });
    // Optimizer state of another configuration: refused before the weights are copied.
    const ow = path.join(tmp, 'a-weights.pt');
    const oo = path.join(tmp, 'other-optim.pt');
    await a.saveWeights(ow);
    const o2 = model({ dModel: 48 });
    await o2.trainStep(batch());
    await o2.saveWeights(path.join(tmp, 'o2.pt'), oo);
    await a.trainStep(batch());
    const trained = snapshot(a);
    await expect(a.loadWeights(ow, oo)).rejects.toMatchObject({ code: 'ERR_CHECKPOINT', message: expect.stringMatching(/other-optim\.pt (does not hold the optimizer state|holds optimizer moments of shape)/) });
    expect(snapshot(a)).toEqual(trained);
    [a, other, align, o2].forEach((m) => m.dispose());
  });

  it('a damaged config.json of a BERT folder is named', () => {
    const bert = path.join(tmp, 'bert');
    fs.mkdirSync(bert, { recursive: true });
    fs.writeFileSync(path.join(bert, 'model.safetensors'), '');
    fs.writeFileSync(path.join(bert, 'vocab.txt'), '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nheart\n');
    fs.writeFileSync(path.join(bert, 'config.json'), '{"hidden_size": 12,');
    expect(() => bertTextOptions(bert)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/bert\/config\.json is not valid JSON/) }));
  });

  it('the training state carries the random generator: loading it restores the draws', async () => {
    const m = model();
    radkit.manualSeed(11);
    Tensor.randn([5]).dispose();
    const w = path.join(tmp, 'rng-w.pt');
    const o = path.join(tmp, 'rng-o.pt');
    await m.saveWeights(w, o);
    const first = Tensor.randn([4]);
    radkit.manualSeed(999);
    await m.loadWeights(w, o);
    const again = Tensor.randn([4]);
    expect(Array.from(again.toArray() as Float32Array)).toEqual(Array.from(first.toArray() as Float32Array));
    [first, again].forEach((t) => t.dispose());
    m.dispose();
  });
});
