/**
 * Benchmark: ops.sinkhorn against a composite log-domain LibTorch loop (logsumexp updates, the
 * same iteration order) at OTDRG size: B=64, M=196, N=56, D=512 (cost = ops.euclideanCost of
 * random features), 100 iterations, epsilon 0.1, float32 on the CPU. Forward and forward+backward
 * (the composite backpropagates through the unrolled iterations; ops.sinkhorn uses the envelope
 * gradient), medians in one run, peak extra memory per variant in fresh child processes.
 * Run: `node dist/bench/sinkhorn.js` (RADKIT_NATIVE may point at a build). Writes bench/out/sinkhorn.json.
 */
import * as radkit from '../lib/index.js';
import { Tensor, ops } from '../lib/index.js';
import { loadNative, packageRoot } from '../lib/native.js';
import { MiB, childMeasure, peakExtraBytes, timePair, writeJson } from './opsHarness.js';

const B = 64, M = 196, N = 56, D = 512, ITERS = 100, EPS = 0.1;
/* eslint-disable @typescript-eslint/no-explicit-any */
const native = () => loadNative() as any;

function makeCost(requiresGrad: boolean): Tensor {
  radkit.manualSeed(0);
  const x = Tensor.randn([B, M, D]), y = Tensor.randn([B, N, D]);
  const c = radkit.noGrad(() => ops.euclideanCost(x, y));
  x.dispose();
  y.dispose();
  if (requiresGrad) c.requiresGrad = true;
  return c;
}

function fused(cost: Tensor, backward: boolean): void {
  const r = ops.sinkhorn(cost, { epsilon: EPS, maxIterations: ITERS });
  if (backward) {
    const s = radkit.sum(r.distance);
    s.backward();
    s.dispose();
  }
  r.plan.dispose();
  r.distance.dispose();
  r.marginalError.dispose();
}

function composite(cost: Tensor, backward: boolean): void {
  const [plan, dist] = native()._testing_sinkhornComposite(Tensor.handle(cost), EPS, ITERS).map((h: any) => Tensor.wrap(h));
  if (backward) {
    const s = radkit.sum(dist);
    s.backward();
    s.dispose();
  }
  plan.dispose();
  dist.dispose();
}

const variants: Record<string, (c: Tensor) => void> = {
  'fused-forward': (c) => fused(c, false),
  'composite-forward': (c) => composite(c, false),
  'fused-forward-backward': (c) => fused(c, true),
  'composite-forward-backward': (c) => composite(c, true),
};

const childAt = process.argv.indexOf('--child');
if (childAt >= 0) {
  const v = process.argv[childAt + 1];
  childMeasure(() => makeCost(v.endsWith('backward')), (c) => variants[v](c as Tensor));
} else {
  const threads = radkit.getNumThreads();
  const cost = makeCost(false);
  const costG = makeCost(true);
  // agreement (float32): distances of the fused kernel vs the composite loop
  const r = ops.sinkhorn(cost, { epsilon: EPS, maxIterations: ITERS });
  const [, cd] = native()._testing_sinkhornComposite(Tensor.handle(cost), EPS, ITERS).map((h: any) => Tensor.wrap(h));
  const a = r.distance.toArray() as Float32Array, b = cd.toArray() as Float32Array;
  let maxRel = 0;
  for (let i = 0; i < a.length; i++) maxRel = Math.max(maxRel, Math.abs(a[i] - b[i]) / Math.abs(b[i]));
  // fused and composite calls alternate, so both see the same load on a shared machine
  const [fusedForward, compositeForward] = timePair(() => fused(cost, false), () => composite(cost, false), 7);
  const [fusedForwardBackward, compositeForwardBackward] = timePair(() => fused(costG, true), () => composite(costG, true), 5);
  const ms = { fusedForward, compositeForward, fusedForwardBackward, compositeForwardBackward };
  const script = __filename;
  const mem: Record<string, number> = {};
  for (const v of Object.keys(variants)) mem[v] = peakExtraBytes(script, v);
  const result = {
    op: 'sinkhorn',
    shape: { B, M, N, D, iterations: ITERS, epsilon: EPS, dtype: 'float32', device: 'cpu' },
    threads,
    ms,
    speedup: { forward: ms.compositeForward / ms.fusedForward, forwardBackward: ms.compositeForwardBackward / ms.fusedForwardBackward },
    peakExtraMiB: Object.fromEntries(Object.entries(mem).map(([k, v]) => [k, MiB(v)])),
    maxRelativeDistanceDifference: maxRel,
    note: 'peak extra memory = growth of the peak resident set over the inputs, one fresh process per variant',
  };
  const p = writeJson(packageRoot, 'sinkhorn', result);
  console.log(JSON.stringify(result, null, 2));
  console.log(`wrote ${p}`);
}
