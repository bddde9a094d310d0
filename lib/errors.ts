/**
 * Every failure radkit raises is a RadkitError with a stable `code` and the name of the function
 * that failed (`fn`). Native failures arrive as these classes directly: the addon constructs them.
 */
export class RadkitError extends Error {
  readonly code: string;
  readonly fn: string;
  constructor(message: string, code = 'ERR_RADKIT', fn = '') {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.fn = fn;
  }
}

/** A bad argument: wrong type, dtype, rank, shape, device, range or a non-finite value. */
export class ArgumentError extends RadkitError {}

/** A tensor (or model) was used after `dispose()`. */
export class DisposedError extends RadkitError {}

/** An allocation was refused or failed. */
export class OutOfMemoryError extends RadkitError {}

/** LibTorch or the native layer failed for another reason. */
export class NativeError extends RadkitError {}

/** The native addon could not be loaded; the message says why and how to fix it. */
export class LoadError extends RadkitError {}

/** The classes the addon instantiates, by native error kind. */
export const nativeErrorClasses = {
  argument: ArgumentError,
  disposed: DisposedError,
  outOfMemory: OutOfMemoryError,
  native: NativeError,
};
