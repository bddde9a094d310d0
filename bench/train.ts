// XProNet training throughput (studies/s) and peak RSS, small and paper presets, 1 and 2 LibTorch
// threads (the ratio is the parallel speed-up in the same run). Writes bench/out/train.json.
// Run: node dist/bench/train.js [--steps 6]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as radkit from '../lib/index.js';
import { TensorBatch } from '../lib/index.js';

function peakRssMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function main() {
  const steps = Number(process.argv[process.argv.indexOf('--steps') + 1] || 6);
  const dir = path.join(os.tmpdir(), 'radkit-bench-train');
  if (!fs.existsSync(path.join(dir, 'annotation.json'))) await radkit.data.synthesize({ out: dir, train: 160, val: 8, test: 8, size: 128, seed: 11 });
  const ds = radkit.data.readR2Gen(path.join(dir, 'annotation.json'), { labels: path.join(dir, 'labels.json') });
  const tokenizer = radkit.text.Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: 3 });
  const loader = new radkit.data.DataLoader(ds, { split: 'train', batchSize: 16, imageSize: 128, tokenizer, workers: 1 });
  const batches: TensorBatch[] = [];
  for await (const b of loader) batches.push(new TensorBatch(b));
  const results: Record<string, unknown>[] = [];
  for (const preset of ['small', 'paper'] as const) {
    for (const threads of [1, 2]) {
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

main();
