/** Model building blocks on native torch::nn modules: `radkit.nn.createTransformer(...)`; losses: `radkit.nn.losses.*`. */
export {
  TransformerModel,
  createTransformer,
  generate,
  type TransformerConfig,
  type ResolvedTransformerConfig,
  type TransformerGenerateOptions,
  type GenerateResult,
  type TokenEvent,
  type TokenStream,
} from './transformer.js';
export {
  CausalLM,
  loadCausalLM,
  createCausalLM,
  causalLMConfigFromHF,
  causalLMConfigToHF,
  extendVocabulary,
  type CausalLMArch,
  type CausalLMConfig,
  type ResolvedCausalLMConfig,
  type CausalLMPlacement,
  type CausalLMInputOptions,
  type CausalLMLossOptions,
  type CausalLMTrainOptions,
  type CausalLMGenerateOptions,
  type CausalLMGenerateResult,
  type LoraOptions,
  type OptimizerOptions,
} from './causal-lm.js';
export * as losses from './losses.js';
export type { GenerateOptions, SystemOptions } from '../generation.js';
