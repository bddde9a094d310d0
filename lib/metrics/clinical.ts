/**
 * Clinical efficacy: precision / recall / F1 of the 14 CheXpert observations of generated reports
 * against those of the references, micro, macro and example-based side by side.
 *
 * A label counts as positive when it is 'positive', or 'uncertain' under `uncertain: 'positive'`;
 * 'negative', 'absent' (not mentioned) and, under `uncertain: 'negative'` (the default),
 * 'uncertain' count as negative. A ratio whose denominator is 0 counts as 0 (scikit-learn's
 * `zero_division=0`). Macro averages the per-observation P, R and F1 (F1 per observation from its
 * own P and R); example-based averages per-report P, R and F1 over reports.
 */
import { ArgumentError } from '../errors.js';
import { CHEXPERT_OBSERVATIONS, type LabelValue, type Observation, type ReportLabels } from '../text/chexpert.js';

export type UncertainPolicy = 'negative' | 'positive';

export interface ClinicalOptions {
  /** How 'uncertain' labels count (default 'negative'). */
  uncertain?: UncertainPolicy;
}

export interface PRF {
  precision: number;
  recall: number;
  f1: number;
}

export interface ObservationScore extends PRF {
  tp: number;
  fp: number;
  fn: number;
  tn: number;
  /** Number of references positive for the observation. */
  support: number;
}

export interface ClinicalResult {
  n: number;
  policy: {
    uncertain: UncertainPolicy;
    positiveValues: LabelValue[];
    observations: number;
    zeroDivision: 0;
    description: string;
  };
  micro: PRF & { tp: number; fp: number; fn: number };
  macro: PRF;
  exampleBased: PRF;
  perObservation: Record<Observation, ObservationScore>;
}

const VALUES: readonly LabelValue[] = ['positive', 'negative', 'uncertain', 'absent'];

const ratio = (a: number, b: number): number => (b === 0 ? 0 : a / b);
const f1Of = (p: number, r: number): number => (p + r === 0 ? 0 : (2 * p * r) / (p + r));

function checkLabels(name: string, v: unknown): ReportLabels[] {
  if (!Array.isArray(v)) throw new ArgumentError(`metrics.clinical: expected ${name} to be an array of label records, got ${typeof v}`, 'ERR_INVALID_ARG', 'metrics.clinical');
  v.forEach((rec, i) => {
    if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) {
      throw new ArgumentError(`metrics.clinical: expected ${name}[${i}] to be a record of the 14 CheXpert observations, got ${rec === null ? 'null' : typeof rec}`, 'ERR_INVALID_ARG', 'metrics.clinical');
    }
    for (const o of CHEXPERT_OBSERVATIONS) {
      const x = (rec as Record<string, unknown>)[o];
      if (!VALUES.includes(x as LabelValue)) {
        throw new ArgumentError(
          `metrics.clinical: expected ${name}[${i}]['${o}'] to be one of ${VALUES.join(' | ')}, got ${JSON.stringify(x)}`,
          'ERR_INVALID_ARG',
          'metrics.clinical',
        );
      }
    }
  });
  return v as ReportLabels[];
}

/** Scores hypothesis labels against reference labels over the 14 CheXpert observations. */
export function clinical(hypLabels: ReportLabels[], refLabels: ReportLabels[], options: ClinicalOptions = {}): ClinicalResult {
  const hyp = checkLabels('hypLabels', hypLabels);
  const ref = checkLabels('refLabels', refLabels);
  if (hyp.length !== ref.length) {
    throw new ArgumentError(`metrics.clinical: expected as many hypothesis as reference label records, got ${hyp.length} and ${ref.length}`, 'ERR_INVALID_ARG', 'metrics.clinical');
  }
  if (hyp.length === 0) throw new ArgumentError('metrics.clinical: expected at least one label record, got none', 'ERR_INVALID_ARG', 'metrics.clinical');
  const uncertain = options.uncertain ?? 'negative';
  if (uncertain !== 'negative' && uncertain !== 'positive') {
    throw new ArgumentError(`metrics.clinical: expected options.uncertain to be 'negative' or 'positive', got ${JSON.stringify(uncertain)}`, 'ERR_INVALID_ARG', 'metrics.clinical');
  }
  const pos = (v: LabelValue): boolean => v === 'positive' || (v === 'uncertain' && uncertain === 'positive');

  const per = {} as Record<Observation, ObservationScore>;
  for (const o of CHEXPERT_OBSERVATIONS) per[o] = { tp: 0, fp: 0, fn: 0, tn: 0, support: 0, precision: 0, recall: 0, f1: 0 };
  let exP = 0;
  let exR = 0;
  let exF = 0;
  for (let i = 0; i < hyp.length; i++) {
    let nh = 0;
    let nr = 0;
    let both = 0;
    for (const o of CHEXPERT_OBSERVATIONS) {
      const h = pos(hyp[i][o]);
      const r = pos(ref[i][o]);
      const s = per[o];
      if (h && r) s.tp++;
      else if (h) s.fp++;
      else if (r) s.fn++;
      else s.tn++;
      if (h) nh++;
      if (r) nr++;
      if (h && r) both++;
    }
    const p = ratio(both, nh);
    const r = ratio(both, nr);
    exP += p;
    exR += r;
    exF += f1Of(p, r);
  }
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let mP = 0;
  let mR = 0;
  let mF = 0;
  for (const o of CHEXPERT_OBSERVATIONS) {
    const s = per[o];
    s.support = s.tp + s.fn;
    s.precision = ratio(s.tp, s.tp + s.fp);
    s.recall = ratio(s.tp, s.tp + s.fn);
    s.f1 = f1Of(s.precision, s.recall);
    tp += s.tp;
    fp += s.fp;
    fn += s.fn;
    mP += s.precision;
    mR += s.recall;
    mF += s.f1;
  }
  const k = CHEXPERT_OBSERVATIONS.length;
  const n = hyp.length;
  const microP = ratio(tp, tp + fp);
  const microR = ratio(tp, tp + fn);
  return {
    n,
    policy: {
      uncertain,
      positiveValues: uncertain === 'positive' ? ['positive', 'uncertain'] : ['positive'],
      observations: k,
      zeroDivision: 0,
      description:
        `positive = ${uncertain === 'positive' ? "'positive' or 'uncertain'" : "'positive' only ('uncertain' counts as negative)"}; ` +
        `'negative' and 'absent' count as negative; ${k} CheXpert observations; 0/0 counts as 0; ` +
        'macro = mean of per-observation P/R/F1; example-based = mean of per-report P/R/F1',
    },
    micro: { precision: microP, recall: microR, f1: f1Of(microP, microR), tp, fp, fn },
    macro: { precision: mP / k, recall: mR / k, f1: mF / k },
    exampleBased: { precision: exP / n, recall: exR / n, f1: exF / n },
    perObservation: per,
  };
}
