import { ArgumentError } from '../errors.js';
import { loadNative } from '../native.js';
import { Tensor } from '../tensor.js';
import type { Batch } from '../data/loader.js';
import { readSafetensors } from '../io/safetensors.js';
import type { NativeBatch, NativeConfig, NativeModel, NativeModelModule } from '../../typings/model.js';
import { withGenerateDefaults, type GenerateOptions } from '../generation.js';

/** How `Model.create` builds a model besides its configuration. */
export interface ModelCreateOptions {
  /** The native system computing it (default: the kind). */
  nativeKind?: string;
  /** Generation defaults under every generate() call. */
  generate?: GenerateOptions;
}

export type { GenerateOptions } from '../generation.js';

export interface Generation {
  /** Token ids per study (EOS and padding excluded), ragged. */
  tokens: number[][];
  scores: number[];
  /** Model-specific explanations as plain arrays, e.g. XProNet `wordPrototypes` [B][L][k]. */
  extras: Record<string, { shape: number[]; data: number[] }>;
}

export interface StepResult {
  loss: number;
  gradNorm: number;
  parts: Record<string, number>;
  /** float16 only: the scaled gradients overflowed, so the step was skipped (the model is as it was) and the loss scale halved. */
  skipped?: boolean;
  /** float16 only: the dynamic loss scale after the step. */
  lossScale?: number;
}

/**
 * Training precision. 'float32': plain float32. 'bfloat16': the forward pass under autocast to
 * bfloat16 (LibTorch's autocast op lists; CUDA and CPU), float32 master weights
 * and optimizer state.
 * 'float16': the same with float16 and a dynamic loss scale (CUDA only).
 */
export type Precision = 'float32' | 'bfloat16' | 'float16';
export const PRECISIONS: readonly Precision[] = ['float32', 'bfloat16', 'float16'];

/** What `loadTensors` / `loadPretrained` did: copied names, model names left as they were, file names without a slot, and (with skipMismatched) names whose shape did not fit. */
export interface LoadReport {
  loaded: number;
  missing: string[];
  unexpected: string[];
  skipped: { name: string; reason: string }[];
}

function nativeModels(): NativeModelModule {
  return loadNative() as unknown as NativeModelModule;
}

/** Plain typed-array tensor data, as a batch preparer produces it. */
export interface ArrayTensor {
  data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;
  shape: number[];
  dtype?: 'float32' | 'float64' | 'int64' | 'int32' | 'uint8' | 'bool';
}

type LoaderFields = Partial<Pick<Batch, 'tokens' | 'labelStates'>> & {
  /** Float32 grey levels (the loader's; float64 for a float64 model), or uint8 grey levels 0-255 that the model widens to [0, 1] on its device (a quarter of the bytes to copy). */
  images?: { data: Float32Array | Float64Array | Uint8Array; shape: number[] };
};

/**
 * The tensors of one batch (dispose() frees them): images [Bi, V, 1, H, W], report tokens [Bt, T]
 * int64, CheXpert label states [Bt, 14] int64 (0 absent, 1 positive, 2 negative, 3 uncertain), and
 * named `extras` a system needs. `paired: false` lets images and reports have different row counts
 * (systems trained on unpaired image and report sets).
 */
export class TensorBatch {
  readonly images?: Tensor;
  readonly tokens?: Tensor;
  readonly labels?: Tensor;
  readonly extras: Record<string, Tensor> = {};
  readonly paired: boolean;
  constructor(batch: LoaderFields, options: { extras?: Record<string, ArrayTensor | Tensor>; paired?: boolean } = {}) {
    this.paired = options.paired ?? true;
    try {
      if (batch.images) this.images = batch.images.data instanceof Uint8Array ? Tensor.from(batch.images.data, batch.images.shape, { dtype: 'uint8' }) : Tensor.from(batch.images.data, batch.images.shape);
      if (batch.tokens) this.tokens = Tensor.from(batch.tokens.data, batch.tokens.shape, { dtype: 'int64' });
      if (batch.labelStates) this.labels = Tensor.from(batch.labelStates.data, batch.labelStates.shape, { dtype: 'int64' });
      for (const [k, v] of Object.entries(options.extras ?? {})) this.extras[k] = v instanceof Tensor ? v : Tensor.from(v.data, v.shape, v.dtype ? { dtype: v.dtype } : {});
    } catch (err) {
      this.dispose();
      throw err;
    }
  }
  toNative(): NativeBatch {
    return {
      images: this.images && Tensor.handle(this.images),
      tokens: this.tokens && Tensor.handle(this.tokens),
      labels: this.labels && Tensor.handle(this.labels),
      extras: Object.fromEntries(Object.entries(this.extras).map(([k, t]) => [k, Tensor.handle(t)])),
      paired: this.paired,
    };
  }
  dispose(): void {
    this.images?.dispose();
    this.tokens?.dispose();
    this.labels?.dispose();
    for (const t of Object.values(this.extras)) t.dispose();
  }
}

