import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { contactSheet, type SheetTile } from './contact.js';
import type { FindingBox } from './render.js';

/** Contact sheet of the first `n` training studies of a SynthCXR folder (frontal views, boxes outlined). */
export function sheetFromDataset(dir: string, n = 24): Buffer {
  const ann = JSON.parse(readFileSync(join(dir, 'annotation.json'), 'utf8')) as { train: Array<{ id: string; image_path: string[] }> };
  const boxes = JSON.parse(readFileSync(join(dir, 'boxes.json'), 'utf8')) as Record<string, FindingBox[]>;
  const tiles: SheetTile[] = [];
  for (const e of ann.train.slice(0, n)) {
    const png = PNG.sync.read(readFileSync(join(dir, 'images', e.image_path[0])));
    const px = new Uint8Array(png.width * png.height);
    for (let i = 0; i < px.length; i++) px[i] = png.data[4 * i];
    tiles.push({ width: png.width, height: png.height, pixels: px, boxes: boxes[e.id] ?? [] });
  }
  return contactSheet(tiles, 6);
}
