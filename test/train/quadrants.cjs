// A controlled image-report set for alignment tests: a bright square in one quadrant of a noisy
// 64 x 64 image, and a report naming its side, zone and size. Written in R2Gen format with boxes.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { encodeGreyPng } = require('../../dist/lib/data/synth/index.js');

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function writeQuadrants(dir, counts, seed = 1, size = 64) {
  const r = rng(seed);
  const ann = {}, boxes = {};
  fs.mkdirSync(path.join(dir, 'images'), { recursive: true });
  for (const [split, n] of Object.entries(counts)) {
    ann[split] = [];
    for (let i = 0; i < n; i++) {
      const id = `${split}-${i}`;
      const right = r() < 0.5, lower = r() < 0.5, large = r() < 0.5;
      const side = large ? 20 : 12;
      // the patient's right is the image's left, as on a radiograph
      const x0 = (right ? 0 : size / 2) + Math.floor(r() * (size / 2 - side));
      const y0 = (lower ? size / 2 : 0) + Math.floor(r() * (size / 2 - side));
      const px = new Uint8Array(size * size);
      for (let y = 0; y < size; y++)
        for (let x = 0; x < size; x++) {
          const inside = x >= x0 && x < x0 + side && y >= y0 && y < y0 + side;
          px[y * size + x] = Math.max(0, Math.min(255, Math.round((inside ? 200 : 60) + (r() - 0.5) * 60)));
        }
      fs.mkdirSync(path.join(dir, 'images', id), { recursive: true });
      fs.writeFileSync(path.join(dir, 'images', id, '0.png'), encodeGreyPng(size, size, px));
      const report = `${large ? 'large' : 'small'} opacity in the ${right ? 'right' : 'left'} ${lower ? 'lower' : 'upper'} zone .`;
      ann[split].push({ id, report, image_path: [`${id}/0.png`], split });
      boxes[id] = [{ finding: 'opacity', box: [x0, y0, x0 + side, y0 + side] }];
    }
  }
  fs.writeFileSync(path.join(dir, 'annotation.json'), JSON.stringify(ann));
  fs.writeFileSync(path.join(dir, 'boxes.json'), JSON.stringify(boxes));
}

module.exports = { writeQuadrants };
