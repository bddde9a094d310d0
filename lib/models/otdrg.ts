/**
 * OTDRG stage 3 (seed 002 sections 3.3-3.5, "otdrg"): patch features and disease-label features
 * projected into the language model's input space (eqs. 4-5), aligned by entropic optimal transport
 * (eqs. 6-8, `ops.euclideanCost` + `ops.sinkhorn`, L_OT = <T*, C>), and a LLaMA-layout causal LM
 * with LoRA adapters on its attention projections (base frozen) reading
 * [image prefix; label prefix; label text; the paper's prompt] and trained with the response-only
 * loss + lambda L_OT (eqs. 11-12). Compute: native/models/otdrg.cc.
 *
 * Where the LM comes from:
 *  - preset `small` (default): a LLaMA-layout LM of about 5M parameters with radkit's word
 *    tokenizer, pre-trained from scratch inside the run on the training reports alone: the first
 *    `lmPretrainFraction` (0.5) of the run's steps train the whole LM on [BOS; report; EOS]
 *    (`lmPretrainInput: 'labelled'`: on [label text; prompt; BOS; report; EOS], loss on the report),
 *    then its base is frozen and the LoRA stage begins;
 *  - `lm: DIR` / `--lm DIR` (preset `paper`): a user-supplied Hugging Face LLaMA folder
 *    (config.json, safetensors, tokenizer.json) loaded name for name, LoRA from the first step.
 *
 * Start it from a `diseasenet` run (`--init RUN`: encoder.* and classifier.*): its predicted states
 * replace the ground-truth ones at validation and test (`labelSource: 'predicted'`), and the
 * evaluation also reports the oracle states.
 */
import type { R2GenDataset } from '../data/r2gen.js';
import { ArgumentError } from '../errors.js';
import { generateSplit, headline, scoreReports } from '../train/evaluate.js';
import { withGenerateDefaults } from '../generation.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';
import { Tokenizer } from '../text/tokenizer.js';
import type { NativeConfig } from '../../typings/model.js';
import { Model } from './model.js';
import { allLabelStrings, encoderDefaults, mergeConfig, OTDRG_PRESETS, OTDRG_PROMPT, type OtdrgPreset } from './otdrg-common.js';
import { HFReportTokenizer, lmConfigKeys, loadLmWeights, readLmFolder } from './otdrg-lm.js';
import { createOptions, registerModelKind, type Evaluation, type EvaluationOptions, type FlagValues } from './registry.js';

/** The small LM (LLaMA layout: RMSNorm, RoPE, SwiGLU, no biases), about 4.8M parameters besides the embeddings. */
export const OTDRG_SMALL_LM = { lmHidden: 256, lmLayers: 6, lmHeads: 4, lmKvHeads: 4, lmIntermediate: 688, lmMaxPositions: 512, lmRopeTheta: 10000, lmNormEps: 1e-6, lmTieEmbeddings: 0 };

/** The tiny preset's LM (tests and smoke runs). */
export const OTDRG_TINY_LM = { ...OTDRG_SMALL_LM, lmHidden: 32, lmLayers: 1, lmHeads: 2, lmKvHeads: 2, lmIntermediate: 64 };

function configDefaults(preset: string): NativeConfig {
  return {
    ...encoderDefaults(preset, 'otdrg'),
    ...(preset === 'tiny' ? OTDRG_TINY_LM : OTDRG_SMALL_LM),
    lmDtype: preset === 'paper' ? 'bfloat16' : 'float32',
    loraRank: preset === 'paper' ? 16 : 8,
    loraAlpha: preset === 'paper' ? 32 : 16,
    loraDropout: 0,
    loraTargets: 'q_proj,v_proj',
    lambda: 1,
    epsilon: 0.1,
    iterations: 50,
    // the normaliser in the gradient: with the detached mean ('mean') L_OT flattens its own cost
    // (bench/RESULTS.md, OTDRG: plan 0.01 from uniform after 600 steps; 'ratio' 0.59)
    costScale: 'ratio',
    labelFeatureScale: 'rms',
    imagePrefix: 1,
    labelPrefix: 1,
    labelText: 1,
    trainEncoder: 0,
    lmPretrainFraction: preset === 'paper' ? 0 : 0.5,
    lmPretrainInput: 'reports',
    labelSource: 'predicted',
    // the predictor head's pooling over patches (0 = mean); must equal the diseasenet run's
    stateLseR: 0,
    seed: 0,
  };
}

export interface OtdrgOptions {
  /** radkit's Tokenizer (small LM) or the LM folder's tokenizer (HFReportTokenizer). */
  tokenizer: ReportTokenizer;
  preset?: OtdrgPreset;
  seed?: number;
  /** A Hugging Face LLaMA folder: its weights replace the from-scratch LM (no pre-training phase). */
  lm?: string;
  /** Any configuration key (lambda, epsilon, iterations, costScale, imagePrefix, labelPrefix, labelText, loraRank, ...). */
  [key: string]: unknown;
}

