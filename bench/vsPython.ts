/**
 * radkit against Python PyTorch eager, side by side (`npm run bench -- --vs-python`, or
 * `node dist/bench/vsPython.js [options]`). The Python twins live in bench/python/ and run on the
 * Python torch found by --python, RADKIT_PYTHON, /usr/bin/python3 or python3 (the first that imports
 * torch); without one the bench says so and exits 0.
 *
 * For each configuration radkit writes its weights and inputs (safetensors) and both sides first
 * check that they compute the same thing (XProNet: the training loss and gradient norm of one step
 * without dropout; maxSimilarity: the scores, against both Python formulations), then each timed run is its own process, radkit and
 * Python alternating (ABAB...), with identical thread settings: OMP_NUM_THREADS and
 * OPENBLAS_NUM_THREADS = N and setNumThreads(N) / torch.set_num_threads(N); "1 pinned core" adds
 * `taskset -c 0`. Reported: medians over --reps runs, ratios of medians, peak RSS, and
 * /proc/loadavg before and after each section (the machine may be shared). Writes bench/out/vsPython.json.
 *
 * XProNet generation ('generate'): cached greedy and beam-3 decoding of 16 studies, EOS blocked so both
 * sides decode exactly --length tokens; the check is that both choose the same tokens.
 *
 * Options: --only xpronet,generate,maxsim,mq,sinkhorn   --reps N (3)   --steps N (XProNet timed steps per run; 8 small / 3 paper; generate: timed calls per run, 3)
 *          --presets small,paper   --grid quick|full (maxSimilarity sizes)   --python PATH
 *          --baseline (XProNet: also radkit's step before the fused clipping/optimizer, RADKIT_STEP_BASELINE=1)
 * Each XProNet run reports its per-phase times (radkit: RADKIT_PROFILE_STEPS, native/binding/step_profile.h).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as radkit from '../lib/index.js';
import { Model, Tensor, TensorBatch, ops, writeSafetensors } from '../lib/index.js';
import { xpronetConfig } from '../lib/models/xpronet.js';
import { median, writeJson } from './opsHarness.js';
import { loadNative, packageRoot } from '../lib/native.js';
import type { NativeTesting } from '../typings/native.js';

const SECTIONS = ['xpronet', 'generate', 'maxsim', 'mq', 'sinkhorn'] as const;
type Section = (typeof SECTIONS)[number];

interface Args {
  only: Section[];
  reps: number;
  steps?: number;
  presets: ('small' | 'paper')[];
  grid: 'quick' | 'full';
  baseline: boolean;
  settings: Setting[];
  python?: string;
  child?: string[];
}

const HELP = `radkit against Python PyTorch eager twins (bench/python/), side by side: equivalence check, then timed runs.
usage: node dist/bench/vsPython.js [options]   (or: npm run bench -- --vs-python [options])
  --only LIST      sections among ${SECTIONS.join(',')} (default: all)
  --reps N         timed runs per side, alternating radkit and Python (default 3)
  --steps N        XProNet timed steps per run (default 8 small, 3 paper); generate: timed calls per run (default 3)
  --presets LIST   XProNet presets among small,paper (default both)
  --grid G         maxSimilarity sizes: quick (Bi=Bt=32, D=256) or full (Bi,Bt in 8,32,112 x D in 64,256,768; default)
  --baseline       XProNet: also radkit's step before the fused clipping/optimizer (RADKIT_STEP_BASELINE=1)
  --settings LIST  thread settings among pinned (1 pinned core), 2 (2 threads) for xpronet, generate, mq, sinkhorn (default both)
  --python PATH    the Python to use (default: RADKIT_PYTHON, /usr/bin/python3, python3: the first that imports torch)
Writes bench/out/vsPython.json.`;

function usage(msg: string): never {
  console.error(`vsPython: ${msg}\nusage: node dist/bench/vsPython.js [--only ${SECTIONS.join(',')}] [--reps N] [--steps N] [--presets small,paper] [--grid quick|full] [--baseline] [--python PATH]`);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { only: [...SECTIONS], reps: 3, presets: ['small', 'paper'], grid: 'full', baseline: false, settings: SETTINGS };
  if (argv[0] === '--child') return { ...a, child: argv.slice(1) };
  const value = (i: number, name: string) => {
    if (i + 1 >= argv.length || argv[i + 1].startsWith('--')) usage(`${name} needs a value`);
    return argv[i + 1];
  };
  const int = (s: string, name: string) => {
    if (!/^\d+$/.test(s) || Number(s) < 1) usage(`${name} must be a whole number >= 1, got '${s}'`);
    return Number(s);
  };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i];
    if (k === '--help' || k === '-h') {
      console.log(HELP);
      process.exit(0);
    }
    if (k === '--baseline') {
      a.baseline = true;
      i -= 1;
      continue;
    }
    const v = value(i, k);
    if (k === '--only') {
      const s = v.split(',');
      for (const x of s) if (!SECTIONS.includes(x as Section)) usage(`--only: unknown section '${x}'`);
      a.only = s as Section[];
    } else if (k === '--reps') a.reps = int(v, k);
    else if (k === '--steps') a.steps = int(v, k);
    else if (k === '--presets') {
      const s = v.split(',');
      for (const x of s) if (x !== 'small' && x !== 'paper') usage(`--presets: unknown preset '${x}'`);
      a.presets = s as Args['presets'];
    } else if (k === '--grid') {
      if (v !== 'quick' && v !== 'full') usage(`--grid must be quick or full, got '${v}'`);
      a.grid = v;
    } else if (k === '--settings') {
      const s = v.split(',');
      for (const x of s) if (x !== 'pinned' && x !== '2') usage(`--settings: unknown setting '${x}' (pinned, 2)`);
      a.settings = SETTINGS.filter((x) => s.includes(x.pinned ? 'pinned' : '2'));
    } else if (k === '--python') a.python = v;
    else usage(`unknown option '${k}'`);
  }
  return a;
}

const PY_DIR = path.join(packageRoot, 'bench', 'python');

function findPython(explicit?: string): string | null {
  const candidates = explicit ? [explicit] : [process.env.RADKIT_PYTHON, '/usr/bin/python3', 'python3'].filter((c): c is string => !!c);
  for (const c of candidates) {
    try {
      execFileSync(c, ['-c', 'import torch'], { stdio: 'ignore' });
      return c;
    } catch {
      if (explicit) usage(`--python ${explicit} cannot import torch`);
    }
  }
  return null;
}

const loadavg = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);

interface Setting {
  name: string;
  threads: number;
  pinned: boolean;
}
const SETTINGS: Setting[] = [
  { name: '1 pinned core', threads: 1, pinned: true },
  { name: '2 threads', threads: 2, pinned: false },
];

/** Runs one process with the setting's thread environment; returns its last JSON line. */
function runChild(cmd: string, args: string[], s: Setting, extraEnv: Record<string, string> = {}): Record<string, number> {
  const env = { ...process.env, ...extraEnv, OMP_NUM_THREADS: String(s.threads), OPENBLAS_NUM_THREADS: String(s.threads), RADKIT_PROFILE_STEPS: '1' };
  const [file, argv] = s.pinned ? ['taskset', ['-c', '0', cmd, ...args]] : [cmd, args];
  const r = spawnSync(file, argv, { env, encoding: 'utf8', maxBuffer: 64 << 20, cwd: PY_DIR });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.signal ? `killed by ${r.signal}` : `exit ${r.status}`}):\n${r.stderr}\n${r.stdout}`);
  const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (!line) throw new Error(`${cmd} ${args.join(' ')} printed no result:\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(line) as Record<string, number>;
}

