/**
 * Causal LMs on the CPU (issue: causal language models).
 *
 *   node dist/bench/causal_lm.js [--part gen|load|all] [--threads N] [--new N] [--prompt N] [--batches 1,8] [--load-size 1b|410m|160m]
 *
 * gen:  a 125M-parameter GPT-NeoX config (d=768, 12 layers, 12 heads, d_ff=3072, vocabulary 50,304,
 *       tied embeddings, rotary_pct 0.25), float32 on the CPU, random weights: greedy generation of
 *       exactly --new tokens (minNewTokens = maxNewTokens) after a --prompt token prompt, batch 1 and
 *       8, with the key/value cache ('full') and with full recompute every step ('none'). Reports
 *       tokens/s (batch x new tokens / wall time of the generate call, prefill included), per-step
 *       latency and the peak RSS growth of the call (VmHWM reset through /proc/self/clear_refs).
 *       The same model through Python PyTorch eager (bench/python/causal_lm.py) where a Python with torch
 *       is found: prompt logits and greedy tokens checked against radkit's, then the same cached greedy
 *       generation timed per batch in a child process with the same thread settings.
 * load: writes a bfloat16 checkpoint of a Pythia-1B-shaped GPT-NeoX (d=2048, 16 layers, d_ff=8192,
 *       vocabulary 50,304, untied: 1.01e9 parameters, 2.03 GB) with radkit's own writer, then in a
 *       fresh process loads it with loadCausalLM({ dtype: 'bfloat16' }) and reports the load time and
 *       the peak RSS growth of the load against the weight bytes (the file is in the page cache: the
 *       bench has just written it).
 * Results: bench/out/causal_lm.json.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as radkit from '../lib/index.js';
import { Tensor, nn, writeSafetensors } from '../lib/index.js';
import type { CausalLMConfig } from '../lib/nn/index.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

function status(key: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`${key}:\\s+(\\d+) kB`).exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

function resetPeak(): void {
  fs.writeFileSync('/proc/self/clear_refs', '5');
}

const MB = 1024 * 1024;

const gen125m: CausalLMConfig = {
  arch: 'gpt_neox',
  vocabSize: 50304,
  hiddenSize: 768,
  numLayers: 12,
  numHeads: 12,
  intermediateSize: 3072,
  rotaryDim: 16,
  tieEmbeddings: true,
  maxPositions: 2048,
};

const loadSizes: Record<string, CausalLMConfig> = {
  '1b': { arch: 'gpt_neox', vocabSize: 50304, hiddenSize: 2048, numLayers: 16, numHeads: 8, intermediateSize: 8192, rotaryDim: 64, maxPositions: 2048 },
  '410m': { arch: 'gpt_neox', vocabSize: 50304, hiddenSize: 1024, numLayers: 24, numHeads: 16, intermediateSize: 4096, rotaryDim: 16, maxPositions: 2048 },
  '160m': { arch: 'gpt_neox', vocabSize: 50304, hiddenSize: 768, numLayers: 12, numHeads: 12, intermediateSize: 3072, rotaryDim: 16, maxPositions: 2048 },
};

function randomIds(b: number, t: number, vocab: number, seed: number): Tensor {
  let s = seed;
  const next = () => ((s = (s * 1103515245 + 12345) >>> 0) % vocab);
  return Tensor.from(BigInt64Array.from({ length: b * t }, () => BigInt(next())), [b, t]);
}

async function genPart(threads: number) {
  const promptLen = Number(arg('--prompt', '16'));
  const newTokens = Number(arg('--new', '16'));
  const lm = nn.createCausalLM(gen125m, { seed: 1 });
  const params = lm.parameterCount();
  console.log(`125M config: ${(params / 1e6).toFixed(1)}M parameters, prompt ${promptLen}, ${newTokens} new tokens, ${threads} thread(s)`);
  const rows: Record<string, unknown>[] = [];
  const batches = arg('--batches', '1,8').split(',').map(Number);
  const prompts = new Map<number, Tensor>();
  for (const batch of batches) {
    const prompt = randomIds(batch, promptLen, gen125m.vocabSize, 7 + batch);
    prompts.set(batch, prompt);
    const results: Record<string, number[][]> = {};
    for (const cache of ['full', 'none'] as const) {
      await lm.generate(prompt, { maxNewTokens: 2, minNewTokens: 2, cache }); // warm-up
      resetPeak();
      const rss0 = status('VmRSS');
      const t0 = process.hrtime.bigint();
      const out = await lm.generate(prompt, { maxNewTokens: newTokens, minNewTokens: newTokens, cache });
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      const peak = status('VmHWM') - rss0;
      results[cache] = out.tokens;
      const row = { batch, cache, seconds: s, tokensPerSecond: (batch * newTokens) / s, msPerStep: (1000 * s) / newTokens, peakRssGrowthMB: peak / MB };
      rows.push(row);
      console.log(`  batch ${batch} cache ${cache.padEnd(4)}: ${row.tokensPerSecond.toFixed(1)} tok/s, ${row.msPerStep.toFixed(1)} ms/step, peak RSS +${row.peakRssGrowthMB.toFixed(0)} MB`);
    }
    const same = JSON.stringify(results.full) === JSON.stringify(results.none);
    console.log(`  batch ${batch}: cached tokens ${same ? '==' : '!='} recompute tokens`);
    rows.push({ batch, cachedEqualsRecompute: same, tokens: results.full });
  }
  const python = await pythonGeneration(lm, prompts, rows, newTokens, threads);
  prompts.forEach((p) => p.dispose());
  lm.dispose();
  return { config: gen125m, parameters: params, promptLength: promptLen, newTokens, batches, threads, rows, python };
}

/**
 * The same model through Python PyTorch eager (bench/python/causal_lm.py, a Hugging Face GPT-NeoX
 * forward with a key/value cache) where a Python with torch is found (RADKIT_PYTHON, /usr/bin/python3,
 * python3): radkit saves the model, Python checks the prompt logits and greedy tokens of batch 1, then
 * times the same greedy generation per batch in a child process with the same thread settings.
 */