/** Token ids of a text without the tokenizer's own BOS/EOS. */
function textIds(tokenizer: ReportTokenizer, text: string): number[] {
  if (tokenizer instanceof HFReportTokenizer) return tokenizer.textIds(text);
  const ids = tokenizer.encode(text, 1 << 20);
  return ids.slice(1, ids.length - 1);
}

/** The native configuration of an otdrg model (recorded in checkpoints). */
export function otdrgConfig(o: OtdrgOptions): NativeConfig {
  if (!o || !o.tokenizer) throw new ArgumentError('otdrg: options.tokenizer is required', 'ERR_INVALID_ARG', 'otdrg');
  const { tokenizer, preset, lm, ...rest } = o;
  const cfg = configDefaults(preset ?? 'small');
  if (lm !== undefined) {
    if (!(tokenizer instanceof HFReportTokenizer)) throw new ArgumentError(`otdrg: options.lm needs the LM folder's tokenizer (otdrgTokenizer with lm), not ${tokenizer.constructor.name}`, 'ERR_INVALID_ARG', 'otdrg');
    Object.assign(cfg, lmConfigKeys(readLmFolder(lm, tokenizer), tokenizer), { lmPretrainFraction: 0 });
  } else if (tokenizer instanceof Tokenizer) {
    Object.assign(cfg, { lmVocabSize: tokenizer.vocabSize + 1, bosId: 0, eosId: 0, padId: 0 });
  } else throw new ArgumentError(`otdrg: the from-scratch LM needs radkit's Tokenizer (BOS = EOS = PAD = 0), not ${tokenizer.constructor.name}; give options.lm for a Hugging Face LM`, 'ERR_INVALID_ARG', 'otdrg');
  const merged = mergeConfig('otdrg', cfg, rest);
  merged.promptIds = textIds(tokenizer, OTDRG_PROMPT);
  const labels = allLabelStrings().map((s) => textIds(tokenizer, s));
  const L = Math.max(...labels.map((l) => l.length));
  labels.forEach((l, i) => {
    if (!l.length) throw new ArgumentError(`otdrg: the label text '${allLabelStrings()[i]}' has no token in this tokenizer`, 'ERR_INVALID_ARG', 'otdrg');
  });
  merged.labelTokenLength = L;
  merged.labelTokenIds = labels.flatMap((l) => [...l, ...new Array(L - l.length).fill(-1)]);
  return merged;
}

/** Creates an `otdrg` model (dispose it when done). With `lm`, the folder's weights are loaded into `lm.*`. */
export function otdrg(options: OtdrgOptions): Model {
  const model = Model.create('otdrg', otdrgConfig(options), createOptions(OTDRG));
  if (options.lm !== undefined) {
    try {
      loadLmWeights(model, options.lm);
    } catch (err) {
      model.dispose();
      throw err;
    }
  }
  return model;
}

/**
 * The training tokenizer: with `lm`, the folder's tokenizer.json (checked against its vocabulary);
 * otherwise radkit's Tokenizer built from the training reports, with the prompt's and the label
 * strings' words added (the LM itself is pre-trained on the reports alone).
 */
export function otdrgTokenizer(dataset: R2GenDataset, flags: FlagValues): ReportTokenizer {
  if (typeof flags.lm === 'string') return HFReportTokenizer.fromLmFolder(flags.lm);
  const threshold = typeof flags.threshold === 'number' ? flags.threshold : 3;
  const extra = [OTDRG_PROMPT, ...allLabelStrings()].join(' . ');
  return Tokenizer.build([...dataset.splits.train.map((e) => e.report), ...new Array(threshold).fill(extra)], { threshold });
}

/**
 * Generated reports of a split scored with the caption and clinical-efficacy metrics, with the
 * predicted states (headline) and, when `oracle` (default true), with the ground-truth states
 * (`oracle.*` in the headline).
 */
export async function otdrgEvaluation(model: Model, tokenizer: ReportTokenizer, dataset: R2GenDataset, o: EvaluationOptions & { oracle?: boolean }): Promise<Evaluation> {
  const source = (o.generate?.systemOptions?.labelSource as string | undefined) ?? 'predicted';
  const run = async (labelSource: string) => {
    const generate = { ...o.generate, systemOptions: { ...(o.generate?.systemOptions ?? {}), labelSource } };
    const reports = await generateSplit(model, tokenizer as Tokenizer, dataset, { ...o, generate });
    const result = scoreReports(reports);
    return { reports, result, headline: headline(result), generate: withGenerateDefaults(model.generateDefaults, generate) };
  };
  const main = await run(source);
  const h: Record<string, number> = { ...main.headline };
  const record: Record<string, unknown> = { labelSource: source, generate: main.generate, result: main.result, reports: main.reports };
  if ((o.oracle ?? false) && source !== 'oracle') {
    const oracle = await run('oracle');
    for (const [k, v] of Object.entries(oracle.headline)) h[`oracle.${k}`] = v;
    record.oracle = { result: oracle.result, reports: oracle.reports };
  }
  return { headline: h, record };
}

