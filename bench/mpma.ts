// MPMA (seed 004) on SynthCXR at a CPU-sized budget: pre-training diagnostics against their trivial
// baselines, mpma-rg fine-tuned from the pre-trained ViT against the same mpma-rg from scratch
// (same budget and seed), the most-common-report baseline, and the ablations that fit: the linear
// probe's AUC at 10% labels after MA-CMF / CMF (no memory) / GAP pre-training (Table V direction),
// MIM-only pre-training (Table IV direction) and ramp vs constant lambda_GLA.
// Every pre-training run, fine-tuning run and score is written to bench/out/mpma.json as it finishes.
// Run: node dist/bench/mpma.js [--train 600] [--size 64] [--pre-epochs 6] [--ft-epochs 6] [--seeds 1]
//        [--experiments diagnostics,rg,probe,tableIV,ramp]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as radkit from '../lib/index.js';
import { mostCommonReport } from '../lib/demo.js';
import { mpma } from '../lib/models/mpma.js';
import { mpmaRg } from '../lib/models/mpma-rg.js';
import { mpmaProbe } from '../lib/models/mpma-probe.js';
import { pretrainingDiagnostics, writeMpmaPictures } from '../lib/models/mpma-eval.js';
import { generateSplit, headline, scoreReports } from '../lib/train/evaluate.js';
import { evaluateRetrieval } from '../lib/align/evaluate.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const str = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};

