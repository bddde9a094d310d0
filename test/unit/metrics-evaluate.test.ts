import { describe, expect, it } from 'vitest';
import { evaluate, r2genTruncate } from '../../lib/metrics/evaluate.js';
import * as metrics from '../../lib/metrics/index.js';
import { CHEXPERT_OBSERVATIONS, type ReportLabels } from '../../lib/text/chexpert.js';
import { ArgumentError } from '../../lib/errors.js';

const hyps = ['the heart is normal in size . there is a small left pleural effusion .', 'no acute findings .'];
const refs = [
  ['the heart is enlarged . there is a left pleural effusion .'],
  ['no acute cardiopulmonary abnormality .', 'the lungs are clear .'],
];

describe('metrics.evaluate', () => {
  it('returns every metric and records the settings that change numbers', () => {
    const r = evaluate(hyps, refs, { uncertain: 'positive' });
    expect(r.n).toBe(2);
    expect(r.bleu?.bleu1).toBeCloseTo(metrics.bleu(hyps, refs)[0], 12);
    expect(r.rougeL).toBeCloseTo(metrics.rougeL(hyps, refs), 12);
    expect(r.ciderD).toBeCloseTo(metrics.ciderD(hyps, refs), 12);
    expect(r.meteor).toBeCloseTo(metrics.meteor(hyps, refs), 12);
    expect(r.clinical?.policy.uncertain).toBe('positive');
    expect(r.settings.referenceMode).toBe('full');
    expect(r.settings.tokenisation).toMatch(/whitespace/);
    expect(r.settings.meteor?.paraphrase).toBe(false);
    expect(r.settings.clinical?.refLabels).toMatch(/first reference/);
    expect(r.settings.referencesPerItem).toEqual({ min: 1, max: 2 });
    expect(JSON.parse(JSON.stringify(r))).toEqual(r); // plain JSON
    // the labeler found the effusion in both first report texts
    expect(r.clinical?.perObservation['Pleural Effusion'].tp).toBe(1);
  });

  it('truncates references R2Gen-style to maxSeqLength - 1 tokens', () => {
    expect(r2genTruncate('a b c d e', 4)).toBe('a b c');
    const r = evaluate(['a b c'], [['a b c d e']], { referenceMode: 'r2gen-truncated', maxSeqLength: 4, metrics: ['bleu'] });
    expect(r.bleu?.referenceLength).toBe(3);
    expect(r.settings.maxSeqLength).toBe(4);
    expect(r.meteor).toBeUndefined();
  });

  it('uses given labels or a given labeler and adds retrieval when a matrix is given', () => {
    let calls = 0;
    const lab = (s: string): ReportLabels => {
      calls++;
      const out = {} as ReportLabels;
      for (const o of CHEXPERT_OBSERVATIONS) out[o] = 'absent';
      if (s.includes('effusion')) out['Pleural Effusion'] = 'positive';
      return out;
    };
    const r = evaluate(hyps, refs, { metrics: ['clinical'], labeler: lab, similarity: [[1, 0], [0, 1]] });
    expect(calls).toBe(4);
    expect(r.settings.clinical?.hypLabels).toMatch(/user labeler/);
    expect(r.retrieval?.imageToReport.recall['R@1']).toBe(1);
  });

  it('rejects bad options', () => {
    expect(() => evaluate(hyps, refs, { referenceMode: 'short' as 'full' })).toThrow(ArgumentError);
    expect(() => evaluate(hyps, refs, { metrics: ['spice' as 'bleu'] })).toThrow(/spice/);
    expect(() => evaluate(hyps, [refs[0]])).toThrow(/2 hypotheses and 1 reference lists/);
  });
});
