// Run with --expose-gc by test/leak/leak.test.ts (needs the compiled dist/).
'use strict';
const radkit = require('../../dist/lib/index.js');
const mode = process.argv[2];
const N = Number(process.argv[3] || 100000);

// Native finalizers run after GC on later turns of the event loop, so settle across timers.
async function settle() {
  for (let i = 0; i < 10; i++) {
    global.gc();
    await new Promise((r) => setTimeout(r, 10));
  }
}

function createAndDispose(n) {
  for (let i = 0; i < n; i++) {
    const t = radkit.Tensor.randn([16, 16]);
    const u = t.to('float64');
    t.dispose();
    u.dispose();
  }
}

// One forward + backward of each CPU kernel on small inputs; memoryQuery with S = 1,500 and
// RADKIT_MQ_SCREEN=1 (set by the test) takes the screened path (quantized codes, oneDNN GEMMs).
function opsRound(n, x) {
  const { ops, sum } = radkit;
  for (let i = 0; i < n; i++) {
    const r = ops.memoryQuery(x.q, x.keys, x.values, { k: 4, similarity: 'cosine', weighting: 'softmax', heads: 2 });
    const a = sum(r.response);
    a.backward();
    const m = ops.maxSimilarity(x.image, x.text);
    const b = sum(m.imageToText);
    b.backward();
    const c = ops.sinkhorn(x.cost, { epsilon: 0.1, maxIterations: 20 });
    const p = ops.adaptivePatchSample(x.feats, x.boxes, { points: 2 });
    const e = sum(p);
    e.backward();
    for (const t of [r.response, r.indices, r.weights, a, m.imageToText, m.textToImage, b, c.plan, c.distance, c.marginalError, p, e]) t.dispose();
  }
}

function opsInputs() {
  const { Tensor } = radkit;
  radkit.manualSeed(3);
  const g = { requiresGrad: true };
  return {
    q: Tensor.randn([2, 3, 32], g), keys: Tensor.randn([1500, 32], g), values: Tensor.randn([1500, 8], g),
    image: Tensor.randn([3, 6, 32], g), text: Tensor.randn([2, 5, 32], g),
    cost: Tensor.randn([2, 6, 5]),
    feats: Tensor.randn([1, 4, 8, 8], g), boxes: Tensor.from(new Float32Array([1, 1, 4, 4, 3, 2, 5, 6]), [1, 2, 4], g),
  };
}

(async () => {
  const out = { mode, n: N };
  if (mode === 'ops') {
    // Native memory (rss - heapTotal: V8's heap grows on its own schedule) reaches its high-water
    // mark within about 20,000 calls here (allocator pools); a leak keeps growing after that.
    const x = opsInputs();
    const native = () => {
      const m = process.memoryUsage();
      return m.rss - m.heapTotal;
    };
    for (let round = 0; round < 4; round++) {
      opsRound(N / 2, x);
      await settle();
    }
    out.nativeBefore = native();
    out.before = radkit.memory();
    for (let round = 0; round < 2; round++) {
      opsRound(N / 2, x);
      await settle();
    }
    out.after = radkit.memory();
    out.nativeAfter = native();
    console.log(JSON.stringify(out));
    return;
  }
  // Two warm-up rounds of the same work: V8 old space and malloc pools grow to a high-water mark on the
  // first rounds (wrappers outlive a scavenge before their finalizers run); a leak grows on every round.
  const forget = () => {
    for (let i = 0; i < N; i++) radkit.Tensor.zeros([1024]);
  };
  for (let round = 0; round < 2; round++) {
    if (mode === 'dispose') createAndDispose(N);
    else forget();
    await settle();
  }
  out.rssBefore = process.memoryUsage().rss;
  out.before = radkit.memory();
  if (mode === 'dispose') {
    createAndDispose(N);
  } else {
    // 4 KiB tensors never disposed: 400 MB if nothing reclaimed them.
    forget();
    out.peakLive = radkit.memory().liveTensors;
  }
  await settle();
  out.after = radkit.memory();
  out.rssAfter = process.memoryUsage().rss;
  console.log(JSON.stringify(out));
})();