const radkitChild = (args: string[], s: Setting, extraEnv: Record<string, string> = {}) =>
  runChild(process.execPath, [__filename, '--child', ...args, '--threads', String(s.threads)], s, extraEnv);

/** Runs each side once per repetition, in turn (ABAB... or ABCABC...). */
function alternate(reps: number, ...sides: (() => Record<string, number>)[]) {
  const out: Record<string, number>[][] = sides.map(() => []);
  for (let i = 0; i < reps; i++) sides.forEach((f, k) => out[k].push(f()));
  return out;
}

const med = (rows: Record<string, number>[], key: string) => median(rows.map((r) => r[key]));
/** Median ms per step of each phase a side reported (keys 'ms.<phase>'). */
const phaseMedians = (rows: Record<string, number>[]) =>
  Object.fromEntries(Object.keys(rows[0] ?? {}).filter((k) => k.startsWith('ms.')).map((k) => [k.slice(3), med(rows, k)]));
const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(1e-12, Math.abs(b));

// ---------------------------------------------------------------- XProNet
interface XpronetFiles {
  preset: 'small' | 'paper';
  dir: string;
  parameters: number;
}

/** Per preset: a folder with config.json, the initial weights and three batches of 16 studies (128 px), for both sides. */
async function xpronetFiles(presets: Args['presets']): Promise<XpronetFiles[]> {
  const root = path.join(os.tmpdir(), 'radkit-bench-vspython');
  const data = path.join(root, 'synth');
  if (!fs.existsSync(path.join(data, 'annotation.json'))) await radkit.data.synthesize({ out: data, train: 64, val: 8, test: 8, size: 128, seed: 11 });
  const ds = radkit.data.readR2Gen(path.join(data, 'annotation.json'), { labels: path.join(data, 'labels.json') });
  const tokenizer = radkit.text.Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: 3 });
  const loader = new radkit.data.DataLoader(ds, { split: 'train', batchSize: 16, imageSize: 128, tokenizer, workers: 1 });
  const batches: TensorBatch[] = [];
  for await (const b of loader) {
    if (b.images && b.images.shape[0] === 16) batches.push(new TensorBatch(b));
    if (batches.length === 3) break;
  }
  const out: XpronetFiles[] = [];
  for (const preset of presets) {
    const dir = path.join(root, preset);
    fs.mkdirSync(dir, { recursive: true });
    const config = xpronetConfig({ tokenizer, preset });
    const model = Model.create('xpronet', config);
    const named = model.namedTensors();
    writeSafetensors(path.join(dir, 'weights.safetensors'), named);
    Object.values(named).forEach((t) => t.dispose());
    const parameters = model.parameterCount;
    model.dispose();
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, lr: 1e-3 }));
    batches.forEach((b, i) => writeSafetensors(path.join(dir, `batch${i}.safetensors`), { images: b.images!, tokens: b.tokens!, labels: b.labels! }));
    out.push({ preset, dir, parameters });
  }
  batches.forEach((b) => b.dispose());
  return out;
}

