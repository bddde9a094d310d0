/**
 * Cached incremental decoding vs full recompute at XProNet size on CPU (issue 5):
 * 3+3 layers, d=512, 8 heads, d_ff=512, vocabulary 1,000, 98 source positions, 60 steps, beam 3, batch 16.
 *
 *   node dist/bench/decoding.js [--reps N] [--threads N]
 *
 * Variants (the encoder runs once per call in all of them; only the decoder's reuse differs):
 *   full  — self-attention K/V cache (pre-allocated, one position per step) + cross K/V once per source
 *   cross — cross K/V once per source; the decoder re-runs over the whole prefix every step
 *   none  — the decoder re-runs over the whole prefix every step, cross K/V projections included
 * minLength = maxLength = 60 forces exactly 60 steps for every hypothesis. Peak extra memory: peak
 * RSS growth of one generate call in a fresh child process per variant, plus the cache bytes counted
 * analytically.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as radkit from '../lib/index.js';
import { Tensor, nn } from '../lib/index.js';

const B = 16;
const S = 98;
const STEPS = 60;
const BEAMS = 3;
const config = { vocabSize: 1000, dModel: 512, numHeads: 8, dFF: 512, encoderLayers: 3, decoderLayers: 3, seed: 1 } as const;
type Mode = 'full' | 'cross' | 'none';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

function setup() {
  const threads = arg('--threads', 0);
  if (threads > 0) radkit.setNumThreads(threads);
  const model = nn.createTransformer(config);
  radkit.manualSeed(7);
  const source = Tensor.randn([B, S, 512]);
  return { model, source };
}

async function once(model: nn.TransformerModel, source: Tensor, cache: Mode, steps = STEPS) {
  const stamps: number[] = [];
  const t0 = performance.now();
  const r = await model.generate(source, { beams: BEAMS, maxLength: STEPS, minLength: STEPS, cache, onToken: (e) => (stamps.push(performance.now()), e.step + 1 < steps) });
  return { ms: performance.now() - t0, firstStepMs: stamps[0] - t0, stamps, result: r };
}

/** Least-squares a + b t over the per-step times (ms) of steps t = 1..n-1. */
function fit(stamps: number[]): { a: number; b: number } {
  const ts: number[] = [];
  const ys: number[] = [];
  for (let t = 1; t < stamps.length; t++) (ts.push(t), ys.push(stamps[t] - stamps[t - 1]));
  const n = ts.length;
  const mt = ts.reduce((x, y) => x + y, 0) / n;
  const my = ys.reduce((x, y) => x + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) (sxy += (ts[i] - mt) * (ys[i] - my), (sxx += (ts[i] - mt) ** 2));
  const b = sxx > 0 ? sxy / sxx : 0;
  return { a: my - b * mt, b };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function child(mode: Mode) {
  const { model, source } = setup();
  if (global.gc) global.gc();
  const before = Math.max(process.memoryUsage().rss, process.resourceUsage().maxRSS * 1024);
  await once(model, source, mode, mode === 'full' ? STEPS : arg('--recompute-steps', STEPS));
  const peak = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(JSON.stringify({ peakExtraBytes: Math.max(0, peak - before) }));
}

async function main() {
  const childAt = process.argv.indexOf('--child');
  if (childAt >= 0) return child(process.argv[childAt + 1] as Mode);
  const reps = arg('--reps', 3);
  const { model, source } = setup();
  const info = radkit.info();
  const out: Record<string, unknown> = {
    device: 'cpu',
    torch: info.torchVersion,
    threads: radkit.getNumThreads(),
    shape: { batch: B, beams: BEAMS, steps: STEPS, sourceLength: S, ...config },
  };
  const recomputeSteps = arg('--recompute-steps', STEPS);
  await once(model, source, 'full', 3); // warm-up
  const rows = B * BEAMS;
  const variants: Record<string, Record<string, unknown>> = {};
  const decodeMsPerStep: Record<string, number> = {};
  const tokens: Partial<Record<Mode, number[][]>> = {};
  let fullStamps: number[] = [];
  for (const mode of ['full', 'cross', 'none'] as Mode[]) {
    const steps = mode === 'full' ? STEPS : recomputeSteps;
    const n = mode === 'full' ? reps : 1;
    const runs = [];
    for (let i = 0; i < n; i++) {
      const r = await once(model, source, mode, steps);
      runs.push(r);
      tokens[mode] = r.result.tokens.map((t) => t.slice(0, recomputeSteps));
      process.stderr.write(`${mode} run ${i + 1}/${n}: ${r.result.steps} steps, ${(r.ms / 1000).toFixed(2)} s (encoder + first step ${(r.firstStepMs / 1000).toFixed(2)} s)\n`);
    }
    if (mode === 'full') fullStamps = runs[0].stamps;
    const decodeMs = runs.map((r) => (r.stamps[r.stamps.length - 1] - r.stamps[0]) / (r.stamps.length - 1));
    const perStep = median(decodeMs); // mean ms per decoder step (steps 1..n-1), median over runs
    decodeMsPerStep[mode] = perStep;
    const f = fit(runs[0].stamps);
    // the whole 60-step decode: measured when all steps ran, else extrapolated from the linear fit
    const measuredAll = runs[0].result.steps === STEPS;
    const decode60Ms = measuredAll ? perStep * STEPS : Array.from({ length: STEPS }, (_, t) => f.a + f.b * t).reduce((x, y) => x + y, 0);
    variants[mode] = {
      stepsMeasured: runs[0].result.steps,
      runsTotalMs: runs.map((r) => r.ms),
      encoderPlusFirstStepMs: median(runs.map((r) => r.firstStepMs)),
      msPerStepMeasured: perStep,
      perStepFit: { interceptMs: f.a, msPerPrefixToken: f.b },
      decode60StepsMs: decode60Ms,
      decode60Extrapolated: !measuredAll,
      hypothesisTokensPerSecond: (rows * STEPS) / (decode60Ms / 1000),
      outputTokensPerSecond: (B * STEPS) / (decode60Ms / 1000),
    };
  }
  // beam search stopped early keeps the best hypotheses *so far*, so only runs of equal length compare
  const same = JSON.stringify(tokens.cross) === JSON.stringify(tokens.none) && (recomputeSteps !== STEPS || JSON.stringify(tokens.full) === JSON.stringify(tokens.cross));
  for (const mode of ['full', 'cross', 'none'] as Mode[]) {
    try {
      const script = process.argv[1];
      const mem = JSON.parse(execFileSync(process.execPath, ['--expose-gc', script, '--child', mode, ...process.argv.slice(2)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
      variants[mode].peakExtraBytes = mem.peakExtraBytes;
    } catch {
      variants[mode].peakExtraBytes = null;
    }
  }
  const dh = 512 / 8;
  const cachedFirst = (n: number) => (fullStamps[n - 1] - fullStamps[0]) / (n - 1);
  const d60 = (m: Mode) => variants[m].decode60StepsMs as number;
  out.variants = variants;
  out.cacheBytes = { selfAttention: config.decoderLayers * 2 * rows * 8 * STEPS * dh * 4, crossAttention: config.decoderLayers * 2 * B * 8 * S * dh * 4 };
  out.speedup60Steps = { fullVsNone: d60('none') / d60('full'), fullVsCross: d60('cross') / d60('full') };
  out.speedupMeasuredSameSteps = {
    steps: recomputeSteps,
    fullVsNone: (decodeMsPerStep.none) / cachedFirst(recomputeSteps),
    fullVsCross: (decodeMsPerStep.cross) / cachedFirst(recomputeSteps),
    note: 'mean ms per step over steps 1..n-1, recompute vs cached, both measured (no extrapolation)',
  };
  out.sameTokensAcrossModes = same;
  model.dispose();
  source.dispose();
  fs.mkdirSync(path.join('bench', 'out'), { recursive: true });
  fs.writeFileSync(path.join('bench', 'out', 'decoding.json'), JSON.stringify(out, null, 2));
  console.log(JSON.stringify(out, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
