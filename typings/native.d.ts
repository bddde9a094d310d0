// The hand-written contract of the raw native module (build/Release/radkit.node).
// lib/ wraps it; user code should use the typed API in lib/ instead.

export type NativeDtype = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int32' | 'int64' | 'bool' | 'uint8';

export interface NativeCreateOptions {
  dtype?: NativeDtype;
  device?: string;
  requiresGrad?: boolean;
}

export declare class NativeTensor {
  private constructor();
  shape(): number[];
  dtype(): NativeDtype;
  device(): string;
  isDisposed(): boolean;
  nbytes(): number;
  requiresGrad(): boolean;
  setRequiresGrad(flag: boolean): void;
  grad(): NativeTensor | null;
  backward(gradOutput?: NativeTensor): void;
  toArray(): Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;
  to(target: string): NativeTensor;
  dispose(): void;
}

export interface NativeInfo {
  torchVersion: string;
  torchLibrary: string;
  addonPath: string;
  builtWithCuda: boolean;
  cudaAvailable: boolean;
  cudaDevices: number;
  threads: number;
  parallelInfo: string;
  cxx11Abi: boolean;
  napiVersion: number;
}

export interface NativeMemory {
  liveTensors: number;
  liveBytes: number;
  totalCreated: number;
}

export interface MatmulBenchmark {
  size: number;
  iterations: number;
  seconds: number;
  gflops: number;
}

// ---- ops: sinkhorn / euclideanCost (native/ops/sinkhorn)
export interface NativeSinkhornOptions {
  epsilon: number;
  maxIterations: number;
  tolerance?: number;
  a?: NativeTensor;
  b?: NativeTensor;
}

export interface NativeSinkhornResult {
  plan: NativeTensor;
  distance: NativeTensor;
  iterations: number;
  problemIterations: number[];
  marginalError: NativeTensor;
}

// ---- ops: memoryQuery (native/ops/memory_query)
export interface NativeMemoryQueryOptions {
  k: number;
  similarity: string;
  weighting: string;
  heads?: number;
  mask?: NativeTensor;
}

export interface NativeMemoryQueryResult {
  response: NativeTensor;
  indices: NativeTensor;
  weights: NativeTensor;
}

// ---- ops: adaptivePatchSample / maxSimilarity (native/ops/adaptive_patch, native/ops/max_similarity)
export interface NativeMaxSimilarityOptions {
  imageMask?: NativeTensor;
  textMask?: NativeTensor;
  returnArgmax?: boolean;
}

export interface NativeMaxSimilarityResult {
  imageToText: NativeTensor;
  textToImage: NativeTensor;
  imageToTextArgmax?: NativeTensor;
  textToImageArgmax?: NativeTensor;
}

// ---- nn: losses (native/nn/losses, bound in native/binding/losses.cc); each returns a 0-dim tensor
export interface NativeLosses {
  symmetricInfoNCE(a: NativeTensor, b: NativeTensor, options: { temperature: number; normalize?: boolean }): NativeTensor;
  noisyPositiveInfoNCE(anchors: NativeTensor, noise: NativeTensor, options: { temperature: number; normalize?: boolean }): NativeTensor;
  supervisedContrastive(features: NativeTensor, labels: NativeTensor, instances: NativeTensor | undefined, options: { temperature: number; normalize?: boolean }): NativeTensor;
  focalLoss(logits: NativeTensor, targets: NativeTensor, alpha: NativeTensor | undefined, options: { gamma?: number }): NativeTensor;
  maskedCrossEntropy(logits: NativeTensor, targets: NativeTensor, mask: NativeTensor, options: { labelSmoothing?: number }): NativeTensor;
}