async function xpronetSection(a: Args, python: string) {
  const rows: Record<string, unknown>[] = [];
  for (const { preset, dir, parameters } of await xpronetFiles(a.presets)) {
    // Same computation: one training step's loss and gradient norm without dropout, same weights and batch.
    const mine = radkitChild(['xpronet-check', dir], SETTINGS[1]);
    const theirs = runChild(python, ['xpronet.py', 'check', dir, '--threads', '2'], SETTINGS[1]);
    const check = { radkitLoss: mine.loss, pythonLoss: theirs.loss, radkitGradNorm: mine.gradNorm, pythonGradNorm: theirs.gradNorm, radkitParameters: parameters, pythonParameters: theirs.parameters };
    const same = rel(mine.loss, theirs.loss) < 1e-4 && rel(mine.gradNorm, theirs.gradNorm) < 1e-3 && parameters === theirs.parameters;
    console.log(`xpronet ${preset}: ${parameters} parameters; loss radkit ${mine.loss.toFixed(6)} python ${theirs.loss.toFixed(6)}; grad norm ${mine.gradNorm.toFixed(5)} / ${theirs.gradNorm.toFixed(5)} -> ${same ? 'same' : 'DIFFERENT'}`);
    if (!same) throw new Error(`xpronet ${preset}: radkit and the Python twin do not compute the same step: ${JSON.stringify(check)}`);
    const steps = String(a.steps ?? (preset === 'paper' ? 3 : 8));
    for (const s of a.settings) {
      const load0 = loadavg();
      const sides = [
        () => radkitChild(['xpronet-time', dir, '--steps', steps], s),
        () => runChild(python, ['xpronet.py', 'time', dir, '--threads', String(s.threads), '--steps', steps], s),
      ];
      // --baseline: also radkit's step as it was before the fused clipping and optimizer (RADKIT_STEP_BASELINE).
      if (a.baseline) sides.push(() => radkitChild(['xpronet-time', dir, '--steps', steps], s, { RADKIT_STEP_BASELINE: '1' }));
      const [r, p, base] = alternate(a.reps, ...sides);
      const row = {
        preset, setting: s.name, parameters, steps: Number(steps), reps: a.reps,
        radkitStudiesPerSecond: med(r, 'studiesPerSecond'), pythonStudiesPerSecond: med(p, 'studiesPerSecond'),
        ratio: med(r, 'studiesPerSecond') / med(p, 'studiesPerSecond'),
        radkitPeakRssMb: med(r, 'peakRssMb'), pythonPeakRssMb: med(p, 'peakRssMb'),
        radkitRuns: r.map((x) => x.studiesPerSecond), pythonRuns: p.map((x) => x.studiesPerSecond),
        radkitPhasesMs: phaseMedians(r), pythonPhasesMs: phaseMedians(p),
        ...(base ? { baselineStudiesPerSecond: med(base, 'studiesPerSecond'), baselinePeakRssMb: med(base, 'peakRssMb'), baselinePhasesMs: phaseMedians(base) } : {}),
        loadavg: [load0, loadavg()], check,
      };
      rows.push(row);
      const fmt = (ph: Record<string, number>) => Object.entries(ph).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ');
      console.log(`  phases (ms/step) radkit: ${fmt(row.radkitPhasesMs)}; python: ${fmt(row.pythonPhasesMs)}`);
      if (base) console.log(`  radkit before the fused step: ${med(base, 'studiesPerSecond').toFixed(2)} studies/s; phases ${fmt(phaseMedians(base))}`);
      console.log(`xpronet ${preset.padEnd(5)} ${s.name.padEnd(13)} radkit ${row.radkitStudiesPerSecond.toFixed(2)} studies/s, python ${row.pythonStudiesPerSecond.toFixed(2)} -> x${row.ratio.toFixed(2)}; peak RSS ${row.radkitPeakRssMb.toFixed(0)} / ${row.pythonPeakRssMb.toFixed(0)} MB; load ${load0.join(' ')}`);
    }
  }
  return rows;
}

