/**
 * XProNet on one device, radkit against eager Python PyTorch (bench/gpu_models.py, radkit's Python
 * twin of the model) at the same precision: one training step (Adam, clipping 1) of the paper preset
 * at batch 16 with two 224 px views, and beam-3 generation (60 tokens at most, no repeated trigram,
 * predicted labels). Both sides first check that they compute the same loss and gradient norm on one
 * batch without dropout (float32, TF32 off), then time. Reported: images/s of training, studies/s of
 * generation, peak GPU memory, the ratio radkit / PyTorch, with the card, driver and both torch versions.
 *
 *   node dist/bench/gpu_models.js [--device cuda] [--precision float32,bfloat16] [--steps 20]
 *        [--gen-batches 3] [--preset paper] [--batch 16] [--size 224] [--views 2] [--python python3]
 *
 * On a machine without CUDA, `--device cpu --preset small --batch 2 --size 64 --steps 2 --gen-batches 1`
 * runs the same code as a smoke check (no figures to report). Writes bench/out/gpu_models.json.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as radkit from '../lib/index.js';
import { Model, TensorBatch, writeSafetensors } from '../lib/index.js';
import { xpronetConfig } from '../lib/models/xpronet.js';
import type { Precision } from '../lib/models/model.js';
import { packageRoot } from '../lib/native.js';

interface Args {
  device: string;
  precisions: Precision[];
  steps: number;
  genBatches: number;
  preset: 'small' | 'paper';
  batch: number;
  size: number;
  views: number;
  python: string;
  warmup: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { device: radkit.info().cudaAvailable ? 'cuda' : 'cpu', precisions: ['float32', 'bfloat16'], steps: 20, genBatches: 3, preset: 'paper', batch: 16, size: 224, views: 2, python: process.env.RADKIT_PYTHON ?? 'python3', warmup: 3 };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    const num = () => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${argv[i]} needs a positive whole number, got ${v}`);
      i++;
      return n;
    };
    switch (argv[i]) {
      case '--device': a.device = radkit.checkDevice(v, 'gpu_models'); i++; break;
      case '--precision': a.precisions = v.split(',') as Precision[]; i++; break;
      case '--steps': a.steps = num(); break;
      case '--gen-batches': a.genBatches = num(); break;
      case '--batch': a.batch = num(); break;
      case '--size': a.size = num(); break;
      case '--views': a.views = num(); break;
      case '--warmup': a.warmup = num(); break;
      case '--preset': a.preset = v as 'small' | 'paper'; i++; break;
      case '--python': a.python = v; i++; break;
      default: throw new Error(`unknown option ${argv[i]}`);
    }
  }
  return a;
}

/** A 760-word vocabulary (IU X-Ray's size after R2Gen's threshold) and reports over it. */
function vocabulary() {
  const words = Array.from({ length: 760 }, (_, i) => `w${i}`);
  const reports = Array.from({ length: 64 }, (_, r) => Array.from({ length: 40 + (r % 20) }, (_, j) => words[(r * 131 + j * 17) % words.length]).join(' ') + ' .');
  return radkit.text.Tokenizer.build([...reports, words.join(' ')], { threshold: 1, maxLength: 60 });
}

function batches(a: Args, tokenizer: radkit.text.Tokenizer, n: number): TensorBatch[] {
  const out: TensorBatch[] = [];
  const HW = a.size * a.size;
  for (let k = 0; k < n; k++) {
    const images = Float32Array.from({ length: a.batch * a.views * HW }, (_, i) => ((i * 2654435761 + k * 97) >>> 24) / 255);
    const rows = Array.from({ length: a.batch }, (_, r) => Array.from({ length: 50 }, (_, j) => `w${(r * 37 + j * 11 + k * 5) % 760}`).join(' '));
    const enc = tokenizer.encodeBatch(rows);
    const labels = Int32Array.from({ length: a.batch * 14 }, (_, i) => 1 + ((i * 7 + k) % 3));
    out.push(new TensorBatch({ images: { data: images, shape: [a.batch, a.views, 1, a.size, a.size] }, tokens: { data: enc.data, shape: enc.shape, mask: new Uint8Array() } as never, labelStates: { data: labels, shape: [a.batch, 14] } }));
  }
  return out;
}

