// Devices, mixed precision and out-of-memory on the generic model handle, as far as a machine
// without CUDA can check them: the device is validated before anything moves, CPU placement and
// float64 conversion carry the optimizer state, bfloat16 autocast stays close to float32 with float32
// master weights and still trains, uint8 images are widened on the device, and an out-of-memory
// step (simulated through testing.probeOutOfMemoryAbove) names its sizes and changes nothing.
// test/gpu/models.test.ts checks the CUDA side on a machine with a GPU.
import { afterEach, describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { Model, OutOfMemoryError, Tensor, TensorBatch, ArgumentError } from '../../lib/index.js';
import { loadNative } from '../../lib/native.js';

const reports = ['the heart is normal in size .', 'there is a small left pleural effusion .', 'no acute cardiopulmonary abnormality .', 'mild cardiomegaly . lungs are clear .'];
const tokenizer = radkit.text.Tokenizer.build(reports, { threshold: 1 });
const TINY = { preset: 'small' as const, dModel: 32, heads: 2, dFF: 64, encoderLayers: 1, decoderLayers: 1, resnetWidths: [4, 4, 8, 8, 16], resnetBlocks: [1, 1, 1, 1], prototypesPerClass: 2, topK: 2, seed: 3, dropout: 0 };
const cuda = radkit.info().cudaAvailable;
// bfloat16 steps run on the CPU (LibTorch 1.13 and 2); CUDA autocast is checked by test/gpu/models.test.ts.
const testing = () => (loadNative() as unknown as { testing: { probeOutOfMemoryAbove(rows: number): void } }).testing;

function labelStates(n: number): Int32Array {
  const s = new Int32Array(n * 14).fill(2);
  for (let i = 0; i < n; i++) s[i * 14 + (i % 14)] = 1;
  return s;
}

function pixels(B: number, side = 32): Float32Array {
  return Float32Array.from({ length: B * side * side }, (_, i) => Math.round(((i * 37) % 101) * 2.5) / 255);
}

function batch(B = 4, images: Float32Array | Float64Array | Uint8Array = pixels(B)): TensorBatch {
  const enc = tokenizer.encodeBatch(reports.slice(0, B));
  return new TensorBatch({ images: { data: images, shape: [B, 1, 1, 32, 32] }, tokens: { data: enc.data, shape: enc.shape, mask: new Uint8Array() } as never, labelStates: { data: labelStates(B), shape: [B, 14] } });
}

function snapshot(m: Model): Record<string, number[]> {
  const named = m.namedTensors();
  const out = Object.fromEntries(Object.entries(named).map(([k, t]) => [k, Array.from(t.toArray() as ArrayLike<number | bigint>, Number)]));
  Object.values(named).forEach((t) => t.dispose());
  return out;
}

function dtypes(m: Model): Set<string> {
  const named = m.namedTensors();
  const out = new Set(Object.values(named).filter((t) => t.dtype.startsWith('float') || t.dtype === 'bfloat16').map((t) => t.dtype));
  Object.values(named).forEach((t) => t.dispose());
  return out;
}

const xpronet = (overrides: Record<string, unknown> = {}) => {
  const m = radkit.xpronet({ tokenizer, ...TINY, ...overrides });
  m.setupOptimizer({ kind: 'adam', lr: 1e-3 });
  return m;
};

afterEach(() => testing().probeOutOfMemoryAbove(-1));

describe('devices', () => {
  it('lists the CPU as usable and says why CUDA is not', () => {
    const list = radkit.devices();
    expect(list[0]).toMatchObject({ name: 'cpu', usable: true });
    if (!cuda) expect(list.find((d) => d.name === 'cuda')).toMatchObject({ usable: false, reason: expect.stringMatching(/without CUDA|no device is visible/) });
  });

  it.skipIf(cuda)('checkDevice names the device and why it cannot be used; a malformed name is refused', () => {
    expect(radkit.checkDevice('cpu')).toBe('cpu');
    for (const d of ['cuda', 'cuda:1']) {
      let err: unknown;
      try {
        radkit.checkDevice(d, 'train');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ArgumentError);
      expect(err).toMatchObject({ code: 'ERR_DEVICE', fn: 'train', message: expect.stringMatching(new RegExp(`^train: .*${d === 'cuda' ? 'cuda:0' : 'cuda:1'}.*(built without CUDA|no device is visible).*radkit doctor`)) });
    }
    expect(() => radkit.checkDevice('gpu0')).toThrow(/device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu0'/);
  });

  it.skipIf(cuda)('Model.to(cuda) fails before anything moves; the model still trains where it was', async () => {
    const m = xpronet();
    const b = batch();
    const before = snapshot(m);
    expect(() => m.to('cuda')).toThrow(expect.objectContaining({ code: 'ERR_DEVICE' }));
    expect(m.device).toBe('cpu');
    expect(snapshot(m)).toEqual(before);
    await m.trainStep(b);
    expect(snapshot(m)).not.toEqual(before);
    m.dispose();
    b.dispose();
  });

  it("to('cpu') keeps everything; to('cpu', 'float64') converts weights and optimizer state, and float64 batches train", async () => {
    const m = xpronet();
    const b = batch();
    await m.trainStep(b); // Adam moments exist now
    const before = snapshot(m);
    m.to('cpu');
    expect(m.device).toBe('cpu');
    expect(snapshot(m)).toEqual(before);
    m.to('cpu', 'float64');
    expect(m.dtype).toBe('float64');
    expect(dtypes(m)).toEqual(new Set(['float64']));
    // float32 images are refused by a float64 model (no silent conversion) ...
    await expect(m.trainStep(b)).rejects.toMatchObject({ code: 'ERR_DTYPE' });
    // ... float64 ones train, with the converted moments (a float32 moment would fail the update).
    const b64 = batch(4, Float64Array.from(pixels(4)));
    expect(b64.images!.dtype).toBe('float64');
    const r = await m.trainStep(b64);
    expect(Number.isFinite(r.loss)).toBe(true);
    m.to('cpu', 'float32');
    expect(dtypes(m)).toEqual(new Set(['float32']));
    await m.trainStep(b);
    b64.dispose();
    m.dispose();
    b.dispose();
  });

  it('uint8 images are widened to [0, 1] on the model: the same loss as the float32 batch', async () => {
    const m = xpronet();
    const bytes = Uint8Array.from({ length: 4 * 32 * 32 }, (_, i) => Math.round(((i * 37) % 101) * 2.5));
    const f = batch(4, Float32Array.from(bytes, (v) => v / 255));
    const u = batch(4, bytes);
    expect(u.images!.dtype).toBe('uint8');
    const a = await m.evalLoss(f);
    const c = await m.evalLoss(u);
    expect(Math.abs(a.loss - c.loss)).toBeLessThan(1e-6 * Math.abs(a.loss));
    m.dispose();
    f.dispose();
    u.dispose();
  });
});

describe('mixed precision', () => {
  it('options.precision is checked: unknown names, float16 off CUDA and autocast over float64 weights are refused', async () => {
    const m = xpronet();
    const b = batch();
    await expect(m.trainStep(b, { precision: 'half' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/precision must be 'float32', 'bfloat16' or 'float16'/) });
    if (!cuda) await expect(m.trainStep(b, { precision: 'float16' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/float16.*CUDA only.*on cpu/) });
    m.to('cpu', 'float64');
    const b64 = batch(4, Float64Array.from(pixels(4)));
    await expect(m.trainStep(b64, { precision: 'bfloat16' })).rejects.toMatchObject({ message: expect.stringMatching(/float32 master weights.*float64/) });
    m.dispose();
    b.dispose();
    b64.dispose();
  });

  // Tolerances: bfloat16 keeps 8 significant bits (relative rounding 2^-9 = 0.2%); a forward pass
  // through a few dozen rounded matrix products and convolutions lands within about 1% of the loss
  // in float32, and the gradient norm within a few percent. Stated bounds: loss 2%, gradient norm 10%.
  it('a bfloat16 CPU step stays within 2% (loss) and 10% (gradient norm) of float32, and the master weights stay float32', async () => {
    const a = xpronet();
    const c = xpronet();
    expect(snapshot(a)).toEqual(snapshot(c));
    const b = batch();
    radkit.manualSeed(11);
    const f32 = await a.trainStep(b, { clipNorm: 0 });
    radkit.manualSeed(11);
    const bf16 = await c.trainStep(b, { clipNorm: 0, precision: 'bfloat16' });
    expect(Math.abs(bf16.loss - f32.loss) / Math.abs(f32.loss)).toBeLessThan(0.02);
    expect(Math.abs(bf16.gradNorm - f32.gradNorm) / f32.gradNorm).toBeLessThan(0.1);
    // Autocast ran: the numbers are not the float32 ones.
    expect(bf16.loss).not.toBe(f32.loss);
    expect(c.dtype).toBe('float32');
    expect(dtypes(c)).toEqual(new Set(['float32']));
    // The updates agree where the gradient is not tiny: Adam's first step moves each weight by about
    // lr * sign(gradient), so most weights move the same way in both.
    const w0 = snapshot(xpronet());
    const wa = snapshot(a);
    const wc = snapshot(c);
    let same = 0;
    let moved = 0;
    for (const k of Object.keys(w0))
      for (let i = 0; i < w0[k].length; i++) {
        const da = wa[k][i] - w0[k][i];
        const dc = wc[k][i] - w0[k][i];
        if (Math.abs(da) > 5e-4) {
          moved++;
          if (Math.sign(da) === Math.sign(dc)) same++;
        }
      }
    expect(moved).toBeGreaterThan(100);
    expect(same / moved).toBeGreaterThan(0.9);
    [a, c].forEach((m) => m.dispose());
    b.dispose();
  });

  it('a model trains under bfloat16: the loss on a fixed batch falls', async () => {
    const m = xpronet();
    const b = batch();
    const first = (await m.trainStep(b, { precision: 'bfloat16' })).loss;
    let last = first;
    for (let i = 0; i < 25; i++) last = (await m.trainStep(b, { precision: 'bfloat16' })).loss;
    expect(last).toBeLessThan(0.7 * first);
    expect(dtypes(m)).toEqual(new Set(['float32']));
    m.dispose();
    b.dispose();
  });
});

describe('out of memory during a step', () => {
  const probeBatch = (rows: number) => new TensorBatch({ images: { data: new Float32Array(rows * 16).fill(0.5), shape: [rows, 1, 1, 4, 4] } });

  it('is an OutOfMemoryError naming the model, device, precision and the batch sizes; the model is as it was and a smaller batch then works', async () => {
    const m = Model.create('testing-probe', { target: 1 });
    m.setupOptimizer({ kind: 'adam', lr: 0.1 });
    const small = probeBatch(4);
    const big = probeBatch(8);
    await m.trainStep(small);
    testing().probeOutOfMemoryAbove(4);
    const before = snapshot(m);
    radkit.manualSeed(3);
    let err: unknown;
    try {
      await m.trainStep(big);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OutOfMemoryError);
    expect(err).toMatchObject({
      code: 'ERR_OUT_OF_MEMORY',
      message: expect.stringMatching(/out of memory in a training step of this testing-probe model on cpu at precision float32 \(batch: images \[8, 1, 1, 4, 4\] float32\): CUDA out of memory.*the model is as it was/),
    });
    // Weights, the buffer the failed forward pass changed, and the random generator are back.
    expect(snapshot(m)).toEqual(before);
    const drawn = Tensor.randn([3]);
    radkit.manualSeed(3);
    const fresh = Tensor.randn([3]);
    expect(Array.from(drawn.toArray() as Float32Array)).toEqual(Array.from(fresh.toArray() as Float32Array));
    // The optimizer state too: the next small step matches a twin's that never failed.
    const twin = Model.create('testing-probe', { target: 1 });
    twin.setupOptimizer({ kind: 'adam', lr: 0.1 });
    await twin.trainStep(small);
    await m.trainStep(small);
    await twin.trainStep(small);
    expect(snapshot(m)).toEqual(snapshot(twin));
    [drawn, fresh, small, big].forEach((t) => t.dispose());
    [m, twin].forEach((x) => x.dispose());
  });
});