const GENERATE_LENGTH = 60;

async function generateSection(a: Args, python: string) {
  const rows: Record<string, unknown>[] = [];
  const reps = String(a.steps ?? 3);
  for (const { preset, dir, parameters } of await xpronetFiles(a.presets)) {
    for (const beams of [1, 3]) {
      const size = ['--beams', String(beams), '--length', String(GENERATE_LENGTH), '--reps', reps];
      for (const s of a.settings) {
        const load0 = loadavg();
        const [r, p] = alternate(
          a.reps,
          () => radkitChild(['xpronet-generate', dir, ...size], s),
          () => runChild(python, ['xpronet.py', 'generate', dir, ...size, '--threads', String(s.threads)], s),
        );
        // Same computation: both sides chose the same tokens (every run; greedy and beam alike).
        const same = r.every((x) => JSON.stringify(x.tokens) === JSON.stringify(p[0].tokens)) && p.every((x) => JSON.stringify(x.tokens) === JSON.stringify(p[0].tokens));
        if (!same) throw new Error(`xpronet ${preset} generation (beams ${beams}): radkit and the Python twin chose different tokens`);
        const studies = (r[0].tokens as unknown as number[][]).length;
        const row = {
          preset, parameters, beams, studies, tokens: GENERATE_LENGTH, setting: s.name, reps: a.reps, callsPerRun: Number(reps),
          radkitMs: med(r, 'ms'), pythonMs: med(p, 'ms'), ratio: med(p, 'ms') / med(r, 'ms'),
          radkitTokensPerSecond: (studies * GENERATE_LENGTH * 1000) / med(r, 'ms'), pythonTokensPerSecond: (studies * GENERATE_LENGTH * 1000) / med(p, 'ms'),
          radkitPeakRssMb: med(r, 'peakRssMb'), pythonPeakRssMb: med(p, 'peakRssMb'), sameTokens: same, loadavg: [load0, loadavg()],
        };
        rows.push(row);
        console.log(`xpronet ${preset.padEnd(5)} generate beams ${beams} ${s.name.padEnd(13)} ${row.radkitMs.toFixed(0)} vs ${row.pythonMs.toFixed(0)} ms per ${studies} studies x ${GENERATE_LENGTH} tokens (x${row.ratio.toFixed(2)}); same tokens; peak RSS ${row.radkitPeakRssMb.toFixed(0)} / ${row.pythonPeakRssMb.toFixed(0)} MB; load ${load0.join(' ')}`);
      }
    }
  }
  return rows;
}

