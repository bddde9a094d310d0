import { loadNative } from '../native.js';
import { Tensor } from '../tensor.js';
import type { Batch } from '../data/loader.js';
import { readSafetensors } from '../io/safetensors.js';
import type { NativeBatch, NativeConfig, NativeModel, NativeModelModule } from '../../typings/model.js';

/** Options of `Model.generate` (beam search by default, as XProNet decodes with beam 3). */
export interface GenerateOptions {
  method?: 'greedy' | 'beam' | 'sample';
  beams?: number;
  maxLength?: number;
  minLength?: number;
  lengthPenalty?: number;
  noRepeatNgram?: number;
  repetitionPenalty?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  /** XProNet: which labels select the prototypes (oracle needs labels in the batch). */
  labelSource?: 'oracle' | 'predicted' | 'none';
}

export interface Generation {
  /** Token ids per study (EOS and padding removed). */
  tokens: number[][];
  scores: number[];
  /** Model-specific explanations as plain arrays, e.g. XProNet `wordPrototypes` [B][L][k]. */
  extras: Record<string, { shape: number[]; data: number[] }>;
}

export interface StepResult {
  loss: number;
  gradNorm: number;
  parts: Record<string, number>;
}

function nativeModels(): NativeModelModule {
  return loadNative() as unknown as NativeModelModule;
}

/** CheXpert label matrix (1 positive, 0 negative, -1 uncertain, NaN absent) -> int64 1/0/2/0. */
function labelTensor(m: { data: Float32Array; shape: [number, 14] }): Tensor {
  const out = new BigInt64Array(m.data.length);
  m.data.forEach((v, i) => {
    out[i] = v === 1 ? 1n : v === -1 ? 2n : 0n;
  });
  return Tensor.from(out, m.shape);
}

/** Tensors of a loader batch (images, tokens or both); dispose() frees them. */
export class TensorBatch {
  readonly images?: Tensor;
  readonly tokens?: Tensor;
  readonly labels?: Tensor;
  constructor(batch: Partial<Pick<Batch, 'images' | 'tokens' | 'labelMatrix'>>) {
    if (batch.images) this.images = Tensor.from(batch.images.data, batch.images.shape);
    if (batch.tokens) this.tokens = Tensor.from(batch.tokens.data, batch.tokens.shape, { dtype: 'int64' });
    if (batch.labelMatrix) this.labels = labelTensor(batch.labelMatrix);
  }
  toNative(): NativeBatch {
    return {
      images: this.images && Tensor.handle(this.images),
      tokens: this.tokens && Tensor.handle(this.tokens),
      labels: this.labels && Tensor.handle(this.labels),
    };
  }
  dispose(): void {
    this.images?.dispose();
    this.tokens?.dispose();
    this.labels?.dispose();
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
  readonly kind: string;
  /** The configuration the native model was built with (recorded in checkpoints). */
  readonly config: NativeConfig;

  protected constructor(kind: string, config: NativeConfig) {
    this.#h = nativeModels().createModel(kind, config);
    this.kind = kind;
    this.config = { ...config };
  }

  static create(kind: string, config: NativeConfig): Model {
    return new Model(kind, config);
  }

  /** Model kinds compiled into the native addon. */
  static kinds(): string[] {
    return nativeModels().modelKinds();
  }

  get parameterCount(): number {
    return this.#h.parameterCount();
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

  async trainStep(batch: TensorBatch, options: { clipNorm?: number } = {}): Promise<StepResult> {
    return this.#h.trainStep(batch.toNative(), options);
  }

  async evalLoss(batch: TensorBatch): Promise<{ loss: number; parts: Record<string, number> }> {
    return this.#h.evalLoss(batch.toNative());
  }

  async initializeFromData(batches: TensorBatch[]): Promise<void> {
    return this.#h.initializeFromData(batches.map((b) => b.toNative()));
  }

  async generate(batch: TensorBatch, options: GenerateOptions = {}): Promise<Generation> {
    const g = await this.#h.generate(batch.toNative(), options as NativeConfig);
    const tokens = Tensor.wrap(g.tokens);
    const scores = Tensor.wrap(g.scores);
    try {
      const [B, L] = tokens.shape;
      const flat = tokens.toArray() as BigInt64Array;
      const out: number[][] = [];
      for (let i = 0; i < B; i++) {
        const row: number[] = [];
        for (let j = 0; j < L; j++) {
          const id = Number(flat[i * L + j]);
          if (id === 0) break;
          row.push(id);
        }
        out.push(row);
      }
      const extras: Generation['extras'] = {};
      for (const [k, h] of Object.entries(g.extras)) {
        const t = Tensor.wrap(h);
        extras[k] = extrasToArrays(t);
        t.dispose();
      }
      return { tokens: out, scores: Array.from(scores.toArray() as Float32Array), extras };
    } finally {
      tokens.dispose();
      scores.dispose();
    }
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
  loadPretrained(file: string, prefix = ''): { loaded: number; missing: string[]; unexpected: string[] } {
    const { tensors } = readSafetensors(file);
    try {
      return this.loadTensors(prefix, tensors);
    } finally {
      Object.values(tensors).forEach((t) => t.dispose());
    }
  }

  /** Copies in-memory tensors into the parameters and buffers named `prefix + name` (see loadPretrained). */
  loadTensors(prefix: string, tensors: Record<string, Tensor>): { loaded: number; missing: string[]; unexpected: string[] } {
    const handles = Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, Tensor.handle(t)]));
    return this.#h.loadNamedTensors(prefix, handles);
  }

  dispose(): void {
    this.#h.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
