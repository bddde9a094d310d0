import { PNG } from 'pngjs';
import { ArgumentError } from '../errors.js';

/**
 * One adaptive patch to draw (AdaMatch, Fig. 8/11). Coordinates are in pixels of the input image,
 * continuous: pixel (i, j) covers [i, i+1) x [j, j+1), so a 32-pixel patch at the origin is
 * `box: [16, 16, 32, 32]` and its fixed centre `[16, 16]`.
 */
export interface PatchDrawing {
  /** The adaptive patch: centre x, centre y, width, height. */
  box: [number, number, number, number];
  /** Centre of the fixed (grid) patch the adaptive patch was predicted from; the arrow starts here. */
  fixedCentre: [number, number];
  /** Short text drawn at the box's top-left corner (digits, latin letters, a few symbols). */
  label?: string;
  /** Drawn after the label (2 decimals); also orders patches when `maxPatches` cuts the list. */
  score?: number;
}

export interface PatchImage {
  /** Grey pixels, row-major: floats in [0,1] (clamped; NaN draws black) or bytes as they are. */
  data: Float32Array | Uint8Array;
  width: number;
  height: number;
}

export type Rgb = [number, number, number];

export interface DrawPatchesOptions {
  /** Integer nearest-neighbour upscaling; default: the smallest that makes the longer side >= 384 px. */
  scale?: number;
  /** Palette cycled by patch index; default DEFAULT_PATCH_COLOURS (qualitative, no grey/yellow/white). */
  colours?: Rgb[];
  /** Outline / arrow width in output pixels; default 2 when scale >= 2, else 1. */
  lineWidth?: number;
  /** Arrow from the fixed centre to the box centre (dot at the fixed centre); default true. */
  arrows?: boolean;
  /** Ground-truth boxes [x0, y0, x1, y1] (x1/y1 exclusive), drawn dashed white/yellow under the patches. */
  highlight?: Array<[number, number, number, number]>;
  /**
   * Draw at most this many patches: the highest `score`s when any patch has a score (ties and
   * unscored patches keep their order, unscored last), else the first ones. Colours stay by index.
   */
  maxPatches?: number;
  /** Draw `label` / `score` text; default true (nothing is drawn for patches without either). */
  labels?: boolean;
}

/** Set1-like qualitative palette without grey or yellow (which the image and highlights use). */
export const DEFAULT_PATCH_COLOURS: readonly Rgb[] = [
  [228, 26, 28],
  [55, 126, 184],
  [77, 175, 74],
  [152, 78, 163],
  [255, 127, 0],
  [23, 190, 207],
  [247, 129, 191],
  [166, 86, 40],
];

const HIGHLIGHT_A: Rgb = [255, 255, 255];
const HIGHLIGHT_B: Rgb = [255, 221, 0];
const MAX_SIDE = 16384;
const FN = 'drawAdaptivePatches';

