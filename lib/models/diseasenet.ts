/**
 * OTDRG stage 2 (seed 002 section 3.4, "diseasenet"): the disease-state predictor. The ResNet
 * encoder (start it from an `ircp` run with `--init RUN:encoder.`) and a linear head on each patch
 * feature, pooled over the patches (`stateLseR`: 0 the mean, r > 0 log-sum-exp) to 14 x 4 logits,
 * one 4-way softmax per CheXpert observation (eq. 9: absent, positive, negative, uncertain), trained
 * with the focal loss of eq. 10 (gamma 2 by default, recorded in the configuration). Its
 * `encoder.*` and `classifier.*` start `otdrg` (`--init RUN`), whose predicted states at validation
 * and test come from this head. Evaluation: state accuracy and macro-F1 (over the four states) per
 * observation, against always answering the observation's most frequent training state.
 */
import type { R2GenDataset } from '../data/r2gen.js';
import { ArgumentError, RadkitError } from '../errors.js';
import { CHEXPERT_OBSERVATIONS, LABEL_STATES } from '../text/chexpert.js';
import { splitLoader } from '../train/evaluate.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';
import type { NativeConfig } from '../../typings/model.js';
import { Model, TensorBatch } from './model.js';
import { encoderDefaults, mergeConfig, OTDRG_PRESETS, type OtdrgPreset } from './otdrg-common.js';
import { createOptions, registerModelKind, type Evaluation, type EvaluationOptions } from './registry.js';

function configDefaults(preset: string): NativeConfig {
  return { ...encoderDefaults(preset, 'diseasenet'), gamma: 2, stateLseR: 0, seed: 0 };
}

export interface DiseaseNetOptions {
  preset?: OtdrgPreset;
  seed?: number;
  /** Any configuration key (gamma, stateLseR, resnetWidths, resnetBlocks). */
  [key: string]: unknown;
}

/** Creates a `diseasenet` predictor (dispose it when done). */
export function diseasenet(options: DiseaseNetOptions = {}): Model {
  const { preset, ...rest } = options;
  return Model.create('diseasenet', mergeConfig('diseasenet', configDefaults(preset ?? 'small'), rest), createOptions(DISEASENET));
}

/** The most frequent training state of each observation (ties: the lower state). */
export function majorityStates(dataset: R2GenDataset): number[] {
  const counts = CHEXPERT_OBSERVATIONS.map(() => [0, 0, 0, 0]);
  for (const e of dataset.splits.train) if (e.labels) CHEXPERT_OBSERVATIONS.forEach((o, k) => counts[k][LABEL_STATES[e.labels![o]]]++);
  return counts.map((c) => c.indexOf(Math.max(...c)));
}

export interface StateScores {
  /** Mean over observations of the state accuracy. */
  accuracy: number;
  /** Mean over observations of the macro-F1 over the states present in the truth or the prediction. */
  macroF1: number;
  perObservation: Record<string, { accuracy: number; macroF1: number }>;
}

/** Accuracy and macro-F1 of predicted states against true ones (row-major [n, 14]). */
export function stateScores(predicted: ArrayLike<number>, truth: ArrayLike<number>): StateScores {
  const n = truth.length / 14;
  const perObservation: StateScores['perObservation'] = {};
  let acc = 0;
  let f1 = 0;
  CHEXPERT_OBSERVATIONS.forEach((name, k) => {
    const tp = [0, 0, 0, 0], fp = [0, 0, 0, 0], fn = [0, 0, 0, 0];
    let right = 0;
    for (let i = 0; i < n; i++) {
      const p = predicted[i * 14 + k], t = truth[i * 14 + k];
      if (p === t) {
        right++;
        tp[t]++;
      } else {
        fp[p]++;
        fn[t]++;
      }
    }
    const f1s = [0, 1, 2, 3].filter((s) => tp[s] + fp[s] + fn[s] > 0).map((s) => (2 * tp[s]) / (2 * tp[s] + fp[s] + fn[s]));
    const o = { accuracy: n ? right / n : NaN, macroF1: f1s.length ? f1s.reduce((a, b) => a + b, 0) / f1s.length : NaN };
    perObservation[name] = o;
    acc += o.accuracy / 14;
    f1 += o.macroF1 / 14;
  });
  return { accuracy: acc, macroF1: f1, perObservation };
}