function python(a: Args, args: string[]): Record<string, unknown> {
  const r = spawnSync(a.python, [path.join(packageRoot, 'bench', 'gpu_models.py'), ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`gpu_models.py ${args[0]} failed (exit ${r.status}): ${(r.stderr || r.stdout).slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

async function radkitTime(a: Args, config: Record<string, unknown>, dir: string, bs: TensorBatch[], precision: Precision) {
  const model = Model.create('xpronet', config as never);
  const { tensors } = radkit.readSafetensors(path.join(dir, 'weights.safetensors'));
  model.loadTensors('', tensors);
  Object.values(tensors).forEach((t) => t.dispose());
  model.to(a.device);
  model.setupOptimizer({ kind: 'adam', lr: 1e-3 });
  const cuda = a.device.startsWith('cuda');
  for (let i = 0; i < a.warmup; i++) await model.trainStep(bs[i % bs.length], { clipNorm: 1, precision });
  radkit.cudaSynchronize();
  if (cuda) radkit.cudaMemory({ resetPeak: true });
  let t0 = performance.now();
  for (let i = 0; i < a.steps; i++) await model.trainStep(bs[i % bs.length], { clipNorm: 1, precision });
  radkit.cudaSynchronize();
  const trainS = (performance.now() - t0) / 1000 / a.steps;
  const trainPeak = cuda ? radkit.cudaMemory({ resetPeak: true })!.peakAllocatedBytes : 0;
  const gen = { method: 'beam' as const, beams: 3, maxLength: 60, noRepeatNgram: 3, systemOptions: { labelSource: 'predicted' as const } };
  await model.generate(bs[0], gen);
  radkit.cudaSynchronize();
  if (cuda) radkit.cudaMemory({ resetPeak: true });
  t0 = performance.now();
  for (let i = 0; i < a.genBatches; i++) await model.generate(bs[i % bs.length], gen);
  radkit.cudaSynchronize();
  const genS = (performance.now() - t0) / 1000 / a.genBatches;
  const genPeak = cuda ? radkit.cudaMemory()!.peakAllocatedBytes : 0;
  model.dispose();
  return {
    side: 'radkit', precision, trainStepMs: trainS * 1e3, trainImagesPerSecond: (a.batch * a.views) / trainS, trainPeakBytes: trainPeak,
    generateBatchMs: genS * 1e3, generateStudiesPerSecond: a.batch / genS, generatePeakBytes: genPeak,
  };
}

function environment(a: Args, py: string) {
  const smi = (() => {
    try {
      return execFileSync('nvidia-smi', ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'], { encoding: 'utf8' }).trim();
    } catch {
      return null;
    }
  })();
  const pyTorch = spawnSync(py, ['-c', 'import torch;print(torch.__version__, torch.version.cuda)'], { encoding: 'utf8' }).stdout?.trim() || null;
  return { device: a.device, gpu: smi, radkitTorch: radkit.info().torchVersion, pythonTorch: pyTorch, host: os.hostname(), cpus: os.cpus().length, loadavg: os.loadavg() };
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const tokenizer = vocabulary();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-gpu-models-'));
  const config = xpronetConfig({ tokenizer, preset: a.preset });
  const seed = Model.create('xpronet', config);
  const named = seed.namedTensors();
  writeSafetensors(path.join(dir, 'weights.safetensors'), named);
  Object.values(named).forEach((t) => t.dispose());
  const parameters = seed.parameterCount;
  seed.dispose();
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, lr: 1e-3 }));
  const bs = batches(a, tokenizer, 3);
  bs.forEach((b, i) => writeSafetensors(path.join(dir, `batch${i}.safetensors`), { images: b.images!, tokens: b.tokens!, labels: b.labels! }));
  const env = environment(a, a.python);
  console.log(`XProNet ${a.preset} (${(parameters / 1e6).toFixed(1)} M parameters), batch ${a.batch} x ${a.views} views at ${a.size} px on ${a.device}${env.gpu ? ` (${env.gpu})` : ''}; radkit LibTorch ${env.radkitTorch}, Python torch ${env.pythonTorch ?? 'not found'}`);

  // Same computation first: one step's loss and gradient norm without dropout, float32.
  const check = Model.create('xpronet', { ...config, dropout: 0 } as never);
  const { tensors } = radkit.readSafetensors(path.join(dir, 'weights.safetensors'));
  check.loadTensors('', tensors);
  Object.values(tensors).forEach((t) => t.dispose());
  check.to(a.device);
  check.setupOptimizer({ kind: 'adam', lr: 1e-3 });
  const mine = await check.trainStep(bs[0], { clipNorm: 0 });
  check.dispose();
  const theirs = env.pythonTorch ? (python(a, ['check', dir, '--device', a.device]) as { loss: number; gradNorm: number }) : null;
  const agreement = theirs ? { loss: [mine.loss, theirs.loss], gradNorm: [mine.gradNorm, theirs.gradNorm], relLoss: Math.abs(mine.loss - theirs.loss) / Math.abs(theirs.loss), relGradNorm: Math.abs(mine.gradNorm - theirs.gradNorm) / theirs.gradNorm } : null;
  console.log(agreement ? `same computation: loss ${mine.loss.toFixed(6)} vs ${theirs!.loss.toFixed(6)} (rel ${agreement.relLoss.toExponential(1)}), grad norm rel ${agreement.relGradNorm.toExponential(1)}` : 'Python torch not found: radkit only');

  const rows: Record<string, unknown>[] = [];
  for (const precision of a.precisions) {
    const r = await radkitTime(a, config, dir, bs, precision);
    const p = env.pythonTorch ? python(a, ['time', dir, '--device', a.device, '--precision', precision, '--steps', String(a.steps), '--gen-batches', String(a.genBatches), '--warmup', String(a.warmup)]) : null;
    rows.push({ precision, radkit: r, pytorch: p, trainRatio: p ? r.trainImagesPerSecond / (p.trainImagesPerSecond as number) : null, generateRatio: p ? r.generateStudiesPerSecond / (p.generateStudiesPerSecond as number) : null });
  }
  const gib = (b: unknown) => (typeof b === 'number' && b > 0 ? `${(b / 2 ** 30).toFixed(2)} GiB` : '-');
  console.log('\nprecision  side      train img/s  step ms  peak        gen studies/s  peak');
  for (const row of rows) {
    for (const side of ['radkit', 'pytorch'] as const) {
      const x = row[side] as Record<string, number> | null;
      if (!x) continue;
      console.log(`${String(row.precision).padEnd(10)} ${side.padEnd(9)} ${x.trainImagesPerSecond.toFixed(1).padStart(11)} ${x.trainStepMs.toFixed(1).padStart(8)}  ${gib(x.trainPeakBytes).padEnd(10)} ${x.generateStudiesPerSecond.toFixed(2).padStart(14)}  ${gib(x.generatePeakBytes)}`);
    }
    if (row.trainRatio) console.log(`${''.padEnd(10)} radkit / PyTorch: training ${(row.trainRatio as number).toFixed(2)}x, generation ${(row.generateRatio as number).toFixed(2)}x`);
  }
  const out = path.join(packageRoot, 'bench', 'out');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'gpu_models.json'), JSON.stringify({ settings: a, parameters, environment: env, agreement, rows }, null, 2));
  for (const b of bs) b.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
