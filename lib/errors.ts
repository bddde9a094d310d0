/**
 * Every failure radkit raises is a RadkitError with a stable `code` and the name of the function
 * that failed (`fn`). Native failures arrive as these classes directly: the addon constructs them.
 *
 * Codes raised from TypeScript: `ERR_INVALID_ARG` (ArgumentError: a bad argument or option),
 * `ERR_DATA` (DataError: an input file or one of its entries; `file` and `entry` say which),
 * `ERR_TOKENIZER` (TokenizerError: a tokenizer file or JSON that is not a usable tokenizer),
 * `ERR_CHECKPOINT` (a missing, damaged or mismatched checkpoint, or a resume with other settings;
 * also from native loads), `ERR_LOCKED` (another live process trains in that run folder),
 * `ERR_EXISTS` (ArgumentError: files radkit would overwrite are there and `force` was not given),
 * `ERR_ABORTED` (an AbortSignal fired; the signal's reason is the `cause`), `ERR_WORKER` (a worker
 * thread failed or its pool was closed), `ERR_INTERNAL` (an internal invariant broke: a radkit bug),
 * `ERR_DEVICE` (ArgumentError: a device that cannot be used here, named with the reason: no CUDA in
 * this build, no visible device, an index out of range; also raised natively).
 */
export class RadkitError extends Error {
  readonly code: string;
  readonly fn: string;
  constructor(message: string, code = 'ERR_RADKIT', fn = '', options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.fn = fn;
  }
}

/** A bad argument: wrong type, dtype, rank, shape, device, range or a non-finite value. */
export class ArgumentError extends RadkitError {}

/** A tensor (or model) was used after `dispose()`. */
export class DisposedError extends RadkitError {}

/**
 * An allocation was refused or failed (`ERR_OUT_OF_MEMORY`). A training step that runs out of memory
 * (CPU or CUDA) names the model, device, precision and the batch's shapes and changes nothing.
 */
export class OutOfMemoryError extends RadkitError {}

/** LibTorch or the native layer failed for another reason. */
export class NativeError extends RadkitError {}

/** The native addon could not be loaded; the message says why and how to fix it. */
export class LoadError extends RadkitError {}

/** A problem found in an input file; `DataError` carries the same fields. */
export interface DataIssue {
  file: string;
  /** e.g. `train[12] (id "CXR1_1_IM-0001")`, or undefined for file-level problems */
  entry?: string;
  message: string;
}

/**
 * A problem in an input data file (annotation, labels, image, word list), code `ERR_DATA`. The
 * message is `<file>[: <entry>]: <what is wrong>`; `file` and `entry` carry the same names.
 */
export class DataError extends RadkitError {
  readonly file: string;
  readonly entry?: string;
  constructor(issue: DataIssue, fn = '') {
    super(`${issue.file}${issue.entry ? `: ${issue.entry}` : ''}: ${issue.message}`, 'ERR_DATA', fn);
    this.file = issue.file;
    this.entry = issue.entry;
  }
}

/** A tokenizer file or JSON that is not a usable tokenizer, code `ERR_TOKENIZER`; `file` names the file when there is one. */
export class TokenizerError extends RadkitError {
  readonly file?: string;
  constructor(message: string, fn = '', file?: string) {
    super(message, 'ERR_TOKENIZER', fn);
    this.file = file;
  }
}

/** The classes the addon instantiates, by native error kind. */
export const nativeErrorClasses = {
  argument: ArgumentError,
  disposed: DisposedError,
  outOfMemory: OutOfMemoryError,
  native: NativeError,
};
