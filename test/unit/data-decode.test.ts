// The libvips decoder (lib/data/image.ts): agreement with the first decoder, formats, and bad files.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage, readImage, readImageHeader, type ImageOptions } from '../../lib/data/image.js';
import { decodeResize, imageLibs } from '../../lib/data/image-reference.js';
import { renderStudy } from '../../lib/data/synth/study.js';
import { DataError, RadkitError } from '../../lib/errors.js';
import { chunk, ihdr, png16, PNG_SIGNATURE as SIG } from './png-bytes.js';

const dir = mkdtempSync(join(tmpdir(), 'radkit-decode-'));
const write = (name: string, b: Uint8Array): string => {
  const f = join(dir, name);
  writeFileSync(f, b);
  return f;
};

function pngRGBA(w: number, h: number, f: (x: number, y: number) => [number, number, number, number]): Buffer {
  const p = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) p.data.set(f(x, y), 4 * (y * w + x));
  return PNG.sync.write(p);
}
const reference = (buf: Uint8Array, o: ImageOptions) => decodeResize(buf, o, imageLibs()).data;
function diff(a: Float32Array, b: Float32Array): { max: number; mean: number } {
  expect(a.length).toBe(b.length);
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    max = Math.max(max, d);
    sum += d;
  }
  return { max: max * 255, mean: (sum / a.length) * 255 };
}

describe('decodeImage (sharp) agrees with the first decoder', () => {
  const synth = Buffer.from(renderStudy(0, 'train', 3, 128, 2).pngs[0]);
  const lateral = Buffer.from(renderStudy(0, 'train', 3, 128, 2).pngs[1]);

  it('SynthCXR images at their own size: identical', async () => {
    for (const b of [synth, lateral]) {
      const got = await decodeImage(b, { height: 128, width: 128 });
      expect(diff(got.data, reference(b, { height: 128, width: 128 })).max).toBe(0);
      expect(got.source).toEqual({ format: 'png', width: 128, height: 128, bitDepth: 8, channels: 1 });
    }
  });

  it('smooth images: enlarged within 1/2 of 1/255 (same resampler), shrunk within 2/255', async () => {
    const smooth = pngRGBA(200, 160, (x, y) => {
      const v = Math.round(127 + 100 * Math.sin(x / 23) * Math.cos(y / 31));
      return [v, v, v, 255];
    });
    // enlarging (an axis grows): libvips decodes, radkit's bilinear resizes; only uint8 rounding differs
    for (const [h, w] of [
      [224, 224],
      [320, 100],
    ]) {
      const d = diff((await decodeImage(smooth, { height: h, width: w })).data, reference(smooth, { height: h, width: w }));
      expect(d.max, `${h}x${w}`).toBeLessThanOrEqual(0.51);
    }
    // shrinking: lanczos3 in libvips' fixed point against the float area average (measured max 1.8/255)
    for (const [h, w] of [
      [40, 50],
      [64, 64],
      [100, 120],
    ]) {
      const d = diff((await decodeImage(smooth, { height: h, width: w })).data, reference(smooth, { height: h, width: w }));
      expect(d.max, `${h}x${w}`).toBeLessThanOrEqual(2);
      expect(d.mean, `${h}x${w}`).toBeLessThanOrEqual(1);
    }
  });

  it('geometry: half-pixel centres when shrinking and enlarging (a ramp stays in place)', async () => {
    const ramp = png16(200, 2, (x) => 1000 + 200 * x);
    for (const W of [50, 80, 300, 401]) {
      const out = (await decodeImage(ramp, { height: 2, width: W })).data;
      const mid = Math.floor(W / 2);
      const sampled = (out[mid] * 65535 - 1000) / 200; // source x the output pixel sampled
      expect(Math.abs(sampled - (((mid + 0.5) * 200) / W - 0.5)), `200 -> ${W}`).toBeLessThan(0.1); // corner alignment would be 0.25..1.2 off
    }
  });

  it('SynthCXR shrunk: lanczos3 against area averaging differs at sharp edges only (stated bounds)', async () => {
    // Ribs, wires and text markers are one-pixel edges: lanczos keeps their contrast, the area average
    // spreads it. Measured: 64 px max 10.3/255 mean 1.4/255; 32 px max 12.1 mean 1.9 (README).
    for (const S of [64, 32]) {
      const d = diff((await decodeImage(synth, { height: S, width: S })).data, reference(synth, { height: S, width: S }));
      expect(d.mean).toBeLessThan(2.5);
      expect(d.max).toBeLessThan(16);
    }
  });

  it('16-bit PNG keeps 16 bits; RGB uses ITU-R 601 weights; grey JPEG, centre crop and normalisation', async () => {
    const g = await decodeImage(png16(1, 1, () => 1000), { height: 1, width: 1 });
    expect(g.data[0]).toBeCloseTo(1000 / 65535, 7);
    expect(g.source).toMatchObject({ format: 'png', bitDepth: 16, channels: 1 });
    const ramp = png16(64, 8, (x) => x * 1000);
    expect(diff((await decodeImage(ramp, { height: 8, width: 64 })).data, reference(ramp, { height: 8, width: 64 })).max).toBeLessThan(1e-3);
    const red = pngRGBA(2, 2, () => [255, 0, 0, 255]);
    expect((await decodeImage(red, { height: 4, width: 4 })).data[0]).toBeCloseTo(Math.round(0.299 * 255) / 255, 6);
    const mixed = pngRGBA(3, 1, (x) => [[10, 200, 30], [250, 250, 0], [0, 0, 255]][x].concat(x === 1 ? 0 : 255) as [number, number, number, number]);
    const m = await decodeImage(mixed, { height: 1, width: 3 });
    expect(Array.from(m.data).map((v) => Math.round(v * 255))).toEqual([Math.round(0.299 * 10 + 0.587 * 200 + 0.114 * 30), Math.round(0.299 * 250 + 0.587 * 250), Math.round(0.114 * 255)]); // alpha dropped, not composited
    const d = Buffer.alloc(8 * 4 * 4);
    for (let i = 0; i < 32; i++) d.set([128, 128, 128, 255], 4 * i);
    const j = jpeg.encode({ data: d, width: 8, height: 4 }, 95).data;
    const img = await decodeImage(j, { height: 2, width: 2, fit: 'center-crop', mean: 0.5, std: 0.25 });
    expect(img.source).toMatchObject({ format: 'jpeg', width: 8, height: 4, channels: 3 });
    for (const v of img.data) expect(v).toBeCloseTo((128 / 255 - 0.5) / 0.25, 1);
  });

  it('palette, grey+alpha, progressive and baseline JPEG', async () => {
    const base = await sharp(Buffer.from(Array.from({ length: 48 * 40 }, (_, i) => (i * 7) % 256)), { raw: { width: 48, height: 40, channels: 1 } });
    const variants: Record<string, Buffer> = {
      palette: await base.clone().png({ palette: true, colours: 256, dither: 0 }).toBuffer(),
      greyAlpha: await base.clone().joinChannel(Buffer.alloc(48 * 40, 200), { raw: { width: 48, height: 40, channels: 1 } }).png().toBuffer(),
      progressive: await base.clone().jpeg({ progressive: true, quality: 95 }).toBuffer(),
      baseline: await base.clone().jpeg({ quality: 95 }).toBuffer(),
    };
    expect(readImageHeader(variants.palette)).toMatchObject({ palette: true, channels: 3 });
    expect(readImageHeader(variants.greyAlpha)).toMatchObject({ alpha: true, channels: 1 });
    expect(readImageHeader(variants.progressive)).toMatchObject({ progressive: true, width: 48, height: 40 });
    expect(readImageHeader(variants.baseline)).toMatchObject({ progressive: false });
    for (const [name, b] of Object.entries(variants)) {
      const d = diff((await decodeImage(b, { height: 40, width: 48 })).data, reference(b, { height: 40, width: 48 }));
      expect(d.max, name).toBeLessThanOrEqual(1.01);
    }
  });
});

