import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArgumentError, DataError, DisposedError } from '../errors.js';
import type { GenerateOptions } from '../generation.js';
import { readSafetensorsHeader } from '../io/safetensors.js';
import { loadNative } from '../native.js';
import { Tensor, handleOf, type Device, type Dtype } from '../tensor.js';
import type { HFTokenizer } from '../text/hf-tokenizer.js';
import type { NativeCausalLMConfig, NativeCausalLMHandle } from '../../typings/native.js';

/**
 * Decoder-only causal language models in the Hugging Face layouts (LLaMA, GPT-NeoX), computed by
 * native/nn/causal_lm.h. `loadCausalLM(dir)` reads a Hugging Face folder (config.json and
 * model.safetensors or shards listed by model.safetensors.index.json); `createCausalLM(config)`
 * builds one with fresh weights.
 */
export type CausalLMArch = 'llama' | 'gpt_neox';

/** The model's shape (camelCase; `loadCausalLM` maps config.json onto it). */
export interface CausalLMConfig {
  arch: CausalLMArch;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** Key/value heads (grouped-query attention when < numHeads; llama only). Default numHeads. */
  numKvHeads?: number;
  /** Default hiddenSize / numHeads. */
  headDim?: number;
  intermediateSize: number;
  /** Longest sequence, prefix included (default 2048). */
  maxPositions?: number;
  /** Rotary base (default 10000). */
  ropeTheta?: number;
  /** Rotated dims of each head (default headDim; gpt_neox: headDim * rotary_pct). */
  rotaryDim?: number;
  /** Default 1e-6 (llama RMSNorm) / 1e-5 (gpt_neox LayerNorm). */
  normEps?: number;
  tieEmbeddings?: boolean;
  /** gpt_neox: x + attn(ln1 x) + mlp(ln2 x) (default true) instead of the sequential form. */
  parallelResidual?: boolean;
  /** Default false for llama, true for gpt_neox. */
  attentionBias?: boolean;
  mlpBias?: boolean;
  /** Default 'silu' (llama) / 'gelu' (exact, gpt_neox). */
  activation?: 'silu' | 'gelu' | 'gelu_tanh' | 'relu';
  /** -1 = none. */
  bosId?: number;
  eosId?: number;
  padId?: number;
}

export type ResolvedCausalLMConfig = NativeCausalLMConfig;

export interface CausalLMPlacement {
  /** Compute dtype (default float32 on the CPU; on CUDA the checkpoint's torch_dtype). */
  dtype?: 'float32' | 'float64' | 'float16' | 'bfloat16';
  device?: Device;
}

/** Inputs of logits / loss / trainStep. */
export interface CausalLMInputOptions {
  /** [B, T], nonzero = valid (default all valid). Positions count valid tokens only. */
  attentionMask?: Tensor;
  /**
   * [B, P, hiddenSize] embeddings placed before the ids (projected image or label features): the
   * sequence is [inputsEmbeds; embed(ids)], every prefix position valid. Gradients reach it in `loss`.
   */
  inputsEmbeds?: Tensor;
}

export interface CausalLMLossOptions extends CausalLMInputOptions {
  /** [B, T], nonzero = score this token (e.g. the response only). Default: every token. ids[:, 0] counts only after a prefix. */
  lossMask?: Tensor;
}

export interface CausalLMTrainOptions extends CausalLMLossOptions {
  /** Clip the global gradient norm to this (default 0 = off). */
  clipNorm?: number;
}

/**
 * The one generation contract (GenerateOptions; `maxNewTokens` / `minNewTokens` are its
 * `maxLength` / `minLength`) plus the prompt's mask, an embedding prefix and the cache mode.
 */
export interface CausalLMGenerateOptions extends Omit<GenerateOptions, 'systemOptions' | 'returnAttention'> {
  /** [B, T] nonzero = valid; prompts are left-padded (the last position of every row valid). */
  attentionMask?: Tensor;
  /** [B, P, hiddenSize] prefix before the prompt (see CausalLMInputOptions). */
  inputsEmbeds?: Tensor;
  /** 'full' (default): key/value cache; 'none': recompute the whole sequence every step (the baseline). */
  cache?: 'full' | 'none';
}