function extrasToArrays(t: Tensor): { shape: number[]; data: number[] } {
  const a = t.toArray();
  return { shape: t.shape, data: Array.from(a as ArrayLike<number | bigint>, Number) };
}

/**
 * A trainable system (XProNet, ...) living in native memory. Every heavy call runs on a native
 * worker thread and returns a Promise; one call at a time per model (ERR_BUSY otherwise).
 */
export class Model {
  readonly #h: NativeModel;
  /** The registered model kind (`radkit.models.modelKinds()`); checkpoints record it. */
  readonly kind: string;
  /** The native system that computes it (the kind itself for radkit's systems). */
  readonly nativeKind: string;
  /** The configuration the native model was built with (recorded in checkpoints). */
  readonly config: NativeConfig;
  /** The kind's generation defaults, under every `generate()` call's own options. */
  readonly generateDefaults: GenerateOptions;

  protected constructor(kind: string, config: NativeConfig, options: ModelCreateOptions = {}) {
    this.nativeKind = options.nativeKind ?? kind;
    this.#h = nativeModels().createModel(this.nativeKind, config);
    this.kind = kind;
    this.config = { ...config };
    this.generateDefaults = options.generate ?? {};
  }

  /** A model of native system `options.nativeKind ?? kind`, known to radkit as `kind`. */
  static create(kind: string, config: NativeConfig, options: ModelCreateOptions = {}): Model {
    return new Model(kind, config, options);
  }

  /** Native systems compiled into the addon. */
  static nativeKinds(): string[] {
    return nativeModels().modelKinds();
  }

  get parameterCount(): number {
    return this.#h.parameterCount();
  }

  /** Where the model computes: 'cpu' or 'cuda:N'. Batches given on the CPU move there in every call. */
  get device(): string {
    return this.#h.device();
  }

  /** The floating dtype of its parameters (float32 unless moved with `to(device, dtype)`). */
  get dtype(): string {
    return this.#h.dtype();
  }

  /**
   * Moves the parameters, buffers and optimizer state to `device` ('cpu', 'cuda', 'cuda:N'; and
   * converts their floating tensors to `dtype` when given, e.g. 'float64' for reference checks).
   * A device that cannot be used here is an ArgumentError ERR_DEVICE naming it and why, before
   * anything moves. Checkpoints are written from CPU copies whatever the device.
   */
  to(device: string, dtype?: 'float32' | 'float64' | 'bfloat16' | 'float16'): this {
    this.#h.to(device, dtype);
    return this;
  }

  get disposed(): boolean {
    return this.#h.isDisposed();
  }

  setupOptimizer(options: { kind?: 'adam' | 'adamw' | 'lamb'; lr: number; visualLr?: number; weightDecay?: number; beta1?: number; beta2?: number; eps?: number }) {
    return this.#h.setupOptimizer(options);
  }

  setLearningRates(lr: number, visualLr: number): void {
    this.#h.setLearningRates(lr, visualLr);
  }

  /**
   * One optimisation step. `step` / `totalSteps` (the run's global position) reach the system's
   * loss schedules; `clipNorm` clips the global gradient norm (0 = off); `precision` (default
   * 'float32') runs the forward pass under autocast (see Precision). A step that runs out of
   * memory is an OutOfMemoryError naming the batch's sizes, with the model as it was.
   */
  async trainStep(batch: TensorBatch, options: { clipNorm?: number; step?: number; totalSteps?: number; precision?: Precision } = {}): Promise<StepResult> {
    return this.#h.trainStep(batch.toNative(), options);
  }

  async evalLoss(batch: TensorBatch): Promise<{ loss: number; parts: Record<string, number> }> {
    return this.#h.evalLoss(batch.toNative());
  }

  async initializeFromData(batches: TensorBatch[]): Promise<void> {
    return this.#h.initializeFromData(batches.map((b) => b.toNative()));
  }

  /** Generates for the batch's images with `options` over the kind's defaults (`generateDefaults`). */
  async generate(batch: TensorBatch, options: GenerateOptions = {}): Promise<Generation> {
    const g = await this.#h.generate(batch.toNative(), withGenerateDefaults(this.generateDefaults, options) as NativeConfig);
    const extras: Generation['extras'] = {};
    for (const [k, h] of Object.entries(g.extras)) {
      const t = Tensor.wrap(h);
      try {
        extras[k] = extrasToArrays(t);
      } finally {
        t.dispose();
      }
    }
    return { tokens: g.tokens, scores: g.scores, extras };
  }

