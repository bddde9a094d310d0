import { PNG } from 'pngjs';
import { ArgumentError } from '../../errors.js';

export interface SheetTile {
  width: number;
  height: number;
  pixels: Uint8Array; // 8-bit grey
  boxes?: Array<{ box: [number, number, number, number] }>;
}

const COLORS: Array<[number, number, number]> = [
  [255, 60, 60],
  [60, 220, 60],
  [80, 140, 255],
  [255, 200, 40],
  [230, 80, 230],
];

/** Tiles grey images into one RGB PNG (boxes outlined in colour), for eyeballing a dataset. */
export function contactSheet(tiles: SheetTile[], cols = 6, gap = 4): Buffer {
  if (tiles.length === 0) throw new ArgumentError('contactSheet: no images (tiles is empty)', 'ERR_INVALID_ARG', 'contactSheet');
  const tw = Math.max(...tiles.map((t) => t.width));
  const th = Math.max(...tiles.map((t) => t.height));
  const rows = Math.ceil(tiles.length / cols);
  const W = cols * tw + (cols + 1) * gap;
  const H = rows * th + (rows + 1) * gap;
  const png = new PNG({ width: W, height: H });
  png.data.fill(40);
  for (let i = 3; i < png.data.length; i += 4) png.data[i] = 255;
  tiles.forEach((t, k) => {
    const ox = gap + (k % cols) * (tw + gap);
    const oy = gap + Math.floor(k / cols) * (th + gap);
    for (let y = 0; y < t.height; y++)
      for (let x = 0; x < t.width; x++) {
        const v = t.pixels[y * t.width + x];
        const o = ((oy + y) * W + ox + x) * 4;
        png.data[o] = png.data[o + 1] = png.data[o + 2] = v;
      }
    (t.boxes ?? []).forEach((b, j) => {
      const [x0, y0, x1, y1] = b.box;
      const c = COLORS[j % COLORS.length];
      const put = (x: number, y: number) => {
        if (x < 0 || y < 0 || x >= t.width || y >= t.height) return;
        const o = ((oy + y) * W + ox + x) * 4;
        png.data[o] = c[0];
        png.data[o + 1] = c[1];
        png.data[o + 2] = c[2];
      };
      for (let x = x0; x < x1; x++) {
        put(x, y0);
        put(x, y1 - 1);
      }
      for (let y = y0; y < y1; y++) {
        put(x0, y);
        put(x1 - 1, y);
      }
    });
  });
  return PNG.sync.write(png);
}