export interface CausalLMGenerateResult {
  /** Per prompt: the new tokens (the EOS / stop token that ended it removed). */
  tokens: number[][];
  /** Greedy/sampling: sum of log-probabilities; beam: length-penalised score. */
  scores: number[];
  /** Whether an EOS / stop token ended the row (else maxNewTokens did). */
  finished: boolean[];
  steps: number;
}

export interface LoraOptions {
  /** Default 8. */
  rank?: number;
  /** Scaling alpha / rank (default 2 * rank). */
  alpha?: number;
  /** Dropout on the adapter input in training (default 0). */
  dropout?: number;
  /** Module names (the last part: q_proj, v_proj, query_key_value, dense, ...). Default q_proj+v_proj (llama) / query_key_value (gpt_neox). */
  targets?: string[];
  /** Whole modules kept trainable and saved with the adapters (e.g. ['embed_tokens', 'lm_head'] after extending the vocabulary). */
  trainModules?: string[];
  /** Seed of lora_A's initialisation (default 0). */
  seed?: number;
}

export interface OptimizerOptions {
  lr: number;
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

type Json = Record<string, unknown>;

const CONFIG_FILE = 'config.json';
const SINGLE_FILE = 'model.safetensors';
const INDEX_FILE = 'model.safetensors.index.json';
const ADAPTER_CONFIG = 'adapter_config.json';
const ADAPTER_FILE = 'adapter_model.safetensors';

export function readJson(file: string, fn: string): Json {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ArgumentError(`${fn}: cannot read ${file}: ${(e as Error).message}`, 'ERR_INVALID_ARG', fn);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new DataError({ file, message: `malformed JSON (${(e as Error).message})` }, fn);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DataError({ file, message: 'not a JSON object' }, fn);
  return v as Json;
}

function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  fs.renameSync(tmp, file);
}

const ACTIVATIONS: Record<string, NonNullable<CausalLMConfig['activation']>> = {
  silu: 'silu',
  swish: 'silu',
  gelu: 'gelu',
  gelu_new: 'gelu_tanh',
  gelu_fast: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
  relu: 'relu',
};

/** The EOS ids of a config.json (`eos_token_id` may be a number or a list). */
function eosList(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number');
  return [];
}

/**
 * Maps a Hugging Face config.json (model_type llama or gpt_neox) onto a CausalLMConfig. Throws a
 * DataError naming the file and the field for what radkit cannot run (unknown model_type, rope
 * scaling, odd rotary widths).
 */
export function causalLMConfigFromHF(hf: Json, file = CONFIG_FILE): CausalLMConfig & { eosIds: number[] } {
  const fn = 'nn.loadCausalLM';
  const bad = (message: string): never => {
    throw new DataError({ file, message }, fn);
  };
  const int = (key: string, fallback?: number): number => {
    const v = hf[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) return bad(`${key} must be a non-negative integer, got ${JSON.stringify(hf[key])}`);
    return v;
  };
  const num = (key: string, fallback: number): number => {
    const v = hf[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) return bad(`${key} must be a number, got ${JSON.stringify(hf[key])}`);
    return v;
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const v = hf[key] ?? fallback;
    if (typeof v !== 'boolean') return bad(`${key} must be true or false, got ${JSON.stringify(hf[key])}`);
    return v;
  };
  const type = hf.model_type;
  if (type !== 'llama' && type !== 'gpt_neox') bad(`model_type ${JSON.stringify(type)} is not supported (radkit runs 'llama' and 'gpt_neox')`);
  if (hf.rope_scaling !== undefined && hf.rope_scaling !== null) bad(`rope_scaling ${JSON.stringify(hf.rope_scaling)} is not supported (only plain rotary embeddings)`);
  const act = String(hf.hidden_act ?? (type === 'llama' ? 'silu' : 'gelu'));
  if (!ACTIVATIONS[act]) bad(`hidden_act '${act}' is not supported (${Object.keys(ACTIVATIONS).join(', ')})`);
  const heads = int('num_attention_heads');
  const hidden = int('hidden_size');
  const headDim = type === 'llama' ? int('head_dim', Math.floor(hidden / heads)) : Math.floor(hidden / heads);
  const eosIds = eosList(hf.eos_token_id);
  const id = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) ? v : -1);
  const common = {
    vocabSize: int('vocab_size'),
    hiddenSize: hidden,
    numLayers: int('num_hidden_layers'),
    numHeads: heads,
    headDim,
    intermediateSize: int('intermediate_size'),
    maxPositions: int('max_position_embeddings', 2048),
    tieEmbeddings: bool('tie_word_embeddings', false),
    activation: ACTIVATIONS[act],
    bosId: id(hf.bos_token_id),
    eosId: eosIds.length ? eosIds[0] : -1,
    padId: id(hf.pad_token_id),
    eosIds,
  };
  if (type === 'llama') {
    return {
      ...common,
      arch: 'llama',
      numKvHeads: int('num_key_value_heads', heads),
      ropeTheta: num('rope_theta', 10000),
      rotaryDim: headDim,
      normEps: num('rms_norm_eps', 1e-6),
      attentionBias: bool('attention_bias', false),
      mlpBias: bool('mlp_bias', false),
    };
  }
  const pct = num('rotary_pct', 0.25);
  const rotaryDim = Math.floor(headDim * pct);
  if (rotaryDim % 2) bad(`rotary_pct ${pct} of head size ${headDim} gives an odd rotary width ${rotaryDim}`);
  return {
    ...common,
    arch: 'gpt_neox',
    numKvHeads: heads,
    ropeTheta: num('rotary_emb_base', num('rope_theta', 10000)),
    rotaryDim,
    normEps: num('layer_norm_eps', 1e-5),
    parallelResidual: bool('use_parallel_residual', true),
    attentionBias: bool('attention_bias', true),
    mlpBias: true,
  };
}