async function xpronetChild(mode: string, dir: string, rest: string[]) {
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, number | string | number[]> & { lr: number };
  const { lr, ...native } = config;
  if (mode === 'check') native.dropout = 0;
  const model = Model.create('xpronet', native);
  const { tensors } = radkit.readSafetensors(path.join(dir, 'weights.safetensors'));
  model.loadTensors('', tensors);
  Object.values(tensors).forEach((t) => t.dispose());
  const batches: TensorBatch[] = [];
  for (let i = 0; fs.existsSync(path.join(dir, `batch${i}.safetensors`)); i++) {
    const { tensors: b } = radkit.readSafetensors(path.join(dir, `batch${i}.safetensors`));
    batches.push(new TensorBatch({}, { extras: {} }));
    Object.assign(batches[i], { images: b.images, tokens: b.tokens, labels: b.labels });
  }
  if (mode === 'generate') {
    const num = (k: string) => Number(rest[rest.indexOf(k) + 1]);
    const [beams, length, reps] = ['--beams', '--length', '--reps'].map(num);
    const options = { method: beams > 1 ? 'beam' : 'greedy', beams, maxLength: length, minLength: length, noRepeatNgram: 0, systemOptions: { labelSource: 'oracle' } } as const;
    const tokens = (await model.generate(batches[0], options)).tokens;  // warm-up, and the tokens to compare
    const times: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      await model.generate(batches[0], options);
      times.push(performance.now() - t0);
    }
    const peak = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    console.log(JSON.stringify({ side: 'radkit', ms: median(times), tokens, peakRssMb: peak ? Number(peak[1]) / 1024 : NaN, threads: radkit.getNumThreads() }));
  } else if (mode === 'check') {
    model.setupOptimizer({ lr: 1e-30 });
    const r = await model.trainStep(batches[0], { clipNorm: 0 });
    console.log(JSON.stringify({ loss: r.loss, gradNorm: r.gradNorm }));
  } else {
    const steps = Number(rest[rest.indexOf('--steps') + 1]);
    model.setupOptimizer({ lr });
    await model.trainStep(batches[0], { clipNorm: 1 });  // warm-up
    const testing = (loadNative() as unknown as { testing: { stepPhases?: () => Record<string, number> } }).testing;
    testing.stepPhases?.();  // phases of the timed steps only (RADKIT_PROFILE_STEPS is set by the harness)
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await model.trainStep(batches[(i + 1) % batches.length], { clipNorm: 1 });
    const seconds = (performance.now() - t0) / 1000;
    const phases = Object.fromEntries(Object.entries(testing.stepPhases?.() ?? {}).map(([k, v]) => [`ms.${k}`, (1000 * v) / steps]));
    const peak = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    console.log(JSON.stringify({ side: 'radkit', studiesPerSecond: (steps * batches[0].images!.shape[0]) / seconds, secondsPerStep: seconds / steps, peakRssMb: peak ? Number(peak[1]) / 1024 : NaN, threads: radkit.getNumThreads(), ...phases }));
  }
  batches.forEach((b) => b.dispose());
  model.dispose();
}

// ---------------------------------------------------------------- maxSimilarity
function maxsimGrid(grid: 'quick' | 'full'): number[][] {
  if (grid === 'quick') return [[32, 256]];
  const out: number[][] = [];
  for (const b of [8, 32, 112]) for (const d of [64, 256, 768]) out.push([b, d]);
  return out;
}

