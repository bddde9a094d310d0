// Issue 17 fuzz test: randomly corrupted safetensors files, annotation files (with labels files)
// and PNG/JPEG byte strings through the public readers. Every input either reads, or fails with a
// RadkitError that has a code and names the file; none crashes the process or hangs. The outcome
// counts are printed (bench/RELIABILITY.md keeps them).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSafetensors } from '../../lib/io/safetensors.js';
import { readR2Gen } from '../../lib/data/r2gen.js';
import { readImage } from '../../lib/data/image.js';
import { encodeGreyPng } from '../../lib/data/synth/index.js';
import { Rng } from '../../lib/data/synth/rng.js';
import { RadkitError } from '../../lib/errors.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-fuzz-'));
const rng = new Rng(17);
const CASES = 1000;

type Tally = Record<string, number>;
const bump = (t: Tally, k: string) => void (t[k] = (t[k] ?? 0) + 1);

/** Reads with `read`: 'read' or the error's code; anything but a RadkitError naming the file (one of `files`) fails the test. */
async function outcome(files: string | string[], what: string, read: () => unknown | Promise<unknown>): Promise<string> {
  const named = typeof files === 'string' ? [files] : files;
  const t0 = performance.now();
  try {
    const r = await Promise.race([read(), new Promise((_, reject) => setTimeout(() => reject(new Error(`hang: ${what} took over 10 s`)), 10_000))]);
    const tensors = (r as { tensors?: Record<string, { dispose(): void }> } | undefined)?.tensors;
    if (tensors) Object.values(tensors).forEach((t) => t.dispose());
    return 'read';
  } catch (err) {
    if (!(err instanceof RadkitError)) throw new Error(`${what}: ${named[0]} gave an unnamed error: ${String((err as Error)?.stack ?? err)}`);
    expect(err.code, what).toMatch(/^ERR_[A-Z_]+$/);
    if (!named.some((f) => err.message.includes(path.basename(f)))) throw new Error(`${what}: the error does not name ${named.join(' or ')}: ${err.message}`);
    return err.code;
  } finally {
    expect(performance.now() - t0, `${what} took too long`).toBeLessThan(10_000);
  }
}

// ------------------------------------------------------------------------------------------------
// safetensors

