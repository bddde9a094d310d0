/**
 * Shared harness for the op benchmarks (bench/sinkhorn.ts, bench/memoryQuery.ts,
 * bench/adaptivePatchSample.ts, bench/maxSimilarity.ts): medians of repeated timings in one process,
 * and peak extra memory of one call, either measured in a fresh child process per variant (Linux:
 * VmHWM is reset through /proc/self/clear_refs after the inputs are built, so the figure is the
 * call's own peak resident growth, LibTorch's native allocations included) or counted in process by
 * the tracking LibTorch CPU allocator of exports.testing (trackedBench).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tensor, getNumThreads, manualSeed, setNumThreads } from '../lib/index.js';
import { loadNative, packageRoot } from '../lib/native.js';
import type { NativeTesting } from '../typings/native.js';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Median wall time in ms of `reps` calls after `warmup` calls. */
export function timeMs(fn: () => void, reps: number, warmup = 1): number {
  for (let i = 0; i < warmup; i++) fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(ts);
}

function statusKb(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** In a child: builds inputs with `setup`, resets the peak, runs `run` once, prints the peak growth (bytes). */
export function childMeasure(setup: () => unknown, run: (inputs: unknown) => void): void {
  const inputs = setup();
  if (global.gc) global.gc();
  const base = statusKb('VmRSS');
  fs.writeFileSync('/proc/self/clear_refs', '5');
  run(inputs);
  const peak = statusKb('VmHWM');
  process.stdout.write(JSON.stringify({ peakExtraBytes: Math.max(0, peak - base) * 1024 }) + '\n');
}

/** Runs `script --child <variant>` in a fresh process and returns its peak extra bytes. */
export function peakExtraBytes(script: string, variant: string): number {
  const out = execFileSync(process.execPath, ['--expose-gc', script, '--child', variant], { env: process.env, encoding: 'utf8', maxBuffer: 1 << 20 });
  const line = out.trim().split('\n').pop() ?? '{}';
  return (JSON.parse(line) as { peakExtraBytes: number }).peakExtraBytes;
}

export const MiB = (b: number) => Math.round((b / 1048576) * 10) / 10;

/** Writes bench/out/<name>.json (from the package root). */
export function writeJson(root: string, name: string, data: unknown): string {
  const dir = path.join(root, 'bench', 'out');
  fs.mkdirSync(dir, { recursive: true });
  const p = path.join(dir, `${name}.json`);
  fs.writeFileSync(p, JSON.stringify(data, null, 2) + '\n');
  return p;
}

/**
 * Medians of `reps` alternating calls of a and b (both see the same machine load), after `warmups`
 * calls of each. `sync` runs before the clock starts and before it stops (CUDA: radkit.cudaSynchronize,
 * as GPU calls return once queued).
 */
export function timePair(a: () => void, b: () => void, reps: number, options: { warmups?: number; sync?: () => void } = {}): [number, number] {
  const sync = options.sync ?? (() => {});
  const once = (f: () => void) => {
    sync();
    const t0 = process.hrtime.bigint();
    f();
    sync();
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  for (let i = 0; i < (options.warmups ?? 1); i++) once(a), once(b);
  const ta: number[] = [], tb: number[] = [];
  for (let i = 0; i < reps; i++) ta.push(once(a)), tb.push(once(b));
  return [median(ta), median(tb)];
}

/** One op-against-reference row of {@link trackedBench}. */
export interface TrackedRow {
  case: string;
  pass: string;
  opMs: number;
  referenceMs: number;
  speedup: number;
  opPeakMB: number;
  referencePeakMB: number;
  memoryRatio: number;
}

/**
 * An op-against-reference benchmark in one process (bench/adaptivePatchSample.ts,
 * bench/maxSimilarity.ts): reads `--quick` and `--threads N`, seeds LibTorch; `record` takes the
 * median wall time of each side and the largest peak extra CPU memory of a timed call, as counted by
 * the tracking LibTorch CPU allocator of exports.testing (installed on first use; every tensor
 * allocation made during the call, inputs excluded), prints a line and keeps the row; `finish`
 * writes bench/out/<name>.json.
 */
export function trackedBench(name: string) {
  const testing = (loadNative() as unknown as { testing: NativeTesting }).testing;
  const args = process.argv.slice(2);
  const ti = args.indexOf('--threads');
  if (ti >= 0) setNumThreads(Number(args[ti + 1]));
  manualSeed(1);
  const measure = (fn: () => void, reps: number, warmup: number): { ms: number; peak: number } => {
    for (let i = 0; i < warmup; i++) fn();
    const ts: number[] = [];
    let peak = 0;
    for (let i = 0; i < reps; i++) {
      const base = testing.allocTrackerReset().current;
      const t0 = process.hrtime.bigint();
      fn();
      ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
      peak = Math.max(peak, testing.allocTrackerRead().peak - base);
    }
    return { ms: median(ts), peak };
  };
  const MB = (b: number) => b / (1 << 20);
  const rows: TrackedRow[] = [];
  const record = (label: string, pass: string, op: () => void, ref: () => void, reps: number, refReps: number) => {
    const a = measure(op, reps, 1);
    const b = measure(ref, refReps, refReps > 1 ? 1 : 0);
    const row: TrackedRow = {
      case: label, pass, opMs: a.ms, referenceMs: b.ms, speedup: b.ms / a.ms,
      opPeakMB: MB(a.peak), referencePeakMB: MB(b.peak), memoryRatio: b.peak / Math.max(1, a.peak),
    };
    rows.push(row);
    console.log(`${label.padEnd(44)} ${pass.padEnd(8)} op ${row.opMs.toFixed(1).padStart(9)} ms  ref ${row.referenceMs.toFixed(1).padStart(9)} ms  x${row.speedup.toFixed(2).padStart(6)}  peak op ${row.opPeakMB.toFixed(1)} MB ref ${row.referencePeakMB.toFixed(1)} MB (x${row.memoryRatio.toFixed(1)})`);
  };
  const finish = () => {
    const meta = { threads: getNumThreads(), date: new Date().toISOString(), note: 'float32, CPU; peak = tracked LibTorch CPU allocations of one call' };
    console.log(JSON.stringify(meta));
    console.log(`wrote ${writeJson(packageRoot, name, { meta, rows })}`);
  };
  return { testing, handle: (t: Tensor) => Tensor.handle(t), args, quick: args.includes('--quick'), record, finish };
}