async function maxsimSection(a: Args, python: string) {
  const root = path.join(os.tmpdir(), 'radkit-bench-vspython', 'maxsim');
  fs.mkdirSync(root, { recursive: true });
  const N = 256, K = 100;
  // Same computation, at a small size: scores of radkit's op against the einsum + max composite.
  {
    radkit.manualSeed(3);
    const image = Tensor.randn([4, N, 64]), text = Tensor.randn([5, K, 64]);
    const r = ops.maxSimilarity(image, text);
    const file = path.join(root, 'check.safetensors');
    writeSafetensors(file, { image, text, imageToText: r.imageToText, textToImage: r.textToImage });
    [image, text, r.imageToText, r.textToImage].forEach((t) => t.dispose());
    const c = runChild(python, ['ops.py', 'maxsim-check', file], SETTINGS[1]);
    console.log(`maxSimilarity check: max |radkit - einsum+max| = ${c.maxAbsDiff.toExponential(2)}`);
    if (!(c.maxAbsDiff < 1e-3)) throw new Error(`maxSimilarity: radkit and the Python composite differ by ${c.maxAbsDiff}`);
  }
  const rows: Record<string, unknown>[] = [];
  const s = SETTINGS[0];
  for (const [B, D] of maxsimGrid(a.grid)) {
    const load0 = loadavg();
    const size = ['--bi', String(B), '--bt', String(B), '--n', String(N), '--k', String(K), '--d', String(D)];
    const reps = B >= 112 ? '2' : '5';
    // Two Python formulations: the plain einsum + max, and one 2-D GEMM + amax (the faster way to write it).
    const [r, p, q] = alternate(
      a.reps,
      () => radkitChild(['maxsim-time', ...size, '--reps', reps], s),
      () => runChild(python, ['ops.py', 'maxsim-time', ...size, '--reps', reps, '--threads', '1', '--form', 'einsum'], s),
      () => runChild(python, ['ops.py', 'maxsim-time', ...size, '--reps', reps, '--threads', '1', '--form', 'matmul'], s),
    );
    const row = {
      Bi: B, Bt: B, N, K, D, setting: s.name,
      radkitForwardMs: med(r, 'forwardMs'), pythonForwardMs: med(p, 'forwardMs'),
      forwardRatio: med(p, 'forwardMs') / med(r, 'forwardMs'),
      radkitFwdBwdMs: med(r, 'fwdBwdMs'), pythonFwdBwdMs: med(p, 'fwdBwdMs'),
      fwdBwdRatio: med(p, 'fwdBwdMs') / med(r, 'fwdBwdMs'),
      radkitPeakExtraMb: med(r, 'peakExtraMb'), pythonPeakExtraMb: med(p, 'peakExtraMb'),
      pythonMatmulForwardMs: med(q, 'forwardMs'), forwardRatioMatmul: med(q, 'forwardMs') / med(r, 'forwardMs'),
      pythonMatmulFwdBwdMs: med(q, 'fwdBwdMs'), fwdBwdRatioMatmul: med(q, 'fwdBwdMs') / med(r, 'fwdBwdMs'),
      pythonMatmulPeakExtraMb: med(q, 'peakExtraMb'),
      loadavg: [load0, loadavg()],
    };
    rows.push(row);
    console.log(`maxSimilarity Bi=Bt=${String(B).padStart(3)} D=${String(D).padStart(3)}: forward ${row.radkitForwardMs.toFixed(1)} vs einsum ${row.pythonForwardMs.toFixed(1)} (x${row.forwardRatio.toFixed(2)}) / matmul ${row.pythonMatmulForwardMs.toFixed(1)} ms (x${row.forwardRatioMatmul.toFixed(2)}), fwd+bwd ${row.radkitFwdBwdMs.toFixed(1)} vs ${row.pythonFwdBwdMs.toFixed(1)} (x${row.fwdBwdRatio.toFixed(2)}) / ${row.pythonMatmulFwdBwdMs.toFixed(1)} ms (x${row.fwdBwdRatioMatmul.toFixed(2)}); peak extra ${row.radkitPeakExtraMb.toFixed(0)} / ${row.pythonPeakExtraMb.toFixed(0)} / ${row.pythonMatmulPeakExtraMb.toFixed(0)} MB`);
  }
  return rows;
}

// ---------------------------------------------------------------- memoryQuery (XProNet size) and sinkhorn (OTDRG size)
const MQ = { B: 16, L: 98, S: 280, D: 512, k: 15, heads: 8 };
const SK = { B: 64, M: 196, N: 56, D: 512, iters: 100, eps: 0.1 };