/** A Hugging Face config.json for a config (what `save` writes for a model built from scratch). */
export function causalLMConfigToHF(c: ResolvedCausalLMConfig, dtype: string): Json {
  const torchDtype = dtype === 'float64' ? 'float64' : dtype;
  const ids = { bos_token_id: c.bosId >= 0 ? c.bosId : null, eos_token_id: c.eosId >= 0 ? c.eosId : null, pad_token_id: c.padId >= 0 ? c.padId : null };
  const act = { silu: 'silu', gelu: 'gelu', gelu_tanh: 'gelu_pytorch_tanh', relu: 'relu' }[c.activation];
  const common = {
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    intermediate_size: c.intermediateSize,
    max_position_embeddings: c.maxPositions,
    tie_word_embeddings: c.tieEmbeddings,
    hidden_act: act,
    torch_dtype: torchDtype,
    ...ids,
  };
  if (c.arch === 'llama') {
    return {
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      ...common,
      num_key_value_heads: c.numKvHeads,
      head_dim: c.headDim,
      rope_theta: c.ropeTheta,
      rms_norm_eps: c.normEps,
      attention_bias: c.attentionBias,
      mlp_bias: c.mlpBias,
      rope_scaling: null,
    };
  }
  return {
    architectures: ['GPTNeoXForCausalLM'],
    model_type: 'gpt_neox',
    ...common,
    rotary_pct: c.rotaryDim / c.headDim,
    rotary_emb_base: c.ropeTheta,
    layer_norm_eps: c.normEps,
    use_parallel_residual: c.parallelResidual,
    attention_bias: c.attentionBias,
  };
}

