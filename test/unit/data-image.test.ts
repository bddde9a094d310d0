import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { loadImage } from '../../lib/data/image.js';
import { png16 } from './png-bytes.js';

const dir = mkdtempSync(join(tmpdir(), 'radkit-img-'));

function pngRGB(w: number, h: number, rgb: [number, number, number]): Buffer {
  const p = new PNG({ width: w, height: h });
  for (let i = 0; i < w * h; i++) p.data.set([...rgb, 255], 4 * i);
  return PNG.sync.write(p);
}

// The first (pure JavaScript) decoder, behind the synchronous loadImage; data-decode.test.ts tests the libvips one.
describe('image decoding and resizing (first decoder, loadImage)', () => {
  it('decodes 16-bit grey PNG at full precision and area-averages when shrinking', () => {
    const f = join(dir, 'g16.png');
    writeFileSync(f, png16(4, 4, (x) => (x < 2 ? 0 : 65535)));
    const img = loadImage(f, { height: 2, width: 2 });
    expect(img.source).toMatchObject({ format: 'png', bitDepth: 16, channels: 1, width: 4, height: 4 });
    expect(Array.from(img.data)).toEqual([0, 1, 0, 1]);
    const one = loadImage(f, { height: 1, width: 1 });
    expect(one.data[0]).toBeCloseTo(0.5, 6);
    const fine = loadImage(writeAnd(join(dir, 'g16b.png'), png16(1, 1, () => 1000)), { height: 1, width: 1 });
    expect(fine.data[0]).toBeCloseTo(1000 / 65535, 7);
  });
  it('converts RGB to grey (ITU-R 601 weights) and upsamples bilinearly', () => {
    const img = loadImage(writeAnd(join(dir, 'rgb.png'), pngRGB(2, 2, [255, 0, 0])), { height: 4, width: 4 });
    expect(img.data[0]).toBeCloseTo(0.299, 5);
    expect(img.data.length).toBe(16);
  });
  it('decodes JPEG, keeps aspect with center-crop, normalises', () => {
    const w = 8;
    const h = 4;
    const d = Buffer.alloc(w * h * 4);
    for (let i = 0; i < w * h; i++) d.set([128, 128, 128, 255], 4 * i);
    const f = writeAnd(join(dir, 'g.jpg'), jpeg.encode({ data: d, width: w, height: h }, 95).data);
    const img = loadImage(f, { height: 2, width: 2, fit: 'center-crop', mean: 0.5, std: 0.25 });
    expect(img.source).toMatchObject({ format: 'jpeg', width: 8, height: 4, channels: 1 });
    for (const v of img.data) expect(v).toBeCloseTo((128 / 255 - 0.5) / 0.25, 1);
  });
  it('reports missing, empty, corrupt and non-image files with their path', () => {
    expect(() => loadImage(join(dir, 'nope.png'), { height: 2, width: 2 })).toThrow(/nope\.png: file not found/);
    expect(() => loadImage(writeAnd(join(dir, 'empty.png'), Buffer.alloc(0)), { height: 2, width: 2 })).toThrow(/empty\.png: empty file/);
    const good = pngRGB(4, 4, [1, 2, 3]);
    expect(() => loadImage(writeAnd(join(dir, 'trunc.png'), good.subarray(0, 40)), { height: 2, width: 2 })).toThrow(/trunc\.png: corrupt PNG/);
    expect(() => loadImage(writeAnd(join(dir, 'text.png'), Buffer.from('hello world')), { height: 2, width: 2 })).toThrow(/text\.png: not a PNG or JPEG/);
    expect(() => loadImage(writeAnd(join(dir, 'bad.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0, 1, 2, 3])), { height: 2, width: 2 })).toThrow(/bad\.jpg: corrupt JPEG/);
    expect(() => loadImage(join(dir, 'rgb.png'), { height: 0, width: 2 })).toThrow(/height and width/);
  });
});

function writeAnd(f: string, b: Buffer | Uint8Array): string {
  writeFileSync(f, b);
  return f;
}
