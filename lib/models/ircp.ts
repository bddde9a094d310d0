/**
 * OTDRG stage 1 (seed 002 section 3.2.2, "ircp"): the ResNet encoder pre-trained with eq. 2, InfoNCE
 * of each study's mean-pooled patch feature against a noisy copy of itself (sigma 0.1, tau 0.5,
 * cosine, in-batch negatives; native/models/ircp.cc). Its `encoder.*` weights start `diseasenet`
 * (`--init RUN:encoder.`). Evaluation: the validation loss (selection: negValLoss) and the spread of
 * the pooled features (a collapsed encoder has none).
 */
import type { R2GenDataset } from '../data/r2gen.js';
import { RadkitError } from '../errors.js';
import { splitLoader } from '../train/evaluate.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';
import type { NativeConfig } from '../../typings/model.js';
import { Model, TensorBatch, withResNetWeights } from './model.js';
import { encoderDefaults, mergeConfig, OTDRG_PRESETS, type OtdrgPreset } from './otdrg-common.js';
import { createOptions, registerModelKind, type Evaluation, type EvaluationOptions } from './registry.js';

function configDefaults(preset: string): NativeConfig {
  return { ...encoderDefaults(preset, 'ircp'), sigma: 0.1, tau: 0.5, seed: 0 };
}

export interface IrcpOptions {
  preset?: OtdrgPreset;
  seed?: number;
  /**
   * ImageNet-style ResNet weights (.safetensors, torchvision names; ResNet-18 for the paper preset)
   * to start the encoder from: the paper's Swin-B is not built, so "encoder weights when given" are a
   * ResNet's. Not a configuration key: the run records the weights, not the file.
   */
  visualWeights?: string;
  /** Any configuration key (sigma, tau, resnetWidths, resnetBlocks). */
  [key: string]: unknown;
}

/** Creates an `ircp` encoder pre-training model (dispose it when done). */
export function ircp(options: IrcpOptions = {}): Model {
  const { preset, visualWeights, ...rest } = options;
  return withResNetWeights(Model.create('ircp', mergeConfig('ircp', configDefaults(preset ?? 'small'), rest), createOptions(IRCP)), visualWeights, 'encoder.');
}

/** Validation loss of eq. 2 (fresh noise per batch) and the mean per-dimension spread of the pooled features. */
export async function ircpEvaluation(model: Model, tokenizer: ReportTokenizer, dataset: R2GenDataset, o: EvaluationOptions): Promise<Evaluation> {
  const loader = splitLoader(dataset, o, tokenizer, o.batchSize ?? 32);
  let loss = 0;
  let batches = 0;
  const rows: Float32Array[] = [];
  let dim = 0;
  for await (const batch of loader) {
    if (o.signal?.aborted) throw new RadkitError('ircp evaluation: aborted', 'ERR_ABORTED', 'evaluate', { cause: o.signal.reason });
    const tb = new TensorBatch({ images: batch.images });
    try {
      if (batch.ids.length >= 2) {
        loss += (await model.evalLoss(tb)).loss;
        batches++;
      }
      const enc = await model.encode(tb);
      dim = enc.features.shape[1];
      rows.push(enc.features.toArray() as Float32Array);
      Object.values(enc).forEach((t) => t.dispose());
    } finally {
      tb.dispose();
    }
  }
  const all = rows.flatMap((r) => Array.from(r));
  const n = all.length / Math.max(1, dim);
  let spread = 0;
  for (let d = 0; d < dim; d++) {
    let m = 0;
    for (let i = 0; i < n; i++) m += all[i * dim + d] / n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (all[i * dim + d] - m) ** 2 / n;
    spread += Math.sqrt(v) / dim;
  }
  const valLoss = batches ? loss / batches : NaN;
  return { headline: { negValLoss: -valLoss, valLoss, featureSpread: spread }, record: { n, dim } };
}

export const IRCP = registerModelKind({
  name: 'ircp',
  summary: 'OTDRG stage 1: ResNet encoder pre-trained by InfoNCE against a noisy copy (seed 002 eq. 2)',
  task: 'pretraining',
  presets: OTDRG_PRESETS,
  configDefaults,
  create: (c) =>
    ircp({
      preset: c.preset as OtdrgPreset,
      seed: c.seed,
      ...(c.flags.sigma !== undefined ? { sigma: c.flags.sigma } : {}),
      ...(c.flags.tau !== undefined ? { tau: c.flags.tau } : {}),
      ...(typeof c.flags['visual-weights'] === 'string' ? { visualWeights: c.flags['visual-weights'] } : {}),
    }),
  recipe: () => ({ optimizer: 'adamw', lr: 1e-3, visualLr: 1e-3, weightDecay: 0.01, schedule: { kind: 'cosine', warmupFraction: 0 }, clipNorm: 1, batchSize: 32, initBatches: 0 }),
  metric: 'negValLoss',
  views: (ds) => (ds.style === 'iu' ? 2 : 1),
  evaluate: ircpEvaluation,
  trainFlags: {
    sigma: { type: 'number', min: 0, default: 0.1, help: 'standard deviation of the positive key\'s noise (eq. 2)' },
    tau: { type: 'number', min: 1e-6, default: 0.5, help: 'InfoNCE temperature (eq. 2)' },
    'visual-weights': { type: 'string', arg: 'FILE', help: 'ImageNet-style ResNet weights (.safetensors, torchvision names; ResNet-18 for --preset paper) to start the encoder from' },
  },
});
