/**
 * MPMA linear probe (seed 004 Tables I and V): one linear layer over the frozen pre-trained ViT's
 * mean patch token (after a batch norm without affine parameters), trained with binary
 * cross-entropy on the 14 CheXpert observations (positive vs the rest). Start it from a pre-training
 * run with `--init RUN:image.`; the encoder never receives gradients. Evaluation: ROC AUC per
 * observation, their mean over observations with both classes present (`auc`), and the mean over
 * the five CheXpert competition observations the paper reports (`auc5`: atelectasis, cardiomegaly,
 * consolidation, edema, pleural effusion).
 */
import type { R2GenDataset } from '../data/r2gen.js';
import { ArgumentError, RadkitError } from '../errors.js';
import { rocAuc } from '../metrics/auc.js';
import { CHEXPERT_OBSERVATIONS } from '../text/chexpert.js';
import { splitLoader } from '../train/evaluate.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';
import type { NativeConfig } from '../../typings/model.js';
import { Model, TensorBatch } from './model.js';
import { mpmaVitDefaults, type MpmaPreset } from './mpma.js';
import { bertOrReportTokenizer } from './adamatch.js';
import { createOptions, registerModelKind, type Evaluation, type EvaluationOptions } from './registry.js';

export const COMPETITION_OBSERVATIONS = ['Atelectasis', 'Cardiomegaly', 'Consolidation', 'Edema', 'Pleural Effusion'] as const;

function configDefaults(preset: string): NativeConfig {
  return { ...mpmaVitDefaults(preset, 'mpma-probe'), probePool: 'mean', seed: 0 };
}

export interface MpmaProbeOptions {
  preset?: MpmaPreset;
  seed?: number;
  [key: string]: unknown;
}

export function mpmaProbe(options: MpmaProbeOptions = {}): Model {
  const { preset, ...rest } = options;
  const cfg = configDefaults(preset ?? 'small');
  for (const [k, v] of Object.entries(rest)) {
    if (v === undefined) continue;
    if (!(k in cfg)) throw new ArgumentError(`mpma-probe: unknown option '${k}' (configuration keys: ${Object.keys(cfg).join(', ')})`, 'ERR_INVALID_ARG', 'mpma-probe');
    cfg[k] = v as number | string;
  }
  return Model.create('mpma-probe', cfg, createOptions(MPMA_PROBE));
}

/** ROC AUC per observation on a split (positive = state 1 against every other state). */
export async function probeEvaluation(model: Model, tokenizer: ReportTokenizer, dataset: R2GenDataset, o: EvaluationOptions): Promise<Evaluation> {
  const loader = splitLoader(dataset, o, tokenizer, o.batchSize ?? 64);
  const scores: number[][] = CHEXPERT_OBSERVATIONS.map(() => []);
  const labels: number[][] = CHEXPERT_OBSERVATIONS.map(() => []);
  for await (const batch of loader) {
    if (o.signal?.aborted) throw new RadkitError('mpma-probe evaluation: aborted', 'ERR_ABORTED', 'evaluate', { cause: o.signal.reason });
    if (!batch.labelStates) throw new ArgumentError('mpma-probe: the split has no CheXpert labels to score against', 'ERR_INVALID_ARG', 'evaluate');
    const tb = new TensorBatch(batch);
    try {
      const enc = await model.encode(tb);
      const p = enc.probabilities.toArray() as Float32Array;
      Object.values(enc).forEach((t) => t.dispose());
      const B = batch.ids.length;
      for (let b = 0; b < B; b++)
        for (let k = 0; k < 14; k++) {
          scores[k].push(p[b * 14 + k]);
          labels[k].push(batch.labelStates.data[b * 14 + k] === 1 ? 1 : 0);
        }
    } finally {
      tb.dispose();
    }
  }
  const perObservation: Record<string, number> = {};
  CHEXPERT_OBSERVATIONS.forEach((name, k) => (perObservation[name] = rocAuc(scores[k], labels[k])));
  const defined = Object.values(perObservation).filter((v) => Number.isFinite(v));
  const five = COMPETITION_OBSERVATIONS.map((n) => perObservation[n]).filter((v) => Number.isFinite(v));
  const mean = (a: number[]) => (a.length ? a.reduce((s, v) => s + v, 0) / a.length : NaN);
  const headline: Record<string, number> = { auc: mean(defined), auc5: mean(five) };
  return { headline, record: { perObservation, positives: labels.map((l) => l.reduce((s, v) => s + v, 0)), n: labels[0].length, policy: 'positive vs absent/negative/uncertain' } };
}

export const MPMA_PROBE = registerModelKind({
  name: 'mpma-probe',
  summary: 'MPMA linear probe: CheXpert observations on the frozen pre-trained ViT (seed 004; --init RUN:image.)',
  task: 'classification',
  presets: ['small', 'paper'],
  configDefaults,
  tokenizer: bertOrReportTokenizer,
  create: (c) => mpmaProbe({ preset: c.preset as MpmaPreset, seed: c.seed, ...(c.imageSize ? { imageSize: c.imageSize } : {}) }),
  recipe: () => ({ optimizer: 'adamw', lr: 2e-3, visualLr: 2e-3, weightDecay: 0, schedule: { kind: 'cosine', warmupFraction: 0 }, clipNorm: 0, batchSize: 64, initBatches: 0 }),
  metric: 'auc',
  views: () => 1,
  evaluate: probeEvaluation,
});
