// PNG files written by hand for the decoder tests (signature, chunks with CRCs).
import { crc32, deflateSync } from 'node:zlib';

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
}

export function ihdr(w: number, h: number, depth: number, colorType: number): Buffer {
  const b = Buffer.alloc(13);
  b.writeUInt32BE(w, 0);
  b.writeUInt32BE(h, 4);
  b[8] = depth;
  b[9] = colorType;
  return chunk('IHDR', b);
}

/** A 16-bit greyscale PNG. */
export function png16(w: number, h: number, f: (x: number, y: number) => number): Buffer {
  const raw = Buffer.alloc(h * (1 + 2 * w));
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.writeUInt16BE(f(x, y), y * (1 + 2 * w) + 1 + 2 * x);
  return Buffer.concat([PNG_SIGNATURE, ihdr(w, h, 16, 0), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}
