// The native safetensors reader rejects hostile headers before making any tensor, and the writer
// round-trips every dtype radkit holds.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ArgumentError, Tensor, readSafetensors, readSafetensorsHeader, writeSafetensors } from '../../lib/index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-safetensors-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let n = 0;
/** A file of: the 8-byte length `declared` (default the header's), the header text, then `data` bytes. */
function file(header: string, data = 0, declared?: bigint): string {
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(declared ?? BigInt(Buffer.byteLength(header)));
  const f = path.join(tmp, `h${n++}.safetensors`);
  fs.writeFileSync(f, Buffer.concat([len, Buffer.from(header), Buffer.alloc(data, 7)]));
  return f;
}

describe('safetensors headers', () => {
  const hostile: [string, () => string, RegExp][] = [
    ['shorter than the length field', () => {
      const f = path.join(tmp, 'tiny.safetensors');
      fs.writeFileSync(f, Buffer.from([1, 2, 3]));
      return f;
    }, /too short/],
    ['header length past the end of the file', () => file('{}', 0, 1000n), /header length 1000 exceeds the file/],
    ['header length over the 100 MB cap (a sparse 101 MB file)', () => {
      const f = file('{}', 0, 100n * 1024n * 1024n + 1n);
      fs.truncateSync(f, 101 * 1024 * 1024);
      return f;
    }, /header length 104857601 exceeds the limit of 104857600 bytes/],
    ['header length near 2^64', () => file('{}', 0, (1n << 64n) - 1n), /header length 18446744073709551615 exceeds the file/],
    ['not JSON', () => file('{"a": '), /malformed safetensors header/],
    ['not an object', () => file('[1, 2]'), /must start with '\{'/],
    ['trailing garbage', () => file('{} x'), /unexpected text after the JSON value/],
    ['duplicate key', () => file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4), /duplicate key 'a'/],
    ['deep nesting', () => file('{"a":' + '['.repeat(5000) + ']'.repeat(5000) + '}'), /nesting too deep/],
    ['unknown dtype', () => file('{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}', 1), /unsupported dtype 'F8_E4M3'/],
    ['unknown field', () => file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}', 4), /unknown field 'x'/],
    ['missing field', () => file('{"a":{"dtype":"F32","shape":[1]}}', 4), /needs dtype, shape and data_offsets/],
    ['negative dimension', () => file('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', 4), /shape must hold non-negative integers/],
    ['fractional offset', () => file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}}', 4), /data_offsets must be \[begin, end\]/],
    ['shape x dtype larger than the range', () => file('{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,8]}}', 8), /needs 24 bytes but data_offsets \[0, 8\] span 8/],
    ['shape whose size overflows 64 bits', () => file('{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}', 8), /more than 2\^64/],
    ['range past the end of the file', () => file('{"a":{"dtype":"U8","shape":[100],"data_offsets":[0,100]}}', 10), /lie outside the file \(10 data bytes\)/],
    ['offset near 2^64', () => file('{"a":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551615,18446744073709551616]}}', 10), /data_offsets must be|outside the file/],
    ['begin after end', () => file('{"a":{"dtype":"U8","shape":[0],"data_offsets":[4,2]}}', 10), /begin > end/],
    ['overlapping tensors', () => file('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', 12), /tensors 'a' and 'b' overlap/],
    ['a hole between tensors', () => file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', 12), /tensor 'b' starts at data byte 8 but the previous tensor 'a' ends at 4/],
    ['data that does not start at the first byte', () => file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8), /tensor 'a' starts at data byte 4 but the data section starts at 0/],
    ['bytes after the last tensor', () => file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 9), /the tensors end at data byte 4 but the file holds 9 data bytes \(5 bytes belong to no tensor\)/],
    ['an empty tensor name', () => file('{"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4), /a tensor has an empty name/],
    ['metadata that is not strings', () => file('{"__metadata__":{"k":1}}'), /__metadata__\['k'\] must be a string/],
    ['control character in a string', () => file('{"a\u0001":{}}'), /control character/],
    ['lone surrogate escape', () => file('{"\\ud800":{}}'), /unpaired surrogate/],
  ];
  for (const [name, make, message] of hostile) {
    it(`rejects ${name}`, () => {
      const f = make();
      let err: unknown;
      try {
        readSafetensors(f);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ArgumentError);
      expect((err as Error).message).toMatch(message);
      expect(() => readSafetensorsHeader(f)).toThrow(message);
    });
  }

  it('accepts a valid header with padding, metadata, escapes and an empty tensor', () => {
    const f = file('{"a\\"\\u00e9":{"dtype":"I32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0,3],"data_offsets":[8,8]},"__metadata__":{"k":"v"}}    ', 8);
    const h = readSafetensorsHeader(f);
    expect(h.entries.map((e) => e.name)).toEqual(['a"é', 'e']);
    expect(h.metadata).toEqual({ k: 'v' });
    const { tensors } = readSafetensors(f);
    expect(Array.from(tensors['a"é'].toArray() as Int32Array)).toEqual([0x07070707, 0x07070707]);
    expect(tensors.e.shape).toEqual([0, 3]);
    Object.values(tensors).forEach((t) => t.dispose());
  });
});

describe('safetensors writing', () => {
  it('round-trips every dtype, keeps half precision as stored unless a dtype is asked for, and writes atomically', () => {
    const f = path.join(tmp, 'all.safetensors');
    const src: Record<string, Tensor> = {
      f32: Tensor.from(new Float32Array([1.5, -2, 3]), [3]),
      f64: Tensor.from(new Float64Array([Math.PI]), [1, 1]),
      bf16: Tensor.from(new Float32Array([1, 0.5, -3.25]), [3]).to('bfloat16'),
      f16: Tensor.from(new Float32Array([0.25, 1024]), [2]).to('float16'),
      i64: Tensor.from(new BigInt64Array([1n, -(2n ** 40n)]), [2]),
      i32: Tensor.from(new Int32Array([7]), [1]),
      u8: Tensor.from(new Uint8Array([255, 0]), [2]),
      b: Tensor.from(new Uint8Array([1, 0, 1]), [3], { dtype: 'bool' }),
    };
    writeSafetensors(f, src, { source: 'test' });
    expect(fs.readdirSync(tmp).filter((x) => x.includes('.tmp-'))).toEqual([]);
    const { tensors, metadata } = readSafetensors(f);
    expect(metadata).toEqual({ source: 'test' });
    for (const [k, t] of Object.entries(src)) {
      expect(tensors[k].dtype).toBe(t.dtype);
      expect(tensors[k].shape).toEqual(t.shape);
      expect(Array.from(tensors[k].toArray() as ArrayLike<number | bigint>)).toEqual(Array.from(t.toArray() as ArrayLike<number | bigint>));
    }
    const h = readSafetensorsHeader(f);
    expect(h.entries.find((e) => e.name === 'bf16')!.code).toBe('BF16');
    expect(h.entries[0].begin % 8).toBe(0);
    const asF32 = readSafetensors(f, { dtype: 'float32', names: ['bf16', 'f16'] });
    expect(Object.keys(asF32.tensors)).toEqual(['bf16', 'f16']);
    expect(Array.from(asF32.tensors.bf16.toArray() as Float32Array)).toEqual([1, 0.5, -3.25]);
    expect(asF32.tensors.f16.dtype).toBe('float32');
    expect(() => readSafetensors(f, { names: ['nope'] })).toThrow(/has no tensor 'nope'/);
    [src, tensors, asF32.tensors].forEach((d) => Object.values(d).forEach((t) => t.dispose()));
  });
});
