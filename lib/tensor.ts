import { ArgumentError } from './errors.js';
import { loadNative } from './native.js';
import type { NativeTensor } from '../typings/native.js';

export type Dtype = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int32' | 'int64' | 'bool' | 'uint8';
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

export interface TensorOptions {
  /** Defaults to the data's own type for `from`, float32 for `zeros/ones/randn`. */
  dtype?: Dtype;
  device?: Device;
  requiresGrad?: boolean;
}

/** The typed arrays `Tensor.from` accepts; the array type gives the default dtype. */
export type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

/** What `toArray()` returns: float16/bfloat16 come back as Float32Array, bool as Uint8Array, int64 as BigInt64Array. */
export type ArrayFor<D extends Dtype> = D extends 'float64'
  ? Float64Array
  : D extends 'int32'
    ? Int32Array
    : D extends 'int64'
      ? BigInt64Array
      : D extends 'bool' | 'uint8'
        ? Uint8Array
        : Float32Array;

const DTYPES: readonly string[] = ['float32', 'float64', 'float16', 'bfloat16', 'int32', 'int64', 'bool', 'uint8'];

// Safety net only: a tensor the user forgot to dispose frees its native memory when collected.
const forgotten = new FinalizationRegistry<NativeTensor>((handle) => handle.dispose());

/**
 * A LibTorch tensor. Dispose it (`t.dispose()` or `using t = ...`) when done: native memory is
 * freed at once; the garbage collector only frees what was forgotten, later.
 */
export class Tensor {
  readonly #handle: NativeTensor;

  private constructor(handle: NativeTensor) {
    this.#handle = handle;
    forgotten.register(this, handle, this);
  }

  /** Wraps a handle returned by the native module (internal). */
  static wrap(handle: NativeTensor): Tensor {
    return new Tensor(handle);
  }

  /** Copies `data` into a new tensor of `shape`. */
  static from(data: TensorData, shape: readonly number[], options: TensorOptions = {}): Tensor {
    return new Tensor(loadNative().fromTypedArray(data, shape as number[], options));
  }

  static zeros(shape: readonly number[], options: TensorOptions = {}): Tensor {
    return new Tensor(loadNative().zeros(shape as number[], options));
  }

  static ones(shape: readonly number[], options: TensorOptions = {}): Tensor {
    return new Tensor(loadNative().ones(shape as number[], options));
  }

  /** Standard normal samples from LibTorch's generator (`radkit.manualSeed` fixes it). */
  static randn(shape: readonly number[], options: TensorOptions = {}): Tensor {
    return new Tensor(loadNative().randn(shape as number[], options));
  }

  get shape(): number[] {
    return this.#handle.shape();
  }

  get dtype(): Dtype {
    return this.#handle.dtype();
  }

  get device(): Device {
    return this.#handle.device() as Device;
  }

  /** Number of elements. */
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get requiresGrad(): boolean {
    return this.#handle.requiresGrad();
  }

  set requiresGrad(flag: boolean) {
    this.#handle.setRequiresGrad(flag);
  }

  /** The accumulated gradient as a new tensor (dispose it too), or null before any backward(). */
  get grad(): Tensor | null {
    const g = this.#handle.grad();
    return g ? new Tensor(g) : null;
  }

  get disposed(): boolean {
    return this.#handle.isDisposed();
  }

  /** A copy of the data on the CPU. */
  toArray(): TensorData {
    return this.#handle.toArray();
  }

  /** A new tensor converted to a dtype (`'float64'`) or moved to a device (`'cuda:0'`). */
  to(target: Dtype | Device): Tensor {
    return new Tensor(this.#handle.to(target));
  }

  /** Back-propagates from this tensor; without `gradOutput` it must hold a single element. */
  backward(gradOutput?: Tensor): void {
    this.#handle.backward(gradOutput === undefined ? undefined : handleOf(gradOutput, 'gradOutput', 'Tensor.backward'));
  }

  /** Frees the native memory now. Idempotent. */
  dispose(): void {
    forgotten.unregister(this);
    this.#handle.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return this.disposed ? 'Tensor(disposed)' : `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device})`;
  }

  /** The native handle (internal: for ops bindings). */
  static handle(t: Tensor): NativeTensor {
    return t.#handle;
  }
}

/** The native handle of `t`, or an ArgumentError naming `name` in `fn` when `t` is not a Tensor. */
export function handleOf(t: unknown, name: string, fn: string): NativeTensor {
  if (!(t instanceof Tensor)) {
    const given = t === null ? 'null' : Array.isArray(t) ? 'array' : typeof t;
    throw new ArgumentError(`${fn}: ${name} must be a Tensor, got ${given}`, 'ERR_INVALID_ARG', fn);
  }
  return Tensor.handle(t);
}

export function isDtype(s: unknown): s is Dtype {
  return typeof s === 'string' && DTYPES.includes(s);
}
