import { describe, expect, it } from 'vitest';
import { clinical } from '../../lib/metrics/clinical.js';
import { retrieval } from '../../lib/metrics/retrieval.js';
import { CHEXPERT_OBSERVATIONS, type LabelValue, type Observation, type ReportLabels } from '../../lib/text/chexpert.js';
import { ArgumentError } from '../../lib/errors.js';

function labels(values: Partial<Record<Observation, LabelValue>>): ReportLabels {
  const r = {} as ReportLabels;
  for (const o of CHEXPERT_OBSERVATIONS) r[o] = values[o] ?? 'absent';
  return r;
}

describe('metrics.clinical', () => {
  // report 1: hyp {Cardiomegaly, Edema}, ref {Cardiomegaly, Pleural Effusion}
  // report 2: hyp {Edema(uncertain)}, ref {Edema}
  const hyp = [labels({ Cardiomegaly: 'positive', Edema: 'positive' }), labels({ Edema: 'uncertain' })];
  const ref = [labels({ Cardiomegaly: 'positive', 'Pleural Effusion': 'positive' }), labels({ Edema: 'positive' })];

  it('computes micro, macro and example-based scores by hand (uncertain = negative)', () => {
    const r = clinical(hyp, ref, { uncertain: 'negative' });
    // micro: TP 1 (cardiomegaly), FP 1 (edema in 1), FN 2 (effusion in 1, edema in 2)
    expect(r.micro).toMatchObject({ tp: 1, fp: 1, fn: 2 });
    expect(r.micro.precision).toBeCloseTo(0.5, 12);
    expect(r.micro.recall).toBeCloseTo(1 / 3, 12);
    expect(r.micro.f1).toBeCloseTo(0.4, 12);
    // macro: cardiomegaly P=R=F=1; edema P=0 R=0; effusion 0; the other 11 are 0 (0/0 = 0)
    expect(r.macro.precision).toBeCloseTo(1 / 14, 12);
    expect(r.macro.f1).toBeCloseTo(1 / 14, 12);
    // example-based: report 1 P=1/2 R=1/2 F=1/2; report 2 nothing predicted: P=0 R=0 F=0
    expect(r.exampleBased.precision).toBeCloseTo(0.25, 12);
    expect(r.exampleBased.recall).toBeCloseTo(0.25, 12);
    expect(r.exampleBased.f1).toBeCloseTo(0.25, 12);
    expect(r.policy.uncertain).toBe('negative');
    expect(r.policy.positiveValues).toEqual(['positive']);
    expect(r.perObservation.Cardiomegaly).toMatchObject({ tp: 1, fp: 0, fn: 0, support: 1, f1: 1 });
  });

  it('counts uncertain as positive under uncertain = positive', () => {
    const r = clinical(hyp, ref, { uncertain: 'positive' });
    expect(r.micro).toMatchObject({ tp: 2, fp: 1, fn: 1 });
    expect(r.exampleBased.precision).toBeCloseTo((0.5 + 1) / 2, 12);
    expect(r.policy.description).toMatch(/uncertain/);
  });

  it('is symmetric in P and R when hypotheses and references are swapped', () => {
    const a = clinical(hyp, ref);
    const b = clinical(ref, hyp);
    expect(a.micro.precision).toBeCloseTo(b.micro.recall, 12);
    expect(a.micro.f1).toBeCloseTo(b.micro.f1, 12);
    expect(a.exampleBased.f1).toBeCloseTo(b.exampleBased.f1, 12);
  });

  it('scores perfect agreement 1 on the observations present', () => {
    const r = clinical(ref, ref);
    expect(r.micro.f1).toBe(1);
    expect(r.exampleBased.f1).toBe(1);
  });

  it('rejects bad inputs with clear errors', () => {
    expect(() => clinical(hyp, [ref[0]])).toThrow(/2 and 1/);
    expect(() => clinical([{ ...hyp[0], Edema: 'maybe' as LabelValue }], [ref[0]])).toThrow(/\['Edema'\]/);
    expect(() => clinical(hyp, ref, { uncertain: 'ignore' as 'negative' })).toThrow(ArgumentError);
    expect(() => clinical('x' as unknown as ReportLabels[], ref)).toThrow(ArgumentError);
  });
});

describe('metrics.retrieval', () => {
  it('computes R@K both ways from a hand-made matrix', () => {
    // image 0: match 0.9 is best (rank 1); image 1: 0.2 < 0.5 and 0.3 (rank 3); image 2: 0.7 vs 0.8 (rank 2)
    const s = [
      [0.9, 0.1, 0.0],
      [0.5, 0.2, 0.3],
      [0.1, 0.8, 0.7],
    ];
    const r = retrieval(s, { k: [1, 2, 3] });
    expect(r.imageToReport.recall).toEqual({ 'R@1': 1 / 3, 'R@2': 2 / 3, 'R@3': 1 });
    // columns: report 0: 0.9 best (1); report 1: 0.2 vs 0.1, 0.8 (2); report 2: 0.7 vs 0.0, 0.3 (1)
    expect(r.reportToImage.recall).toEqual({ 'R@1': 2 / 3, 'R@2': 1, 'R@3': 1 });
    expect(r.imageToReport.medianRank).toBe(2);
  });

  it('accepts a flat typed matrix and counts ties pessimistically by default', () => {
    const data = new Float32Array([1, 1, 0, 1]);
    const flat = retrieval({ data, rows: 2, cols: 2 }, { k: [1] });
    expect(flat.imageToReport.recall['R@1']).toBe(0.5); // image 0 ties with report 1
    expect(retrieval({ data, rows: 2, cols: 2 }, { k: [1], ties: 'optimistic' }).imageToReport.recall['R@1']).toBe(1);
    expect(flat.ties).toBe('pessimistic');
  });

  it('identity similarity gives R@1 = 1; defaults to K = 1, 5, 10', () => {
    const n = 12;
    const s = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
    const r = retrieval(s);
    expect(r.k).toEqual([1, 5, 10]);
    expect(r.imageToReport.recall['R@1']).toBe(1);
    expect(r.reportToImage.recall['R@10']).toBe(1);
  });

  it('rejects non-square or malformed matrices', () => {
    expect(() => retrieval([[1, 2]])).toThrow(/square/);
    expect(() => retrieval({ data: new Float64Array(5), rows: 2, cols: 2 })).toThrow(/rows \* cols = 4, got 5/);
    expect(() => retrieval([[NaN]])).toThrow(ArgumentError);
    expect(() => retrieval([[1]], { k: [0] })).toThrow(ArgumentError);
  });
});