/** exports.testing: test and benchmark helpers (native/testing; not public API). */
export interface NativeTesting {
  adaptivePatchSampleReference(features: NativeTensor, boxes: NativeTensor, points: number): NativeTensor;
  maxSimilarityReference(image: NativeTensor, text: NativeTensor, imageMask?: NativeTensor, textMask?: NativeTensor): Required<NativeMaxSimilarityResult>;
  maxSimilarityRaw(image: NativeTensor, text: NativeTensor, imageMask?: NativeTensor, textMask?: NativeTensor): Required<NativeMaxSimilarityResult>;
  backwardMany(outputs: NativeTensor[], gradOutputs: NativeTensor[]): void;
  nonContiguous(t: NativeTensor): NativeTensor;
  isContiguous(t: NativeTensor): boolean;
  allocTrackerReset(): { current: number };
  allocTrackerRead(): { current: number; peak: number };
  /** Distinct threads one of radkit's own parallel loops ran on (1 when built without OpenMP). */
  parallelThreads(): number;
  parallelThreadsAsync(): Promise<number>;
  openblasThreads(): number;
  adaPatchStep0(options: { batch: number; channels: number; height: number; width: number; stride: number; points: number; outDim: number; dtype?: NativeDtype }): {
    boxes: NativeTensor;
    fixedBoxes: NativeTensor;
    tokenShape: number[];
    maxTokenDiff: number;
    gradNorms: Record<'f1' | 'f2' | 'f3' | 'f4' | 'f5' | 'features', number>;
    parameters: number;
  };
}

export interface NativeCudaMemory {
  allocatedBytes: number;
  peakAllocatedBytes: number;
  reservedBytes: number;
}

export interface NativeModule {
  NativeTensor: typeof NativeTensor;
  fromTypedArray(data: ArrayBufferView, shape: number[], options?: NativeCreateOptions): NativeTensor;
  zeros(shape: number[], options?: NativeCreateOptions): NativeTensor;
  ones(shape: number[], options?: NativeCreateOptions): NativeTensor;
  randn(shape: number[], options?: NativeCreateOptions): NativeTensor;
  matmul(a: NativeTensor, b: NativeTensor): NativeTensor;
  matmulAsync(a: NativeTensor, b: NativeTensor): Promise<NativeTensor>;
  benchmarkMatmul(size: number, minSeconds: number): Promise<MatmulBenchmark>;
  sum(a: NativeTensor): NativeTensor;
  mul(a: NativeTensor, b: NativeTensor): NativeTensor;
  memory(): NativeMemory;
  manualSeed(seed: number): void;
  setNumThreads(n: number): void;
  cpuCache(): { enabled: boolean; idleBytes?: number; idleBuffers?: number; hits?: number; misses?: number; limitBytes?: number };
  emptyCpuCache(): void;
  getNumThreads(): number;
  setGradEnabled(enabled: boolean): boolean;
  isGradEnabled(): boolean;
  info(): NativeInfo;
  cudaSynchronize(): void;
  cudaMemory(resetPeak?: boolean): NativeCudaMemory | null;
  devices(): { name: string; usable: boolean; detail?: string; reason?: string }[];
  /** The device's canonical name, or ERR_DEVICE naming it and why it cannot be used. */
  checkDevice(name: string): string;
  /** Names of the self-registered binding modules of this binary (ops, models, transformer, testing helpers). */
  compiledOps: string[];
  /** ops.sinkhorn. */
  sinkhorn(cost: NativeTensor, options: NativeSinkhornOptions): NativeSinkhornResult;
  euclideanCost(x: NativeTensor, y: NativeTensor): NativeTensor;
  /** ops.memoryQuery. */
  memoryQuery(query: NativeTensor, keys: NativeTensor, values: NativeTensor, options: NativeMemoryQueryOptions): NativeMemoryQueryResult;
  /** nn transformer models. */
  transformerCreate(config: object): NativeTransformerHandle;
  transformerGenerate(
    model: NativeTransformerHandle,
    source: NativeTensor,
    options: Record<string, unknown>,
    onToken?: (event: NativeTokenEvent) => boolean,
  ): Promise<NativeGenerateResult>;
  transformerLogProbs(model: NativeTransformerHandle, source: NativeTensor, target: NativeTensor | null, options: Record<string, unknown>): NativeTensor;
  transformerStateDict(model: NativeTransformerHandle): Record<string, NativeTensor>;
  transformerLoadStateDict(model: NativeTransformerHandle, weights: Record<string, NativeTensor>, strict: boolean): void;
  transformerInfo(model: NativeTransformerHandle): { config: Record<string, unknown>; parameterCount: number; parameterNames: string[] };
  transformerDispose(model: NativeTransformerHandle): void;
  /** io: safetensors (native/binding/safetensors.cc). */
  safetensorsHeader(file: string): {
    entries: { name: string; dtype: string; code: string; shape: number[]; begin: number; end: number }[];
    metadata: Record<string, string>;
    fileBytes: number;
  };
  safetensorsRead(file: string, options: { dtype?: NativeDtype; names?: string[] }): { tensors: Record<string, NativeTensor>; metadata: Record<string, string> };
  safetensorsWrite(file: string, tensors: Record<string, NativeTensor>, metadata?: Record<string, string>): void;
  /** nn causal language models (native/binding/causal_lm.cc). */
  causalLMCreate(config: NativeCausalLMConfig, options: { dtype?: NativeDtype; device?: string; seed?: number }): NativeCausalLMHandle;
  causalLMLoad(config: NativeCausalLMConfig, files: string[], options: { dtype?: NativeDtype; device?: string }): Promise<NativeCausalLMHandle>;
  causalLMInfo(model: NativeCausalLMHandle): NativeCausalLMInfo;
  causalLMLogits(model: NativeCausalLMHandle, ids: NativeTensor, options: Record<string, unknown>): NativeTensor;
  causalLMLoss(model: NativeCausalLMHandle, ids: NativeTensor, options: Record<string, unknown>): NativeTensor;
  causalLMEmbed(model: NativeCausalLMHandle, ids: NativeTensor): NativeTensor;
  causalLMGenerate(model: NativeCausalLMHandle, prompt: NativeTensor, options: Record<string, unknown>): Promise<{ tokens: number[][]; scores: number[]; finished: boolean[]; steps: number }>;
  causalLMAddLora(model: NativeCausalLMHandle, options: Record<string, unknown>): string[];
  causalLMMergeLora(model: NativeCausalLMHandle): void;
  causalLMLoadAdapter(model: NativeCausalLMHandle, file: string): void;
  causalLMWeights(model: NativeCausalLMHandle, which: 'all' | 'adapter'): Record<string, NativeTensor>;
  causalLMSave(model: NativeCausalLMHandle, file: string, which: 'model' | 'adapter'): Promise<void>;
  causalLMResizeVocab(model: NativeCausalLMHandle, size: number): void;
  causalLMSetupOptimizer(model: NativeCausalLMHandle, options: Record<string, unknown>): { parameters: number };
  causalLMTrainStep(model: NativeCausalLMHandle, ids: NativeTensor, options: Record<string, unknown>): Promise<{ loss: number; gradNorm: number }>;
  causalLMDispose(model: NativeCausalLMHandle): void;
  setErrorClasses(classes: Record<'argument' | 'disposed' | 'outOfMemory' | 'native', Function>): void;
  /** nn.losses (native/binding/losses.cc). */
  losses: NativeLosses;
  /** ops.adaptivePatchSample. */
  adaptivePatchSample(features: NativeTensor, boxes: NativeTensor, options: { points: number }): NativeTensor;
  /** ops.maxSimilarity. */
  maxSimilarity(image: NativeTensor, text: NativeTensor, options?: NativeMaxSimilarityOptions): NativeMaxSimilarityResult;
}

