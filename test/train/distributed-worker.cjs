// One rank of a data-parallel check (test/train/distributed.test.ts): trains a tiny XProNet or
// AdaMatch in float64 for 5 steps on global batches of 16 (this rank's rows of each) and writes
// its parameters. Usage: node distributed-worker.cjs KIND WORLD RANK PORT OUT
'use strict';
const fs = require('node:fs');
const radkit = require('../../dist/lib/index.js');

const [kind, worldArg, rankArg, portArg, out] = process.argv.slice(2);
const world = Number(worldArg);
const rank = Number(rankArg);
const GLOBAL = 16;
const STEPS = 5;
const SIDE = 32;

const reports = [
  'the heart is normal in size .', 'there is a small left pleural effusion .', 'no acute cardiopulmonary abnormality .',
  'mild cardiomegaly . lungs are clear .', 'right lower lobe opacity concerning for pneumonia .', 'no pneumothorax . the lungs are clear bilaterally .',
  'stable cardiomegaly with small bilateral effusions .', 'no focal consolidation .',
];
const tokenizer = radkit.text.Tokenizer.build(reports, { threshold: 1 });

function model() {
  if (kind === 'xpronet')
    // Contrastive terms (image and text IMLC) and the ResNet's batch norms on; dropout off.
    return radkit.xpronet({ tokenizer, preset: 'small', dModel: 16, heads: 2, dFF: 32, encoderLayers: 1, decoderLayers: 1, resnetWidths: [4, 4, 8, 8, 8], resnetBlocks: [1, 1, 1, 1],
      prototypesPerClass: 2, topK: 3, seed: 3, dropout: 0, lambdaImage: 1, lambdaText: 0.5, lambdaClass: 1 });
  // Eqs. 7-9, batch-norm projections, the conv stem's batch norms and the classification head's.
  return radkit.adamatch({ tokenizer, imageSize: SIDE, dims: [8, 8, 8, 8], depths: [1, 1, 1, 1], heads: [1, 1, 1, 1], reductions: [2, 1, 1, 1], textHidden: 8, textLayers: 1, textHeads: 2,
    textIntermediate: 16, embedDim: 8, classWeight: 1, seed: 3, stem: 'conv', projectionNorm: 'batch', textDropout: 0, dropout: 0 });
}

// Global batch `step`: reports of different lengths (so ranks pad tokens differently), seeded pixels.
function globalRows(step) {
  const rows = [];
  for (let i = 0; i < GLOBAL; i++) {
    const k = step * GLOBAL + i;
    const report = reports[(k * 5 + step) % reports.length];
    const labels = new Int32Array(14).fill(0);
    labels[k % 14] = 1;
    labels[(k * 3) % 14] = 1;
    labels[(k + 7) % 14] = 2;
    const pixels = Float64Array.from({ length: SIDE * SIDE }, (_, p) => Math.sin(0.37 * p + 1.3 * k) * 0.5 + 0.5 * Math.cos(0.011 * p * (1 + (k % 5))));
    rows.push({ report, labels, pixels });
  }
  return rows;
}

function batchOf(rows) {
  const enc = tokenizer.encodeBatch(rows.map((r) => r.report));
  const images = new Float64Array(rows.length * SIDE * SIDE);
  rows.forEach((r, i) => images.set(r.pixels, i * SIDE * SIDE));
  const labels = new Int32Array(rows.length * 14);
  rows.forEach((r, i) => labels.set(r.labels, i * 14));
  return new radkit.TensorBatch({ images: { data: images, shape: [rows.length, 1, 1, SIDE, SIDE] }, tokens: { data: enc.data, shape: enc.shape }, labelStates: { data: labels, shape: [rows.length, 14] } });
}

(async () => {
  radkit.setNumThreads(1);
  const m = model();
  m.to('cpu', 'float64');
  // AdaMatch has parameters whose exact gradient is zero (biases feeding its batch norms, the last
  // layer norms' biases before them, attention key biases): their gradients are rounding noise
  // (~1e-16), which Adam with epsilon 1e-8 turns into steps of ~1e-9 that depend on the summation
  // order (here: 1 vs 2 processes; 8e-9 measured). Epsilon 1e-3 keeps such noise below 1e-12
  // while every other parameter still takes Adam steps.
  m.setupOptimizer({ kind: 'adam', lr: 1e-2, ...(kind === 'adamatch' ? { eps: 1e-3 } : {}) });
  let group = null;
  if (world > 1) {
    group = await radkit.distributed.initProcessGroup({ rank, worldSize: world, masterAddr: '127.0.0.1', masterPort: Number(portArg), initTimeout: 30, timeout: 30 });
    m.setDistributed(group);
  }
  const losses = [];
  for (let step = 0; step < STEPS; step++) {
    const rows = globalRows(step);
    const per = GLOBAL / world;
    const b = batchOf(rows.slice(rank * per, (rank + 1) * per));
    const r = await m.trainStep(b, { clipNorm: 0 });
    b.dispose();
    losses.push(r.loss);
  }
  const named = m.namedTensors();
  const weights = Object.fromEntries(Object.entries(named).map(([k, t]) => [k, Array.from(t.toArray(), Number)]));
  fs.writeFileSync(out, JSON.stringify({ losses, weights }));
  group?.close();
  m.dispose();
})().catch((e) => {
  console.error(`[rank ${rank}] ${e.code ?? ''} ${e.message}`);
  process.exit(1);
});