async function main() {
  const trainN = arg('train', 600), size = arg('size', 64), preEpochs = arg('pre-epochs', 6), ftEpochs = arg('ft-epochs', 6), seeds = arg('seeds', 1), preLr = arg('pre-lr', 1e-3);
  const experiments = new Set(str('experiments', 'diagnostics,rg,probe,tableIV,ramp').split(','));
  radkit.setNumThreads(arg('threads', 2));
  const dir = path.join(os.tmpdir(), `radkit-bench-mpma-${trainN}-${size}`);
  if (!fs.existsSync(path.join(dir, 'annotation.json'))) await radkit.data.synthesize({ out: dir, train: trainN, val: 50, test: 100, size, seed: 31, views: 2 });
  const ds = radkit.data.readR2Gen(path.join(dir, 'annotation.json'), { labels: path.join(dir, 'labels.json') });
  const tokenizer = radkit.text.Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: 3 });
  // The bench size (the 'small' preset is 128 px, ViT 6 x 192; this budget does not fit it here).
  const VIT = { imageSize: size, patch: 8, vitDim: 96, vitLayers: 3, vitHeads: 3, vitIntermediate: 192 };
  const PRE = { ...VIT, maeDim: 64, maeLayers: 1, maeHeads: 4, memorySlots: 16, mlmLayers: 1, mlmHeads: 4, textHidden: 64, textLayers: 1, textHeads: 4, textIntermediate: 128 };
  const RG = { ...VIT, dModel: 64, heads: 4, dFF: 128, encoderLayers: 1, decoderLayers: 1 };
  const out = path.join(__dirname, '..', '..', 'bench', 'out');
  fs.mkdirSync(out, { recursive: true });
  const runs = path.join(os.tmpdir(), 'radkit-bench-mpma-runs');
  const results: Record<string, unknown> = {
    conditions: { machine: `${os.cpus().length} CPUs (${os.cpus()[0]?.model}), shared and loaded by other jobs`, threads: radkit.getNumThreads(), data: { train: trainN, val: 50, test: 100, size, synthSeed: 31 }, preEpochs, preLr, preBatch: 16, ftEpochs, seeds, vit: VIT, pre: PRE, rg: RG },
  };
  const save = () => fs.writeFileSync(path.join(out, 'mpma.json'), JSON.stringify(results, null, 2));
  const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
  const pre1 = { imageSize: size, views: 1 };

  const pretrain = async (name: string, overrides: Record<string, unknown>, seed: number) => {
    const runDir = path.join(runs, `pre-${name}-s${seed}`);
    if (!fs.existsSync(path.join(runDir, 'metrics.json'))) {
      fs.rmSync(runDir, { recursive: true, force: true });
      const m = mpma({ tokenizer, ...PRE, ...overrides, seed });
      const t0 = performance.now();
      await radkit.train(m, ds, { tokenizer, outDir: runDir, epochs: preEpochs, batchSize: 16, lr: preLr, visualLr: preLr, imageSize: size, views: 1, seed, progress: 'none', evaluate: false, workers: 0 });
      const seconds = (performance.now() - t0) / 1000;
      const diag = await pretrainingDiagnostics(m, tokenizer, ds, { split: 'val', preprocessing: pre1 });
      const retrieval = await evaluateRetrieval(m, tokenizer, ds, { split: 'test', preprocessing: pre1 });
      if (name === 'full') await writeMpmaPictures(m, tokenizer, ds, { split: 'test', preprocessing: pre1, count: 6, file: path.join(out, 'mpma-pictures.html') });
      m.dispose();
      fs.writeFileSync(path.join(runDir, 'bench.json'), JSON.stringify({ seconds, diag, retrieval: retrieval.metrics }));
    }
    const b = JSON.parse(fs.readFileSync(path.join(runDir, 'bench.json'), 'utf8'));
    log(`pre ${name} s${seed}: ${b.seconds.toFixed(0)} s, MIM ${b.diag.mimMse.toFixed(4)} vs mean patch ${b.diag.meanPatchMse.toFixed(4)} / mean image ${b.diag.meanImageMse.toFixed(4)}, MLM acc ${b.diag.mlmAccuracy.toFixed(3)} vs unigram ${b.diag.unigramAccuracy.toFixed(3)}, retrieval meanRecall ${b.retrieval.meanRecall.toFixed(2)}`);
    return { runDir, ...b };
  };

  const finetune = async (name: string, init: string | undefined, seed: number) => {
    const runDir = path.join(runs, `rg-${name}-s${seed}`);
    fs.rmSync(runDir, { recursive: true, force: true });
    const m = mpmaRg({ tokenizer, ...RG, seed });
    const t0 = performance.now();
    await radkit.train(m, ds, { tokenizer, outDir: runDir, epochs: ftEpochs, batchSize: 16, imageSize: size, seed, progress: 'none', evaluate: false, workers: 0, ...(init ? { init: `${init}:image.` } : {}) });
    const seconds = (performance.now() - t0) / 1000;
    const reports = await generateSplit(m, tokenizer, ds, { split: 'test', preprocessing: { imageSize: size, views: 2 }, generate: m.generateDefaults });
    m.dispose();
    const h = headline(scoreReports(reports));
    log(`rg ${name} s${seed}: ${seconds.toFixed(0)} s, BLEU-4 ${h.bleu4.toFixed(3)}, R-L ${h.rougeL.toFixed(3)}, CE micro-F1 ${h.ceMicroF1.toFixed(3)}`);
    return { seconds, ...h };
  };

  const probe = async (name: string, init: string, seed: number, fraction: number) => {
    const runDir = path.join(runs, `probe-${name}-s${seed}`);
    fs.rmSync(runDir, { recursive: true, force: true });
    const n = Math.max(16, Math.round(fraction * ds.splits.train.length));
    const subset = { ...ds, splits: { ...ds.splits, train: ds.splits.train.slice(0, n) } };
    const m = mpmaProbe({ ...VIT, seed });
    await radkit.train(m, subset, { tokenizer, outDir: runDir, epochs: 30, batchSize: 32, imageSize: size, views: 1, seed, progress: 'none', evaluate: false, workers: 0, init: `${init}:image.` });
    const ev = await radkit.models.modelKind('mpma-probe').evaluate!(m, tokenizer, ds, { split: 'test', preprocessing: pre1 });
    m.dispose();
    log(`probe ${name} s${seed} (${n} labelled studies): AUC ${ev.headline.auc.toFixed(3)}, AUC5 ${ev.headline.auc5.toFixed(3)}`);
    return { labelled: n, ...ev.headline, perObservation: (ev.record as { perObservation: unknown }).perObservation };
  };

  const seedList = Array.from({ length: seeds }, (_, i) => i);
  const baselineText = mostCommonReport(ds, tokenizer);
  const testRefs = ds.splits.test.map((e) => ({ id: e.id, hypothesis: baselineText, reference: tokenizer.clean(e.report), labels: e.labels, extras: {} }));
  results.mostCommon = headline(scoreReports(testRefs));
  log(`most common report: BLEU-4 ${(results.mostCommon as Record<string, number>).bleu4.toFixed(3)}, CE micro-F1 ${(results.mostCommon as Record<string, number>).ceMicroF1.toFixed(3)}`);
  save();

  const pretrained: Record<string, Record<number, Awaited<ReturnType<typeof pretrain>>>> = {};
  const want = (name: string) => {
    if (name === 'full') return true;
    if (name === 'mimOnly') return experiments.has('tableIV');
    if (name === 'constantRamp') return experiments.has('ramp');
    return experiments.has('probe');
  };
  const variants: Record<string, Record<string, unknown>> = {
    full: {},
    gap: { fusion: 'gap' },
    noMemory: { memorySlots: 0 },
    mimOnly: { lambdaIL: 0, lambdaGla: 0 },
    constantRamp: { ramp: 'constant' },
  };
  for (const seed of seedList)
    for (const [name, o] of Object.entries(variants)) {
      if (!want(name)) continue;
      (pretrained[name] ??= {})[seed] = await pretrain(name, o, seed);
      results.pretraining = Object.fromEntries(Object.entries(pretrained).map(([k, v]) => [k, Object.fromEntries(Object.entries(v).map(([s, r]) => [s, { seconds: r.seconds, diag: r.diag, retrieval: r.retrieval }]))]));
      save();
    }

  if (experiments.has('rg')) {
    const rg: Record<string, Record<number, unknown>> = {};
    for (const seed of seedList) {
      const variantsRg: [string, string | undefined][] = [
        ['pretrained', pretrained.full[seed].runDir],
        ['scratch', undefined],
        ...(experiments.has('tableIV') ? [['mimOnly', pretrained.mimOnly[seed].runDir] as [string, string]] : []),
        ...(experiments.has('ramp') ? [['constantRamp', pretrained.constantRamp[seed].runDir] as [string, string]] : []),
      ];
      for (const [name, init] of variantsRg) {
        (rg[name] ??= {})[seed] = await finetune(name, init, seed);
        results.reportGeneration = rg;
        save();
      }
    }
  }

  if (experiments.has('probe')) {
    const pr: Record<string, Record<number, unknown>> = {};
    for (const seed of seedList)
      for (const name of ['full', 'noMemory', 'gap', ...(experiments.has('ramp') ? ['constantRamp'] : [])]) {
        (pr[name] ??= {})[seed] = await probe(name, pretrained[name][seed].runDir, seed, 0.1);
        results.probe10 = pr;
        save();
      }
  }
  log('done');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
