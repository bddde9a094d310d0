// Raw contract of the native model handle (native/binding/model.cc).
import type { NativeTensor } from './native.js';

export type NativeConfig = Record<string, number | boolean | string | number[] | undefined>;

export interface NativeBatch {
  images?: NativeTensor;
  tokens?: NativeTensor;
  labels?: NativeTensor;
}

export interface NativeStepResult {
  loss: number;
  gradNorm: number;
  parts: Record<string, number>;
}

export interface NativeGenerated {
  tokens: NativeTensor;
  scores: NativeTensor;
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
  loadNamedTensors(prefix: string, tensors: Record<string, NativeTensor>): { loaded: number; missing: string[]; unexpected: string[] };
  dispose(): void;
  isDisposed(): boolean;
}

export interface NativeModelModule {
  createModel(kind: string, config: NativeConfig): NativeModel;
  modelKinds(): string[];
}
