/**
 * SynthCXR: deterministic synthetic chest radiographs with reports, CheXpert labels and boxes.
 *
 * Output layout (R2Gen IU X-Ray format plus extras):
 * ```
 * OUT/annotation.json   { train: [...], val: [...], test: [...] }, entries { id, report, image_path, split }
 * OUT/images/<id>/0.png frontal (PA) view, 8-bit grey, size x size; <id>/1.png lateral when views = 2
 * OUT/labels.json       { <id>: { <CheXpert observation>: 'positive'|'negative'|'uncertain'|'absent' } }
 * OUT/boxes.json        { <id>: [{ finding, observation, side?, lobe?, size?, certain, box: [x0,y0,x1,y1] }] }
 *                       boxes are in pixels of the frontal image, x1/y1 exclusive
 * OUT/synthcxr.json     generator name, version, seed, size, views, counts
 * OUT/unpaired/images.json, OUT/unpaired/reports.json   (with `unpaired: true`): disjoint halves of
 *                       the training split, images with labels and reports with labels, no pairing
 * ```
 * The same options give the same bytes, whatever the number of worker threads.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative, sep } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ArgumentError, RadkitError } from '../../errors.js';
import type { ReportLabels } from '../../text/chexpert.js';
import type { FindingBox } from './render.js';
import { Rng, hashSeed } from './rng.js';
import type { Split, StudyRecord } from './study.js';
import { runJob, type SynthJob } from './worker.js';

export { renderStudy, studyId, encodeGreyPng, type StudyRecord, type Split } from './study.js';
export { renderFrontal, type FindingBox, type RenderedImage } from './render.js';
export { renderLateral } from './lateral.js';
export { planStudy, sampleFindings, writeReport, LOBES, FINDING_OBSERVATION, type Finding, type FindingKind, type StudyPlan } from './plan.js';
export { contactSheet, type SheetTile } from './contact.js';
export { Rng, hashSeed } from './rng.js';

export interface SynthesizeOptions {
  /** Output directory (created if missing). */
  out: string;
  train: number;
  val: number;
  test: number;
  /** Image side in pixels (default 128; 224 and 256 work too). */
  size?: number;
  seed?: number;
  /** 1: frontal only; 2: frontal + lateral (IU X-Ray style). Default 2. */
  views?: 1 | 2;
  /** Also write the unpaired (MedRAT-style) export. Default false. */
  unpaired?: boolean;
  /** Worker threads (default: available cores, at most 8; 0 or 1 renders in this thread). */
  workers?: number;
  /**
   * Replace files already in `out` (annotation.json, labels.json, boxes.json, synthcxr.json,
   * unpaired/*.json, images/). Default false: a folder holding any of them is an ERR_EXISTS naming
   * them, and nothing is written.
   */
  force?: boolean;
}

export interface SynthesizeResult {
  out: string;
  counts: Record<Split, number>;
  seconds: number;
  workers: number;
}

export const SYNTHCXR_VERSION = 1;

function checkCount(name: string, n: unknown): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new ArgumentError(`synthesize: ${name} must be a non-negative integer, got ${String(n)}`, 'ERR_INVALID_ARG', 'synthesize');
  return n;
}

function workerScript(): string | undefined {
  // Worker threads need the compiled JavaScript; from TypeScript sources (tests) we render in-thread.
  const here = typeof __dirname === 'string' ? __dirname : undefined;
  if (!here || !(typeof __filename === 'string' && __filename.endsWith('.js'))) return undefined;
  const p = join(here, 'worker.js');
  return existsSync(p) ? p : undefined;
}

async function runParallel(jobs: SynthJob[], nWorkers: number): Promise<StudyRecord[][]> {
  const script = workerScript();
  if (!script || nWorkers <= 1 || jobs.length <= 1) return jobs.map(runJob);
  const results: StudyRecord[][] = new Array(jobs.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(nWorkers, jobs.length) }, () => new Worker(script));
  try {
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            const feed = () => {
              if (next >= jobs.length) return resolve();
              const k = next++;
              w.once('message', (m: { ok: boolean; records?: StudyRecord[]; error?: string }) => {
                if (!m.ok) return reject(new RadkitError(`synthesize worker: ${m.error}`, 'ERR_WORKER', 'synthesize'));
                results[k] = m.records!;
                feed();
              });
              w.postMessage(jobs[k]);
            };
            w.once('error', (e: Error) => reject(new RadkitError(`synthesize worker failed: ${e.message}`, 'ERR_WORKER', 'synthesize', { cause: e })));
            feed();
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results;
}

/**
 * Whether `dir` already holds the dataset `synthesize(opts)` would write (same generator version,
 * seed, size, views and counts, read from its synthcxr.json), so a caller may reuse it.
 */
