/**
 * GPU benchmark: the four CUDA kernels against their composite LibTorch references on the same GPU,
 * in one process, float32, at the sizes of the CPU benchmarks (bench/adaptivePatchSample.ts,
 * bench/maxSimilarity.ts, bench/sinkhorn.ts, bench/memoryQuery.ts):
 *   adaptivePatchSample  B=32, C=128, H=W=32, P=256, m=3                    vs grid_sample
 *   maxSimilarity        Bi=Bt=32 and 112, N=256, K=100, D=256             vs einsum + max
 *   sinkhorn             B=64, M=196, N=56, D=512, 100 iterations, eps 0.1 vs log-domain loop
 *   memoryQuery          XProNet size (B=16, L=98, S=280, k=15, 8 heads) and
 *                        S=100,000, k=32 (B=16, 1 head)                   vs matmul + topk + gather
 * Times are medians of synchronised calls (radkit.cudaSynchronize after each); peak memory is the
 * CUDA caching allocator's peak during one call above what was allocated before it.
 * Without CUDA it says so and exits 0. Run: `node dist/bench/gpu.js [--quick]`; writes bench/out/gpu.json.
 */
import * as radkit from '../lib/index.js';
import { Tensor, ops } from '../lib/index.js';
import { loadNative, packageRoot } from '../lib/native.js';
import type { NativeTesting } from '../typings/native.js';
import { MiB, timePair, writeJson } from './opsHarness.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const N = loadNative() as any;
const T = N.testing as NativeTesting;
const h = (t: Tensor) => Tensor.handle(t);
const quick = process.argv.includes('--quick');

interface Row {
  case: string;
  pass: 'forward' | 'fwd+bwd';
  opMs: number;
  referenceMs: number;
  speedup: number;
  opPeakMiB: number;
  referencePeakMiB: number;
}
const rows: Row[] = [];

/** Peak CUDA bytes one call adds above the allocation before it. */
function peakGpu(f: () => void): number {
  radkit.cudaSynchronize();
  const before = radkit.cudaMemory({ resetPeak: true })!.allocatedBytes;
  f();
  radkit.cudaSynchronize();
  return radkit.cudaMemory()!.peakAllocatedBytes - before;
}

function record(name: string, pass: Row['pass'], op: () => void, ref: () => void, reps: number): void {
  // warm-ups: kernel loading, allocator caching
  const [opMs, referenceMs] = timePair(op, ref, reps, { warmups: 2, sync: radkit.cudaSynchronize });
  const row = { case: name, pass, opMs, referenceMs, speedup: referenceMs / opMs, opPeakMiB: MiB(peakGpu(op)), referencePeakMiB: MiB(peakGpu(ref)) };
  rows.push(row);
  console.log(`${name.padEnd(50)} ${pass.padEnd(8)} op ${opMs.toFixed(3).padStart(9)} ms  ref ${referenceMs.toFixed(3).padStart(9)} ms  x${row.speedup.toFixed(2).padStart(6)}  peak op ${row.opPeakMiB} MiB ref ${row.referencePeakMiB} MiB`);
}

const backward = (outputs: Tensor[], grads: Tensor[]) => T.backwardMany(outputs.map(h), grads.map(h));
const disposeAll = (xs: Record<string, any>) => Object.values(xs).forEach((t) => t?.dispose?.());
const cuda = (t: Tensor, grad = false) => {
  const c = t.to('cuda');
  t.dispose();
  c.requiresGrad = grad;
  return c;
};

function adaptivePatchSample(): void {
  const [B, C, H, m, grid] = [32, 128, 32, 3, 16];
  const P = grid * grid;
  const feats = cuda(Tensor.randn([B, C, H, H]), true);
  const bd = new Float32Array(B * P * 4);
  for (let b = 0; b < B; b++)
    for (let p = 0; p < P; p++) {
      const cx = (p % grid) * 2 + 1, cy = Math.floor(p / grid) * 2 + 1;
      bd.set([cx + 2 * (Math.random() - 0.5), cy + 2 * (Math.random() - 0.5), 4 * Math.random(), 4 * Math.random()], (b * P + p) * 4);
    }
  const boxes = cuda(Tensor.from(bd, [B, P, 4]), true);
  const g = cuda(Tensor.randn([B, P, C, m, m]));
  const name = `adaptivePatchSample B=${B} C=${C} H=W=${H} P=${P} m=${m}`;
  const reps = quick ? 5 : 30;
  const op = () => ops.adaptivePatchSample(feats, boxes, { points: m });
  const ref = () => Tensor.wrap(T.adaptivePatchSampleReference(h(feats), h(boxes), m));
  record(name, 'forward', () => op().dispose(), () => ref().dispose(), reps);
  const withBackward = (f: () => Tensor) => () => {
    const o = f();
    backward([o], [g]);
    o.dispose();
  };
  record(name, 'fwd+bwd', withBackward(op), withBackward(ref), reps);
  disposeAll({ feats, boxes, g });
}

