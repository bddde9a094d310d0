import { ArgumentError } from '../errors.js';
import { loadNative } from '../native.js';
import { Tensor, handleOf, type Dtype } from '../tensor.js';

// safetensors: 8-byte little-endian header length, a JSON header
// { name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: {...} }, then the raw bytes.
// Reading and writing are native (native/core/safetensors.h): the file is memory-mapped, never read
// into a JS Buffer, and its header is validated in full before any tensor is made.

/** One tensor of a safetensors header. */
export interface SafetensorsEntry {
  name: string;
  /** radkit dtype name ('float32', 'bfloat16', ...; 'int16'/'int8' for the types radkit tensors do not hold). */
  dtype: string;
  /** The file's dtype code ('F32', 'BF16', ...). */
  code: string;
  shape: number[];
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
}

function checkFile(file: unknown, fn: string): string {
  if (typeof file !== 'string' || file.length === 0) throw new ArgumentError(`${fn}: file must be a path string, got ${typeof file}`, 'ERR_INVALID_ARG', fn);
  return file;
}

/** The validated header of a .safetensors file (entries in file order), without reading any tensor. */
export function readSafetensorsHeader(file: string): { entries: SafetensorsEntry[]; metadata: Record<string, string>; fileBytes: number } {
  return loadNative().safetensorsHeader(checkFile(file, 'readSafetensorsHeader'));
}

/**
 * Reads the tensors of a .safetensors file (all, or `names`), in their stored dtype unless `dtype`
 * is given (float16/bfloat16 stay half precision: convert with `{ dtype: 'float32' }`).
 */
export function readSafetensors(file: string, options: { dtype?: Dtype; names?: string[] } = {}): { tensors: Record<string, Tensor>; metadata: Record<string, string> } {
  const raw = loadNative().safetensorsRead(checkFile(file, 'readSafetensors'), options);
  return { tensors: Object.fromEntries(Object.entries(raw.tensors).map(([k, h]) => [k, Tensor.wrap(h)])), metadata: raw.metadata };
}

/** Writes tensors (any dtype radkit holds, any device) as a .safetensors file, atomically (a temporary file renamed into place). */
export function writeSafetensors(file: string, tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): void {
  const fn = 'writeSafetensors';
  checkFile(file, fn);
  if (typeof tensors !== 'object' || tensors === null) throw new ArgumentError(`${fn}: tensors must be an object of name -> Tensor`, 'ERR_INVALID_ARG', fn);
  const handles = Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, handleOf(t, `tensors['${k}']`, fn)]));
  loadNative().safetensorsWrite(file, handles, metadata);
}