/** The safetensors files of a checkpoint folder, checked against its index when sharded. */
export function checkpointFiles(dir: string): string[] {
  const fn = 'nn.loadCausalLM';
  const index = path.join(dir, INDEX_FILE);
  if (fs.existsSync(index)) {
    const json = readJson(index, fn);
    const map = json.weight_map;
    if (typeof map !== 'object' || map === null || Array.isArray(map) || Object.keys(map).length === 0)
      throw new DataError({ file: index, message: 'weight_map must be a non-empty object of tensor name -> shard file' }, fn);
    const shards = [...new Set(Object.values(map as Record<string, unknown>))];
    const files: string[] = [];
    for (const s of shards) {
      if (typeof s !== 'string' || s.includes('/') || s.includes('\\') || s === '..' || s === '.')
        throw new DataError({ file: index, message: `weight_map names the shard ${JSON.stringify(s)}; shards must be file names in the same folder` }, fn);
      const f = path.join(dir, s);
      if (!fs.existsSync(f)) throw new DataError({ file: index, message: `shard ${s} does not exist` }, fn);
      files.push(f);
    }
    const problems: string[] = [];
    for (const f of files) {
      const inFile = new Set(readSafetensorsHeader(f).entries.map((e) => e.name));
      for (const [name, shard] of Object.entries(map as Record<string, string>)) if (path.join(dir, shard) === f && !inFile.has(name)) problems.push(`${name} is not in ${shard}`);
      for (const name of inFile) if ((map as Record<string, string>)[name] !== path.basename(f)) problems.push(`${name} is in ${path.basename(f)} but the index ${name in (map as object) ? `maps it to ${(map as Record<string, string>)[name]}` : 'does not list it'}`);
    }
    if (problems.length) throw new DataError({ file: index, message: `the index does not match the shards: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? ` (and ${problems.length - 10} more)` : ''}` }, fn);
    return files;
  }
  const single = path.join(dir, SINGLE_FILE);
  if (fs.existsSync(single)) return [single];
  const bin = ['pytorch_model.bin', 'pytorch_model.bin.index.json'].find((f) => fs.existsSync(path.join(dir, f)));
  throw new ArgumentError(
    `${fn}: ${dir} has no ${SINGLE_FILE} or ${INDEX_FILE}${bin ? ` (it has ${bin}: radkit reads safetensors only; convert the checkpoint first)` : ''}`,
    'ERR_INVALID_ARG',
    fn,
  );
}

const PLACEMENT_DTYPES = ['float32', 'float64', 'float16', 'bfloat16'];

function placementArg(options: CausalLMPlacement, fn: string): void {
  if (typeof options !== 'object' || options === null) throw new ArgumentError(`${fn}: options must be an object`, 'ERR_INVALID_ARG', fn);
  if (options.dtype !== undefined && !PLACEMENT_DTYPES.includes(options.dtype))
    throw new ArgumentError(`${fn}: options.dtype must be one of ${PLACEMENT_DTYPES.join(', ')}, got ${JSON.stringify(options.dtype)}`, 'ERR_DTYPE', fn);
}

// Safety net: a model the user forgot to dispose releases its weights when collected.
const forgotten = new FinalizationRegistry<NativeCausalLMHandle>((h) => {
  try {
    loadNative().causalLMDispose(h);
  } catch {
    /* busy or already gone */
  }
});

export class CausalLM {
  #handle: NativeCausalLMHandle | null;
  #hf: Json | null;
  #eosIds: number[];

  private constructor(handle: NativeCausalLMHandle, hf: Json | null, eosIds: number[]) {
    this.#handle = handle;
    this.#hf = hf;
    this.#eosIds = eosIds;
    forgotten.register(this, handle, this);
  }

  /** @internal */
  static fromHandle(handle: NativeCausalLMHandle, hf: Json | null, eosIds: number[]): CausalLM {
    return new CausalLM(handle, hf, eosIds);
  }