async function pythonGeneration(lm: nn.CausalLM, prompts: Map<number, Tensor>, rows: Record<string, unknown>[], newTokens: number, threads: number) {
  const python = [process.env.RADKIT_PYTHON, '/usr/bin/python3', 'python3'].find((c) => {
    if (!c) return false;
    try {
      execFileSync(c, ['-c', 'import torch'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  });
  if (!python) {
    console.log('  Python PyTorch eager: not run (no Python that imports torch)');
    return { ran: false, reason: 'no Python that imports torch' };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-bench-lm-py-'));
  const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };
  const cwd = path.join(__dirname, '..', '..', 'bench', 'python');
  const run = (args: string[]) => {
    const r = spawnSync(python, ['causal_lm.py', ...args, '--threads', String(threads)], { cwd, env, encoding: 'utf8', maxBuffer: 1 << 20 });
    if (r.status !== 0) throw new Error(`causal_lm.py ${args[0]} failed: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number | boolean>;
  };
  try {
    await lm.save(dir);
    const [first] = [...prompts.keys()];
    const prompt = prompts.get(first)!;
    const tokensRow = rows.find((r) => r.batch === first && 'tokens' in r) as { tokens: number[][] };
    const tokens = Tensor.from(BigInt64Array.from(tokensRow.tokens.flat(), (x) => BigInt(x)), [first, newTokens]);
    const logits = lm.logits(prompt);
    writeSafetensors(path.join(dir, 'check.safetensors'), { prompt, tokens, logits });
    [tokens, logits].forEach((t) => t.dispose());
    const check = run(['check', dir, path.join(dir, 'check.safetensors')]);
    console.log(`  Python PyTorch eager (${python}): max |logit difference| ${Number(check.maxAbsLogitDiff).toExponential(2)}, greedy tokens ${check.sameTokens ? 'identical' : 'DIFFERENT'}`);
    const timed: Record<string, unknown>[] = [];
    for (const [batch, p] of prompts) {
      writeSafetensors(path.join(dir, `prompt${batch}.safetensors`), { prompt: p });
      const t = run(['time', dir, path.join(dir, `prompt${batch}.safetensors`), '--new', String(newTokens)]);
      const mine = rows.find((r) => r.batch === batch && r.cache === 'full') as { tokensPerSecond: number } | undefined;
      const row = { batch, cache: 'full', ...t, radkitOverPython: mine ? mine.tokensPerSecond / Number(t.tokensPerSecond) : null };
      timed.push(row);
      console.log(`  Python batch ${batch} cached: ${Number(t.tokensPerSecond).toFixed(1)} tok/s, ${Number(t.msPerStep).toFixed(1)} ms/step, peak RSS +${Number(t.peakRssGrowthMB).toFixed(0)} MB; radkit/Python x${row.radkitOverPython?.toFixed(2)}`);
    }
    return { ran: true, python, check, rows: timed };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function childLoad(dir: string) {
  // The baseline: the addon and LibTorch loaded, nothing of the model yet.
  radkit.info();
  const before = status('VmRSS');
  resetPeak();
  const t0 = process.hrtime.bigint();
  const lm = await nn.loadCausalLM(dir, { dtype: 'bfloat16' });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const peak = status('VmHWM');
  const after = status('VmRSS');
  const params = lm.parameterCount();
  lm.dispose();
  process.stdout.write(JSON.stringify({ seconds, baselineRss: before, peakRss: peak, rssAfter: after, parameters: params }));
}

async function loadPart(size: string) {
  const config = loadSizes[size];
  if (!config) throw new Error(`--load-size must be one of ${Object.keys(loadSizes).join(', ')}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `radkit-bench-${size}-`));
  try {
    let t0 = Date.now();
    const lm = nn.createCausalLM(config, { dtype: 'bfloat16', seed: 2 });
    const params = lm.parameterCount();
    const createS = (Date.now() - t0) / 1000;
    t0 = Date.now();
    await lm.save(dir);
    const writeS = (Date.now() - t0) / 1000;
    lm.dispose();
    const fileBytes = fs.statSync(path.join(dir, 'model.safetensors')).size;
    const weightBytes = params * 2;
    console.log(`${size}: ${(params / 1e9).toFixed(3)}e9 parameters, ${(fileBytes / 1e9).toFixed(2)} GB file (created in ${createS.toFixed(1)} s, written in ${writeS.toFixed(1)} s)`);
    const r = spawnSync(process.execPath, [__filename, '--child-load', dir], { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (r.status !== 0) throw new Error(`load child failed: ${r.stderr}`);
    const m = JSON.parse(r.stdout);
    const growth = m.peakRss - m.baselineRss;
    const result = {
      size,
      config,
      parameters: params,
      weightBytes,
      fileBytes,
      loadSeconds: m.seconds,
      baselineRssMB: m.baselineRss / MB,
      peakRssMB: m.peakRss / MB,
      peakGrowthMB: growth / MB,
      peakGrowthOverWeights: growth / weightBytes,
      peakOverWeights: m.peakRss / weightBytes,
    };
    console.log(
      `  load ${m.seconds.toFixed(2)} s; RSS baseline ${result.baselineRssMB.toFixed(0)} MB, peak ${result.peakRssMB.toFixed(0)} MB: ` +
        `growth ${result.peakGrowthMB.toFixed(0)} MB = ${result.peakGrowthOverWeights.toFixed(3)}x the ${(weightBytes / MB).toFixed(0)} MB of weights (peak/weights ${result.peakOverWeights.toFixed(3)}x)`,
    );
    return result;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const child = process.argv.indexOf('--child-load');
  if (child >= 0) return childLoad(process.argv[child + 1]);
  const threads = Number(arg('--threads', String(radkit.getNumThreads())));
  radkit.setNumThreads(threads);
  const part = arg('--part', 'all');
  const out: Record<string, unknown> = { machine: `${os.cpus().length} CPUs (${os.cpus()[0]?.model}), shared with other work`, torch: radkit.info().torchVersion };
  if (part === 'gen' || part === 'all') out.generation = await genPart(threads);
  if (part === 'load' || part === 'all') out.load = await loadPart(arg('--load-size', '1b'));
  const dir = path.join(__dirname, '..', '..', 'bench', 'out');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'causal_lm.json'), JSON.stringify(out, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