function maxSimilarity(Bi: number): void {
  const [Nn, K, D] = [256, 100, 256];
  const image = cuda(Tensor.randn([Bi, Nn, D]), true);
  const text = cuda(Tensor.randn([Bi, K, D]), true);
  const g = cuda(Tensor.randn([Bi, Bi]));
  const name = `maxSimilarity Bi=Bt=${Bi} N=${Nn} K=${K} D=${D}`;
  const reps = quick ? 3 : Bi > 64 ? 10 : 30;
  const op = () => {
    const r = ops.maxSimilarity(image, text);
    return [r.imageToText, r.textToImage];
  };
  const ref = () => {
    const r = T.maxSimilarityReference(h(image), h(text));
    const out = [Tensor.wrap(r.imageToText), Tensor.wrap(r.textToImage)];
    for (const [key, t] of Object.entries(r)) if (key !== 'imageToText' && key !== 'textToImage') (t as any).dispose();
    return out;
  };
  const fwd = (f: () => Tensor[]) => () => f().forEach((t) => t.dispose());
  const fb = (f: () => Tensor[]) => () => {
    const out = f();
    backward(out, [g, g]);
    out.forEach((t) => t.dispose());
  };
  record(name, 'forward', fwd(op), fwd(ref), reps);
  record(name, 'fwd+bwd', fb(op), fb(ref), reps);
  disposeAll({ image, text, g });
}

function sinkhorn(): void {
  const [B, M, Nn, D, iters, eps] = [64, 196, 56, 512, 100, 0.1];
  const x = cuda(Tensor.randn([B, M, D])), y = cuda(Tensor.randn([B, Nn, D]));
  const cost = radkit.noGrad(() => ops.euclideanCost(x, y));
  cost.requiresGrad = true;
  const name = `sinkhorn B=${B} M=${M} N=${Nn} D=${D} ${iters} it eps ${eps}`;
  const reps = quick ? 3 : 20;
  const op = () => {
    const r = ops.sinkhorn(cost, { epsilon: eps, maxIterations: iters });
    r.plan.dispose();
    r.marginalError.dispose();
    return r.distance;
  };
  const ref = () => {
    const [plan, dist] = N._testing_sinkhornComposite(h(cost), eps, iters).map((t: any) => Tensor.wrap(t));
    plan.dispose();
    return dist as Tensor;
  };
  const fwd = (f: () => Tensor) => () => radkit.noGrad(() => f().dispose());
  const fb = (f: () => Tensor) => () => {
    const d = f();
    const s = radkit.sum(d);
    s.backward();
    s.dispose();
    d.dispose();
  };
  record(name, 'forward', fwd(op), fwd(ref), reps);
  record(name, 'fwd+bwd', fb(op), fb(ref), reps);
  disposeAll({ x, y, cost });
}

type MQ = { response: Tensor; indices: Tensor; weights: Tensor };

function memoryQuery(B: number, L: number, S: number, D: number, k: number, heads: number): void {
  const q = cuda(Tensor.randn([B, L, D]), true), keys = cuda(Tensor.randn([S, D]), true), values = cuda(Tensor.randn([S, D]), true);
  const o = { k, similarity: 'scaled-dot' as const, weighting: 'softmax' as const, heads };
  const name = `memoryQuery B=${B} L=${L} S=${S} D=${D} k=${k} heads=${heads}`;
  const reps = quick ? 3 : S > 10000 ? 10 : 30;
  const op = (): MQ => ops.memoryQuery(q, keys, values, o);
  const ref = (): MQ => {
    const x = N._testing_memoryQuery(h(q), h(keys), h(values), o);
    return { response: Tensor.wrap(x.response), indices: Tensor.wrap(x.indices), weights: Tensor.wrap(x.weights) };
  };
  const fwd = (f: () => MQ) => () => radkit.noGrad(() => disposeAll(f()));
  const fb = (f: () => MQ) => () => {
    const r = f();
    const s = radkit.sum(r.response);
    s.backward();
    s.dispose();
    disposeAll(r);
  };
  record(name, 'forward', fwd(op), fwd(ref), reps);
  record(name, 'fwd+bwd', fb(op), fb(ref), reps);
  disposeAll({ q, keys, values });
}

if (!radkit.info().cudaAvailable) {
  console.log('bench/gpu: no CUDA device available (or this binary was built without CUDA); nothing to measure.');
  process.exit(0);
}
radkit.manualSeed(1);
adaptivePatchSample();
maxSimilarity(32);
maxSimilarity(112);
sinkhorn();
memoryQuery(16, 98, 280, 512, 15, 8);
memoryQuery(16, 98, 100_000, 512, 32, 1);
const meta = { date: new Date().toISOString(), info: (({ torchVersion, cudaDevices }) => ({ torchVersion, cudaDevices }))(radkit.info()), note: 'float32 on CUDA; ms = median of synchronised calls; peak = CUDA allocator peak of one call above its inputs' };
const p = writeJson(packageRoot, 'gpu', { meta, rows });
console.log(`wrote ${p}`);
