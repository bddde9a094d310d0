/**
 * radkit: chest X-ray vision-language kernels and models on LibTorch.
 * `import * as radkit from 'radkit'` or `import { Tensor, ops } from 'radkit'`.
 */
export { Tensor, type Dtype, type Device, type TensorOptions, type TensorData } from './tensor.js';
export {
  memory,
  noGrad,
  manualSeed,
  setNumThreads,
  getNumThreads,
  cpuCache,
  emptyCpuCache,
  info,
  cudaSynchronize,
  cudaMemory,
  devices,
  checkDevice,
  matmul,
  matmulAsync,
  benchmarkMatmul,
  sum,
  mul,
  type MemoryInfo,
  type RadkitInfo,
  type CpuCacheInfo,
  type CudaMemoryInfo,
  type DeviceInfo,
} from './runtime.js';
export { RadkitError, ArgumentError, DisposedError, OutOfMemoryError, NativeError, LoadError, DataError, TokenizerError } from './errors.js';
export { loadReport, type LoadReport } from './native.js';
export type { GenerateOptions, SystemOptions } from './generation.js';
export * as ops from './ops/index.js';
export * as nn from './nn/index.js';
export * as metrics from './metrics/index.js';
export * as text from './text/index.js';
export * as data from './data/index.js';
export * as models from './models/index.js';
export * as align from './align/index.js';
export { train, loadCheckpoint, evaluateSplit, generateSplit } from './train/index.js';
export * as distributed from './train/distributed-api.js';
export { xpronet, adamatch, Model, TensorBatch } from './models/index.js';
export { drawAdaptivePatches, pngDataUri, type PatchDrawing } from './report/patches.js';
export { readSafetensors, readSafetensorsHeader, writeSafetensors, type SafetensorsEntry } from './io/safetensors.js';
