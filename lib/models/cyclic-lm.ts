/**
 * The LM stage of AdaMatch-Cyclic (seed 000 sections 3.2.1-3.2.3) over radkit.nn's causal LMs: one
 * model reads and writes text and image tokens of a joint vocabulary and learns both directions
 * with the response-only loss of eqs. 10-11 (the prompt's tokens are not scored):
 *   image -> report: prompt (image tokens, keyword hints), response = the report's words + EOS
 *   report -> image: prompt (report words, keypatch tokens), response = the image's N tokens
 * Generation is constrained: a report may use text ids only (EOS ends it), an image gets exactly N
 * image ids (minNewTokens = maxNewTokens = N, only the image range allowed).
 *
 * The vocabulary here is the task-token layout of `SpecialsVocabulary` (radkit word ids, task
 * tokens, codes) for a from-scratch LM; a user LM with a BPE tokenizer takes the Fig. 3-4 prompts
 * (`reportPrompt` / `imagePrompt` + `encodePrompt`) instead.
 */
import { ArgumentError } from '../errors.js';
import { createCausalLM, type CausalLM } from '../nn/causal-lm.js';
import { Tensor } from '../tensor.js';
import { leftPadPrompts, specialsPrompt, type SpecialsVocabulary } from './cyclic-prompts.js';

export type CyclicDirection = 'report' | 'image';

/** One study as the LM sees it: its image codes, report, and the hints of each direction (null: none). */
export interface CyclicExample {
  codes: readonly number[];
  report: string;
  keywords?: readonly string[] | null;
  keypatchCodes?: readonly number[] | null;
}

/** A training sequence: prompt then response; the response (ids[responseStart..]) is what the loss scores. */
export interface CyclicSequence {
  ids: number[];
  responseStart: number;
}

/** The prompt and response of one direction for one study (`words`: radkit word ids, no BOS/EOS). */
export function cyclicSequence(direction: CyclicDirection, v: SpecialsVocabulary, ex: CyclicExample, words: (text: string) => number[]): CyclicSequence {
  if (direction === 'report') {
    const prompt = specialsPrompt('report', v, { codes: ex.codes }, ex.keywords ?? null, words);
    return { ids: [...prompt, ...words(ex.report), 0], responseStart: prompt.length };
  }
  const prompt = specialsPrompt('image', v, { report: ex.report }, ex.keypatchCodes ?? null, words);
  return { ids: [...prompt, ...ex.codes.map((c) => v.imageToken(c))], responseStart: prompt.length };
}

/** Right-padded ids [B, T] (pad 0), attentionMask and lossMask (the responses) as int64 tensors. */
export function sequenceBatch(seqs: readonly CyclicSequence[]): { ids: Tensor; attentionMask: Tensor; lossMask: Tensor } {
  if (!seqs.length) throw new ArgumentError('sequenceBatch: no sequences', 'ERR_INVALID_ARG', 'sequenceBatch');
  const T = Math.max(...seqs.map((s) => s.ids.length));
  const B = seqs.length;
  const ids = new BigInt64Array(B * T), valid = new BigInt64Array(B * T), scored = new BigInt64Array(B * T);
  seqs.forEach((s, b) => {
    s.ids.forEach((id, t) => {
      ids[b * T + t] = BigInt(id);
      valid[b * T + t] = 1n;
      if (t >= s.responseStart) scored[b * T + t] = 1n;
    });
  });
  return { ids: Tensor.from(ids, [B, T]), attentionMask: Tensor.from(valid, [B, T]), lossMask: Tensor.from(scored, [B, T]) };
}

/** Left-padded prompts [B, T] and their mask (generation wants the last position of every row valid). */
function promptBatch(prompts: readonly number[][]): { ids: Tensor; attentionMask: Tensor } {
  const { ids, valid, shape } = leftPadPrompts(prompts);
  return { ids: Tensor.from(ids, shape), attentionMask: Tensor.from(valid, shape) };
}

/** The model sizes of the `small` preset (GPT-NeoX layout, about 5M parameters at a 2k-word + 256-code vocabulary). */
export const CYCLIC_LM_SMALL = { hiddenSize: 192, numLayers: 3, numHeads: 6, intermediateSize: 768, maxPositions: 256 } as const;

/** A from-scratch GPT-NeoX LM over the joint vocabulary (0 = PAD/BOS/EOS). */
export function createCyclicLM(v: SpecialsVocabulary, sizes: { hiddenSize: number; numLayers: number; numHeads: number; intermediateSize: number; maxPositions: number } = CYCLIC_LM_SMALL, seed = 0): CausalLM {
  return createCausalLM({ arch: 'gpt_neox', vocabSize: v.size, ...sizes, bosId: 0, eosId: 0, padId: 0 }, { seed });
}

/** Reports for image -> report prompts: text ids only ([1, textIds) and EOS 0), greedy unless options say otherwise. */
export async function generateReports(lm: CausalLM, v: SpecialsVocabulary, prompts: readonly number[][], options: { maxNewTokens?: number; method?: 'greedy' | 'beam' | 'sample'; beams?: number; seed?: number } = {}): Promise<number[][]> {
  const p = promptBatch(prompts);
  try {
    const r = await lm.generate(p.ids, { attentionMask: p.attentionMask, maxNewTokens: options.maxNewTokens ?? 60, method: options.method ?? 'greedy', beams: options.beams, seed: options.seed, eosId: 0, allowedTokens: [[1, v.textIds]] });
    return r.tokens;
  } finally {
    p.ids.dispose();
    p.attentionMask.dispose();
  }
}

/** Image codes for report -> image prompts: exactly `n` image tokens each (the image id range only), as codes. */
export async function generateImageCodes(lm: CausalLM, v: SpecialsVocabulary, prompts: readonly number[][], n: number, options: { method?: 'greedy' | 'sample'; seed?: number; temperature?: number; topK?: number } = {}): Promise<number[][]> {
  const p = promptBatch(prompts);
  try {
    const r = await lm.generate(p.ids, { attentionMask: p.attentionMask, minNewTokens: n, maxNewTokens: n, method: options.method ?? 'greedy', seed: options.seed, temperature: options.temperature, topK: options.topK, eosId: 0, allowedTokens: [[v.imageStart, v.size]] });
    return r.tokens.map((row) => {
      if (row.length !== n) throw new ArgumentError(`generateImageCodes: a row has ${row.length} tokens, not ${n}`, 'ERR_INVALID_ARG', 'generateImageCodes');
      return row.map((id) => v.codeOf(id));
    });
  } finally {
    p.ids.dispose();
    p.attentionMask.dispose();
  }
}