export function holdsSynthesis(dir: string, opts: Omit<SynthesizeOptions, 'out'>): boolean {
  let m: { generator?: string; version?: number; seed?: number; size?: number; views?: number; counts?: Record<Split, number> };
  try {
    if (!existsSync(join(dir, 'annotation.json'))) return false;
    m = JSON.parse(readFileSync(join(dir, 'synthcxr.json'), 'utf8'));
  } catch {
    return false;
  }
  return (
    m.generator === 'synthcxr' &&
    m.version === SYNTHCXR_VERSION &&
    m.seed === (opts.seed ?? 0) &&
    m.size === (opts.size ?? 128) &&
    m.views === (opts.views ?? 2) &&
    m.counts?.train === opts.train &&
    m.counts?.val === opts.val &&
    m.counts?.test === opts.test
  );
}

/** Generates a SynthCXR dataset on disk. */
export async function synthesize(opts: SynthesizeOptions): Promise<SynthesizeResult> {
  const t0 = process.hrtime.bigint();
  if (!opts || typeof opts.out !== 'string' || opts.out === '') throw new ArgumentError('synthesize: "out" (output directory) is required', 'ERR_INVALID_ARG', 'synthesize');
  const counts: Record<Split, number> = { train: checkCount('train', opts.train), val: checkCount('val', opts.val), test: checkCount('test', opts.test) };
  const size = opts.size ?? 128;
  if (!Number.isInteger(size) || size < 32 || size > 1024) throw new ArgumentError(`synthesize: size must be an integer in [32, 1024], got ${size}`, 'ERR_INVALID_ARG', 'synthesize');
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed)) throw new ArgumentError(`synthesize: seed must be an integer, got ${seed}`, 'ERR_INVALID_ARG', 'synthesize');
  const views = opts.views ?? 2;
  if (views !== 1 && views !== 2) throw new ArgumentError(`synthesize: views must be 1 or 2, got ${String(views)}`, 'ERR_INVALID_ARG', 'synthesize');
  const nWorkers = opts.workers ?? Math.min(8, availableParallelism());
  const imageDir = join(opts.out, 'images');
  if (!opts.force) {
    // Never over someone's data: every file this would write (or a folder of images) must be new.
    const existing = ['annotation.json', 'labels.json', 'boxes.json', 'synthcxr.json', join('unpaired', 'images.json'), join('unpaired', 'reports.json')]
      .map((f) => join(opts.out, f))
      .filter((f) => existsSync(f));
    if (existsSync(imageDir) && readdirSync(imageDir).length) existing.push(`${imageDir}${sep}`);
    if (existing.length)
      throw new ArgumentError(
        `synthesize: ${opts.out} already holds ${existing.map((f) => relative(opts.out, f) || f).join(', ')}; nothing was written. Choose an empty folder, or replace them with force: true (radkit synth --force)`,
        'ERR_EXISTS',
        'synthesize',
      );
  }
  mkdirSync(imageDir, { recursive: true });

  const chunk = 50;
  const jobs: SynthJob[] = [];
  for (const split of ['train', 'val', 'test'] as const)
    for (let s = 0; s < counts[split]; s += chunk) jobs.push({ seed, split, start: s, end: Math.min(counts[split], s + chunk), size, views, imageDir });
  const parts = await runParallel(jobs, nWorkers);

  const ann: Record<Split, Array<{ id: string; report: string; image_path: string[]; split: Split }>> = { train: [], val: [], test: [] };
  const labels: Record<string, ReportLabels> = {};
  const boxes: Record<string, FindingBox[]> = {};
  const all: StudyRecord[] = [];
  for (const recs of parts)
    for (const r of recs) {
      ann[r.split].push({ id: r.id, report: r.report, image_path: r.image_path, split: r.split });
      labels[r.id] = r.labels;
      boxes[r.id] = r.boxes;
      all.push(r);
    }
  writeFileSync(join(opts.out, 'annotation.json'), JSON.stringify(ann) + '\n');
  writeFileSync(join(opts.out, 'labels.json'), JSON.stringify(labels) + '\n');
  writeFileSync(join(opts.out, 'boxes.json'), JSON.stringify(boxes) + '\n');
  writeFileSync(
    join(opts.out, 'synthcxr.json'),
    JSON.stringify({ generator: 'synthcxr', version: SYNTHCXR_VERSION, seed, size, views, counts, imageDir: 'images', boxesView: 0 }, null, 2) + '\n',
  );
  if (opts.unpaired) {
    const train = all.filter((r) => r.split === 'train');
    const order = new Rng(hashSeed('synthcxr-unpaired', seed)).shuffle(train.map((_, i) => i));
    const half = Math.floor(train.length / 2);
    const imgs = order.slice(0, half).sort((a, b) => a - b).map((i) => train[i]);
    const reps = order.slice(half).sort((a, b) => a - b).map((i) => train[i]);
    mkdirSync(join(opts.out, 'unpaired'), { recursive: true });
    writeFileSync(join(opts.out, 'unpaired', 'images.json'), JSON.stringify(imgs.map((r) => ({ id: r.id, image_path: r.image_path, labels: r.labels }))) + '\n');
    writeFileSync(join(opts.out, 'unpaired', 'reports.json'), JSON.stringify(reps.map((r) => ({ id: r.id, report: r.report, labels: r.labels }))) + '\n');
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { out: opts.out, counts, seconds, workers: workerScript() && nWorkers > 1 && jobs.length > 1 ? Math.min(nWorkers, jobs.length) : 1 };
}
