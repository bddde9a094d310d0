/**
 * OTDRG with a user-supplied language model (`--lm DIR`, the paper preset's Llama-2-class
 * checkpoint): a Hugging Face LLaMA folder (config.json, model.safetensors or shards with their
 * index, tokenizer.json). Everything is checked before a model is built or trained: the
 * architecture (LLaMA without biases), the tokenizer against the checkpoint's vocabulary, and, when
 * the weights are copied into `lm.*`, every base tensor present with its shape and nothing else.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArgumentError, DataError, RadkitError } from '../errors.js';
import { causalLMConfigFromHF, checkpointFiles, type CausalLMConfig } from '../nn/causal-lm.js';
import { HFReportTokenizer } from '../text/hf-report-tokenizer.js';
import type { NativeConfig } from '../../typings/model.js';
import type { Model } from './model.js';

export { HFReportTokenizer };

const FN = 'otdrg --lm';

/** config.json of an LM folder as a CausalLMConfig, checked against what otdrg runs and against `tokenizer`. */
export function readLmFolder(dir: string, tokenizer: HFReportTokenizer): CausalLMConfig {
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) throw new ArgumentError(`${FN}: ${dir} has no config.json (a Hugging Face LLaMA folder is expected)`, 'ERR_INVALID_ARG', FN);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new DataError({ file, message: `malformed JSON (${(e as Error).message})` }, FN);
  }
  const c = causalLMConfigFromHF(json, file);
  if (c.arch !== 'llama') throw new DataError({ file, message: `model_type must be llama for otdrg (LLaMA layout, LoRA on q_proj/v_proj), got ${String(json.model_type)}` }, FN);
  if (c.attentionBias || c.mlpBias) throw new DataError({ file, message: 'otdrg runs LLaMA without biases (attention_bias / mlp_bias are set)' }, FN);
  const ids: [string, number][] = [['bos', tokenizer.bosId], ['eos', tokenizer.eosId], ['pad', tokenizer.padId]];
  if (tokenizer.vocabSize > c.vocabSize)
    throw new DataError(
      { file, message: `the tokenizer in ${dir} has ${tokenizer.vocabSize} ids but the checkpoint's vocabulary has ${c.vocabSize} rows (vocab_size): the tokenizer does not belong to this checkpoint` },
      FN,
    );
  for (const [name, id] of ids)
    if (id < 0 || id >= c.vocabSize) throw new DataError({ file, message: `the tokenizer's ${name} id ${id} lies outside the checkpoint's vocabulary [0, ${c.vocabSize})` }, FN);
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

/**
 * Copies the folder's weights into the model's `lm.*` base parameters (safetensors, by name). Every
 * base parameter must come from the folder and every tensor of the folder must have a place:
 * otherwise an ERR_CHECKPOINT lists the problems.
 */
export function loadLmWeights(model: Model, dir: string): void {
  const files = checkpointFiles(dir);
  const shapes = model.tensorShapes();
  const base = Object.keys(shapes).filter((n) => n.startsWith('lm.') && !n.includes('lora_'));
  let notLoaded = new Set(base);
  const unexpected: string[] = [];
  for (const f of files) {
    const r = model.loadPretrained(f, 'lm.');
    const missing = new Set(r.missing.map((n) => `lm.${n}`)); // names under the prefix, without it
    notLoaded = new Set([...notLoaded].filter((n) => missing.has(n)));
    unexpected.push(...r.unexpected.map((n) => `${n} (${path.basename(f)})`));
  }
  const problems = [...[...notLoaded].map((n) => `${n.slice(3)}: not in the checkpoint`), ...unexpected.map((n) => `${n}: no such parameter in a LLaMA of this config.json`)];
  if (problems.length)
    throw new RadkitError(`${FN}: the weights in ${dir} do not fit its config.json:\n  ${problems.slice(0, 20).join('\n  ')}${problems.length > 20 ? `\n  (and ${problems.length - 20} more)` : ''}`, 'ERR_CHECKPOINT', FN);
}
