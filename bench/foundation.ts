// Foundation overheads: N-API tensor round trips and the async worker, each against a baseline in
// the same run. Run: node dist/bench/foundation.js  (writes bench/out/foundation.json)
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as radkit from '../lib/index.js';
import { Tensor } from '../lib/index.js';

function time(fn: () => void, reps: number): number {
  fn();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) fn();
  return (performance.now() - t0) / reps;
}

async function timeAsync(fn: () => Promise<void>, reps: number): Promise<number> {
  await fn();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await fn();
  return (performance.now() - t0) / reps;
}

async function main() {
  const out: Record<string, unknown> = { threads: radkit.getNumThreads(), torch: radkit.info().torchVersion };
  // 1. create + dispose a small tensor vs allocating the same typed array in JS.
  const data = new Float32Array(256);
  const jsAlloc = time(() => void new Float32Array(256).set(data), 20000);
  const native = time(() => Tensor.from(data, [16, 16]).dispose(), 20000);
  out.createDispose = { jsMicroseconds: jsAlloc * 1e3, nativeMicroseconds: native * 1e3, ratio: native / jsAlloc };
  // 2. toArray of 1M floats vs a JS copy of the same size.
  const big = Tensor.randn([1024, 1024]);
  const src = new Float32Array(1 << 20);
  const jsCopy = time(() => void src.slice(), 50);
  const toArray = time(() => void big.toArray(), 50);
  out.toArray1M = { jsCopyMs: jsCopy, toArrayMs: toArray, ratio: toArray / jsCopy };
  // 3. matmulAsync (worker thread + Promise) vs matmul on the JS thread, 256 x 256.
  const a = Tensor.randn([256, 256]);
  const sync = time(() => radkit.matmul(a, a).dispose(), 200);
  const asyncMs = await timeAsync(async () => (await radkit.matmulAsync(a, a)).dispose(), 200);
  out.matmul256 = { syncMs: sync, asyncMs, overheadMicroseconds: (asyncMs - sync) * 1e3 };
  const g = await radkit.benchmarkMatmul({ size: 512, minSeconds: 1 });
  out.matmul512Gflops = g.gflops;
  for (const t of [big, a]) t.dispose();
  fs.mkdirSync(path.join(__dirname, '../../bench/out'), { recursive: true });
  fs.writeFileSync(path.join(__dirname, '../../bench/out/foundation.json'), JSON.stringify(out, null, 2));
  console.log(JSON.stringify(out, null, 2));
}

main();
