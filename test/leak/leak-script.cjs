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

(async () => {
  const out = { mode, n: N };
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
