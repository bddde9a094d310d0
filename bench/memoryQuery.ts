/**
 * Benchmark: ops.memoryQuery against matmul + topk + gather (the composite reference) on the CPU,
 * float32: XProNet size (B=16, L=98, S=280, D=Dv=512, k=15, 8 heads) and a large memory
 * (B=4, L=98, S=100,000, D=Dv=512, k=32, 1 head: B=4 keeps the composite run affordable on 2 cores); scaled-dot similarity, softmax weighting.
 * Forward and forward+backward medians in one run (and the forward with screening off, RADKIT_MQ_SCREEN=0); peak extra memory per variant in fresh child
 * processes. Run: `node dist/bench/memoryQuery.js [xpronet|large] [--threads N]`. Writes bench/out/memoryQuery.json.
 */
import * as radkit from '../lib/index.js';
import { Tensor, ops } from '../lib/index.js';
import { loadNative, packageRoot } from '../lib/native.js';
import { MiB, childMeasure, peakExtraBytes, timePair, writeJson } from './opsHarness.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const native = () => loadNative() as any;
const CONFIGS = {
  xpronet: { B: 16, L: 98, S: 280, D: 512, Dv: 512, k: 15, heads: 8, reps: 7 },
  large: { B: 4, L: 98, S: 100_000, D: 512, Dv: 512, k: 32, heads: 1, reps: 2 },
} as const;
type Name = keyof typeof CONFIGS;

function inputs(name: Name, grad: boolean): Tensor[] {
  const c = CONFIGS[name];
  radkit.manualSeed(0);
  const t = [Tensor.randn([c.B, c.L, c.D]), Tensor.randn([c.S, c.D]), Tensor.randn([c.S, c.Dv])];
  if (grad) for (const x of t) x.requiresGrad = true;
  return t;
}

function run(name: Name, kind: 'fused' | 'composite', backward: boolean, [q, k, v]: Tensor[]): void {
  const c = CONFIGS[name];
  const o = { k: c.k, similarity: 'scaled-dot' as const, weighting: 'softmax' as const, heads: c.heads };
  const r =
    kind === 'fused'
      ? ops.memoryQuery(q, k, v, o)
      : (() => {
          const x = native()._testing_memoryQuery(Tensor.handle(q), Tensor.handle(k), Tensor.handle(v), o);
          return { response: Tensor.wrap(x.response), indices: Tensor.wrap(x.indices), weights: Tensor.wrap(x.weights) };
        })();
  if (backward) {
    const s = radkit.sum(r.response);
    s.backward();
    s.dispose();
  }
  r.response.dispose();
  r.indices.dispose();
  r.weights.dispose();
}

// --threads N: LibTorch intra-op threads for both sides (children inherit it through the env).
const threadsAt = process.argv.indexOf('--threads');
if (threadsAt >= 0) process.env.RADKIT_BENCH_THREADS = process.argv[threadsAt + 1];
if (process.env.RADKIT_BENCH_THREADS) radkit.setNumThreads(Number(process.env.RADKIT_BENCH_THREADS));

const childAt = process.argv.indexOf('--child');
if (childAt >= 0) {
  const [name, kind, pass] = process.argv[childAt + 1].split(':') as [Name, 'fused' | 'composite', string];
  const bwd = pass === 'forward-backward';
  childMeasure(() => inputs(name, bwd), (t) => run(name, kind, bwd, t as Tensor[]));
} else {
  const names = (process.argv[2] && !process.argv[2].startsWith('--') ? [process.argv[2]] : Object.keys(CONFIGS)) as Name[];
  const results: Record<string, unknown> = {};
  for (const name of names) {
    const c = CONFIGS[name];
    const plain = inputs(name, false), withGrad = inputs(name, true);
    // agreement: same indices and responses as the composite
    const o = { k: c.k, similarity: 'scaled-dot' as const, weighting: 'softmax' as const, heads: c.heads };
    const f = ops.memoryQuery(plain[0], plain[1], plain[2], o);
    const e = native()._testing_memoryQuery(...plain.map((t) => Tensor.handle(t)), o);
    const fi = f.indices.toArray() as BigInt64Array, ei = Tensor.wrap(e.indices).toArray() as BigInt64Array;
    let same = 0;
    for (let i = 0; i < fi.length; i++) same += fi[i] === ei[i] ? 1 : 0;
    const fr = f.response.toArray() as Float32Array, er = Tensor.wrap(e.response).toArray() as Float32Array;
    let maxAbs = 0;
    for (let i = 0; i < fr.length; i++) maxAbs = Math.max(maxAbs, Math.abs(fr[i] - er[i]));
    // fused and composite calls alternate, so both see the same load on a shared machine
    const [fusedForward, compositeForward] = timePair(() => run(name, 'fused', false, plain), () => run(name, 'composite', false, plain), c.reps);
    const [fusedForwardBackward, compositeForwardBackward] = timePair(
      () => run(name, 'fused', true, withGrad),
      () => run(name, 'composite', true, withGrad),
      c.reps,
    );
    // The same forward with the bfloat16 screening of long memories turned off (it is on by default
    // for float32, S >= 16,384 on CPUs with AVX512-BF16; see README), against the composite again.
    const unscreened = () => {
      process.env.RADKIT_MQ_SCREEN = '0';
      try {
        run(name, 'fused', false, plain);
      } finally {
        delete process.env.RADKIT_MQ_SCREEN;
      }
    };
    const [unscreenedForward, compositeForward2] = timePair(unscreened, () => run(name, 'composite', false, plain), c.reps);
    const ms = { fusedForward, compositeForward, fusedForwardBackward, compositeForwardBackward, unscreenedForward, compositeForward2 };
    const mem: Record<string, number> = {};
    for (const kind of ['fused', 'composite'])
      for (const pass of ['forward', 'forward-backward']) mem[`${kind}-${pass}`] = MiB(peakExtraBytes(__filename, `${name}:${kind}:${pass}`));
    const outputsMiB = MiB(c.B * c.L * c.Dv * 4 + c.B * c.L * c.heads * c.k * (8 + 4));
    results[name] = {
      shape: { ...c, dtype: 'float32', device: 'cpu', similarity: 'scaled-dot', weighting: 'softmax' },
      ms,
      speedup: {
        forward: ms.compositeForward / ms.fusedForward,
        forwardBackward: ms.compositeForwardBackward / ms.fusedForwardBackward,
        forwardUnscreened: ms.compositeForward2 / ms.unscreenedForward,
      },
      peakExtraMiB: mem,
      outputsMiB,
      scoreTensorMiB: MiB(c.B * c.heads * c.L * c.S * 4),
      gatheredCopyMiB: MiB(c.B * c.L * c.heads * c.k * (c.Dv / c.heads) * 4),
      indexAgreement: same / fi.length,
      maxAbsResponseDifference: maxAbs,
    };
    for (const t of [...plain, ...withGrad]) t.dispose();
  }
  const out = { op: 'memoryQuery', threads: radkit.getNumThreads(), results, note: 'peak extra memory = growth of the peak resident set over the inputs, one fresh process per variant' };
  const p = writeJson(packageRoot, names.length === 2 ? 'memoryQuery' : `memoryQuery-${names[0]}`, out);
  console.log(JSON.stringify(out, null, 2));
  console.log(`wrote ${p}`);
}
