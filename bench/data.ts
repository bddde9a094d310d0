/**
 * Input pipeline throughput (issue 18). Writes bench/out/data.json. Run after `npm run build`:
 *   node dist/bench/data.js [--big 4] [--cache-images 2000]
 * (a) decode + resize to 224 px of 2544 x 3056 grey JPEGs (and one PNG) made here with sharp:
 *     radkit's first decoder (pure JS, worker threads) against sharp (libvips), 1 and 2 at once;
 * (b) the prepared cache at 224 px: loader batches of 32 without and with augmentations (crop,
 *     affine, blur p 0.5, brightness, contrast), against decoding the same images on the fly.
 * Every ratio is measured in one run, back to back; the machine may be shared (the JSON says the
 * load average before and after).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import sharp from 'sharp';
import { parseCommandLine } from '../lib/cli/command.js';
import { prepare } from '../lib/data/cache.js';
import { ImagePool, DataLoader } from '../lib/data/loader.js';
import { readR2Gen } from '../lib/data/r2gen.js';
import { renderStudy } from '../lib/data/synth/study.js';
import { synthesize } from '../lib/data/synth/index.js';
import { decoderVersion } from '../lib/data/cache.js';
import * as radkit from '../lib/index.js';

const BIG_W = 2544;
const BIG_H = 3056;

/** A 2544 x 3056 grey radiograph-like image: a SynthCXR frontal view enlarged, with film grain. */
async function bigImage(seed: number, format: 'jpeg' | 'png'): Promise<Buffer> {
  const png = Buffer.from(renderStudy(seed, 'train', 0, 256, 1).pngs[0]);
  const up = await sharp(png).resize(BIG_W, BIG_H, { fit: 'fill', kernel: 'cubic' }).toColourspace('b-w').raw().toBuffer();
  let s = seed * 2654435761;
  for (let i = 0; i < up.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    up[i] = Math.max(0, Math.min(255, up[i] + ((s >>> 16) % 17) - 8));
  }
  const img = sharp(up, { raw: { width: BIG_W, height: BIG_H, channels: 1 } });
  return format === 'jpeg' ? img.jpeg({ quality: 90 }).toBuffer() : img.png().toBuffer();
}

async function timeReference(files: string[], workers: number, size: number): Promise<number> {
  const script = path.join(__dirname, 'data-worker.js');
  const pool = Array.from({ length: workers }, () => new Worker(script));
  try {
    // warm-up (module load, JIT)
    await Promise.all(pool.map((w, i) => new Promise((r) => { w.once('message', r); w.postMessage({ id: -1 - i, file: files[0], size }); })));
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      pool.map(async (w) => {
        while (next < files.length) {
          const f = files[next++];
          await new Promise((r) => { w.once('message', r); w.postMessage({ id: next, file: f, size }); });
        }
      }),
    );
    return (files.length * 1000) / (performance.now() - t0);
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
}

async function timeSharp(files: string[], workers: number, size: number, repeat: number): Promise<number> {
  const pool = new ImagePool(workers);
  await pool.decode(files[0], { height: size, width: size });
  const all = Array.from({ length: repeat }, () => files).flat();
  const t0 = performance.now();
  await Promise.all(all.map((f) => pool.decode(f, { height: size, width: size })));
  return (all.length * 1000) / (performance.now() - t0);
}

async function loaderRate(l: DataLoader, epochs: number): Promise<number> {
  let n = 0;
  for await (const b of l.epoch(99)) n += b.ids.length; // warm-up epoch
  n = 0;
  const t0 = performance.now();
  for (let e = 0; e < epochs; e++) for await (const b of l.epoch(e)) n += b.images.shape[0] * b.images.shape[1];
  return (n * 1000) / (performance.now() - t0);
}