function fail(msg: string, fn = FN): never {
  throw new ArgumentError(`${fn}: ${msg}`, 'ERR_INVALID_ARG', fn);
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const posInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;

/** An RGBA canvas with clipped drawing primitives (every write checks bounds). */
class Canvas {
  readonly data: Buffer;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.data = Buffer.alloc(width * height * 4);
  }

  put(x: number, y: number, c: Rgb): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const o = (y * this.width + x) * 4;
    this.data[o] = c[0];
    this.data[o + 1] = c[1];
    this.data[o + 2] = c[2];
    this.data[o + 3] = 255;
  }

  /** Fills [x0, x1) x [y0, y1), clipped; cheap for rectangles far larger than the canvas. */
  fillRect(x0: number, y0: number, x1: number, y1: number, c: Rgb): void {
    const ax = Math.max(0, x0), bx = Math.min(this.width, x1);
    const ay = Math.max(0, y0), by = Math.min(this.height, y1);
    for (let y = ay; y < by; y++) for (let x = ax; x < bx; x++) this.put(x, y, c);
  }

  /** Square brush of side `w` at (x, y); odd sizes centred, even ones extend right/down. */
  brush(x: number, y: number, w: number, c: Rgb): void {
    const lo = -Math.floor((w - 1) / 2);
    this.fillRect(x + lo, y + lo, x + lo + w, y + lo + w, c);
  }

  disc(cx: number, cy: number, r: number, c: Rgb): void {
    for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) if (dx * dx + dy * dy <= r * r + r) this.put(cx + dx, cy + dy, c);
  }

  /** Integer Bresenham line between pixel positions, both ends included, with a square brush. */
  line(x0: number, y0: number, x1: number, y1: number, w: number, c: Rgb): void {
    const seg = this.clipSegment(x0, y0, x1, y1, w + 2);
    if (!seg) return;
    let [x, y] = seg;
    const [, , ex, ey] = seg;
    const dx = Math.abs(ex - x), sx = x < ex ? 1 : -1;
    const dy = -Math.abs(ey - y), sy = y < ey ? 1 : -1;
    let err = dx + dy;
    for (;;) {
      this.brush(x, y, w, c);
      if (x === ex && y === ey) break;
      const e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y += sy;
      }
    }
  }

  /**
   * Keeps a line's rasterisation bounded: segments with both ends near the canvas are returned
   * unchanged (exact Bresenham); others are cut (Liang-Barsky) to the canvas grown by `margin`.
   */
  private clipSegment(x0: number, y0: number, x1: number, y1: number, margin: number): [number, number, number, number] | null {
    const lo = -margin, hx = this.width - 1 + margin, hy = this.height - 1 + margin;
    const inside = (x: number, y: number) => x >= lo && x <= hx && y >= lo && y <= hy;
    if (inside(x0, y0) && inside(x1, y1)) return [x0, y0, x1, y1];
    const dx = x1 - x0, dy = y1 - y0;
    let t0 = 0, t1 = 1;
    const edges: Array<[number, number]> = [
      [-dx, x0 - lo],
      [dx, hx - x0],
      [-dy, y0 - lo],
      [dy, hy - y0],
    ];
    for (const [p, q] of edges) {
      if (p === 0) {
        if (q < 0) return null;
      } else {
        const r = q / p;
        if (p < 0) t0 = Math.max(t0, r);
        else t1 = Math.min(t1, r);
        if (t0 > t1) return null;
      }
    }
    return [Math.round(x0 + t0 * dx), Math.round(y0 + t0 * dy), Math.round(x0 + t1 * dx), Math.round(y0 + t1 * dy)];
  }

  /** Outline of [x0, x1) x [y0, y1), `w` pixels thick and growing inwards; `colour(t)` by perimeter position. */
  outline(x0: number, y0: number, x1: number, y1: number, w: number, colour: (t: number) => Rgb): void {
    const t = Math.min(w, Math.ceil((x1 - x0) / 2), Math.ceil((y1 - y0) / 2));
    if (x1 <= 0 || y1 <= 0 || x0 >= this.width || y0 >= this.height) return;
    const cx0 = Math.max(x0, 0), cx1 = Math.min(x1, this.width);
    const cy0 = Math.max(y0, 0), cy1 = Math.min(y1, this.height);
    for (let x = cx0; x < cx1; x++) {
      const k = x - x0;
      for (let i = 0; i < t; i++) {
        this.put(x, y0 + i, colour(k));
        this.put(x, y1 - 1 - i, colour(k));
      }
    }
    for (let y = cy0; y < cy1; y++) {
      const k = y - y0;
      for (let i = 0; i < t; i++) {
        this.put(x0 + i, y, colour(k));
        this.put(x1 - 1 - i, y, colour(k));
      }
    }
  }
}