/** Predicted states of a split (row-major [n, 14]) with the true ones, from a model whose encode() gives `states`. */
export async function predictSplitStates(model: Model, tokenizer: ReportTokenizer, dataset: R2GenDataset, o: EvaluationOptions, key = 'states'): Promise<{ predicted: number[]; truth: number[]; ids: string[] }> {
  const loader = splitLoader(dataset, o, tokenizer, o.batchSize ?? 32);
  const predicted: number[] = [];
  const truth: number[] = [];
  const ids: string[] = [];
  for await (const batch of loader) {
    if (o.signal?.aborted) throw new RadkitError(`${model.kind} evaluation: aborted`, 'ERR_ABORTED', 'evaluate', { cause: o.signal.reason });
    if (!batch.labelStates) throw new ArgumentError(`${model.kind}: the ${o.split} split has no CheXpert labels to score against`, 'ERR_INVALID_ARG', 'evaluate');
    const tb = new TensorBatch({ images: batch.images });
    try {
      const enc = await model.encode(tb);
      predicted.push(...Array.from(enc[key].toArray() as BigInt64Array, Number));
      Object.values(enc).forEach((t) => t.dispose());
    } finally {
      tb.dispose();
    }
    truth.push(...batch.labelStates.data);
    ids.push(...batch.ids);
  }
  return { predicted, truth, ids };
}

/** The predictor's scores on a split and those of the majority-state baseline. */
export async function diseasenetEvaluation(model: Model, tokenizer: ReportTokenizer, dataset: R2GenDataset, o: EvaluationOptions): Promise<Evaluation> {
  const { predicted, truth } = await predictSplitStates(model, tokenizer, dataset, o);
  const majority = majorityStates(dataset);
  const baseline = stateScores(truth.map((_, i) => majority[i % 14]), truth);
  const s = stateScores(predicted, truth);
  return {
    headline: { accuracy: s.accuracy, macroF1: s.macroF1, majorityAccuracy: baseline.accuracy, majorityMacroF1: baseline.macroF1 },
    record: { perObservation: s.perObservation, majority: { states: majority, perObservation: baseline.perObservation }, n: truth.length / 14 },
  };
}

export const DISEASENET = registerModelKind({
  name: 'diseasenet',
  summary: 'OTDRG stage 2: 14 x 4-way disease-state predictor, focal loss (seed 002 eq. 10; --init RUN:encoder.)',
  task: 'classification',
  presets: OTDRG_PRESETS,
  configDefaults,
  create: (c) =>
    diseasenet({
      preset: c.preset as OtdrgPreset,
      seed: c.seed,
      ...(c.flags.gamma !== undefined ? { gamma: c.flags.gamma } : {}),
      ...(c.flags['state-lse-r'] !== undefined ? { stateLseR: c.flags['state-lse-r'] } : {}),
    }),
  recipe: () => ({ optimizer: 'adamw', lr: 1e-3, visualLr: 1e-3, weightDecay: 0.01, schedule: { kind: 'cosine', warmupFraction: 0 }, clipNorm: 1, batchSize: 32, initBatches: 0 }),
  metric: 'macroF1',
  needsLabels: () => true,
  views: (ds) => (ds.style === 'iu' ? 2 : 1),
  evaluate: diseasenetEvaluation,
  trainFlags: {
    gamma: { type: 'number', min: 0, default: 2, help: 'focal loss gamma (eq. 10; 0 = cross-entropy)' },
    'state-lse-r': { type: 'number', min: 0, default: 0, help: 'pooling of the per-patch state logits: 0 = mean, r > 0 = log-sum-exp (1/r) log mean exp(r z), towards the max' },
  },
});
