/**
 * Benchmark: ops.maxSimilarity against its composite LibTorch reference (einsum then masked max,
 * native/testing/max_similarity_reference.cc) in the same process, at the paper's sizes (seed 000):
 * Bi=Bt=32 and Bi=Bt=112, N=256, K=100, D=256, float32 on the CPU. Median wall times (forward,
 * forward+backward), ratios, and the peak extra CPU memory of a call counted by the tracking LibTorch
 * CPU allocator (every tensor allocation made during the call, inputs excluded; on for every timed
 * call, op and reference alike).
 * Run: `node dist/bench/maxSimilarity.js [--quick] [--only 32|112] [--threads N]`. Writes bench/out/maxSimilarity.json.
 */
import { Tensor, ops } from '../lib/index.js';
import { trackedBench } from './opsHarness.js';

const { testing: T, handle: h, args, quick, record, finish } = trackedBench('maxSimilarity');
const oi = args.indexOf('--only');
const only = oi >= 0 ? Number(args[oi + 1]) : null;

const cases = (quick ? [[32, 256, 100, 256]] : [[32, 256, 100, 256], [112, 256, 100, 256]]).filter(([bi]) => only === null || only === bi);
for (const [Bi, N, K, D] of cases) {
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

finish();