export const OTDRG = registerModelKind({
  name: 'otdrg',
  summary: 'OTDRG: OT-aligned image/label prefixes for a LoRA-tuned LLaMA-layout LM (seed 002; --init DISEASENET_RUN)',
  task: 'generation',
  presets: OTDRG_PRESETS,
  configDefaults,
  tokenizer: otdrgTokenizer,
  create: (c) => {
    const f = c.flags;
    return otdrg({
      tokenizer: c.tokenizer,
      preset: c.preset as OtdrgPreset,
      seed: c.seed,
      ...(typeof f.lm === 'string' ? { lm: f.lm } : {}),
      ...(f.lambda !== undefined ? { lambda: f.lambda } : {}),
      ...(f.epsilon !== undefined ? { epsilon: f.epsilon } : {}),
      ...(f.iterations !== undefined ? { iterations: f.iterations } : {}),
      ...(f['cost-scale'] !== undefined ? { costScale: f['cost-scale'] } : {}),
      ...(f['label-feature-scale'] !== undefined ? { labelFeatureScale: f['label-feature-scale'] } : {}),
      ...(f['no-label-prefix'] ? { labelPrefix: 0 } : {}),
      ...(f['no-label-text'] ? { labelText: 0 } : {}),
      ...(f['lora-rank'] !== undefined ? { loraRank: f['lora-rank'], loraAlpha: 2 * Number(f['lora-rank']) } : {}),
      ...(f['lora-targets'] !== undefined ? { loraTargets: f['lora-targets'] } : {}),
      ...(f['lm-pretrain-fraction'] !== undefined ? { lmPretrainFraction: f['lm-pretrain-fraction'] } : {}),
      ...(f['lm-pretrain-input'] !== undefined ? { lmPretrainInput: f['lm-pretrain-input'] } : {}),
      ...(f['state-lse-r'] !== undefined ? { stateLseR: f['state-lse-r'] } : {}),
    });
  },
  recipe: () => ({ optimizer: 'adamw', lr: 1e-3, visualLr: 1e-4, weightDecay: 0.01, schedule: { kind: 'cosine', warmupFraction: 0.05 }, clipNorm: 1, batchSize: 16, initBatches: 0 }),
  metric: 'bleu4',
  needsLabels: () => true,
  views: (ds) => (ds.style === 'iu' ? 2 : 1),
  // the predicted states come from diseasenet's head, copied with --init: pooled as it was trained
  initMustMatch: [{ sourceKind: 'diseasenet', tensors: 'classifier.', keys: { stateLseR: 0 } }],
  generate: { method: 'greedy', maxLength: 80 },
  evaluate: otdrgEvaluation,
  trainFlags: {
    lm: { type: 'string', arg: 'DIR', help: 'Hugging Face LLaMA folder (config.json, safetensors, tokenizer.json) instead of the from-scratch small LM' },
    lambda: { type: 'number', min: 0, default: 1, help: 'weight of L_OT (eq. 12; 0 = no OT loss)' },
    epsilon: { type: 'number', min: 1e-6, default: 0.1, help: 'Sinkhorn entropic regularisation (relative to the cost scale)' },
    iterations: { type: 'integer', min: 1, max: 100000, default: 50, help: 'Sinkhorn iterations t' },
    'cost-scale': { type: 'string', choices: ['mean', 'ratio', 'raw'], default: 'ratio', help: 'OT cost divided by its per-study mean with the gradient through it (ratio: L_OT = <T*, C> / mean C, which a common shrinking of the projections cannot lower), or by its detached mean (mean: L_OT can fall by pulling patches and labels together, which flattens the cost), or raw' },
    'label-feature-scale': { type: 'string', choices: ['rms', 'raw'], default: 'rms', help: 'label features Y divided by their RMS before W_l (rms), or at the LM embeddings\' own scale (raw: the cost hardly varies along the labels)' },
    'no-label-prefix': { type: 'boolean', help: 'leave the projected label features out of the LM prefix' },
    'no-label-text': { type: 'boolean', help: 'leave the "observation: state" text out of the LM input' },
    'lora-rank': { type: 'integer', min: 1, max: 4096, help: 'LoRA rank (alpha = 2 x rank; default 8, paper preset 16)' },
    'lora-targets': { type: 'string', arg: 'NAMES', default: 'q_proj,v_proj', help: 'comma-separated LM module names that get LoRA adapters' },
    'lm-pretrain-fraction': { type: 'number', min: 0, max: 0.99, help: 'share of the run\'s steps that pre-train the small LM on the reports (default 0.5; 0 with --lm)' },
    'state-lse-r': { type: 'number', min: 0, default: 0, help: 'pooling of the predictor head copied from the diseasenet run (its --state-lse-r; must match it)' },
    'lm-pretrain-input': { type: 'string', choices: ['reports', 'labelled'], default: 'reports', help: 'what the small LM is pre-trained on: the reports alone, or each report after its label text and the prompt (loss on the report)' },
  },
  generateFlags: {
    states: { type: 'string', choices: ['predicted', 'oracle'], default: 'predicted', option: 'labelSource', help: 'disease states the LM reads: the predictor\'s, or the reports\' (oracle)' },
  },
});
