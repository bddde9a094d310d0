import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { ArgumentError } from '../../lib/errors.js';
import { DEFAULT_PATCH_COLOURS, drawAdaptivePatches, pngDataUri, type PatchDrawing } from '../../lib/report/patches.js';

const grey = (w: number, h: number, v = 0.5) => ({ data: new Float32Array(w * h).fill(v), width: w, height: h });
const GREY = 128; // round(0.5 * 255)

function decode(buf: Buffer) {
  const png = PNG.sync.read(buf);
  const at = (x: number, y: number): [number, number, number] => {
    const o = (y * png.width + x) * 4;
    return [png.data[o], png.data[o + 1], png.data[o + 2]];
  };
  return { width: png.width, height: png.height, data: png.data, at };
}

const C0 = [...DEFAULT_PATCH_COLOURS[0]];
const C1 = [...DEFAULT_PATCH_COLOURS[1]];

describe('drawAdaptivePatches', () => {
  it('writes an RGB PNG upscaled so the longer side is >= 384 px, or by the given scale', () => {
    const a = drawAdaptivePatches(grey(64, 64), []);
    expect(a.subarray(0, 8).toString('latin1')).toBe('\x89PNG\r\n\x1a\n');
    expect(a[25]).toBe(2); // IHDR colour type 2 = RGB
    const da = decode(a);
    expect([da.width, da.height]).toEqual([384, 384]);
    expect(da.at(0, 0)).toEqual([GREY, GREY, GREY]);
    const b = decode(drawAdaptivePatches(grey(100, 50), []));
    expect([b.width, b.height]).toEqual([400, 200]);
    const c = decode(drawAdaptivePatches(grey(500, 20), []));
    expect([c.width, c.height]).toEqual([500, 20]);
    const d = decode(drawAdaptivePatches(grey(10, 7), [], { scale: 3 }));
    expect([d.width, d.height]).toEqual([30, 21]);
  });

  it('upscales nearest-neighbour, clamps floats and keeps bytes as they are', () => {
    const f = { data: Float32Array.from([-1, 2, NaN, 0.2]), width: 2, height: 2 };
    const img = decode(drawAdaptivePatches(f, [], { scale: 2 }));
    expect(img.at(0, 0)).toEqual([0, 0, 0]);
    expect(img.at(1, 1)).toEqual([0, 0, 0]);
    expect(img.at(2, 0)).toEqual([255, 255, 255]);
    expect(img.at(3, 1)).toEqual([255, 255, 255]);
    expect(img.at(0, 3)).toEqual([0, 0, 0]);
    expect(img.at(3, 3)).toEqual([51, 51, 51]);
    const u = { data: Uint8Array.from([7, 77, 177, 250]), width: 2, height: 2 };
    const bi = decode(drawAdaptivePatches(u, [], { scale: 1 }));
    expect([bi.at(0, 0), bi.at(1, 0), bi.at(0, 1), bi.at(1, 1)].map((p) => p[0])).toEqual([7, 77, 177, 250]);
  });

  it('outlines a box in its colour, lineWidth pixels thick inwards, and leaves the interior grey', () => {
    // scale 6, lineWidth 2: box x,y in [12, 28) -> output [72, 168)
    const p: PatchDrawing = { box: [20, 20, 16, 16], fixedCentre: [16, 16] };
    const img = decode(drawAdaptivePatches(grey(64, 64), [p], { arrows: false }));
    for (const [x, y] of [
      [72, 100],
      [73, 100],
      [167, 100],
      [166, 100],
      [100, 72],
      [100, 167],
      [72, 72],
      [167, 167],
    ])
      expect(img.at(x, y), `(${x},${y})`).toEqual(C0);
    for (const [x, y] of [
      [71, 100],
      [74, 100],
      [165, 100],
      [168, 100],
      [100, 71],
      [100, 74],
      [100, 168],
      [120, 120],
      [150, 100],
    ])
      expect(img.at(x, y), `(${x},${y})`).toEqual([GREY, GREY, GREY]);
  });

  it('draws 1-pixel lines at scale 1 by default and honours lineWidth', () => {
    const p: PatchDrawing = { box: [200, 200, 100, 100], fixedCentre: [200, 200] };
    const img = decode(drawAdaptivePatches(grey(400, 400), [p], { arrows: false }));
    expect(img.width).toBe(400);
    expect(img.at(150, 200)).toEqual(C0);
    expect(img.at(151, 200)).toEqual([GREY, GREY, GREY]);
    const thick = decode(drawAdaptivePatches(grey(400, 400), [p], { arrows: false, lineWidth: 4 }));
    expect(thick.at(153, 200)).toEqual(C0);
    expect(thick.at(154, 200)).toEqual([GREY, GREY, GREY]);
  });

  it('draws the arrow from the fixed centre through the midpoint to the box centre, with a dot', () => {
    // scale 6: fixed centre (60, 180), box centre (180, 240), midpoint (120, 210)
    const patches: PatchDrawing[] = [
      { box: [50, 50, 4, 4], fixedCentre: [50, 50] },
      { box: [30, 40, 8, 8], fixedCentre: [10, 30] },
    ];
    const img = decode(drawAdaptivePatches(grey(64, 64), patches));
    expect(img.at(120, 210)).toEqual(C1);
    expect(img.at(90, 195)).toEqual(C1);
    expect(img.at(60, 180)).toEqual(C1); // dot
    expect(img.at(60, 183)).toEqual(C1); // dot radius lineWidth + 1 = 3
    expect(img.at(60, 185)).toEqual([GREY, GREY, GREY]);
    expect(img.at(180, 240)).toEqual(C1); // tip
    expect(img.at(120, 216)).toEqual([GREY, GREY, GREY]); // off the line
    const none = decode(drawAdaptivePatches(grey(64, 64), patches, { arrows: false }));
    expect(none.at(120, 210)).toEqual([GREY, GREY, GREY]);
    expect(none.at(60, 180)).toEqual([GREY, GREY, GREY]);
    expect(none.at(156, 230)).toEqual(C1); // the box is still drawn
  });

  it('draws only the dot for a zero-length arrow', () => {
    const p: PatchDrawing = { box: [32, 32, 20, 20], fixedCentre: [32, 32] };
    const img = decode(drawAdaptivePatches(grey(64, 64), [p]));
    expect(img.at(192, 192)).toEqual(C0);
    expect(img.at(195, 192)).toEqual(C0);
    expect(img.at(196, 192)).toEqual([GREY, GREY, GREY]);
    expect(img.at(192, 180)).toEqual([GREY, GREY, GREY]);
  });

  it('clips boxes partly outside and draws nothing for boxes fully outside', () => {
    const base = decode(drawAdaptivePatches(grey(64, 64), []));
    const outside: PatchDrawing[] = [
      { box: [-100, -100, 10, 10], fixedCentre: [-100, -100] },
      { box: [1000, 20, 10, 10], fixedCentre: [900, 20], label: 'OFF', score: 0.5 },
      { box: [1e9, 1e9, 1e6, 1e6], fixedCentre: [1e9, 2e9] },
      { box: [32, -50, 20, 20], fixedCentre: [32, -80] },
    ];
    const img = decode(drawAdaptivePatches(grey(64, 64), outside));
    expect(Buffer.compare(img.data, base.data)).toBe(0);

    // x in [-10, 10) -> [-60, 60): the left and top edges fall off the image
    const part = decode(drawAdaptivePatches(grey(64, 64), [{ box: [0, 0, 20, 20], fixedCentre: [0, 0] }], { arrows: false }));
    expect(part.at(59, 30)).toEqual(C0);
    expect(part.at(30, 59)).toEqual(C0);
    expect(part.at(0, 30)).toEqual([GREY, GREY, GREY]);
    expect(part.at(57, 30)).toEqual([GREY, GREY, GREY]);

    // a huge box around the image: outline off-image, nothing drawn inside
    const huge = decode(drawAdaptivePatches(grey(64, 64), [{ box: [32, 32, 1e7, 1e7], fixedCentre: [32, 32] }], { arrows: false }));
    expect(Buffer.compare(huge.data, base.data)).toBe(0);
  });

  it('draws highlight boxes dashed in white and yellow under the patches', () => {
    // [8, 24) -> [48, 144); dash length 3 * 2 + 2 = 8
    const img = decode(drawAdaptivePatches(grey(64, 64), [], { highlight: [[8, 8, 24, 24]] }));
    expect(img.at(48, 48)).toEqual([255, 255, 255]);
    expect(img.at(50, 49)).toEqual([255, 255, 255]);
    expect(img.at(58, 48)).toEqual([255, 221, 0]);
    expect(img.at(143, 60)).toEqual([255, 221, 0]); // right edge, 12 px down
    expect(img.at(51, 143)).toEqual([255, 255, 255]); // bottom edge, dash 0
    expect(img.at(60, 142)).toEqual([255, 221, 0]); // bottom edge, dash 1
    expect(img.at(96, 96)).toEqual([GREY, GREY, GREY]);
    expect(img.at(50, 50)).toEqual([GREY, GREY, GREY]);
    // a patch on the same outline wins
    const both = decode(drawAdaptivePatches(grey(64, 64), [{ box: [16, 16, 16, 16], fixedCentre: [16, 16] }], { highlight: [[8, 8, 24, 24]], arrows: false }));
    expect(both.at(58, 48)).toEqual(C0);
  });

  it('cycles custom colours by patch index', () => {
    const colours: Array<[number, number, number]> = [
      [1, 2, 3],
      [4, 5, 6],
    ];
    const patches: PatchDrawing[] = [4, 20, 36].map((x) => ({ box: [x + 4, 8, 8, 8], fixedCentre: [x + 4, 8] }));
    const img = decode(drawAdaptivePatches(grey(64, 64), patches, { colours, arrows: false, scale: 1 }));
    expect(img.at(4, 8)).toEqual([1, 2, 3]);
    expect(img.at(20, 8)).toEqual([4, 5, 6]);
    expect(img.at(36, 8)).toEqual([1, 2, 3]);
  });

  it('keeps the highest-scored patches under maxPatches, colours by original index', () => {
    const patches: PatchDrawing[] = [
      { box: [16, 16, 16, 16], fixedCentre: [16, 16], score: 0.1 },
      { box: [48, 48, 16, 16], fixedCentre: [48, 48], score: 0.9 },
    ];
    const img = decode(drawAdaptivePatches(grey(64, 64), patches, { maxPatches: 1, labels: false, arrows: false }));
    expect(img.at(48, 96)).toEqual([GREY, GREY, GREY]); // left edge of patch 0
    expect(img.at(240, 288)).toEqual(C1); // left edge of patch 1
    const first = decode(drawAdaptivePatches(grey(64, 64), patches.map(({ box, fixedCentre }) => ({ box, fixedCentre })), { maxPatches: 1, arrows: false }));
    expect(first.at(48, 96)).toEqual(C0);
    expect(first.at(240, 288)).toEqual([GREY, GREY, GREY]);
  });

  it('draws label text above the box on a black backing', () => {
    // box top-left (72, 72), glyph pixel 2: text at (73, 60); 'A' top row lights the middle column
    const p: PatchDrawing = { box: [20, 20, 16, 16], fixedCentre: [20, 20], label: 'A' };
    const img = decode(drawAdaptivePatches(grey(64, 64), [p], { arrows: false }));
    expect(img.at(75, 60)).toEqual(C0);
    expect(img.at(73, 60)).toEqual([0, 0, 0]);
    const off = decode(drawAdaptivePatches(grey(64, 64), [p], { arrows: false, labels: false }));
    expect(off.at(75, 60)).toEqual([GREY, GREY, GREY]);
  });

  it('throws ArgumentError for bad input', () => {
    const ok: PatchDrawing = { box: [8, 8, 4, 4], fixedCentre: [8, 8] };
    const bad: Array<[string, () => unknown, RegExp]> = [
      ['length', () => drawAdaptivePatches({ data: new Float32Array(10), width: 4, height: 4 }, []), /16/],
      ['zero width', () => drawAdaptivePatches({ data: new Float32Array(0), width: 0, height: 4 }, []), /positive/],
      ['negative height', () => drawAdaptivePatches({ data: new Float32Array(4), width: 4, height: -1 }, []), /positive/],
      ['fractional width', () => drawAdaptivePatches({ data: new Float32Array(4), width: 2.5, height: 2 }, []), /positive/],
      ['data type', () => drawAdaptivePatches({ data: [1, 2, 3, 4] as unknown as Uint8Array, width: 2, height: 2 }, []), /Float32Array/],
      ['NaN box', () => drawAdaptivePatches(grey(16, 16), [{ ...ok, box: [NaN, 8, 4, 4] }]), /box\[0\]/],
      ['NaN centre', () => drawAdaptivePatches(grey(16, 16), [ok, { ...ok, fixedCentre: [8, NaN] }]), /patches\[1\]\.fixedCentre\[1\]/],
      ['infinite box', () => drawAdaptivePatches(grey(16, 16), [{ ...ok, box: [8, 8, Infinity, 4] }]), /finite/],
      ['negative size', () => drawAdaptivePatches(grey(16, 16), [{ ...ok, box: [8, 8, -4, 4] }]), />= 0/],
      ['NaN highlight', () => drawAdaptivePatches(grey(16, 16), [], { highlight: [[0, 0, NaN, 4]] }), /highlight/],
      ['scale', () => drawAdaptivePatches(grey(16, 16), [], { scale: 1.5 }), /scale/],
      ['scale 0', () => drawAdaptivePatches(grey(16, 16), [], { scale: 0 }), /scale/],
      ['lineWidth', () => drawAdaptivePatches(grey(16, 16), [], { lineWidth: 0 }), /lineWidth/],
      ['colours', () => drawAdaptivePatches(grey(16, 16), [], { colours: [] }), /colours/],
      ['colour value', () => drawAdaptivePatches(grey(16, 16), [], { colours: [[0, 300, 0]] }), /colours\[0\]/],
      ['maxPatches', () => drawAdaptivePatches(grey(16, 16), [], { maxPatches: -1 }), /maxPatches/],
      ['patches', () => drawAdaptivePatches(grey(16, 16), null as unknown as PatchDrawing[]), /patches/],
    ];
    for (const [name, f, msg] of bad) {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(err, name).toBeInstanceOf(ArgumentError);
      expect((err as ArgumentError).code, name).toBe('ERR_INVALID_ARG');
      expect((err as ArgumentError).fn, name).toBe('drawAdaptivePatches');
      expect((err as Error).message, name).toMatch(msg);
    }
  });
});

describe('pngDataUri', () => {
  it('base64-encodes a PNG as a data URI', () => {
    const png = drawAdaptivePatches(grey(4, 4), [], { scale: 1 });
    const uri = pngDataUri(png);
    expect(uri.startsWith('data:image/png;base64,')).toBe(true);
    expect(Buffer.from(uri.slice('data:image/png;base64,'.length), 'base64').equals(png)).toBe(true);
  });

  it('rejects bytes that are not a PNG', () => {
    expect(() => pngDataUri(Buffer.from('GIF89a...'))).toThrow(ArgumentError);
    expect(() => pngDataUri('x' as unknown as Buffer)).toThrow(/pngDataUri: png must be a Buffer/);
  });
});
