import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadNative, loadReport, packageRoot, type LoadReport } from './native.js';
import { Tensor, handleOf } from './tensor.js';
import { ArgumentError, RadkitError } from './errors.js';
import type { NativeInfo, MatmulBenchmark } from '../typings/native.js';

export interface MemoryInfo {
  /** Tensor handles not yet disposed or collected. */
  liveTensors: number;
  /** Bytes those handles hold (a view counts its own size). */
  liveBytes: number;
  /** Handles created since the addon loaded. */
  totalCreated: number;
}

export function memory(): MemoryInfo {
  return loadNative().memory();
}

/**
 * Runs `fn` with gradient recording off on this thread. Native async calls started inside `fn`
 * capture the mode when they start, so `noGrad(() => model.generate(...))` is gradient-free too.
 */
export function noGrad<T>(fn: () => T): T {
  const native = loadNative();
  const previous = native.setGradEnabled(false);
  try {
    return fn();
  } finally {
    native.setGradEnabled(previous);
  }
}

/** Seeds LibTorch's default generator (randn, dropout, sampling). */
export function manualSeed(seed: number): void {
  loadNative().manualSeed(seed);
}

/** Sets the number of LibTorch intra-op threads for the whole process. */
export function setNumThreads(n: number): void {
  loadNative().setNumThreads(n);
}

export function getNumThreads(): number {
  return loadNative().getNumThreads();
}

/** The caching CPU allocator (native/binding/allocator.cc): idle buffers kept for reuse. */
export interface CpuCacheInfo {
  enabled: boolean;
  idleBytes?: number;
  idleBuffers?: number;
  /** Allocations served from the cache / from malloc since the addon loaded. */
  hits?: number;
  misses?: number;
  limitBytes?: number;
}

export function cpuCache(): CpuCacheInfo {
  return loadNative().cpuCache();
}

/** Returns the cache's idle buffers to the system (live tensors are untouched). */
export function emptyCpuCache(): void {
  loadNative().emptyCpuCache();
}

/**
 * Waits until all CUDA work queued on the current device has finished (a no-op without CUDA).
 * CUDA calls return once their kernels are queued: time GPU work with a synchronize on each side.
 */
export function cudaSynchronize(): void {
  loadNative().cudaSynchronize();
}

/** LibTorch's CUDA caching allocator on the current device, in bytes. */
export interface CudaMemoryInfo {
  /** Held by live tensors now. */
  allocatedBytes: number;
  /** Most held by tensors at once since the addon loaded or the last `resetPeak`. */
  peakAllocatedBytes: number;
  /** Reserved from the driver (allocated plus cached for reuse). */
  reservedBytes: number;
}

/**
 * CUDA memory figures, or null when no CUDA device is available. With `{ resetPeak: true }` the
 * peak is read and then restarted from the current allocation, so the next read is one window's peak.
 */
export function cudaMemory(options: { resetPeak?: boolean } = {}): CudaMemoryInfo | null {
  return loadNative().cudaMemory(options.resetPeak ?? false);
}

/** A compute device radkit can (or cannot) use, as `radkit doctor` lists them. */
export interface DeviceInfo {
  /** 'cpu', 'cuda:N', or 'cuda' when no CUDA device can be used. */
  name: string;
  usable: boolean;
  /** What it is (threads; GPU name, memory and compute capability). */
  detail?: string;
  /** Why it cannot be used (a CPU build of LibTorch, no visible GPU). */
  reason?: string;
}

/** The CPU and every CUDA device, or a 'cuda' entry saying why there is none. */
export function devices(): DeviceInfo[] {
  return loadNative().devices();
}

/**
 * Checks that `device` ('cpu', 'cuda', 'cuda:N') can be used here and returns its canonical name
 * ('cuda' -> 'cuda:0'); otherwise an ArgumentError ERR_DEVICE naming the device and why (no CUDA
 * build, no visible device, index out of range). `fn` names the caller in the error.
 */
export function checkDevice(device: string, fn = 'checkDevice'): string {
  if (typeof device !== 'string' || !/^(cpu|cuda(:\d+)?)$/.test(device))
    throw new ArgumentError(`${fn}: device must be 'cpu', 'cuda' or 'cuda:N', got ${typeof device === 'string' ? `'${device}'` : String(device)}`, 'ERR_DEVICE', fn);
  try {
    return loadNative().checkDevice(device);
  } catch (err) {
    if (err instanceof RadkitError && fn !== 'checkDevice') throw new ArgumentError(`${fn}: ${err.message.replace(/^checkDevice: /, '')}`, err.code, fn);
    throw err;
  }
}

export interface RadkitInfo extends NativeInfo {
  /** Which binary loaded and from where. */
  binary: LoadReport;
  radkitVersion: string;
}

export function info(): RadkitInfo {
  const native = loadNative();
  const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  return { ...native.info(), binary: loadReport(), radkitVersion: pkg.version };
}

/** Matrix product on the calling thread. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  return Tensor.wrap(loadNative().matmul(handleOf(a, 'a', 'matmul'), handleOf(b, 'b', 'matmul')));
}

/** Matrix product on a native worker thread; the event loop stays free. */
export async function matmulAsync(a: Tensor, b: Tensor): Promise<Tensor> {
  return Tensor.wrap(await loadNative().matmulAsync(handleOf(a, 'a', 'matmulAsync'), handleOf(b, 'b', 'matmulAsync')));
}

/** Repeats an n x n float32 matrix product off the event loop for at least `minSeconds`. */
export async function benchmarkMatmul(options: { size?: number; minSeconds?: number } = {}): Promise<MatmulBenchmark> {
  return loadNative().benchmarkMatmul(options.size ?? 512, options.minSeconds ?? 1);
}

/** Sum of all elements (a scalar tensor). */
export function sum(a: Tensor): Tensor {
  return Tensor.wrap(loadNative().sum(handleOf(a, 'a', 'sum')));
}

/** Element-wise product with broadcasting. */
export function mul(a: Tensor, b: Tensor): Tensor {
  return Tensor.wrap(loadNative().mul(handleOf(a, 'a', 'mul'), handleOf(b, 'b', 'mul')));
}