// 3x5 bitmap glyphs, rows top to bottom, 3 bits each (4 = left column).
const GLYPHS: Record<string, number[]> = {
  '0': [7, 5, 5, 5, 7], '1': [2, 6, 2, 2, 7], '2': [7, 1, 7, 4, 7], '3': [7, 1, 7, 1, 7], '4': [5, 5, 7, 1, 1],
  '5': [7, 4, 7, 1, 7], '6': [7, 4, 7, 5, 7], '7': [7, 1, 1, 1, 1], '8': [7, 5, 7, 5, 7], '9': [7, 5, 7, 1, 7],
  A: [2, 5, 7, 5, 5], B: [6, 5, 6, 5, 6], C: [3, 4, 4, 4, 3], D: [6, 5, 5, 5, 6], E: [7, 4, 6, 4, 7],
  F: [7, 4, 6, 4, 4], G: [3, 4, 5, 5, 3], H: [5, 5, 7, 5, 5], I: [7, 2, 2, 2, 7], J: [1, 1, 1, 5, 2],
  K: [5, 5, 6, 5, 5], L: [4, 4, 4, 4, 7], M: [5, 7, 7, 5, 5], N: [6, 5, 5, 5, 5], O: [2, 5, 5, 5, 2],
  P: [6, 5, 6, 4, 4], Q: [2, 5, 5, 6, 3], R: [6, 5, 6, 5, 5], S: [3, 4, 2, 1, 6], T: [7, 2, 2, 2, 2],
  U: [5, 5, 5, 5, 7], V: [5, 5, 5, 5, 2], W: [5, 5, 7, 7, 5], X: [5, 5, 2, 5, 5], Y: [5, 5, 2, 2, 2],
  Z: [7, 1, 2, 4, 7], '.': [0, 0, 0, 0, 2], ',': [0, 0, 0, 2, 4], '-': [0, 0, 7, 0, 0], '+': [0, 2, 7, 2, 0],
  ':': [0, 2, 0, 2, 0], '=': [0, 7, 0, 7, 0], '/': [1, 1, 2, 4, 4], '%': [5, 1, 2, 4, 5], '#': [5, 7, 5, 7, 5],
  '_': [0, 0, 0, 0, 7], '(': [1, 2, 2, 2, 1], ')': [4, 2, 2, 2, 4], '?': [6, 1, 2, 0, 2], ' ': [0, 0, 0, 0, 0],
};

/** Text on a black backing at (x, y), glyph pixels `g` wide; unknown characters draw as '?'. */
function drawText(cv: Canvas, x: number, y: number, text: string, g: number, c: Rgb): void {
  const chars = [...text.toUpperCase()];
  const w = chars.length * 4 * g - g;
  cv.fillRect(x - 1, y - 1, x + w + 1, y + 5 * g + 1, [0, 0, 0]);
  chars.forEach((ch, i) => {
    const rows = GLYPHS[ch] ?? GLYPHS['?'];
    const ox = x + i * 4 * g;
    rows.forEach((bits, r) => {
      for (let col = 0; col < 3; col++) if (bits & (4 >> col)) cv.fillRect(ox + col * g, y + r * g, ox + (col + 1) * g, y + (r + 1) * g, c);
    });
  });
}

function checkImage(image: PatchImage): { float: boolean } {
  if (image === null || typeof image !== 'object') fail(`image must be an object { data, width, height }, got ${describe(image)}`);
  const { width, height } = image;
  const data: unknown = image.data;
  if (!posInt(width) || !posInt(height)) fail(`image width and height must be positive integers, got ${String(width)}x${String(height)}`);
  if (width > MAX_SIDE || height > MAX_SIDE) fail(`image sides must be <= ${MAX_SIDE}, got ${width}x${height}`);
  const float = data instanceof Float32Array || data instanceof Float64Array;
  if (!float && !(data instanceof Uint8Array) && !(data instanceof Uint8ClampedArray))
    fail(`image.data must be a Float32Array (values in [0,1]) or a Uint8Array, got ${describe(data)}`);
  if ((data as ArrayLike<number>).length !== width * height)
    fail(`image.data has ${(data as ArrayLike<number>).length} values, expected width*height = ${width}*${height} = ${width * height}`);
  return { float };
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return typeof v;
}

