// Raw contract of the native model handle (native/binding/model.cc).
import type { NativeTensor } from './native.js';

export type NativeConfig = Record<string, number | boolean | string | number[] | undefined>;

export interface NativeBatch {
  images?: NativeTensor;
  tokens?: NativeTensor;
  /** int64 [B, 14] label states: 0 absent, 1 positive, 2 negative, 3 uncertain. */
  labels?: NativeTensor;
  extras?: Record<string, NativeTensor>;
  /** false: images and reports may have different row counts (default true). */
  paired?: boolean;
}

export interface NativeStepResult {
  loss: number;
  gradNorm: number;
  parts: Record<string, number>;
  /** float16 only: the gradients overflowed and the step was skipped. */
  skipped?: boolean;
  /** float16 only: the dynamic loss scale after the step. */
  lossScale?: number;
}

export interface NativeGenerated {
  /** Per study: generated ids, EOS and padding excluded. */
  tokens: number[][];
  scores: number[];
  extras: Record<string, NativeTensor>;
}

export declare class NativeModel {
  private constructor();
  kind(): string;
  parameterCount(): number;
  setupOptimizer(options: NativeConfig): { visualParameters: number; otherParameters: number };
  setLearningRates(lr: number, visualLr: number): void;
  trainStep(batch: NativeBatch, options?: NativeConfig): Promise<NativeStepResult>;
  evalLoss(batch: NativeBatch): Promise<{ loss: number; parts: Record<string, number> }>;
  initializeFromData(batches: NativeBatch[]): Promise<void>;
  generate(batch: NativeBatch, options?: NativeConfig): Promise<NativeGenerated>;
  encode(batch: NativeBatch): Promise<Record<string, NativeTensor>>;
  save(weightsPath: string, optimizerPath?: string): Promise<void>;
  load(weightsPath: string, optimizerPath?: string): Promise<void>;
  loadNamedTensors(
    prefix: string,
    tensors: Record<string, NativeTensor>,
    options?: { skipMismatched?: boolean; convertDtype?: boolean },
  ): { loaded: number; missing: string[]; unexpected: string[]; skipped: { name: string; reason: string }[] };
  namedTensors(): Record<string, NativeTensor>;
  tensorShapes(): Record<string, number[]>;
  freeze(prefixes: string[]): string[];
  /** Broadcasts rank 0's parameters and buffers; later trainSteps average gradients over the group (null: one process). */
  setDistributed(group: unknown): { terms: string };
  /** Moves parameters, buffers and optimizer state (ERR_DEVICE before anything moves when the device cannot be used). */
  to(device: string, dtype?: string): void;
  device(): string;
  dtype(): string;
  dispose(): void;
  isDisposed(): boolean;
}

export interface NativeModelModule {
  createModel(kind: string, config: NativeConfig): NativeModel;
  modelKinds(): string[];
}