  get config(): ResolvedCausalLMConfig {
    return { ...this.#info('CausalLM.config').config };
  }

  get dtype(): Dtype {
    return this.#info('CausalLM.dtype').dtype as Dtype;
  }

  get device(): string {
    return this.#info('CausalLM.device').device;
  }

  /** Every parameter (LoRA adapters included). */
  parameterCount(): number {
    return this.#info('CausalLM.parameterCount').parameterCount;
  }

  /** Parameters a train step updates (all of them, or after addLora only the adapters and trainModules). */
  trainableParameterCount(): number {
    return this.#info('CausalLM.trainableParameterCount').trainableCount;
  }

  /** The adapters' settings, or null without adapters. */
  get lora(): { rank: number; alpha: number; dropout: number; targets: string[]; trainModules: string[] } | null {
    return this.#info('CausalLM.lora').lora;
  }

  get disposed(): boolean {
    return this.#handle === null;
  }

  /** float32 logits [B, T, V] of the ids' positions (position t scores the token after ids[:, t]); no gradient. */
  logits(ids: Tensor, options: CausalLMInputOptions = {}): Tensor {
    const fn = 'CausalLM.logits';
    return Tensor.wrap(loadNative().causalLMLogits(this.#live(fn), handleOf(ids, 'ids', fn), this.#inputs(options, fn)));
  }

  /** Mean next-token cross-entropy over the tokens `lossMask` selects: a 0-dim Tensor whose backward() reaches the trainable parameters and inputsEmbeds. */
  loss(ids: Tensor, options: CausalLMLossOptions = {}): Tensor {
    const fn = 'CausalLM.loss';
    return Tensor.wrap(loadNative().causalLMLoss(this.#live(fn), handleOf(ids, 'ids', fn), this.#inputs(options, fn, ['lossMask'])));
  }

  /** The input embeddings of ids [B, T] -> [B, T, hiddenSize] (to build prefixes). */
  embed(ids: Tensor): Tensor {
    const fn = 'CausalLM.embed';
    return Tensor.wrap(loadNative().causalLMEmbed(this.#live(fn), handleOf(ids, 'ids', fn)));
  }

  /** Generates from left-padded prompts [B, T] on a native worker thread (see CausalLMGenerateOptions). */
  async generate(prompt: Tensor, options: CausalLMGenerateOptions = {}): Promise<CausalLMGenerateResult> {
    const fn = 'CausalLM.generate';
    const handle = this.#live(fn);
    if (typeof options !== 'object' || options === null) throw new ArgumentError(`${fn}: options must be an object`, 'ERR_INVALID_ARG', fn);
    const { attentionMask, inputsEmbeds, ...rest } = options;
    const native: Record<string, unknown> = { ...rest };
    if (attentionMask !== undefined) native.attentionMask = handleOf(attentionMask, 'options.attentionMask', fn);
    if (inputsEmbeds !== undefined) native.inputsEmbeds = handleOf(inputsEmbeds, 'options.inputsEmbeds', fn);
    // A config with several EOS ids (llama 3) stops on each of them unless the caller chose.
    if (native.eosId === undefined && this.#eosIds.length > 1) native.stopIds = [...new Set([...this.#eosIds.slice(1), ...((native.stopIds as number[] | undefined) ?? [])])];
    return loadNative().causalLMGenerate(handle, handleOf(prompt, 'prompt', fn), native);
  }

  /** Adds LoRA adapters (B = 0: the model is unchanged until trained) and freezes everything else; returns the adapted modules. */
  addLora(options: LoraOptions = {}): string[] {
    const fn = 'CausalLM.addLora';
    if (typeof options !== 'object' || options === null) throw new ArgumentError(`${fn}: options must be an object`, 'ERR_INVALID_ARG', fn);
    return loadNative().causalLMAddLora(this.#live(fn), { ...options });
  }

  /** Folds the adapters into the base weights (W += alpha/r B A) and removes them; every parameter is trainable again. */
  mergeLora(): void {
    loadNative().causalLMMergeLora(this.#live('CausalLM.mergeLora'));
  }

  /** Writes the adapters as PEFT does: adapter_config.json and adapter_model.safetensors (lora_A/lora_B and trainModules only). */
  async saveLora(dir: string): Promise<void> {
    const fn = 'CausalLM.saveLora';
    const handle = this.#live(fn);
    const lora = this.lora;
    if (!lora) throw new ArgumentError(`${fn}: the model has no LoRA adapters to save`, 'ERR_INVALID_ARG', fn);
    fs.mkdirSync(dir, { recursive: true });
    await loadNative().causalLMSave(handle, path.join(dir, ADAPTER_FILE), 'adapter');
    writeJsonAtomic(path.join(dir, ADAPTER_CONFIG), {
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      r: lora.rank,
      lora_alpha: lora.alpha,
      lora_dropout: lora.dropout,
      target_modules: lora.targets,
      modules_to_save: lora.trainModules.length ? lora.trainModules : null,
      bias: 'none',
      fan_in_fan_out: false,
    });
  }

  /** Adds the adapters described by DIR/adapter_config.json (unless this model already has adapters of that shape) and loads their weights. */
  loadLora(dir: string): void {
    const fn = 'CausalLM.loadLora';
    const handle = this.#live(fn);
    const cfgFile = path.join(dir, ADAPTER_CONFIG);
    const cfg = readJson(cfgFile, fn);
    if (cfg.peft_type !== undefined && cfg.peft_type !== 'LORA') throw new DataError({ file: cfgFile, message: `peft_type ${JSON.stringify(cfg.peft_type)} is not LORA` }, fn);
    if (cfg.bias !== undefined && cfg.bias !== 'none') throw new DataError({ file: cfgFile, message: `bias ${JSON.stringify(cfg.bias)} is not supported (only 'none')` }, fn);
    const targets = cfg.target_modules;
    if (!Array.isArray(targets) || !targets.every((t) => typeof t === 'string'))
      throw new DataError({ file: cfgFile, message: 'target_modules must be a list of module names' }, fn);
    const options: LoraOptions = {
      rank: cfg.r as number,
      alpha: cfg.lora_alpha as number,
      dropout: (cfg.lora_dropout as number) ?? 0,
      targets: targets as string[],
      trainModules: Array.isArray(cfg.modules_to_save) ? (cfg.modules_to_save as string[]) : [],
    };
    const file = path.join(dir, ADAPTER_FILE);
    if (!fs.existsSync(file)) throw new ArgumentError(`${fn}: ${dir} has no ${ADAPTER_FILE}`, 'ERR_INVALID_ARG', fn);
    const added = this.lora === null;
    if (added) loadNative().causalLMAddLora(handle, { ...options });
    try {
      loadNative().causalLMLoadAdapter(handle, file);
    } catch (err) {
      if (added) this.#dropFreshAdapters();
      throw err;
    }
  }

  /** Writes DIR/config.json (Hugging Face form) and DIR/model.safetensors (atomically). Merge or save LoRA adapters separately. */
  async save(dir: string): Promise<void> {
    const fn = 'CausalLM.save';
    const handle = this.#live(fn);
    fs.mkdirSync(dir, { recursive: true });
    await loadNative().causalLMSave(handle, path.join(dir, SINGLE_FILE), 'model');
    const index = path.join(dir, INDEX_FILE);
    if (fs.existsSync(index)) fs.rmSync(index);
    const info = this.#info(fn);
    const hf = this.#hf ? { ...this.#hf, vocab_size: info.config.vocabSize, torch_dtype: info.dtype } : causalLMConfigToHF(info.config, info.dtype);
    writeJsonAtomic(path.join(dir, CONFIG_FILE), hf);
  }

  /** Grows the vocabulary to `size` rows: new embedding (and output) rows start at the mean of the existing ones. */
  resizeVocab(size: number): void {
    loadNative().causalLMResizeVocab(this.#live('CausalLM.resizeVocab'), size);
  }

  /** AdamW over the trainable parameters (again after addLora / mergeLora / resizeVocab). */
  setupOptimizer(options: OptimizerOptions): { parameters: number } {
    const fn = 'CausalLM.setupOptimizer';
    if (typeof options !== 'object' || options === null) throw new ArgumentError(`${fn}: options must be an object with lr`, 'ERR_INVALID_ARG', fn);
    return loadNative().causalLMSetupOptimizer(this.#live(fn), { ...options });
  }

  /** One optimisation step on the loss of `ids` (see loss()), on a native worker thread. */
  async trainStep(ids: Tensor, options: CausalLMTrainOptions = {}): Promise<{ loss: number; gradNorm: number }> {
    const fn = 'CausalLM.trainStep';
    return loadNative().causalLMTrainStep(this.#live(fn), handleOf(ids, 'ids', fn), this.#inputs(options, fn, ['lossMask', 'clipNorm']));
  }

  /** Copies of the parameters by Hugging Face name ('adapter': only what saveLora writes). Dispose them. */
  weights(which: 'all' | 'adapter' = 'all'): Record<string, Tensor> {
    const raw = loadNative().causalLMWeights(this.#live('CausalLM.weights'), which);
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Tensor.wrap(v)]));
  }

  /** Frees the weights now. Idempotent. */
  dispose(): void {
    if (this.#handle === null) return;
    loadNative().causalLMDispose(this.#handle);
    forgotten.unregister(this);
    this.#handle = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #dropFreshAdapters(): void {
    // loadLora added adapters whose weights did not load (nothing is copied on failure): B is still
    // zero, so merging them removes them without changing a weight.
    loadNative().causalLMMergeLora(this.#live('CausalLM.loadLora'));
  }

  #inputs(options: CausalLMTrainOptions, fn: string, extra: string[] = []): Record<string, unknown> {
    if (typeof options !== 'object' || options === null) throw new ArgumentError(`${fn}: options must be an object`, 'ERR_INVALID_ARG', fn);
    const allowed = ['attentionMask', 'inputsEmbeds', ...extra];
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(options)) {
      if (!allowed.includes(k)) throw new ArgumentError(`${fn}: unknown option '${k}' (expected ${allowed.join(', ')})`, 'ERR_INVALID_ARG', fn);
      if (v === undefined) continue;
      out[k] = k === 'clipNorm' ? v : handleOf(v, `options.${k}`, fn);
    }
    return out;
  }

  #info(fn: string) {
    return loadNative().causalLMInfo(this.#live(fn));
  }

  #live(fn: string): NativeCausalLMHandle {
    if (this.#handle === null) throw new DisposedError(`${fn}: the model was disposed; it can no longer be used`, 'ERR_DISPOSED', fn);
    return this.#handle;
  }
}

function nativeConfig(c: CausalLMConfig): Record<string, unknown> {
  return Object.fromEntries(Object.entries(c).filter(([k, v]) => k !== 'eosIds' && v !== undefined));
}

/**
 * Loads a Hugging Face checkpoint folder: config.json (model_type llama or gpt_neox) and
 * model.safetensors or the shards of model.safetensors.index.json, memory-mapped, every header
 * validated and every name and shape checked before any weight is copied. The weights are converted
 * to `dtype` (default float32 on the CPU; on CUDA the checkpoint's torch_dtype).
 */
export async function loadCausalLM(dir: string, options: CausalLMPlacement = {}): Promise<CausalLM> {
  const fn = 'nn.loadCausalLM';
  if (typeof dir !== 'string' || dir.length === 0) throw new ArgumentError(`${fn}: dir must be a folder path`, 'ERR_INVALID_ARG', fn);
  placementArg(options, fn);
  const cfgFile = path.join(dir, CONFIG_FILE);
  const hf = readJson(cfgFile, fn);
  const config = causalLMConfigFromHF(hf, cfgFile);
  const files = checkpointFiles(dir);
  const device = options.device ?? 'cpu';
  const stored = typeof hf.torch_dtype === 'string' && PLACEMENT_DTYPES.includes(hf.torch_dtype) ? (hf.torch_dtype as Dtype) : 'float32';
  const dtype = options.dtype ?? (device === 'cpu' ? 'float32' : stored);
  const handle = await loadNative().causalLMLoad(nativeConfig(config) as unknown as NativeCausalLMConfig, files, { dtype, device });
  return CausalLM.fromHandle(handle, hf, config.eosIds);
}

/** Builds a causal LM with fresh weights (normal(0, 0.02) matrices, unit norms, zero biases) drawn from `seed`. */
export function createCausalLM(config: CausalLMConfig, options: CausalLMPlacement & { seed?: number } = {}): CausalLM {
  const fn = 'nn.createCausalLM';
  if (typeof config !== 'object' || config === null) throw new ArgumentError(`${fn}: config must be an object`, 'ERR_INVALID_ARG', fn);
  placementArg(options, fn);
  const handle = loadNative().causalLMCreate(nativeConfig(config) as unknown as NativeCausalLMConfig, { ...options });
  return CausalLM.fromHandle(handle, null, config.eosId !== undefined && config.eosId >= 0 ? [config.eosId] : []);
}

/**
 * Joint vocabularies (e.g. text + image tokens): adds `tokens` to the tokenizer (those already
 * present keep their ids) and grows the model's embedding and output rows to the tokenizer's new
 * vocabulary size, new rows at the mean embedding. Returns each token's id. The model is checked
 * first: nothing changes when the tokenizer's vocabulary does not fit it.
 */
export function extendVocabulary(lm: CausalLM, tokenizer: HFTokenizer, tokens: string[], options: { special?: boolean } = {}): number[] {
  const fn = 'nn.extendVocabulary';
  if (!(lm instanceof CausalLM)) throw new ArgumentError(`${fn}: lm must be a CausalLM`, 'ERR_INVALID_ARG', fn);
  const vocab = lm.config.vocabSize;
  if (tokenizer.vocabSize > vocab)
    throw new ArgumentError(`${fn}: the tokenizer already has ${tokenizer.vocabSize} ids but the model only ${vocab} rows; they do not belong together`, 'ERR_INVALID_ARG', fn);
  const ids = tokenizer.addTokens(tokens, options);
  if (tokenizer.vocabSize > vocab) lm.resizeVocab(tokenizer.vocabSize);
  return ids;
}