function checkPatches(patches: PatchDrawing[]): void {
  if (!Array.isArray(patches)) fail(`patches must be an array, got ${describe(patches)}`);
  patches.forEach((p, i) => {
    if (p === null || typeof p !== 'object') fail(`patches[${i}] must be an object { box, fixedCentre }`);
    if (!Array.isArray(p.box) || p.box.length !== 4) fail(`patches[${i}].box must be [cx, cy, w, h]`);
    if (!Array.isArray(p.fixedCentre) || p.fixedCentre.length !== 2) fail(`patches[${i}].fixedCentre must be [x, y]`);
    p.box.forEach((v, j) => {
      if (!finite(v)) fail(`patches[${i}].box[${j}] must be a finite number, got ${String(v)}`);
    });
    p.fixedCentre.forEach((v, j) => {
      if (!finite(v)) fail(`patches[${i}].fixedCentre[${j}] must be a finite number, got ${String(v)}`);
    });
    if (p.box[2] < 0 || p.box[3] < 0) fail(`patches[${i}].box width/height must be >= 0, got ${p.box[2]}x${p.box[3]}`);
    if (p.score !== undefined && !finite(p.score)) fail(`patches[${i}].score must be a finite number, got ${String(p.score)}`);
    if (p.label !== undefined && typeof p.label !== 'string') fail(`patches[${i}].label must be a string`);
  });
}

/**
 * Draws adaptive patches over a grey image as in AdaMatch (Fig. 8/11): each box outlined in its own
 * colour, with an arrow from the centre of its fixed patch to the box centre. Returns an RGB PNG,
 * `scale` times the input size. Boxes and arrows are clipped (never throw for coordinates outside
 * the image); an arrow whose box lies off-image is still drawn where it crosses the image.
 */