function opInputs(op: 'mq' | 'sinkhorn'): Tensor[] {
  radkit.manualSeed(0);
  if (op === 'mq') return [Tensor.randn([MQ.B, MQ.L, MQ.D]), Tensor.randn([MQ.S, MQ.D]), Tensor.randn([MQ.S, MQ.D])];
  const x = Tensor.randn([SK.B, SK.M, SK.D]), y = Tensor.randn([SK.B, SK.N, SK.D]);
  const c = radkit.noGrad(() => ops.euclideanCost(x, y));
  x.dispose();
  y.dispose();
  return [c];
}

function opRun(op: 'mq' | 'sinkhorn', inputs: Tensor[]): Tensor {
  if (op === 'mq') {
    const r = ops.memoryQuery(inputs[0], inputs[1], inputs[2], { k: MQ.k, heads: MQ.heads, similarity: 'scaled-dot', weighting: 'softmax' });
    r.indices.dispose();
    r.weights.dispose();
    return r.response;
  }
  const r = ops.sinkhorn(inputs[0], { epsilon: SK.eps, maxIterations: SK.iters });
  r.plan.dispose();
  return r.distance;
}

async function opSection(op: 'mq' | 'sinkhorn', a: Args, python: string) {
  const root = path.join(os.tmpdir(), 'radkit-bench-vspython', op);
  fs.mkdirSync(root, { recursive: true });
  const inputs = opInputs(op);
  const out = radkit.noGrad(() => opRun(op, inputs));
  const file = path.join(root, 'check.safetensors');
  writeSafetensors(file, op === 'mq' ? { query: inputs[0], keys: inputs[1], values: inputs[2], response: out } : { cost: inputs[0], distance: out });
  [...inputs, out].forEach((t) => t.dispose());
  const c = runChild(python, ['ops.py', `${op}-check`, file], SETTINGS[1]);
  const diff = op === 'mq' ? c.maxAbsDiff : c.maxRelDiff;
  console.log(`${op} check: ${op === 'mq' ? 'max |radkit - composite|' : 'max relative distance difference'} = ${diff.toExponential(2)}`);
  if (!(diff < 1e-3)) throw new Error(`${op}: radkit and the Python composite differ by ${diff}`);
  const rows: Record<string, unknown>[] = [];
  for (const s of a.settings) {
    const load0 = loadavg();
    const [r, p] = alternate(
      a.reps,
      () => radkitChild([`${op}-time`, '--reps', '5'], s),
      () => runChild(python, ['ops.py', `${op}-time`, '--reps', '5', '--threads', String(s.threads)], s),
    );
    const row = {
      op, size: op === 'mq' ? MQ : SK, setting: s.name,
      radkitForwardMs: med(r, 'forwardMs'), pythonForwardMs: med(p, 'forwardMs'), forwardRatio: med(p, 'forwardMs') / med(r, 'forwardMs'),
      radkitFwdBwdMs: med(r, 'fwdBwdMs'), pythonFwdBwdMs: med(p, 'fwdBwdMs'), fwdBwdRatio: med(p, 'fwdBwdMs') / med(r, 'fwdBwdMs'),
      radkitPeakExtraMb: med(r, 'peakExtraMb'), pythonPeakExtraMb: med(p, 'peakExtraMb'), loadavg: [load0, loadavg()],
    };
    rows.push(row);
    console.log(`${op} ${s.name.padEnd(13)}: forward ${row.radkitForwardMs.toFixed(1)} vs ${row.pythonForwardMs.toFixed(1)} ms (x${row.forwardRatio.toFixed(2)}), fwd+bwd ${row.radkitFwdBwdMs.toFixed(1)} vs ${row.pythonFwdBwdMs.toFixed(1)} ms (x${row.fwdBwdRatio.toFixed(2)}); peak extra ${row.radkitPeakExtraMb.toFixed(0)} / ${row.pythonPeakExtraMb.toFixed(0)} MB`);
  }
  return rows;
}

