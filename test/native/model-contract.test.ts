// The native model contract every system gets: batches with named extras and unpaired rows, 4-state
// labels, the training position, freezing, named weights in and out, ragged generation. Checked
// on "testing-probe", a two-parameter system that reports what reached it as loss parts.
import { describe, expect, it } from 'vitest';
import { Model, TensorBatch } from '../../lib/models/model.js';
import { Tensor } from '../../lib/tensor.js';

const images = (B: number) => ({ data: new Float32Array(B * 4), shape: [B, 1, 1, 2, 2] as [number, number, 1, number, number] });
const tokens = (B: number) => ({ data: new Int32Array(B * 3).fill(5), mask: new Uint8Array(B * 3).fill(1), shape: [B, 3] as [number, number] });
const probe = () => Model.create('testing-probe', { target: 1 });

describe('native model contract (testing-probe)', () => {
  it('refuses config keys the system never reads, listing the ones it knows', () => {
    expect(() => Model.create('testing-probe', { target: 1, taget: 2 })).toThrow(/testing-probe does not know the config key 'taget' \(it reads: .*target/);
    expect(() => Model.create('xpronet', { vocabSize: 20, dModle: 8 })).toThrow(/xpronet does not know the config key 'dModle' \(it reads: .*dModel/);
  });

  it('carries named extras and 4-state labels, and checks them', async () => {
    const m = probe();
    const states = new Int32Array(2 * 14);
    states.set([0, 1, 2, 3, 3, 3]);
    const b = new TensorBatch({ images: images(2), tokens: tokens(2), labelStates: { data: states, shape: [2, 14] } }, { extras: { weights: { data: new Float32Array([1, 2, 3.5]), shape: [3] } } });
    const r = await m.evalLoss(b);
    expect(r.parts).toMatchObject({ imageRows: 2, tokenRows: 2, paired: 1, extras: 1, extraSum: 6.5, state0: 2 * 14 - 5, state1: 1, state2: 1, state3: 3 });
    b.dispose();
    const bad = new TensorBatch({ tokens: tokens(1), labelStates: { data: new Int32Array(14).fill(4), shape: [1, 14] } });
    await expect(m.evalLoss(bad)).rejects.toThrow(/label states 0 absent, 1 positive, 2 negative, 3 uncertain; got values in \[4, 4\]/);
    bad.dispose();
    m.dispose();
  });

  it('accepts images and reports with different row counts only when unpaired', async () => {
    const m = probe();
    const paired = new TensorBatch({ images: images(3), tokens: tokens(5) });
    await expect(m.evalLoss(paired)).rejects.toThrow(/images 3 vs tokens 5 \(set paired: false/);
    paired.dispose();
    const unpaired = new TensorBatch({ images: images(3), tokens: tokens(5), labelStates: { data: new Int32Array(5 * 14), shape: [5, 14] } }, { paired: false });
    expect((await m.evalLoss(unpaired)).parts).toMatchObject({ imageRows: 3, tokenRows: 5, paired: 0 });
    unpaired.dispose();
    // Labels describe the reports: 3 label rows for 5 reports is an error.
    const wrong = new TensorBatch({ images: images(3), tokens: tokens(5), labelStates: { data: new Int32Array(3 * 14), shape: [3, 14] } }, { paired: false });
    await expect(m.evalLoss(wrong)).rejects.toThrow(/batch.labels has 3 rows but the batch has 5 reports/);
    wrong.dispose();
    m.dispose();
  });

  it('reports the training position to the system each step', async () => {
    const m = probe();
    m.setupOptimizer({ kind: 'adam', lr: 0.1 });
    const b = new TensorBatch({ images: images(1) });
    expect((await m.trainStep(b)).parts).toMatchObject({ step: -1, totalSteps: -1 });
    expect((await m.trainStep(b, { step: 3, totalSteps: 10 })).parts).toMatchObject({ step: 3, totalSteps: 10 });
    await expect(m.trainStep(b, { step: 10, totalSteps: 10 })).rejects.toThrow(/totalSteps must be > options.step/);
    b.dispose();
    m.dispose();
  });

  it('freezes parameters by prefix before the optimizer exists', async () => {
    const m = probe();
    expect(() => m.freeze(['nothing.'])).toThrow(/no parameter of this testing-probe model starts with 'nothing.'/);
    expect(m.freeze(['body.'])).toEqual(['body.weight']);
    const r = m.setupOptimizer({ kind: 'adam', lr: 0.1 });
    expect(r.otherParameters).toBe(1);
    expect(() => m.freeze(['head.'])).toThrow(/before setupOptimizer/);
    const b = new TensorBatch({ images: images(1) });
    for (let i = 0; i < 3; i++) await m.trainStep(b);
    const w = m.namedTensors();
    expect(Array.from(w['body.weight'].toArray() as Float32Array)).toEqual([0, 0, 0]);
    expect((w['head.weight'].toArray() as Float32Array)[0]).toBeGreaterThan(0.2);
    Object.values(w).forEach((t) => t.dispose());
    b.dispose();
    m.dispose();
  });

  it('copies named weights in, skipping what does not fit when asked, all-or-nothing otherwise', () => {
    const m = probe();
    const t = {
      'head.weight': Tensor.from(new Float32Array([4, 5]), [2]),
      'body.weight': Tensor.from(new Float32Array([1, 2]), [2]),
      'other.weight': Tensor.from(new Float32Array([9]), [1]),
    };
    expect(() => m.loadTensors('', t)).toThrow(/'body.weight' has shape \[2\] but body.weight is \[3\]/);
    expect(Array.from(m.namedTensors()['head.weight'].toArray() as Float32Array)).toEqual([0, 0]); // nothing written
    const r = m.loadTensors('', t, { skipMismatched: true });
    expect(r).toEqual({ loaded: 1, missing: ['body.count', 'body.weight'], unexpected: ['other.weight'], skipped: [{ name: 'body.weight', reason: 'shape [2] does not fit [3]' }] });
    const names = m.namedTensors();
    expect(Object.keys(names).sort()).toEqual(['body.count', 'body.weight', 'head.weight']);
    expect(Array.from(names['head.weight'].toArray() as Float32Array)).toEqual([4, 5]);
    // Copies: changing one does not change the model.
    names['head.weight'].dispose();
    Object.values(names).forEach((x) => x.dispose());
    Object.values(t).forEach((x) => x.dispose());
    m.dispose();
  });

  it('generates ragged token lists and refuses unknown options', async () => {
    const m = probe();
    const b = new TensorBatch({ images: images(3) });
    const g = await m.generate(b, { maxLength: 2 });
    expect(g.tokens).toEqual([[7], [7, 7], [7, 7]]);
    await expect(m.generate(b, { labelSource: 'oracle' } as never)).rejects.toThrow(/unknown generation option 'labelSource' \(switches of one system go in options.systemOptions\)/);
    await expect(m.generate(b, { beams: 0 })).rejects.toThrow(/beams/);
    b.dispose();
    m.dispose();
  });
});
