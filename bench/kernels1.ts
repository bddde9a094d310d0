/**
 * Benchmarks of ops.adaptivePatchSample and ops.maxSimilarity against their composite LibTorch
 * references (grid_sample; einsum-then-max) in the same process, at the paper's sizes (seed 000):
 *   AdaPatch       B=32, C=128, H=W=32, P=256, m=3
 *   maxSimilarity  Bi=Bt=112, N=256, K=100, D=256, and Bi=Bt=32
 * Reports median wall times (forward, forward+backward), ratios, and the peak extra CPU memory of a
 * call as counted by a tracking LibTorch CPU allocator installed for the run (every tensor allocation
 * made during the call, inputs excluded; the tracker is on for every timed call, op and reference alike).
 * Usage: node dist/bench/kernels1.js [--quick] [--only aps|ms32|ms112] [--threads N] [--json out.json]
 */
import * as fs from 'node:fs';
import { Tensor, ops, getNumThreads, setNumThreads, manualSeed } from '../lib/index.js';
import { loadNative } from '../lib/native.js';
import type { NativeKernels1Testing } from '../typings/native.js';

const T = (loadNative() as unknown as { testing: NativeKernels1Testing }).testing;
const h = (t: Tensor) => Tensor.handle(t);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Median wall time (ms) of `reps` calls after `warmup` calls, and the largest peak extra memory of a timed call. */
function measure(fn: () => void, reps: number, warmup: number): { ms: number; peak: number } {
  for (let i = 0; i < warmup; i++) fn();
  const ts: number[] = [];
  let peak = 0;
  for (let i = 0; i < reps; i++) {
    const base = T.allocTrackerReset().current;
    const t0 = process.hrtime.bigint();
    fn();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
    peak = Math.max(peak, T.allocTrackerRead().peak - base);
  }
  return { ms: median(ts), peak };
}

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const ti = args.indexOf('--threads');
if (ti >= 0) setNumThreads(Number(args[ti + 1]));
const ji = args.indexOf('--json');
const oi = args.indexOf('--only');
const only = oi >= 0 ? args[oi + 1] : null;
manualSeed(1);

interface Row {
  case: string;
  pass: string;
  opMs: number;
  referenceMs: number;
  speedup: number;
  opPeakMB: number;
  referencePeakMB: number;
  memoryRatio: number;
}
const rows: Row[] = [];
const MB = (b: number) => b / (1 << 20);

function record(name: string, pass: string, op: () => void, ref: () => void, reps: number, refReps: number) {
  const a = measure(op, reps, 1);
  const b = measure(ref, refReps, refReps > 1 ? 1 : 0);
  const [opMs, referenceMs, opPeak, refPeak] = [a.ms, b.ms, a.peak, b.peak];
  const row = { case: name, pass, opMs, referenceMs, speedup: referenceMs / opMs, opPeakMB: MB(opPeak), referencePeakMB: MB(refPeak), memoryRatio: refPeak / Math.max(1, opPeak) };
  rows.push(row);
  console.log(`${name.padEnd(44)} ${pass.padEnd(8)} op ${opMs.toFixed(1).padStart(9)} ms  ref ${referenceMs.toFixed(1).padStart(9)} ms  x${row.speedup.toFixed(2).padStart(6)}  peak op ${row.opPeakMB.toFixed(1)} MB ref ${row.referencePeakMB.toFixed(1)} MB (x${row.memoryRatio.toFixed(1)})`);
}

// ---------------------------------------------------------------- adaptivePatchSample
if (!only || only === 'aps') {
  const [B, C, H, W, m] = [32, 128, 32, 32, 3];
  const grid = 16, P = grid * grid; // fixed 2x2 patches of a 32x32 map
  const feats = Tensor.randn([B, C, H, W], { requiresGrad: true });
  const bd = new Float32Array(B * P * 4);
  for (let b = 0; b < B; b++)
    for (let p = 0; p < P; p++) {
      const cx = (p % grid) * 2 + 1, cy = Math.floor(p / grid) * 2 + 1;
      bd.set([cx + 2 * (Math.random() - 0.5), cy + 2 * (Math.random() - 0.5), 4 * Math.random(), 4 * Math.random()], (b * P + p) * 4);
    }
  const boxes = Tensor.from(bd, [B, P, 4], { requiresGrad: true });
  const g = Tensor.randn([B, P, C, m, m]);
  const name = `adaptivePatchSample B=${B} C=${C} H=W=${H} P=${P} m=${m}`;
  const reps = quick ? 3 : 10;
  record(name, 'forward', () => ops.adaptivePatchSample(feats, boxes, { points: m }).dispose(),
    () => Tensor.wrap(T.adaptivePatchSampleReference(h(feats), h(boxes), m)).dispose(), reps, reps);
  record(name, 'fwd+bwd', () => {
    const o = ops.adaptivePatchSample(feats, boxes, { points: m });
    o.backward(g);
    o.dispose();
  }, () => {
    const o = Tensor.wrap(T.adaptivePatchSampleReference(h(feats), h(boxes), m));
    T.backwardMany([h(o)], [h(g)]);
    o.dispose();
  }, reps, reps);
}

// ---------------------------------------------------------------- maxSimilarity
const msCases = (quick ? [[32, 256, 100, 256]] : [[32, 256, 100, 256], [112, 256, 100, 256]]).filter(([bi]) => !only || only === `ms${bi}`);
for (const [Bi, N, K, D] of msCases) {
  const Bt = Bi;
  const image = Tensor.randn([Bi, N, D], { requiresGrad: true });
  const text = Tensor.randn([Bt, K, D], { requiresGrad: true });
  const g = Tensor.randn([Bi, Bt]);
  const name = `maxSimilarity Bi=Bt=${Bi} N=${N} K=${K} D=${D}`;
  const big = Bi > 64;
  const reps = big ? 2 : 5;
  const refReps = big ? 1 : 3;
  record(name, 'forward', () => {
    const r = ops.maxSimilarity(image, text);
    r.imageToText.dispose();
    r.textToImage.dispose();
  }, () => {
    const r = T.maxSimilarityReference(h(image), h(text));
    for (const t of Object.values(r)) t.dispose();
  }, reps, refReps);
  record(name, 'fwd+bwd', () => {
    const r = ops.maxSimilarity(image, text);
    T.backwardMany([h(r.imageToText), h(r.textToImage)], [h(g), h(g)]);
    r.imageToText.dispose();
    r.textToImage.dispose();
  }, () => {
    const r = T.maxSimilarityReference(h(image), h(text));
    T.backwardMany([r.imageToText, r.textToImage], [h(g), h(g)]);
    for (const t of Object.values(r)) t.dispose();
  }, reps, refReps);
}

const meta = { threads: getNumThreads(), date: new Date().toISOString(), note: 'float32, CPU; peak = tracked LibTorch CPU allocations of one call' };
console.log(JSON.stringify(meta));
if (ji >= 0) fs.writeFileSync(args[ji + 1], JSON.stringify({ meta, rows }, null, 2));