  /**
   * Embeddings and explanations of a batch (no gradients), for alignment models (AdaMatch: `image`
   * [B, N, d] patch embeddings, `boxes` [B, N, 4] adaptive patches (cx, cy, w, h) in input pixels,
   * `fixedBoxes` [N, 4], `grid` [2], `text` [B, K, d], `textMask` [B, K], `temperature` []).
   * The caller owns (and disposes) the returned tensors. Generation-only models reject it.
   */
  async encode(batch: TensorBatch): Promise<Record<string, Tensor>> {
    const raw = await this.#h.encode(batch.toNative());
    return Object.fromEntries(Object.entries(raw).map(([k, h]) => [k, Tensor.wrap(h)]));
  }

  /** Writes LibTorch archives of the weights (and optimizer state when a path is given). */
  async saveWeights(weightsPath: string, optimizerPath?: string): Promise<void> {
    return this.#h.save(weightsPath, optimizerPath);
  }

  async loadWeights(weightsPath: string, optimizerPath?: string): Promise<void> {
    return this.#h.load(weightsPath, optimizerPath);
  }

  /**
   * Loads user-supplied weights (e.g. ImageNet ResNet weights from a .safetensors file) into the
   * parameters and buffers named `prefix + name`. Nothing is written when a shape does not fit.
   * Returns which model tensors got no weights (`missing`) and which file tensors had no slot.
   */
  loadPretrained(file: string, prefix = ''): LoadReport {
    const { tensors } = readSafetensors(file);
    try {
      return this.loadTensors(prefix, tensors);
    } finally {
      Object.values(tensors).forEach((t) => t.dispose());
    }
  }

  /**
   * Copies in-memory tensors into the parameters and buffers named `prefix + name` (see
   * loadPretrained). A shape that does not fit is an ERR_SHAPE with nothing written, or with
   * `skipMismatched` that tensor is left out and listed in `skipped`. Dtypes: float16/bfloat16 into
   * float32 (widening) is exact and done; a conversion that changes values (float64 into float32,
   * integers and floats) is an ERR_DTYPE the same way unless `convertDtype`.
   */
  loadTensors(prefix: string, tensors: Record<string, Tensor>, options: { skipMismatched?: boolean; convertDtype?: boolean } = {}): LoadReport {
    const handles = Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, Tensor.handle(t)]));
    return this.#h.loadNamedTensors(prefix, handles, options);
  }

  /** Copies of every parameter and buffer by name (the caller disposes them). */
  namedTensors(): Record<string, Tensor> {
    return Object.fromEntries(Object.entries(this.#h.namedTensors()).map(([k, h]) => [k, Tensor.wrap(h)]));
  }

  /** The shape of every parameter and buffer by name (no copies). */
  tensorShapes(): Record<string, number[]> {
    return this.#h.tensorShapes();
  }

  /**
   * Stops training the parameters whose names start with one of `prefixes` (before
   * setupOptimizer). Returns the frozen names; a prefix that matches nothing is an ERR_INVALID_ARG.
   */
  freeze(prefixes: string[]): string[] {
    return this.#h.freeze(prefixes);
  }

  /**
   * Data-parallel training over `group` (radkit.distributed.initProcessGroup): rank 0's parameters
   * and buffers are broadcast to every rank now (every rank must call it), then each trainStep
   * averages gradients over the ranks and reports the global batch's loss, and the system's
   * cross-sample terms see the global batch. Returns what they see (`terms`); null: one process again.
   */
  setDistributed(group: { native: unknown } | null): { terms: string } {
    return this.#h.setDistributed(group ? group.native : null);
  }

  dispose(): void {
    this.#h.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * A new model with ImageNet-style ResNet weights (.safetensors, torchvision names: conv1.weight,
 * layer1.0.bn1.weight, ...; a 3-channel conv1 is summed to the grey input) in its ResNet under
 * `prefix`. A file with none of those names, or a shape that does not fit, is an error and the model
 * is disposed. Returns the model.
 */
export function withResNetWeights(model: Model, file: string | undefined, prefix: string): Model {
  if (!file) return model;
  try {
    const r = model.loadPretrained(file, prefix);
    if (r.loaded === 0) throw new ArgumentError(`${model.kind}: ${file} has no tensor named like the ResNet's (conv1.weight, layer1.0.conv1.weight, ...)`, 'ERR_INVALID_ARG', model.kind);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}
