/**
 * OTDRG with a user-supplied language model (`--lm DIR`, the paper preset's Llama-2-class
 * checkpoint): a Hugging Face LLaMA folder (config.json, model.safetensors or shards with their
 * index, tokenizer.json). Everything is checked before a model is built or trained: the
 * architecture (LLaMA without biases), the tokenizer against the checkpoint's vocabulary, and, when
 * the weights are copied into `lm.*`, every base tensor present with its shape and nothing else.
 */
import { DataError } from '../errors.js';
import type { CausalLMConfig } from '../nn/causal-lm.js';
import { HFReportTokenizer } from '../text/hf-report-tokenizer.js';
import type { NativeConfig } from '../../typings/model.js';
import { loadLmWeights as loadFolderWeights, readLmFolder as readFolder } from './lm-folder.js';
import type { Model } from './model.js';

export { HFReportTokenizer };

const FN = 'otdrg --lm';

/** config.json of an LM folder as a CausalLMConfig, checked against what otdrg runs and against `tokenizer`. */
export function readLmFolder(dir: string, tokenizer: HFReportTokenizer): CausalLMConfig {
  const c = readFolder(dir, tokenizer, { fn: FN, arch: 'llama', layout: 'LLaMA layout, LoRA on q_proj/v_proj' });
  if (c.attentionBias || c.mlpBias) throw new DataError({ file: `${dir}/config.json`, message: 'otdrg runs LLaMA without biases (attention_bias / mlp_bias are set)' }, FN);
  return c;
}

/** The otdrg configuration keys of an LM folder's config and tokenizer. */
export function lmConfigKeys(c: CausalLMConfig, tokenizer?: HFReportTokenizer): NativeConfig {
  return {
    lmVocabSize: c.vocabSize,
    lmHidden: c.hiddenSize,
    lmLayers: c.numLayers,
    lmHeads: c.numHeads,
    lmKvHeads: c.numKvHeads ?? c.numHeads,
    lmHeadDim: c.headDim ?? c.hiddenSize / c.numHeads,
    lmIntermediate: c.intermediateSize,
    lmMaxPositions: c.maxPositions ?? 2048,
    lmRopeTheta: c.ropeTheta ?? 10000,
    lmNormEps: c.normEps ?? 1e-6,
    lmTieEmbeddings: c.tieEmbeddings ? 1 : 0,
    ...(tokenizer ? { bosId: tokenizer.bosId, eosId: tokenizer.eosId, padId: tokenizer.padId } : {}),
  };
}

/** Copies the folder's weights into the model's `lm.*` base parameters (every one from the folder, nothing else there). */
export function loadLmWeights(model: Model, dir: string): void {
  loadFolderWeights(model, dir, { fn: FN, layout: 'LLaMA', convertDtype: model.config.lmDtype === 'bfloat16' });
}