function opChild(op: 'mq' | 'sinkhorn', rest: string[]) {
  const reps = Number(rest[rest.indexOf('--reps') + 1]);
  const inputs = opInputs(op);
  for (const t of inputs) t.requiresGrad = true;
  const time = (fn: () => void) => medianMs(fn, reps);
  const base = statusKb('VmRSS');
  fs.writeFileSync('/proc/self/clear_refs', '5');
  const forwardMs = radkit.noGrad(() => time(() => opRun(op, inputs).dispose()));
  const fwdBwdMs = time(() => {
    const o = opRun(op, inputs);
    const s = radkit.sum(o);
    s.backward();
    [o, s].forEach((t) => t.dispose());
  });
  console.log(JSON.stringify({ forwardMs, fwdBwdMs, peakExtraMb: (statusKb('VmHWM') - base) / 1024 }));
}

/** The median of `reps` timed calls of `fn` after one warm-up call, in ms. */
function medianMs(fn: () => void, reps: number): number {
  fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

function statusKb(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function maxsimChild(rest: string[]) {
  const num = (k: string) => Number(rest[rest.indexOf(k) + 1]);
  const [Bi, Bt, N, K, D, reps] = ['--bi', '--bt', '--n', '--k', '--d', '--reps'].map(num);
  radkit.manualSeed(1);
  const image = Tensor.randn([Bi, N, D], { requiresGrad: true }), text = Tensor.randn([Bt, K, D], { requiresGrad: true });
  const time = (fn: () => void) => medianMs(fn, reps);
  const base = statusKb('VmRSS');
  fs.writeFileSync('/proc/self/clear_refs', '5');
  const forwardMs = radkit.noGrad(() => time(() => {
    const r = ops.maxSimilarity(image, text);
    r.imageToText.dispose();
    r.textToImage.dispose();
  }));
  const testing = (loadNative() as unknown as { testing: NativeTesting }).testing;
  const ones = Tensor.ones([Bi, Bt]);
  const fwdBwdMs = time(() => {
    const r = ops.maxSimilarity(image, text);
    testing.backwardMany([Tensor.handle(r.imageToText), Tensor.handle(r.textToImage)], [Tensor.handle(ones), Tensor.handle(ones)]);
    r.imageToText.dispose();
    r.textToImage.dispose();
  });
  const peakExtraMb = (statusKb('VmHWM') - base) / 1024;
  console.log(JSON.stringify({ forwardMs, fwdBwdMs, peakExtraMb }));
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  if (a.child) {
    const [kind, ...rest] = a.child;
    const ti = rest.indexOf('--threads');
    if (ti >= 0) radkit.setNumThreads(Number(rest[ti + 1]));
    if (kind === 'xpronet-check' || kind === 'xpronet-time' || kind === 'xpronet-generate') return xpronetChild(kind.slice(8), rest[0], rest);
    if (kind === 'maxsim-time') return maxsimChild(rest);
    if (kind === 'mq-time' || kind === 'sinkhorn-time') return opChild(kind === 'mq-time' ? 'mq' : 'sinkhorn', rest);
    usage(`unknown child '${kind}'`);
  }
  const python = findPython(a.python);
  if (!python) {
    console.log('vsPython: no Python with torch found (tried RADKIT_PYTHON, /usr/bin/python3, python3); nothing to compare');
    return;
  }
  const torchVersion = execFileSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).trim();
  console.log(`radkit ${radkit.info().torchVersion} (LibTorch) vs Python torch ${torchVersion} (${python}); load ${loadavg().join(' ')}`);
  const out: Record<string, unknown> = { date: new Date().toISOString(), python, pythonTorch: torchVersion, radkitTorch: radkit.info().torchVersion, cpus: os.cpus().length };
  if (a.only.includes('xpronet')) out.xpronet = await xpronetSection(a, python);
  if (a.only.includes('generate')) out.xpronetGenerate = await generateSection(a, python);
  if (a.only.includes('maxsim')) out.maxSimilarity = await maxsimSection(a, python);
  if (a.only.includes('mq')) out.memoryQuery = await opSection('mq', a, python);
  if (a.only.includes('sinkhorn')) out.sinkhorn = await opSection('sinkhorn', a, python);
  console.log(`wrote ${writeJson(packageRoot, 'vsPython', out)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
