// `npm run bench`: every benchmark in turn, each in its own process (clean peak RSS and thread
// settings); their JSON lands in bench/out/. Pass names to run a subset: node dist/bench/run.js sinkhorn train
// (npm run bench -- --vs-python [options]: the side-by-side comparison with Python PyTorch, bench/vsPython.ts)
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const ALL = ['foundation', 'adaptivePatchSample', 'maxSimilarity', 'sinkhorn', 'memoryQuery', 'decoding', 'causal_lm', 'metrics', 'synth', 'train', 'adamatch', 'gpu'];

// --vs-python [options]: radkit against Python PyTorch eager twins (bench/vsPython.ts, bench/python/).
if (process.argv[2] === '--vs-python') {
  const r = spawnSync(process.execPath, [path.join(__dirname, 'vsPython.js'), ...process.argv.slice(3)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !ALL.includes(w));
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')} (have: ${ALL.join(', ')})`);
  process.exit(2);
}
let failed = 0;
for (const name of wanted.length ? wanted : ALL) {
  console.log(`\n=== ${name}`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [path.join(__dirname, `${name}.js`)], { stdio: 'inherit' });
  console.log(`=== ${name}: exit ${r.status} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
