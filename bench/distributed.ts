// Data-parallel scaling of XProNet small-preset training on this machine: one process (1 and 2
// LibTorch threads) against 2 processes of 1 thread each (c10d, Gloo over loopback), global batch
// 16 at 128 px with 2 views, and the gradient all-reduce time per step. Writes bench/out/distributed.json.
// Run: node dist/bench/distributed.js [--steps 8]
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as radkit from '../lib/index.js';
import { TensorBatch } from '../lib/index.js';

const GLOBAL = 16;
const dir = path.join(os.tmpdir(), 'radkit-bench-train');

interface WorkerResult {
  rank: number;
  world: number;
  threads: number;
  steps: number;
  secondsPerStep: number;
  allReduceSecondsPerStep: number;
  parameters: number;
}

async function worker(world: number, rank: number, threads: number, port: number, steps: number): Promise<WorkerResult> {
  radkit.setNumThreads(threads);
  const ds = radkit.data.readR2Gen(path.join(dir, 'annotation.json'), { labels: path.join(dir, 'labels.json') });
  const tokenizer = radkit.text.Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: 3 });
  const loader = new radkit.data.DataLoader(ds, { split: 'train', batchSize: GLOBAL, imageSize: 128, tokenizer, workers: 1, shuffle: false });
  const order = loader.order();
  const groups = radkit.distributed.shardBatches(order, GLOBAL, rank, world);
  const batches: TensorBatch[] = [];
  for (let i = 0; i < Math.min(groups.length, steps + 1); i++) batches.push(new TensorBatch(await loader.batch(groups[i])));
  const model = radkit.xpronet({ tokenizer, preset: 'small' });
  model.setupOptimizer({ lr: 1e-3 });
  const group = world > 1 ? await radkit.distributed.initProcessGroup({ rank, worldSize: world, masterAddr: '127.0.0.1', masterPort: port }) : null;
  if (group) model.setDistributed(group);
  await model.trainStep(batches[0], { clipNorm: 1 });  // warm-up
  let allReduce = 0;
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) {
    const r = await model.trainStep(batches[1 + (i % (batches.length - 1))], { clipNorm: 1 });
    allReduce += r.parts.allReduceSeconds ?? 0;
  }
  const seconds = (performance.now() - t0) / 1000;
  const out = { rank, world, threads, steps, secondsPerStep: seconds / steps, allReduceSecondsPerStep: allReduce / steps, parameters: model.parameterCount };
  group?.close();
  model.dispose();
  batches.forEach((b) => b.dispose());
  return out;
}

function spawnWorker(world: number, rank: number, threads: number, port: number, steps: number): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [__filename, '--worker', String(world), String(rank), String(threads), String(port), String(steps)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`worker ${rank}/${world} exited with ${code}`))));
  });
}

async function main() {
  const i = process.argv.indexOf('--worker');
  if (i >= 0) {
    const [world, rank, threads, port, steps] = process.argv.slice(i + 1, i + 6).map(Number);
    console.log(JSON.stringify(await worker(world, rank, threads, port, steps)));
    return;
  }
  const steps = Number(process.argv[process.argv.indexOf('--steps') + 1] || 8);
  if (!fs.existsSync(path.join(dir, 'annotation.json'))) await radkit.data.synthesize({ out: dir, train: 160, val: 8, test: 8, size: 128, seed: 11 });
  const port = 29500 + Math.floor(Math.random() * 1000);
  const runs: Record<string, unknown>[] = [];
  const record = (label: string, r: WorkerResult[]) => {
    const slowest = Math.max(...r.map((x) => x.secondsPerStep));
    const row = { label, processes: r.length, threadsPerProcess: r[0].threads, secondsPerStep: slowest, studiesPerSecond: GLOBAL / slowest, allReduceMsPerStep: 1000 * Math.max(...r.map((x) => x.allReduceSecondsPerStep)), parameters: r[0].parameters };
    runs.push(row);
    console.log(JSON.stringify(row));
  };
  record('1 process, 1 thread', [await spawnWorker(1, 0, 1, 0, steps)]);
  record('1 process, 2 threads', [await spawnWorker(1, 0, 2, 0, steps)]);
  record('2 processes, 1 thread each', await Promise.all([spawnWorker(2, 0, 1, port, steps), spawnWorker(2, 1, 1, port, steps)]));
  const out = { model: 'xpronet small', globalBatch: GLOBAL, imageSize: 128, views: 2, steps, cpus: os.cpus().length, loadavg: os.loadavg(), torch: radkit.info().torchVersion, runs };
  fs.mkdirSync(path.join(__dirname, '../../bench/out'), { recursive: true });
  fs.writeFileSync(path.join(__dirname, '../../bench/out/distributed.json'), JSON.stringify(out, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
