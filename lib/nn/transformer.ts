import { ArgumentError, DisposedError } from '../errors.js';
import { loadNative } from '../native.js';
import { Tensor, handleOf, type Device } from '../tensor.js';
import type { NativeGenerateResult, NativeTokenEvent, NativeTransformerHandle } from '../../typings/native.js';
import type { GenerateOptions } from '../generation.js';

/**
 * A transformer built natively from torch::nn blocks (native/nn/transformer.h): an encoder-decoder
 * (report generation from image features or source tokens, e.g. XProNet: 3+3 layers, d=512, 8 heads,
 * d_ff=512) or a decoder-only language model. Parameters are drawn deterministically from `seed`.
 */
export interface TransformerConfig {
  kind?: 'encoder-decoder' | 'decoder-only';
  /** Target vocabulary size (logits width). Required. */
  vocabSize: number;
  /** Model width (default 512). */
  dModel?: number;
  /** Attention heads; must divide dModel (default 8). */
  numHeads?: number;
  /** Feed-forward width (default 512). */
  dFF?: number;
  /** Encoder layers (default 3; ignored by decoder-only). */
  encoderLayers?: number;
  /** Decoder layers (default 3). */
  decoderLayers?: number;
  /** Dropout in training; generation never applies it (default 0.1). */
  dropout?: number;
  /** 'pre' (x + f(norm(x)), final norms; R2Gen/XProNet) or 'post' (norm(x + f(x))). Default 'pre'. */
  norm?: 'pre' | 'post';
  /** Position encoding (default 'sinusoidal'). */
  positions?: 'sinusoidal' | 'learned';
  /** Longest target (and source, where positions are added to it). Default 512. */
  maxPositions?: number;
  /** > 0: the source is token ids [B, S] with this vocabulary; 0 (default): the source is features [B, S, sourceDim]. */
  sourceVocabSize?: number;
  /** Width of feature sources (default dModel); a different width adds a learned projection. */
  sourceDim?: number;
  /** Add positions to the source (default: true for token sources, false for features). */
  sourcePositions?: boolean;
  padId?: number;
  bosId?: number;
  eosId?: number;
  /** Seed of the parameters' private generator (default 0): the same config gives the same weights. */
  seed?: number;
  /** Xavier-uniform gain of weight matrices (default 1; larger gives peakier output distributions). */
  initGain?: number;
  dtype?: 'float32' | 'float64' | 'float16' | 'bfloat16';
  device?: Device;
}

export type ResolvedTransformerConfig = Required<Omit<TransformerConfig, 'device'>> & { device: string };

/**
 * Options of a raw transformer's generate(): the one generation contract (GenerateOptions, whose
 * systemOptions raw transformers do not take) plus how this search runs.
 */
export interface TransformerGenerateOptions extends Omit<GenerateOptions, 'systemOptions'> {
  /** Valid source (prompt) positions [B, S], nonzero = valid. Default: token != padId for token sources, all valid for features. */
  sourceMask?: Tensor;
  /**
   * 'full' (default): self-attention key/value cache + cross-attention keys/values once per source.
   * 'cross': cross keys/values once, decoder re-run over the prefix. 'none': full decoder recompute (benchmark baseline).
   */
  cache?: 'full' | 'cross' | 'none';
  /** Called on the JS thread after every step; return false to stop early. */
  onToken?: (event: TokenEvent) => boolean | void;
  /** Stops the search after the current step when aborted. */
  signal?: AbortSignal;
}

export interface TokenEvent {
  /** 0-based step. */
  step: number;
  /** Per source: the token just chosen (beam search: of the best running hypothesis), -1 once the source finished. */
  tokens: number[];
  finished: boolean[];
}

export interface GenerateResult {
  /** Per source: the generated ids (EOS included when emitted; BOS and the prompt excluded). */
  tokens: number[][];
  /** Greedy/sampling: sum of log-probabilities; beam: length-penalised score. */
  scores: number[];
  /** Whether each sequence ended with EOS (else it hit maxLength or was stopped). */
  finished: boolean[];
  /** Decoder steps run. */
  steps: number;
  /** [B, longest, S] float32: per generated token, the last decoder layer's source attention (mean over heads); zeros past each length. */
  attention?: Tensor;
}

/** A token stream: iterate it for TokenEvents; `result` settles with the final GenerateResult. */
export interface TokenStream extends AsyncIterable<TokenEvent> {
  result: Promise<GenerateResult>;
}

// Safety net: a model the user forgot to dispose releases its weights when collected.
const forgotten = new FinalizationRegistry<NativeTransformerHandle>((h) => {
  try {
    loadNative().transformerDispose(h);
  } catch {
    /* already gone */
  }
});

export class TransformerModel {
  #handle: NativeTransformerHandle | null;
  #config: ResolvedTransformerConfig;

  private constructor(handle: NativeTransformerHandle) {
    this.#handle = handle;
    this.#config = loadNative().transformerInfo(handle).config as ResolvedTransformerConfig;
    forgotten.register(this, handle, this);
  }

  /** Builds a model with deterministic weights (from `config.seed`). */
  static create(config: TransformerConfig): TransformerModel {
    return new TransformerModel(loadNative().transformerCreate(config));
  }