export function drawAdaptivePatches(image: PatchImage, patches: PatchDrawing[], options: DrawPatchesOptions = {}): Buffer {
  const { float } = checkImage(image);
  checkPatches(patches);
  if (options === null || typeof options !== 'object') fail(`options must be an object, got ${describe(options)}`);
  const { width, height, data } = image;

  const scale = options.scale ?? Math.max(1, Math.ceil(384 / Math.max(width, height)));
  if (!posInt(scale)) fail(`options.scale must be a positive integer, got ${String(options.scale)}`);
  if (width * scale > MAX_SIDE || height * scale > MAX_SIDE) fail(`output ${width * scale}x${height * scale} exceeds ${MAX_SIDE} px a side; lower options.scale`);
  const lw = options.lineWidth ?? (scale >= 2 ? 2 : 1);
  if (!posInt(lw)) fail(`options.lineWidth must be a positive integer, got ${String(options.lineWidth)}`);
  const colours = options.colours ?? DEFAULT_PATCH_COLOURS;
  if (!Array.isArray(colours) || colours.length === 0) fail('options.colours must be a non-empty array of [r, g, b]');
  colours.forEach((c, i) => {
    if (!Array.isArray(c) || c.length !== 3 || !c.every((v) => Number.isInteger(v) && v >= 0 && v <= 255))
      fail(`options.colours[${i}] must be [r, g, b] with integers in 0..255, got ${JSON.stringify(c)}`);
  });
  const highlight = options.highlight ?? [];
  if (!Array.isArray(highlight)) fail('options.highlight must be an array of [x0, y0, x1, y1]');
  highlight.forEach((h, i) => {
    if (!Array.isArray(h) || h.length !== 4 || !h.every(finite)) fail(`options.highlight[${i}] must be [x0, y0, x1, y1] of finite numbers, got ${JSON.stringify(h)}`);
  });
  const maxPatches = options.maxPatches ?? patches.length;
  if (!Number.isInteger(maxPatches) || maxPatches < 0) fail(`options.maxPatches must be a non-negative integer, got ${String(options.maxPatches)}`);
  const arrows = options.arrows ?? true;
  const labels = options.labels ?? true;

  // Background: the grey image, nearest-neighbour upscaled.
  const W = width * scale, H = height * scale;
  const cv = new Canvas(W, H);
  for (let y = 0; y < H; y++) {
    const row = Math.floor(y / scale) * width;
    for (let x = 0; x < W; x++) {
      const raw = data[row + Math.floor(x / scale)];
      const v = float ? (raw > 0 ? (raw < 1 ? Math.round(raw * 255) : 255) : 0) : raw;
      const o = (y * W + x) * 4;
      cv.data[o] = cv.data[o + 1] = cv.data[o + 2] = v;
      cv.data[o + 3] = 255;
    }
  }

  // Which patches, by index (colours stay tied to the index in `patches`).
  let order = patches.map((_, i) => i);
  if (maxPatches < patches.length && patches.some((p) => p.score !== undefined)) {
    const key = (i: number) => patches[i].score ?? -Infinity;
    order = [...order].sort((a, b) => key(b) - key(a) || a - b);
  }
  order = order.slice(0, maxPatches).sort((a, b) => a - b);

  const px = (v: number) => Math.round(v * scale);
  const dash = 3 * lw + 2;
  for (const [x0, y0, x1, y1] of highlight) {
    const X0 = px(Math.min(x0, x1)), X1 = Math.max(px(Math.max(x0, x1)), X0 + 1);
    const Y0 = px(Math.min(y0, y1)), Y1 = Math.max(px(Math.max(y0, y1)), Y0 + 1);
    cv.outline(X0, Y0, X1, Y1, lw, (t) => (Math.floor(t / dash) % 2 === 0 ? HIGHLIGHT_A : HIGHLIGHT_B));
  }

  const boxPx = (p: PatchDrawing) => {
    const [cx, cy, w, h] = p.box;
    const X0 = px(cx - w / 2), Y0 = px(cy - h / 2);
    return [X0, Y0, Math.max(px(cx + w / 2), X0 + 1), Math.max(px(cy + h / 2), Y0 + 1)];
  };
  const colourOf = (i: number): Rgb => colours[i % colours.length] as Rgb;

  for (const i of order) {
    const [X0, Y0, X1, Y1] = boxPx(patches[i]);
    const c = colourOf(i);
    cv.outline(X0, Y0, X1, Y1, lw, () => c);
  }

  if (arrows) {
    for (const i of order) {
      const p = patches[i];
      const c = colourOf(i);
      const fx = Math.floor(p.fixedCentre[0] * scale), fy = Math.floor(p.fixedCentre[1] * scale);
      const tx = Math.floor(p.box[0] * scale), ty = Math.floor(p.box[1] * scale);
      const len = Math.hypot(tx - fx, ty - fy);
      if (len > 0) {
        cv.line(fx, fy, tx, ty, lw, c);
        const head = Math.min(3 * lw + 4, Math.max(2, len / 2));
        const ux = (tx - fx) / len, uy = (ty - fy) / len;
        for (const a of [Math.PI / 7, -Math.PI / 7]) {
          const cos = Math.cos(a), sin = Math.sin(a);
          const bx = ux * cos - uy * sin, by = ux * sin + uy * cos;
          cv.line(tx, ty, Math.round(tx - head * bx), Math.round(ty - head * by), lw, c);
        }
      }
      cv.disc(fx, fy, lw + 1, c);
    }
  }

  if (labels) {
    const g = lw;
    for (const i of order) {
      const p = patches[i];
      const text = [p.label, p.score === undefined ? undefined : p.score.toFixed(2)].filter((s) => s !== undefined && s !== '').join(' ');
      if (!text) continue;
      const [X0, Y0, X1, Y1] = boxPx(p);
      if (X1 <= 0 || Y1 <= 0 || X0 >= W || Y0 >= H) continue; // box off-image: no label either
      const tw = [...text].length * 4 * g - g, th = 5 * g;
      let ty = Y0 - th - 2;
      if (ty < 1) ty = Y0 + lw + 2;
      const tx = Math.min(Math.max(X0 + 1, 1), Math.max(1, W - tw - 1));
      drawText(cv, tx, ty, text, g, colourOf(i));
    }
  }

  const png = new PNG({ width: W, height: H });
  cv.data.copy(png.data);
  return PNG.sync.write(png, { colorType: 2 });
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** `data:image/png;base64,...` for embedding a PNG (e.g. from drawAdaptivePatches) in HTML. */
export function pngDataUri(png: Buffer): string {
  const v: unknown = png;
  if (!(v instanceof Uint8Array)) return fail(`png must be a Buffer, got ${describe(v)}`, 'pngDataUri');
  const buf = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (buf.length < 8 || !buf.subarray(0, 8).equals(PNG_SIGNATURE)) fail('png does not start with the PNG signature', 'pngDataUri');
  return `data:image/png;base64,${buf.toString('base64')}`;
}