export async function benchData(argv: string[] = []): Promise<Record<string, unknown>> {
  const { values } = parseCommandLine(argv, {
    big: { type: 'integer', min: 1, default: 4, help: 'big JPEGs to decode per configuration (first decoder)' },
    'cache-images': { type: 'integer', min: 64, default: 2000, help: 'images in the prepared cache' },
  });
  const big = values.big as number;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-bench-data-'));
  const load0 = os.loadavg()[0];
  const out: Record<string, unknown> = { machine: `${os.cpus().length} x ${os.cpus()[0]?.model}`, decoder: decoderVersion(), uvThreadpool: process.env.UV_THREADPOOL_SIZE ?? '4 (default)' };
  try {
    // (a) big images
    const jpegs: string[] = [];
    for (let i = 0; i < big; i++) {
      const f = path.join(dir, `big${i}.jpg`);
      fs.writeFileSync(f, await bigImage(i + 1, 'jpeg'));
      jpegs.push(f);
    }
    const png = path.join(dir, 'big.png');
    fs.writeFileSync(png, await bigImage(99, 'png'));
    const decode: Record<string, number> = {};
    for (const w of [1, 2]) {
      decode[`reference jpeg ${w} worker(s) img/s`] = await timeReference(jpegs, w, 224);
      decode[`sharp jpeg ${w} at once img/s`] = await timeSharp(jpegs, w, 224, 8);
    }
    decode['reference png 1 worker img/s'] = await timeReference([png, png], 1, 224);
    decode['sharp png 1 at once img/s'] = await timeSharp([png], 1, 224, 6);
    for (const w of [1, 2]) decode[`jpeg speed-up, ${w}`] = decode[`sharp jpeg ${w} at once img/s`] / decode[`reference jpeg ${w} worker(s) img/s`];
    decode['png speed-up, 1'] = decode['sharp png 1 at once img/s'] / decode['reference png 1 worker img/s'];
    out.bigDecode = { width: BIG_W, height: BIG_H, to: 224, jpegBytes: fs.statSync(jpegs[0]).size, pngBytes: fs.statSync(png).size, ...decode };
    console.log(JSON.stringify(out.bigDecode));

    // (b) prepared cache at 224 px
    const n = values['cache-images'] as number;
    const synthDir = path.join(dir, 'synth');
    await synthesize({ out: synthDir, train: n, val: 0, test: 0, size: 256, views: 1, seed: 3 });
    const ds = readR2Gen(path.join(synthDir, 'annotation.json'));
    const p = await prepare(ds, { size: 224, views: 1 });
    const base = { split: 'train' as const, batchSize: 32, imageSize: 224, views: 1, seed: 1, mean: 0.5, std: 0.25 };
    const aug = { resizedCrop: {}, affine: {}, blur: {}, brightness: 0.2, contrast: 0.2 };
    const cache: Record<string, number> = {};
    const threads = radkit.getNumThreads();
    for (const t of [1, 2]) {
      radkit.setNumThreads(t);
      cache[`cache, no augmentation, ${t} thread(s) img/s`] = await loaderRate(new DataLoader(ds, base), 2);
      cache[`cache + augmentations, ${t} thread(s) img/s`] = await loaderRate(new DataLoader(ds, { ...base, augment: { image: aug } }), 2);
    }
    radkit.setNumThreads(threads);
    cache['on-the-fly sharp decode of the 256 px PNGs, 2 at once img/s'] = await loaderRate(new DataLoader(ds, { ...base, cache: false, workers: 2 }), 1);
    out.cache = { images: n, source: '256 px SynthCXR PNGs', prepareSeconds: p.seconds, shards: p.manifest.shards, ...cache };
    console.log(JSON.stringify(out.cache));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  out.loadAverage = { before: load0, after: os.loadavg()[0] };
  fs.mkdirSync(path.join('bench', 'out'), { recursive: true });
  fs.writeFileSync(path.join('bench', 'out', 'data.json'), JSON.stringify(out, null, 2));
  return out;
}

if (require.main === module) {
  benchData(process.argv.slice(2)).then((r) => console.log(JSON.stringify(r, null, 2)));
}