  get config(): ResolvedTransformerConfig {
    return { ...this.#config };
  }

  get parameterCount(): number {
    return loadNative().transformerInfo(this.#live('parameterCount')).parameterCount;
  }

  get parameterNames(): string[] {
    return loadNative().transformerInfo(this.#live('parameterNames')).parameterNames;
  }

  get disposed(): boolean {
    return this.#handle === null;
  }

  /**
   * Generates from `source` (features [B, S, sourceDim], source ids [B, S], or for a decoder-only
   * model left-padded prompt ids [B, P]) on a native worker thread; the event loop stays free.
   */
  async generate(source: Tensor, options: TransformerGenerateOptions = {}): Promise<GenerateResult> {
    const fn = 'nn.generate';
    const handle = this.#live(fn);
    const { onToken, signal, sourceMask, ...rest } = options;
    if (onToken !== undefined && typeof onToken !== 'function') throw new ArgumentError(`${fn}: options.onToken must be a function`, 'ERR_INVALID_ARG', fn);
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new ArgumentError(`${fn}: options.signal must be an AbortSignal`, 'ERR_INVALID_ARG', fn);
    const native: Record<string, unknown> = { ...rest };
    if (sourceMask !== undefined) native.sourceMask = handleOf(sourceMask, 'options.sourceMask', fn);
    const streaming = onToken !== undefined || signal !== undefined;
    let delivered = 0;
    let callbackError: unknown = null;
    const cb = streaming
      ? (e: NativeTokenEvent): boolean => {
          delivered++;
          if (callbackError !== null) return false;
          try {
            if (onToken && onToken(e) === false) return false;
          } catch (err) {
            callbackError = err;
            return false;
          }
          return !signal?.aborted;
        }
      : undefined;
    const raw: NativeGenerateResult = await loadNative().transformerGenerate(handle, handleOf(source, 'source', fn), native, cb);
    // Token events travel on their own queue: wait until every step's event was delivered.
    for (let waited = 0; streaming && delivered < raw.steps && waited < 2000; waited += 5) await new Promise((r) => setTimeout(r, 5));
    const result: GenerateResult = { tokens: raw.tokens, scores: raw.scores, finished: raw.finished, steps: raw.steps };
    if (raw.attention) result.attention = Tensor.wrap(raw.attention);
    if (callbackError !== null) {
      result.attention?.dispose();
      throw callbackError;
    }
    return result;
  }

  /** The streaming form: `for await (const e of model.stream(src, opts))`, then `await stream.result`. */
  stream(source: Tensor, options: Omit<TransformerGenerateOptions, 'onToken'> = {}): TokenStream {
    const queue: TokenEvent[] = [];
    let wake: (() => void) | null = null;
    let ended = false;
    let failure: unknown = null;
    const notify = () => {
      const w = wake;
      wake = null;
      w?.();
    };
    const result = this.generate(source, {
      ...options,
      onToken: (e) => {
        queue.push(e);
        notify();
      },
    });
    result.then(
      () => {
        ended = true;
        notify();
      },
      (err) => {
        failure = err;
        ended = true;
        notify();
      },
    );
    result.catch(() => {}); // the iterator reports the failure; avoid an unhandled rejection if only it is used
    return {
      result,
      async *[Symbol.asyncIterator]() {
        for (;;) {
          if (queue.length) {
            yield queue.shift()!;
            continue;
          }
          if (ended) {
            if (failure !== null) throw failure;
            return;
          }
          await new Promise<void>((r) => (wake = r));
        }
      },
    };
  }

  /**
   * Teacher-forced log-probabilities [B, T, V] (float, on the model's device): position t scores the
   * token after target[:, t] (encoder-decoder), or after prompt[:, t] (decoder-only; pass target null).
   */
  logProbs(source: Tensor, target: Tensor | null, options: { sourceMask?: Tensor } = {}): Tensor {
    const fn = 'nn.logProbs';
    const handle = this.#live(fn);
    const native: Record<string, unknown> = {};
    if (options.sourceMask !== undefined) native.sourceMask = handleOf(options.sourceMask, 'options.sourceMask', fn);
    const t = target === null ? null : handleOf(target, 'target', fn);
    return Tensor.wrap(loadNative().transformerLogProbs(handle, handleOf(source, 'source', fn), t, native));
  }

  /** Copies of every parameter by name (dispose them). */
  stateDict(): Record<string, Tensor> {
    const raw = loadNative().transformerStateDict(this.#live('nn.stateDict'));
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Tensor.wrap(v)]));
  }

  /** Copies `weights` into the parameters (converted to the model's dtype); all names must exist, and with strict (default) all must be given. */
  loadStateDict(weights: Record<string, Tensor>, options: { strict?: boolean } = {}): void {
    const fn = 'nn.loadStateDict';
    if (typeof weights !== 'object' || weights === null) throw new ArgumentError(`${fn}: weights must be an object of name -> Tensor`, 'ERR_INVALID_ARG', fn);
    const raw = Object.fromEntries(Object.entries(weights).map(([k, v]) => [k, handleOf(v, `weights['${k}']`, fn)]));
    loadNative().transformerLoadStateDict(this.#live(fn), raw, options.strict ?? true);
  }

  /** Frees the weights now (running generate calls finish first). Idempotent. */
  dispose(): void {
    if (this.#handle === null) return;
    forgotten.unregister(this);
    loadNative().transformerDispose(this.#handle);
    this.#handle = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #live(fn: string): NativeTransformerHandle {
    if (this.#handle === null) throw new DisposedError(`${fn}: the model was disposed; it can no longer be used`, 'ERR_DISPOSED', fn);
    return this.#handle;
  }
}

/** Builds a transformer from a config (see TransformerConfig). */
export function createTransformer(config: TransformerConfig): TransformerModel {
  return TransformerModel.create(config);
}

/** `model.generate(source, options)` as a function. */
export function generate(model: TransformerModel, source: Tensor, options: TransformerGenerateOptions = {}): Promise<GenerateResult> {
  if (!(model instanceof TransformerModel)) throw new ArgumentError('nn.generate: model must be a TransformerModel', 'ERR_INVALID_ARG', 'nn.generate');
  return model.generate(source, options);
}