/** Opaque handle of a native transformer model (an N-API external). */
export type NativeTransformerHandle = { readonly __brand: 'NativeTransformerHandle' };

export interface NativeTokenEvent {
  step: number;
  tokens: number[];
  finished: boolean[];
}

export interface NativeGenerateResult {
  tokens: number[][];
  scores: number[];
  finished: boolean[];
  steps: number;
  attention?: NativeTensor;
}

/** Opaque handle of a native causal language model (an N-API external). */
export type NativeCausalLMHandle = { readonly __brand: 'NativeCausalLMHandle' };

/** The native causal LM config (lib/nn/causal-lm.ts maps Hugging Face config.json onto it). */
export interface NativeCausalLMConfig {
  arch: 'llama' | 'gpt_neox';
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  maxPositions: number;
  ropeTheta: number;
  rotaryDim: number;
  normEps: number;
  tieEmbeddings: boolean;
  parallelResidual: boolean;
  attentionBias: boolean;
  mlpBias: boolean;
  activation: 'silu' | 'gelu' | 'gelu_tanh' | 'relu';
  bosId: number;
  eosId: number;
  padId: number;
}

export interface NativeCausalLMInfo {
  config: NativeCausalLMConfig;
  dtype: NativeDtype;
  device: string;
  parameterCount: number;
  trainableCount: number;
  lora: { rank: number; alpha: number; dropout: number; targets: string[]; trainModules: string[] } | null;
}