describe('bad files: errors name the file', () => {
  const o = { height: 8, width: 8 };
  const good = pngRGBA(16, 16, () => [1, 2, 3, 255]);
  async function fails(file: string, ...parts: RegExp[]): Promise<void> {
    const e = await readImage(file, o).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e, file).toBeInstanceOf(DataError);
    expect((e as DataError).code).toBe('ERR_DATA');
    expect((e as DataError).file).toBe(file);
    for (const p of parts) expect((e as Error).message).toMatch(p);
  }
  it('zero bytes, not an image, missing, truncated PNG and JPEG', async () => {
    await fails(write('zero.png', Buffer.alloc(0)), /zero\.png: empty file/);
    await fails(write('text.png', Buffer.from('hello world')), /text\.png: not a PNG or JPEG/);
    await fails(join(dir, 'nope.jpg'), /nope\.jpg: file not found/);
    await fails(write('header-only.png', good.subarray(0, 20)), /header-only\.png: corrupt PNG: no IHDR/);
    await fails(write('trunc.png', good.subarray(0, good.length - 20)), /trunc\.png: corrupt PNG/);
    const j = await sharp(Buffer.alloc(64 * 64, 90), { raw: { width: 64, height: 64, channels: 1 } }).jpeg().toBuffer();
    await fails(write('trunc.jpg', j.subarray(0, Math.floor(j.length * 0.6))), /trunc\.jpg: corrupt JPEG/);
    await fails(write('sof-less.jpg', Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0])), /sof-less\.jpg: corrupt JPEG: no frame header/);
    await expect(decodeImage(Buffer.alloc(0), o)).rejects.toSatisfy((e: unknown) => e instanceof RadkitError && e.code === 'ERR_DATA' && /empty file/.test(e.message));
  });
  it('huge dimensions are refused from the header, before decoding, for PNG and JPEG', async () => {
    // A 50,000 x 50,000 PNG: header and a tiny IDAT (no pixel data to speak of): refused by size.
    const hugePng = Buffer.concat([SIG, ihdr(50000, 50000, 8, 0), chunk('IDAT', deflateSync(Buffer.alloc(10))), chunk('IEND', Buffer.alloc(0))]);
    const t0 = performance.now();
    await fails(write('huge.png', hugePng), /huge\.png: PNG of 50000 x 50000 pixels \(2500\.0 megapixels\) is over the limit/, /refused before decoding/);
    expect(performance.now() - t0).toBeLessThan(1000);
    // JPEG: SOI, SOF0 of 60,000 x 60,000 with one component, EOI
    const sof = Buffer.from([0xff, 0xc0, 0, 11, 8, 0xea, 0x60, 0xea, 0x60, 1, 1, 0x11, 0]);
    await fails(write('huge.jpg', Buffer.concat([Buffer.from([0xff, 0xd8]), sof, Buffer.from([0xff, 0xd9])])), /huge\.jpg: JPEG of 60000 x 60000 pixels/, /refused before decoding/);
    // the limit is an option; the synchronous first decoder applies it too
    const e = await readImage(write('big-enough.png', good), { ...o, maxPixels: 100 }).catch((x: unknown) => x);
    expect(String(e)).toMatch(/big-enough\.png: PNG of 16 x 16 pixels .* over the limit of 100 pixels/);
    const { loadImage } = await import('../../lib/data/image.js');
    expect(() => loadImage(join(dir, 'huge.png'), o)).toThrow(/huge\.png: PNG of 50000 x 50000 pixels .* refused before decoding/);
  });
});
