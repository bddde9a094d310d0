// XProNet training throughput (studies/s) and peak RSS, small and paper presets, 1 and 2 LibTorch
// threads (the ratio is the parallel speed-up in the same run). Writes bench/out/train.json.
// Run: node dist/bench/train.js [--steps 6] [--presets small,paper] [--threads 1,2]
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import * as os from 'node:os';
import * as path from 'node:path';
import * as radkit from '../lib/index.js';
import { TensorBatch } from '../lib/index.js';

function peakRssMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function main() {
  const usage = 'usage: node dist/bench/train.js [--steps N (default 6; the paper preset runs N/3, at least 2)] [--presets small,paper] [--threads 1,2]';
  const { values } = parseArgs({ options: { steps: { type: 'string', default: '6' }, presets: { type: 'string', default: 'small,paper' }, threads: { type: 'string', default: '1,2' }, help: { type: 'boolean' } }, strict: true });
  if (values.help) return console.log(usage);
  const steps = Number(values.steps);
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps must be a whole number >= 1, got ${values.steps}\n${usage}`);
  const presets = values.presets.split(',') as ('small' | 'paper')[];
  for (const p of presets) if (p !== 'small' && p !== 'paper') throw new Error(`--presets: unknown preset '${p}' (small, paper)\n${usage}`);
  const threadCounts = values.threads.split(',').map(Number);
  for (const t of threadCounts) if (!Number.isInteger(t) || t < 1) throw new Error(`--threads: ${values.threads} is not a list of whole numbers >= 1\n${usage}`);
  const dir = path.join(os.tmpdir(), 'radkit-bench-train');
  if (!fs.existsSync(path.join(dir, 'annotation.json'))) await radkit.data.synthesize({ out: dir, train: 160, val: 8, test: 8, size: 128, seed: 11 });
  const ds = radkit.data.readR2Gen(path.join(dir, 'annotation.json'), { labels: path.join(dir, 'labels.json') });
  const tokenizer = radkit.text.Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: 3 });
  const loader = new radkit.data.DataLoader(ds, { split: 'train', batchSize: 16, imageSize: 128, tokenizer, workers: 1 });
  const batches: TensorBatch[] = [];
  for await (const b of loader) batches.push(new TensorBatch(b));
  const results: Record<string, unknown>[] = [];
  for (const preset of presets) {
    for (const threads of threadCounts) {
      radkit.setNumThreads(threads);
      const model = radkit.xpronet({ tokenizer, preset });
      model.setupOptimizer({ lr: 1e-3 });
      await model.trainStep(batches[0]);
      const n = preset === 'paper' ? Math.max(2, Math.floor(steps / 3)) : steps;
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await model.trainStep(batches[i % batches.length], { clipNorm: 1 });
      const seconds = (performance.now() - t0) / 1000;
      results.push({ preset, threads, parameters: model.parameterCount, steps: n, studiesPerSecond: (n * 16) / seconds, secondsPerStep: seconds / n, peakRssMb: peakRssMb() });
      console.log(JSON.stringify(results.at(-1)));
      model.dispose();
    }
  }
  batches.forEach((b) => b.dispose());
  const out = { batchSize: 16, imageSize: 128, views: 2, torch: radkit.info().torchVersion, results };
  fs.mkdirSync(path.join(__dirname, '../../bench/out'), { recursive: true });
  fs.writeFileSync(path.join(__dirname, '../../bench/out/train.json'), JSON.stringify(out, null, 2));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 2;
});
