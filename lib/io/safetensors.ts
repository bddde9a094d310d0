import * as fs from 'node:fs';
import { ArgumentError } from '../errors.js';
import { Tensor, type Dtype } from '../tensor.js';

// safetensors: 8-byte little-endian header length, a JSON header
// { name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: {...} }, then the raw bytes.

const FN = 'readSafetensors';

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function view(buf: Buffer, begin: number, end: number): ArrayBuffer {
  // A fresh, aligned copy of the tensor's bytes.
  const out = new ArrayBuffer(end - begin);
  new Uint8Array(out).set(buf.subarray(begin, end));
  return out;
}

/** Reads every tensor of a .safetensors file (float16/bfloat16 arrive as float32). */
export function readSafetensors(file: string): { tensors: Record<string, Tensor>; metadata: Record<string, string> } {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new ArgumentError(`${FN}: cannot read ${file}: ${(e as Error).message}`, 'ERR_INVALID_ARG', FN);
  }
  if (buf.length < 8) throw new ArgumentError(`${FN}: ${file} is too short to be a safetensors file`, 'ERR_INVALID_ARG', FN);
  const n = Number(buf.readBigUInt64LE(0));
  if (n > buf.length - 8) throw new ArgumentError(`${FN}: ${file}: header length ${n} exceeds the file`, 'ERR_INVALID_ARG', FN);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  } catch (e) {
    throw new ArgumentError(`${FN}: ${file}: malformed header (${(e as Error).message})`, 'ERR_INVALID_ARG', FN);
  }
  const base = 8 + n;
  const tensors: Record<string, Tensor> = {};
  const metadata = (header.__metadata__ as Record<string, string>) ?? {};
  try {
    for (const [name, info] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const { dtype, shape, data_offsets } = info as { dtype: string; shape: number[]; data_offsets: [number, number] };
      const [b, e] = data_offsets.map((x) => x + base);
      if (!(b <= e && e <= buf.length)) throw new ArgumentError(`${FN}: ${file}: tensor '${name}' lies outside the file`, 'ERR_INVALID_ARG', FN);
      const ab = view(buf, b, e);
      let t: Tensor;
      switch (dtype) {
        case 'F32': t = Tensor.from(new Float32Array(ab), shape); break;
        case 'F64': t = Tensor.from(new Float64Array(ab), shape); break;
        case 'I32': t = Tensor.from(new Int32Array(ab), shape); break;
        case 'I64': t = Tensor.from(new BigInt64Array(ab), shape); break;
        case 'U8': t = Tensor.from(new Uint8Array(ab), shape); break;
        case 'BOOL': t = Tensor.from(new Uint8Array(ab), shape, { dtype: 'bool' }); break;
        case 'F16': t = Tensor.from(Float32Array.from(new Uint16Array(ab), f16ToF32), shape); break;
        case 'BF16': {
          const u = new Uint16Array(ab);
          const f = new Float32Array(u.length);
          new Uint32Array(f.buffer).set(Array.from(u, (x) => x << 16));
          t = Tensor.from(f, shape);
          break;
        }
        default:
          throw new ArgumentError(`${FN}: ${file}: tensor '${name}' has unsupported dtype ${dtype}`, 'ERR_DTYPE', FN);
      }
      tensors[name] = t;
    }
  } catch (err) {
    Object.values(tensors).forEach((t) => t.dispose());
    throw err;
  }
  return { tensors, metadata };
}

const CODES: Partial<Record<Dtype, string>> = { float32: 'F32', float64: 'F64', int32: 'I32', int64: 'I64', uint8: 'U8', bool: 'BOOL' };

/** Writes tensors as a .safetensors file (float32/float64/int32/int64/uint8/bool). */
export function writeSafetensors(file: string, tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = {};
  const parts: Buffer[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const code = CODES[t.dtype];
    if (!code) throw new ArgumentError(`writeSafetensors: tensor '${name}' has dtype ${t.dtype}; convert it first`, 'ERR_DTYPE', 'writeSafetensors');
    const a = t.toArray();
    const bytes = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    header[name] = { dtype: code, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  fs.writeFileSync(file, Buffer.concat([len, Buffer.from(json, 'utf8'), ...parts]));
}
