// Reference points for a VQ image tokenizer's PSNR at a given grid and codebook size, with no
// learned encoder or decoder, on a split of a dataset (grey images in [0, 1], PSNR as
// radkit.metrics.psnr: peak 1, per image, averaged):
//   block means f:     every f x f block replaced by its mean, upsampled bilinearly (a continuous
//                      (H/f) x (W/f) image: what a grid of that size holds without quantisation);
//   pixel k-means f/K: every f x f block replaced by the nearest of K block centroids (Lloyd's
//                      k-means on training blocks, seeded): a VQ with the same bit budget as a
//                      tokenizer with f x f downsampling and K codes (log2 K bits per token);
//   mean + residual k-means f/K: the same on the residual from the training mean image, added back
//                      (the images of a dataset share their layout; a learned decoder can too).
// Run: node dist/bench/vq-reference.js --data DIR [--size 128] [--split val] [--train-images 400]
//        [--iterations 10] [--grids 16:256,8:256] [--out bench/out/vq-reference.json]
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as radkit from '../lib/index.js';
import { readImage } from '../lib/data/image.js';
import { psnr } from '../lib/metrics/image.js';
import type { SplitName } from '../lib/data/r2gen.js';

const str = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};

/** f x f blocks of an S x S image as rows of f * f pixels (row-major blocks). */
function blocks(img: Float32Array, S: number, f: number): Float32Array[] {
  const out: Float32Array[] = [];
  for (let by = 0; by < S; by += f)
    for (let bx = 0; bx < S; bx += f) {
      const b = new Float32Array(f * f);
      for (let y = 0; y < f; y++) for (let x = 0; x < f; x++) b[y * f + x] = img[(by + y) * S + bx + x];
      out.push(b);
    }
  return out;
}

function unblock(bs: Float32Array[], S: number, f: number): Float32Array {
  const img = new Float32Array(S * S);
  const n = S / f;
  bs.forEach((b, i) => {
    const by = Math.floor(i / n) * f, bx = (i % n) * f;
    for (let y = 0; y < f; y++) for (let x = 0; x < f; x++) img[(by + y) * S + bx + x] = b[y * f + x];
  });
  return img;
}

/** Block means upsampled bilinearly (pixel centres; edges clamped). */
function blockMeans(img: Float32Array, S: number, f: number): Float32Array {
  const n = S / f;
  const m = new Float64Array(n * n);
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) m[Math.floor(y / f) * n + Math.floor(x / f)] += img[y * S + x] / (f * f);
  const out = new Float32Array(S * S);
  const at = (i: number, j: number) => m[Math.min(n - 1, Math.max(0, i)) * n + Math.min(n - 1, Math.max(0, j))];
  for (let y = 0; y < S; y++)
    for (let x = 0; x < S; x++) {
      const gy = (y + 0.5) / f - 0.5, gx = (x + 0.5) / f - 0.5;
      const y0 = Math.floor(gy), x0 = Math.floor(gx), wy = gy - y0, wx = gx - x0;
      out[y * S + x] = (1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x0 + 1)) + wy * ((1 - wx) * at(y0 + 1, x0) + wx * at(y0 + 1, x0 + 1));
    }
  return out;
}

function nearest(c: Float32Array[], v: Float32Array): number {
  let best = 0, bd = Infinity;
  for (let k = 0; k < c.length; k++) {
    const ck = c[k];
    let d = 0;
    for (let i = 0; i < v.length && d < bd; i++) d += (v[i] - ck[i]) ** 2;
    if (d < bd) (bd = d), (best = k);
  }
  return best;
}

/** Lloyd's k-means (seeded initialisation at random training blocks; an empty cluster keeps its centroid). */
function kmeans(data: Float32Array[], K: number, iterations: number, seed: number): Float32Array[] {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31), s / 2 ** 31);
  const c = Array.from({ length: K }, () => Float32Array.from(data[Math.floor(rand() * data.length)]));
  const D = data[0].length;
  for (let it = 0; it < iterations; it++) {
    const sum = Array.from({ length: K }, () => new Float64Array(D));
    const count = new Float64Array(K);
    for (const v of data) {
      const k = nearest(c, v);
      count[k]++;
      for (let i = 0; i < D; i++) sum[k][i] += v[i];
    }
    for (let k = 0; k < K; k++) if (count[k] > 0) for (let i = 0; i < D; i++) c[k][i] = sum[k][i] / count[k];
  }
  return c;
}

async function main() {
  const t0 = performance.now();
  const data = str('data', '');
  if (!data) throw new Error('--data DIR is required');
  const S = Number(str('size', '128')), split = str('split', 'val') as SplitName;
  const nTrain = Number(str('train-images', '400')), iterations = Number(str('iterations', '10'));
  const grids = str('grids', '16:256,8:256').split(',').map((g) => g.split(':').map(Number) as [number, number]);
  const ds = radkit.data.readR2Gen(path.join(data, 'annotation.json'));
  const load = async (e: { imagePaths: string[] }) => (await readImage(e.imagePaths[0], { height: S, width: S })).data;
  const evalImgs = await Promise.all(ds.splits[split].map(load));
  const trainImgs = await Promise.all(ds.splits.train.slice(0, nTrain).map(load));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const results: Record<string, unknown>[] = [];
  for (const [f, K] of grids) {
    const bm = mean(evalImgs.map((x) => psnr(blockMeans(x, S, f), x)));
    const centroids = kmeans(trainImgs.flatMap((x) => blocks(x, S, f)), K, iterations, 7);
    const vq = mean(evalImgs.map((x) => psnr(unblock(blocks(x, S, f).map((b) => centroids[nearest(centroids, b)]), S, f), x)));
    const meanImg = new Float32Array(S * S);
    for (const x of trainImgs) for (let k = 0; k < meanImg.length; k++) meanImg[k] += x[k] / trainImgs.length;
    const residual = (x: Float32Array) => x.map((v, k) => v - meanImg[k]);
    const rc = kmeans(trainImgs.flatMap((x) => blocks(residual(x), S, f)), K, iterations, 7);
    const rvq = mean(evalImgs.map((x) => psnr(unblock(blocks(residual(x), S, f).map((b) => rc[nearest(rc, b)]), S, f).map((v, k) => v + meanImg[k]), x)));
    const meanPsnr = mean(evalImgs.map((x) => psnr(meanImg, x)));
    results.push({ f, grid: `${S / f} x ${S / f}`, tokens: (S / f) ** 2, codes: K, bitsPerImage: (S / f) ** 2 * Math.log2(K), trainMeanImagePsnr: meanPsnr, blockMeansPsnr: bm, pixelKmeansPsnr: vq, meanPlusResidualKmeansPsnr: rvq });
    console.log(JSON.stringify(results[results.length - 1]));
  }
  const out = { settings: { data, size: S, split, evalImages: evalImgs.length, trainImages: trainImgs.length, iterations, psnr: 'peak 1 on [0, 1], per image, averaged' }, results, seconds: (performance.now() - t0) / 1000 };
  const file = str('out', 'bench/out/vq-reference.json');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(out, null, 1));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
