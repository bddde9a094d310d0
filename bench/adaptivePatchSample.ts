/**
 * Benchmark: ops.adaptivePatchSample against its composite LibTorch reference (grid_sample,
 * native/testing/adaptive_patch_reference.cc) in the same process, at the paper's size (seed 000):
 * B=32, C=128, H=W=32, P=256, m=3, float32 on the CPU. Median wall times (forward, forward+backward),
 * ratios, and the peak extra CPU memory of a call counted by the tracking LibTorch CPU allocator
 * (every tensor allocation made during the call, inputs excluded; on for every timed call, op and
 * reference alike).
 * Run: `node dist/bench/adaptivePatchSample.js [--quick] [--threads N]`. Writes bench/out/adaptivePatchSample.json.
 */
import { Tensor, ops } from '../lib/index.js';
import { trackedBench } from './opsHarness.js';

const { testing: T, handle: h, quick, record, finish } = trackedBench('adaptivePatchSample');

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

finish();