function safetensorsBytes(header: unknown, data: Buffer, headerText?: string): Buffer {
  const json = Buffer.from(headerText ?? JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

const BASE_HEADER = {
  __metadata__: { format: 'pt' },
  a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
  b: { dtype: 'I64', shape: [2], data_offsets: [24, 40] },
  c: { dtype: 'BF16', shape: [4], data_offsets: [40, 48] },
};
const BASE_DATA = Buffer.alloc(48, 7);
const ODD_VALUES: unknown[] = [-1, 0.5, 1e20, 2 ** 53 + 2, null, 'x', [], [0], [8, 4], [0, 1e300], {}, true, -0, [1, 2, 3], 'F32', [[1]]];

function corruptSafetensors(): [string, Buffer] {
  const header = JSON.parse(JSON.stringify(BASE_HEADER)) as Record<string, Record<string, unknown>>;
  switch (rng.int(0, 7)) {
    case 0: {
      // flip bytes anywhere
      const b = safetensorsBytes(header, BASE_DATA);
      for (let i = rng.int(1, 6); i > 0; i--) b[rng.int(0, b.length - 1)] = rng.int(0, 255);
      return ['flipped bytes', b];
    }
    case 1: {
      const b = safetensorsBytes(header, BASE_DATA);
      return ['truncated', b.subarray(0, rng.int(0, b.length - 1))];
    }
    case 2: {
      // a header length that lies
      const b = safetensorsBytes(header, BASE_DATA);
      b.writeBigUInt64LE(rng.pick([0n, 1n, 2n ** 26n, 2n ** 40n, 2n ** 63n, 2n ** 64n - 1n, BigInt(rng.int(0, 400))]), 0);
      return ['header length', b];
    }
    case 3: {
      // one field of one tensor set to an odd value (negative, fractional, overlapping, out of order, huge offsets; bad dtypes and shapes)
      const name = rng.pick(['a', 'b', 'c']);
      const field = rng.pick(['dtype', 'shape', 'data_offsets', 'extra']);
      header[name][field] = rng.chance(0.3) ? rng.pick(['F16', 'U8', 'BOOL', 'I8', 'F64', 'Q4', '']) : rng.pick(ODD_VALUES);
      if (rng.chance(0.3)) header[rng.pick(['a', 'b', 'c'])].data_offsets = rng.pick([[0, 24], [16, 40], [40, 48], [24, 24], [0, 48]]);
      return ['bad field', safetensorsBytes(header, BASE_DATA)];
    }
    case 4:
      // a header that is not an object of entries
      return ['not an object of entries', safetensorsBytes(null, BASE_DATA, JSON.stringify(rng.pick([[], 'text', 1, null, { a: 1 }, { a: [] }, { __metadata__: { k: 1 } }, { __metadata__: [] }, { '': BASE_HEADER.a }])))];
    case 5: {
      // duplicate names, trailing garbage, non-UTF-8 bytes, deep nesting
      const text = rng.pick([
        JSON.stringify(header).replace('"b":', '"a":'),
        `${JSON.stringify(header)}xyz`,
        `${JSON.stringify(header)}        `,
        `${'['.repeat(5000)}${']'.repeat(5000)}`,
        JSON.stringify(header).replace('"a"', '"\udcff"'),
      ]);
      return ['duplicates/garbage/nesting', safetensorsBytes(null, BASE_DATA, text)];
    }
    case 6: {
      // shapes whose element count disagrees with the byte range
      header.a.shape = rng.pick([[3, 3], [0], [2, 3, 1], [6], [1, 6], [2 ** 31, 2 ** 31], [-2, -3]]);
      return ['shape vs bytes', safetensorsBytes(header, BASE_DATA)];
    }
    default: {
      const b = Buffer.alloc(rng.int(0, 200));
      for (let i = 0; i < b.length; i++) b[i] = rng.int(0, 255);
      return ['random bytes', b];
    }
  }
}

// ------------------------------------------------------------------------------------------------
// annotation + labels

const LABELS = { 'Pleural Effusion': 'positive', Cardiomegaly: 'negative' };
function baseAnnotation() {
  const entry = (id: string, split: string) => ({ id, report: `report of ${id} . the heart is normal .`, image_path: [`${id}/0.png`, `${id}/1.png`], split });
  return { train: [entry('t1', 'train'), entry('t2', 'train')], val: [entry('v1', 'val')], test: [entry('s1', 'test')] };
}
const ENTRY_VALUES: unknown[] = [null, 1, -1, 0, '', ' ', [], {}, 'x', [1], ['', 'a'], [null], true, '\ufffd', 'a'.repeat(1000), { id: 'x' }];

function corruptAnnotation(): { kind: string; annotation: string; labels: string } {
  const ann = baseAnnotation() as unknown as Record<string, Record<string, unknown>[]>;
  const labels: Record<string, unknown> = { t1: LABELS, t2: LABELS, v1: LABELS, s1: LABELS };
  let annText: string | undefined;
  let labelsText: string | undefined;
  const k = rng.int(0, 5);
  switch (k) {
    case 0: {
      const split = rng.pick(['train', 'val', 'test']);
      const e = ann[split][0];
      e[rng.pick(['id', 'report', 'image_path', 'split', 'labels', 'study_id'])] = rng.pick(ENTRY_VALUES);
      break;
    }
    case 1:
      (ann as Record<string, unknown>)[rng.pick(['train', 'val', 'test'])] = rng.pick(ENTRY_VALUES);
      break;
    case 2:
      labels[rng.pick(['t1', 't2', 'v1', 's1', 'zz'])] = rng.pick([...ENTRY_VALUES, { Cardiomegaly: 'maybe' }, { Nonsense: 'positive' }, { Cardiomegaly: 1 }]);
      if (rng.chance(0.2)) labelsText = JSON.stringify(rng.pick([[], 'x', null, 3]));
      break;
    case 3: {
      const t = Buffer.from(JSON.stringify(ann));
      for (let i = rng.int(1, 4); i > 0; i--) t[rng.int(0, t.length - 1)] = rng.int(0, 255);
      annText = t.toString('latin1');
      fs.writeFileSync(path.join(dir, 'ann.raw'), t);
      break;
    }
    case 4: {
      const t = JSON.stringify(ann);
      annText = t.slice(0, rng.int(0, t.length - 1));
      break;
    }
    default:
      annText = rng.pick(['', '[]', 'null', '{}', '{"train": 3}', '\u0000\u0001', '{"train": [], "val": [], "test": []}', JSON.stringify({ train: [ann.train[0], ann.train[0]] })]);
  }
  const kind = ['entry field', 'split value', 'labels file', 'flipped bytes', 'truncated', 'odd document'][k];
  return { kind, annotation: annText ?? JSON.stringify(ann), labels: labelsText ?? JSON.stringify(labels) };
}

// ------------------------------------------------------------------------------------------------
// images

function basePng(): Buffer {
  const px = new Uint8Array(24 * 20);
  for (let i = 0; i < px.length; i++) px[i] = (i * 7) % 256;
  return encodeGreyPng(24, 20, px);
}
function baseJpeg(): Buffer {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const jpeg = require('jpeg-js') as { encode(img: { data: Buffer; width: number; height: number }, q: number): { data: Buffer } };
  const data = Buffer.alloc(24 * 20 * 4);
  for (let i = 0; i < data.length; i++) data[i] = (i * 13) % 256;
  return jpeg.encode({ data, width: 24, height: 20 }, 80).data;
}

function corruptImage(png: Buffer, jpg: Buffer): [string, Buffer] {
  const base = Buffer.from(rng.chance(0.5) ? png : jpg);
  switch (rng.int(0, 4)) {
    case 0:
      for (let i = rng.int(1, 8); i > 0; i--) base[rng.int(0, base.length - 1)] = rng.int(0, 255);
      return ['flipped bytes', base];
    case 1:
      return ['truncated', base.subarray(0, rng.int(0, base.length - 1))];
    case 2: {
      // the size in the header: huge, zero, or random (PNG IHDR width/height; JPEG SOF0)
      if (base[0] === 0x89) {
        base.writeUInt32BE(rng.pick([0, 1, 65535, 2 ** 31 - 1, 2 ** 32 - 1, rng.int(1, 100000)]), rng.pick([16, 20]));
      } else {
        const sof = base.indexOf(Buffer.from([0xff, 0xc0]));
        if (sof >= 0) base.writeUInt16BE(rng.pick([0, 1, 65535, rng.int(1, 65535)]), sof + rng.pick([5, 7]));
      }
      return ['size in header', base];
    }
    case 3:
      return ['trailing bytes', Buffer.concat([base, Buffer.alloc(rng.int(1, 300), rng.int(0, 255))])];
    default: {
      const b = Buffer.alloc(rng.int(0, 300));
      for (let i = 0; i < b.length; i++) b[i] = rng.int(0, 255);
      if (b.length > 8 && rng.chance(0.5)) (rng.chance(0.5) ? png : jpg).copy(b, 0, 0, 8);
      return ['random bytes', b];
    }
  }
}

describe('fuzzed inputs through the public readers: no crash, no hang, no unnamed error', () => {
  it(`${CASES} corrupted safetensors files (readSafetensors)`, async () => {
    const tally: Tally = {};
    const byKind: Tally = {};
    for (let i = 0; i < CASES; i++) {
      const file = path.join(dir, `f${i}.safetensors`);
      const [kind, bytes] = corruptSafetensors();
      fs.writeFileSync(file, bytes);
      const r = await outcome(file, `safetensors case ${i} (${kind})`, () => readSafetensors(file));
      bump(tally, r);
      bump(byKind, `${kind}: ${r}`);
      fs.rmSync(file);
    }
    console.log(`fuzz safetensors: ${JSON.stringify(tally)}\n  by kind: ${JSON.stringify(byKind)}`);
    expect(Object.values(tally).reduce((a, b) => a + b, 0)).toBe(CASES);
    expect(tally.read ?? 0).toBeLessThan(CASES);
  }, 300_000);

  it(`${CASES} corrupted annotation + labels files (readR2Gen)`, async () => {
    const tally: Tally = {};
    const byKind: Tally = {};
    for (let i = 0; i < CASES; i++) {
      const c = corruptAnnotation();
      const ann = path.join(dir, `annotation-${i}.json`);
      const labels = path.join(dir, `labels-${i}.json`);
      if (fs.existsSync(path.join(dir, 'ann.raw'))) fs.renameSync(path.join(dir, 'ann.raw'), ann);
      else fs.writeFileSync(ann, c.annotation);
      fs.writeFileSync(labels, c.labels);
      const r = await outcome([ann, labels], `annotation case ${i} (${c.kind})`, () => readR2Gen(ann, { labels }));
      bump(tally, r);
      bump(byKind, `${c.kind}: ${r}`);
      fs.rmSync(ann);
      fs.rmSync(labels);
    }
    console.log(`fuzz annotation: ${JSON.stringify(tally)}\n  by kind: ${JSON.stringify(byKind)}`);
    expect(Object.values(tally).reduce((a, b) => a + b, 0)).toBe(CASES);
  }, 300_000);

  it(`${CASES} corrupted PNG and JPEG byte strings (readImage)`, async () => {
    const png = basePng();
    const jpg = baseJpeg();
    const tally: Tally = {};
    const byKind: Tally = {};
    for (let i = 0; i < CASES; i++) {
      const file = path.join(dir, `img-${i}.${rng.chance(0.5) ? 'png' : 'jpg'}`);
      const [kind, bytes] = corruptImage(png, jpg);
      fs.writeFileSync(file, bytes);
      const r = await outcome(file, `image case ${i} (${kind})`, () => readImage(file, { height: 16, width: 16 }));
      bump(tally, r);
      bump(byKind, `${kind}: ${r}`);
      fs.rmSync(file);
    }
    console.log(`fuzz images: ${JSON.stringify(tally)}\n  by kind: ${JSON.stringify(byKind)}`);
    expect(Object.values(tally).reduce((a, b) => a + b, 0)).toBe(CASES);
  }, 300_000);
});

describe('safetensors header rules (item 9): the reproductions, each refused naming the file', () => {
  const t = (o: unknown) => ({ dtype: 'F32', shape: [2], data_offsets: o });
  const cases: [string, string, RegExp][] = [
    ['negative offsets', JSON.stringify({ a: t([-8, 0]) }), /data_offsets must be \[begin, end\] with non-negative integers/],
    ['fractional offsets', JSON.stringify({ a: t([0.5, 8.5]) }), /non-negative integers/],
    ['overlapping tensors', JSON.stringify({ a: t([0, 8]), b: t([4, 12]) }), /overlap/],
    ['begin after end', JSON.stringify({ a: t([8, 0]) }), /begin > end/],
    ['a header that is not an object', '[]', /must start with '\{'/],
    ['metadata that is not strings', JSON.stringify({ __metadata__: { k: 1 }, a: t([0, 8]) }), /__metadata__\['k'\] must be a string/],
  ];
  for (const [name, header, why] of cases)
    it(name, () => {
      const file = path.join(dir, `rule-${name.replace(/ /g, '-')}.safetensors`);
      fs.writeFileSync(file, safetensorsBytes(null, Buffer.alloc(16), header));
      expect(() => readSafetensors(file)).toThrow(expect.objectContaining({ message: expect.stringMatching(new RegExp(`${path.basename(file)}.*${why.source}`)) }));
    });
  it('a huge header length is refused without reading it', () => {
    const file = path.join(dir, 'rule-huge.safetensors');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(200_000_000n);
    fs.writeFileSync(file, Buffer.concat([len, Buffer.alloc(64, 32)]));
    expect(() => readSafetensors(file)).toThrow(/rule-huge\.safetensors: safetensors header length 200000000 exceeds the file/);
  });
});
