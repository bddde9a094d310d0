import { DataLoader } from '../data/loader.js';
import type { R2GenDataset, SplitName } from '../data/r2gen.js';
import { evaluate, type EvaluateResult, type MetricName } from '../metrics/evaluate.js';
import type { ReportLabels } from '../text/chexpert.js';
import { Tokenizer } from '../text/tokenizer.js';
import { ArgumentError, RadkitError } from '../errors.js';
import { withGenerateDefaults } from '../generation.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';
import type { GenerateOptions, Model } from '../models/model.js';
import { prepareBatch, type Evaluation, type EvaluationOptions } from '../models/registry.js';
import type { Preprocessing } from './checkpoint.js';

export interface GeneratedReport {
  id: string;
  /** Generated report, as the tokenizer decodes it. */
  hypothesis: string;
  /** Ground truth, cleaned the way the tokenizer cleans training reports. */
  reference: string;
  /** Ground-truth labels when the dataset has them. */
  labels?: ReportLabels;
  extras: Record<string, unknown>;
}

export interface SplitOptions {
  split: SplitName;
  preprocessing: Preprocessing;
  batchSize?: number;
  generate?: GenerateOptions;
  /** Score at most this many studies (in dataset order). */
  maxItems?: number;
  workers?: number;
  signal?: AbortSignal;
}

/**
 * A loader over one split in dataset order (no shuffling), at most `maxItems` studies, prepared as
 * the checkpoint was: what every evaluation pass (generation, retrieval embeddings) reads.
 */
export function splitLoader(dataset: R2GenDataset, o: Pick<SplitOptions, 'split' | 'preprocessing' | 'batchSize' | 'maxItems' | 'workers'>, tokenizer: ReportTokenizer, defaultBatch: number): DataLoader {
  const limited: R2GenDataset = o.maxItems ? { ...dataset, splits: { ...dataset.splits, [o.split]: dataset.splits[o.split].slice(0, o.maxItems) } } : dataset;
  return new DataLoader(limited, {
    split: o.split,
    batchSize: o.batchSize ?? defaultBatch,
    imageSize: o.preprocessing.imageSize,
    fit: o.preprocessing.fit,
    filter: o.preprocessing.filter,
    views: o.preprocessing.views,
    mean: o.preprocessing.mean,
    std: o.preprocessing.std,
    tokenizer,
    shuffle: false,
    workers: o.workers,
  });
}

/** Generates reports for a split (off the event loop, batch by batch). */
export async function generateSplit(model: Model, tokenizer: Tokenizer, dataset: R2GenDataset, o: SplitOptions): Promise<GeneratedReport[]> {
  const loader = splitLoader(dataset, o, tokenizer, 16);
  const out: GeneratedReport[] = [];
  for await (const batch of loader) {
    if (o.signal?.aborted) throw new RadkitError('generateSplit: aborted', 'ERR_ABORTED', 'generateSplit', { cause: o.signal.reason });
    const tb = prepareBatch(model, tokenizer, batch);
    try {
      const g = await model.generate(tb, o.generate);
      batch.ids.forEach((id, i) => {
        const extras: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(g.extras)) {
          const per = v.data.length / v.shape[0];
          extras[k] = { shape: v.shape.slice(1), data: v.data.slice(i * per, (i + 1) * per) };
        }
        out.push({ id, hypothesis: tokenizer.decode(g.tokens[i]), reference: tokenizer.clean(batch.reports[i]), labels: batch.labels?.[i], extras });
      });
    } finally {
      tb.dispose();
    }
  }
  return out;
}

/** The names `headline()` gives, for checking a selection metric before training. */
export const GENERATION_METRICS: readonly string[] = ['bleu1', 'bleu2', 'bleu3', 'bleu4', 'meteor', 'rougeL', 'ciderD', 'ceMicroF1', 'ceMacroF1', 'ceExampleF1'];

/** The headline numbers of an evaluation (model selection reads these names). */
export function headline(r: EvaluateResult): Record<string, number> {
  const h: Record<string, number> = {};
  if (r.bleu) Object.assign(h, { bleu1: r.bleu.bleu1, bleu2: r.bleu.bleu2, bleu3: r.bleu.bleu3, bleu4: r.bleu.bleu4 });
  if (r.meteor !== undefined) h.meteor = r.meteor;
  if (r.rougeL !== undefined) h.rougeL = r.rougeL;
  if (r.ciderD !== undefined) h.ciderD = r.ciderD;
  if (r.clinical) Object.assign(h, { ceMicroF1: r.clinical.micro.f1, ceMacroF1: r.clinical.macro.f1, ceExampleF1: r.clinical.exampleBased.f1 });
  return h;
}

/** Scores generated reports against their references; ground-truth labels are used when present. */
export function scoreReports(reports: GeneratedReport[], metrics?: MetricName[]): EvaluateResult {
  const haveLabels = reports.length > 0 && reports.every((r) => r.labels);
  return evaluate(
    reports.map((r) => r.hypothesis),
    reports.map((r) => [r.reference]),
    { metrics, refLabels: haveLabels ? reports.map((r) => r.labels!) : undefined },
  );
}

export async function evaluateSplit(model: Model, tokenizer: Tokenizer, dataset: R2GenDataset, o: SplitOptions & { metrics?: MetricName[] }) {
  const reports = await generateSplit(model, tokenizer, dataset, o);
  const result = scoreReports(reports, o.metrics);
  return { reports, result, headline: headline(result) };
}

/**
 * The evaluation of report generators (a kind's `evaluate`): generated reports scored with the
 * caption and clinical-efficacy metrics; the record keeps the options, the full result and the reports.
 */
export async function generationEvaluation(model: Model, tokenizer: ReportTokenizer, dataset: R2GenDataset, o: EvaluationOptions): Promise<Evaluation> {
  if (!(tokenizer instanceof Tokenizer))
    throw new ArgumentError(`evaluate: ${model.kind} generates reports and needs radkit's Tokenizer (BOS = EOS = PAD = 0), not ${tokenizer.constructor.name}`, 'ERR_INVALID_ARG', 'evaluate');
  const ev = await evaluateSplit(model, tokenizer, dataset, o);
  return { headline: ev.headline, record: { generate: withGenerateDefaults(model.generateDefaults, o.generate), result: ev.result, reports: ev.reports } };
}
