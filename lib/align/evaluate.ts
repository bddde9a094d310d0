import type { R2GenDataset, SplitName } from '../data/r2gen.js';
import type { Model } from '../models/model.js';
import type { Evaluation, EvaluationOptions } from '../models/registry.js';
import type { Preprocessing } from '../train/checkpoint.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';
import { embedSplit } from './embed.js';
import { retrievalMetrics, similarityMatrices, type RetrievalMetrics } from './retrieval.js';

export interface RetrievalEvaluation {
  split: SplitName;
  metrics: RetrievalMetrics;
  /** The numbers as a flat record (model selection reads `meanRecall` by default). */
  headline: Record<string, number>;
}

/** Image-report retrieval R@1/5/10 both ways on a split (the alignment models' evaluation). */
export async function evaluateRetrieval(
  model: Model,
  tokenizer: ReportTokenizer,
  dataset: R2GenDataset,
  o: { split: SplitName; preprocessing: Preprocessing; maxItems?: number; workers?: number; signal?: AbortSignal; batchSize?: number },
): Promise<RetrievalEvaluation> {
  const e = await embedSplit(model, dataset, { ...o, tokenizer });
  const metrics = retrievalMetrics(similarityMatrices(e));
  return { split: o.split, metrics, headline: { ...metrics } };
}

/** The evaluation of alignment models (a kind's `evaluate`): retrieval R@1/5/10 both ways. */
export async function retrievalEvaluation(model: Model, tokenizer: ReportTokenizer, dataset: R2GenDataset, o: EvaluationOptions): Promise<Evaluation> {
  const ev = await evaluateRetrieval(model, tokenizer, dataset, o);
  return { headline: ev.headline, record: { metrics: ev.metrics } };
}
