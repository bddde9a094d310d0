// MPMA (seed 004) on SynthCXR at a CPU-sized budget: pre-training diagnostics against their trivial
// baselines, mpma-rg fine-tuned from the pre-trained ViT against the same mpma-rg from scratch
// (same budget and seed), the most-common-report baseline, and the ablations: each pre-training task
// off (MIM, MLM, GLA), MIM only (Table IV direction), MA-CMF without memory and GAP fusion (Table V
// direction, linear-probe AUC), constant vs Gaussian-ramped lambda_GLA, lambda_gl 5 vs 1 (Table VI).
// Every variant gets the diagnostics, retrieval and the linear probe; the variants named by
// --rg-variants are also fine-tuned for report generation. Several seeds: mean and sample sd.
// Everything is written to bench/out/mpma.json (--name NAME: NAME.json) as it finishes (with every open choice under
// `choices`). Pre-training runs are cached under a folder named by their settings.
// Run: node dist/bench/mpma.js [--train 300] [--size 64] [--pre-epochs 20] [--ft-epochs 20] [--seeds 2]
//        [--variants full,noMim,noMlm,noGla,mimOnly,noMemory,gap,constantRamp,lambdaGl5]
//        [--rg-variants scratch,full,mimOnly | none] [--lambda-class 0] [--probe-fraction 0.1] [--probe-pool mean|cls|concat|patches]
//        [--probe-lr 2e-3] [--probe-epochs 30] [--threads 1] [--name mpma] [--val 50] [--test 100] [--patch 8]
//        [--rg-config '{"sourcePositions":1}'] [--probes 0] [--pixel-mean 0.449 --pixel-std 0.269] [--first-seed 0]
// --variants none: no pre-training (only the scratch generator and the random-ViT probe).
// Every generator is also scored for its use of the image: the teacher-forced test cross-entropy with
// each study's own images against the one with the next study's images (equal: the image is ignored).
import * as crypto from 'node:crypto';
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
import { imageUse } from './image-use.js';
import { evaluateRetrieval } from '../lib/align/evaluate.js';
import { arg, str } from './flags.js';

/** The pre-training variants: configuration keys over the bench's MPMA. */
const VARIANTS: Record<string, Record<string, unknown>> = {
  full: {},
  noMim: { lambdaMim: 0 },
  noMlm: { lambdaIL: 0 },
  noGla: { lambdaGla: 0 },
  mimOnly: { lambdaIL: 0, lambdaGla: 0 },
  noMemory: { memorySlots: 0 },
  gap: { fusion: 'gap' },
  constantRamp: { ramp: 'constant' },
  lambdaGl5: { lambdaGl: 5 },
};

function meanSd(xs: number[]): { mean: number; sd: number | null; n: number; values: number[] } {
  const n = xs.length;
  const mean = xs.reduce((s, x) => s + x, 0) / n;
  const sd = n > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1)) : null;
  return { mean, sd, n, values: xs };
}

async function main() {
  const trainN = arg('train', 300), valN = arg('val', 50), testN = arg('test', 100), patch = arg('patch', 8), size = arg('size', 64), preEpochs = arg('pre-epochs', 20), ftEpochs = arg('ft-epochs', 20), seeds = arg('seeds', 2);
  const preLr = arg('pre-lr', 1e-3), ftLr = arg('ft-lr', 1e-3), ftVisualLr = arg('ft-visual-lr', 5e-4), probeFraction = arg('probe-fraction', 0.1);
  const probePool = str('probe-pool', 'mean'), probeLr = arg('probe-lr', 2e-3), probeEpochs = arg('probe-epochs', 30);
  const noPretraining = str('variants', '') === 'none';
  const variantNames = noPretraining ? [] : str('variants', Object.keys(VARIANTS).join(',')).split(',');
  const rgVariants = str('rg-variants', 'scratch,full,mimOnly').split(',').filter((v) => v); // '' or 'none': no report generation
  if (rgVariants.length === 1 && rgVariants[0] === 'none') rgVariants.length = 0;
  const rgScratch = rgVariants.includes('scratch');
  if (rgScratch) rgVariants.splice(rgVariants.indexOf('scratch'), 1);
  const probes = arg('probes', 1) !== 0; // --probes 0: no linear probes (report generation only)
  const lambdaClass = arg('lambda-class', 0); // not the paper's: mpma-rg's auxiliary label loss (0: off, the paper)
  for (const v of [...variantNames, ...rgVariants]) if (!(v in VARIANTS)) throw new Error(`unknown variant '${v}' (${Object.keys(VARIANTS).join(', ')})`);
  if (!noPretraining && !variantNames.includes('full')) variantNames.unshift('full');
  radkit.setNumThreads(arg('threads', 1));
  const dir = path.join(os.tmpdir(), `radkit-bench-mpma-${trainN}-${size}${valN !== 50 || testN !== 100 ? `-${valN}-${testN}` : ''}`);
  if (!fs.existsSync(path.join(dir, 'annotation.json'))) await radkit.data.synthesize({ out: dir, train: trainN, val: valN, test: testN, size, seed: 31, views: 2 });
  const ds = radkit.data.readR2Gen(path.join(dir, 'annotation.json'), { labels: path.join(dir, 'labels.json') });
  const tokenizer = radkit.text.Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: 3 });
  // The bench size (the 'small' preset is 128 px, ViT 6 x 192; this budget does not fit it here).
  // Pixels centred as the presets do (CLIP's grey mean and std); --pixel-mean 0 --pixel-std 1 is the
  // uncentred input of the earlier runs, under which the ViT's tokens could not see brightness.
  const pixels = { vitPixelMean: arg('pixel-mean', 0.449), vitPixelStd: arg('pixel-std', 0.269) };
  const VIT = { imageSize: size, patch, vitDim: 96, vitLayers: 3, vitHeads: 3, vitIntermediate: 192, ...pixels };
  const rgExtra = JSON.parse(str('rg-config', '{}')) as Record<string, unknown>; // more mpma-rg configuration keys
  const PRE = { ...VIT, maeDim: 64, maeLayers: 1, maeHeads: 4, memorySlots: 16, mlmLayers: 1, mlmHeads: 4, textHidden: 64, textLayers: 1, textHeads: 4, textIntermediate: 128 };
  const RG = { ...VIT, dModel: 64, heads: 4, dFF: 128, encoderLayers: 1, decoderLayers: 1, ...(lambdaClass ? { lambdaClass } : {}), ...rgExtra };
  const FT = { lr: ftLr, visualLr: ftVisualLr, schedule: { kind: 'cosine' as const, warmupFraction: 0.05 } };
  const out = path.join(__dirname, '..', '..', 'bench', 'out');
  fs.mkdirSync(out, { recursive: true });
  const settingsKey = crypto.createHash('sha1').update(JSON.stringify({ trainN, size, preEpochs, preLr, PRE, ...(valN !== 50 || testN !== 100 ? { valN, testN } : {}) })).digest('hex').slice(0, 8);
  const runs = path.join(os.tmpdir(), 'radkit-bench-mpma-runs', settingsKey);
  const results: Record<string, unknown> = {
    conditions: {
      machine: `${os.cpus().length} CPUs (${os.cpus()[0]?.model}), shared and loaded by other jobs`,
      threads: radkit.getNumThreads(),
      started: new Date().toISOString(),
      data: { generator: 'SynthCXR', train: trainN, val: valN, test: testN, size, synthSeed: 31, views: 2, tokenizerThreshold: 3 },
      preEpochs, preLr, preBatch: 16, ftEpochs, ft: FT, ftBatch: 16, seeds, vit: VIT, pre: PRE, rg: RG, probe: { fraction: probeFraction, epochs: probeEpochs, batch: 32, lr: probeLr, pool: probePool },
      variants: Object.fromEntries(variantNames.map((v) => [v, VARIANTS[v]])),
    },
    choices: {
      'eq. 6 on M x D matrices': 'cosine of the mean-pooled v_m and t_m (masked mean over real words); Frobenius cosine is config globalSimilarity',
      'eq. 7 word-patch scores': 'cosines (config localAttention; dot products as printed are an option)',
      'eq. 8 normalisation': 'g_j and t_j L2-normalised before the dot product, padding excluded (config normalizeLocal)',
      temperatures: 'tau1 0.07 learned (clamped to [0.01, 1]), tau2 0.25, tau3 0.1 (GLoRIA values; the paper gives none)',
      'MA-CMF': 'residual pre-norm MCA sublayers (config cmfResidual; eqs. 3-4 have no residual); image tokens of the unmasked pass (config mlmVisual)',
      memory: `${PRE.memorySlots} slots per modality (paper: unstated)`,
      ramp: 'per step, T = 30% of the pre-training steps (the paper says T epochs, T unstated)',
      'MAE decoder / MLM decoder / text encoder sizes': `bench sizes: MAE ${PRE.maeLayers} x ${PRE.maeDim}, MLM decoder ${PRE.mlmLayers} layer, BERT ${PRE.textLayers} x ${PRE.textHidden} from scratch`,
      'report generator': `R2Gen-style encoder-decoder ${RG.encoderLayers}+${RG.decoderLayers} layers d ${RG.dModel} over the ViT tokens of both views (paper: unstated)`,
      'fine-tuning rates': `AdamW ${ftLr} task layers / ${ftVisualLr} ViT, cosine, ${ftEpochs} epochs (paper: 2e-4 / 5e-6; a briefly pre-trained tiny ViT is far from converged)`,
      'pre-training rate': `AdamW ${preLr} for all (paper: 2e-4; 2e-4 learned nothing in the first session's 36 steps), weight decay 0.05, cosine`,
      decoding: 'beam 3, 60 tokens, no repeated trigram (R2Gen)',
      probe: `frozen ViT, pooled tokens (${probePool}), batch norm without affine, linear; ${probeFraction * 100}% of the training studies' labels (the first ones), ${probeEpochs} epochs, AdamW ${probeLr}`,
      pixels: `the ViT reads (x - ${pixels.vitPixelMean}) / ${pixels.vitPixelStd} (CLIP's grey statistics; the paper's CLIP preprocessing centres its input), x grey in [0, 1]`,
      'image use': 'teacher-forced test cross-entropy with the own images vs with the next study\'s images (batches of 16, rolled by one study)',
    },
  };
  const save = () => fs.writeFileSync(path.join(out, `${str('name', 'mpma')}.json`), JSON.stringify(results, null, 2));
  const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
  const pre1 = { imageSize: size, views: 1 };

  const pretrain = async (name: string, seed: number) => {
    const runDir = path.join(runs, `pre-${name}-s${seed}`);
    if (!fs.existsSync(path.join(runDir, 'bench.json'))) {
      fs.rmSync(runDir, { recursive: true, force: true });
      const m = mpma({ tokenizer, ...PRE, ...VARIANTS[name], seed });
      const t0 = performance.now();
      await radkit.train(m, ds, { tokenizer, outDir: runDir, epochs: preEpochs, batchSize: 16, lr: preLr, visualLr: preLr, imageSize: size, views: 1, seed, progress: 'none', evaluate: false, workers: 0 });
      const seconds = (performance.now() - t0) / 1000;
      const diag = await pretrainingDiagnostics(m, tokenizer, ds, { split: 'val', preprocessing: pre1 });
      const retrieval = name === 'mimOnly' || name === 'noGla' ? null : (await evaluateRetrieval(m, tokenizer, ds, { split: 'test', preprocessing: pre1 })).metrics;
      if (name === 'full' && seed === 0) await writeMpmaPictures(m, tokenizer, ds, { split: 'test', preprocessing: pre1, count: 6, file: path.join(out, 'mpma-pictures.html') });
      m.dispose();
      fs.writeFileSync(path.join(runDir, 'bench.json'), JSON.stringify({ seconds, diag, retrieval }));
    }
    const b = JSON.parse(fs.readFileSync(path.join(runDir, 'bench.json'), 'utf8'));
    log(
      `pre ${name} s${seed}: ${b.seconds.toFixed(0)} s, MIM ${b.diag.mimMse.toFixed(4)} vs mean patch ${b.diag.meanPatchMse.toFixed(4)} / mean image ${b.diag.meanImageMse.toFixed(4)}, MLM acc ${b.diag.mlmAccuracy.toFixed(3)} vs unigram ${b.diag.unigramAccuracy.toFixed(3)}` +
        (b.retrieval ? `, retrieval meanRecall ${b.retrieval.meanRecall.toFixed(2)} (chance ${(b.retrieval.chanceR1 * 16 / 3).toFixed(2)})` : ''),
    );
    return { runDir, ...b };
  };

  // the report cross-entropy alone (lambdaClass adds a label term to the loss)
  const imageSensitivity = (m: radkit.Model) => imageUse(m, ds, tokenizer, { imageSize: size, views: 2 }, 'ce');

  const finetune = async (name: string, init: string | undefined, seed: number) => {
    const rates = ftLr !== 1e-3 || ftVisualLr !== 5e-4 ? `-lr${ftLr}-${ftVisualLr}` : ''; // several recipes may fine-tune one pre-training at once
    const runDir = path.join(runs, `rg-${name}-s${seed}${rates}${lambdaClass ? `-class${lambdaClass}` : ''}`);
    fs.rmSync(runDir, { recursive: true, force: true });
    const m = mpmaRg({ tokenizer, ...RG, seed });
    const t0 = performance.now();
    await radkit.train(m, ds, { tokenizer, outDir: runDir, epochs: ftEpochs, batchSize: 16, imageSize: size, seed, progress: 'none', evaluate: false, workers: 0, ...FT, ...(init ? { init: `${init}:image.` } : {}) });
    const seconds = (performance.now() - t0) / 1000;
    const use = await imageSensitivity(m);
    const reports = await generateSplit(m, tokenizer, ds, { split: 'test', preprocessing: { imageSize: size, views: 2 }, generate: m.generateDefaults });
    m.dispose();
    const h = headline(scoreReports(reports));
    const distinct = new Set(reports.map((r) => r.hypothesis)).size;
    const words = reports.reduce((s, r) => s + r.hypothesis.split(' ').filter((w) => w).length, 0) / reports.length;
    log(`rg ${name} s${seed}: test CE ${use.own.toFixed(4)} own images, ${use.rolled.toFixed(4)} next study's`);
    log(`rg ${name} s${seed}: ${seconds.toFixed(0)} s, BLEU-4 ${h.bleu4.toFixed(3)}, R-L ${h.rougeL.toFixed(3)}, CE micro-F1 ${h.ceMicroF1.toFixed(3)}, ${distinct} distinct reports, ${words.toFixed(1)} words`);
    return { seconds, distinctReports: distinct, meanWords: words, example: reports[0]?.hypothesis, testCeOwnImages: use.own, testCeRolledImages: use.rolled, ...h };
  };

  const probe = async (name: string, init: string | undefined, seed: number) => {
    const runDir = path.join(runs, `probe-${name}-s${seed}`);
    fs.rmSync(runDir, { recursive: true, force: true });
    const n = Math.max(16, Math.round(probeFraction * ds.splits.train.length));
    const subset = { ...ds, splits: { ...ds.splits, train: ds.splits.train.slice(0, n) } };
    const m = mpmaProbe({ ...VIT, probePool, seed });
    await radkit.train(m, subset, { tokenizer, outDir: runDir, epochs: probeEpochs, batchSize: 32, lr: probeLr, visualLr: probeLr, imageSize: size, views: 1, seed, progress: 'none', evaluate: false, workers: 0, ...(init ? { init: `${init}:image.` } : {}) });
    const ev = await radkit.models.modelKind('mpma-probe').evaluate!(m, tokenizer, ds, { split: 'test', preprocessing: pre1 });
    m.dispose();
    log(`probe ${name} s${seed} (${n} labelled studies): AUC ${ev.headline.auc.toFixed(3)}, AUC5 ${ev.headline.auc5.toFixed(3)}`);
    return { labelled: n, ...ev.headline };
  };

  const seedList = Array.from({ length: seeds }, (_, i) => i + arg('first-seed', 0));
  const baselineText = mostCommonReport(ds, tokenizer);
  const testRefs = ds.splits.test.map((e) => ({ id: e.id, hypothesis: baselineText, reference: tokenizer.clean(e.report), labels: e.labels, extras: {} }));
  results.mostCommon = headline(scoreReports(testRefs));
  log(`most common report: BLEU-4 ${(results.mostCommon as Record<string, number>).bleu4.toFixed(3)}, R-L ${(results.mostCommon as Record<string, number>).rougeL.toFixed(3)}, CE micro-F1 ${(results.mostCommon as Record<string, number>).ceMicroF1.toFixed(3)}`);
  save();

  const per: Record<string, Record<string, Record<number, unknown>>> = { pretraining: {}, probe: {}, reportGeneration: {} };
  const summarise = () => {
    const summary: Record<string, Record<string, Record<string, unknown>>> = {};
    const add = (section: string, name: string, key: string, values: number[]) => {
      if (values.length) ((summary[section] ??= {})[name] ??= {})[key] = meanSd(values);
    };
    for (const [name, bySeed] of Object.entries(per.pretraining)) {
      const rows = Object.values(bySeed) as { diag: Record<string, number>; retrieval: Record<string, number> | null; seconds: number }[];
      for (const k of ['mimMse', 'meanPatchMse', 'meanImageMse', 'mlmAccuracy', 'unigramAccuracy']) add('pretraining', name, k, rows.map((r) => r.diag[k]));
      add('pretraining', name, 'meanRecall', rows.filter((r) => r.retrieval).map((r) => r.retrieval!.meanRecall));
      add('pretraining', name, 'seconds', rows.map((r) => r.seconds));
    }
    for (const [name, bySeed] of Object.entries(per.probe)) {
      const rows = Object.values(bySeed) as Record<string, number>[];
      for (const k of ['auc', 'auc5']) add('probe', name, k, rows.map((r) => r[k]));
    }
    for (const [name, bySeed] of Object.entries(per.reportGeneration)) {
      const rows = Object.values(bySeed) as Record<string, number>[];
      for (const k of ['bleu4', 'rougeL', 'ceMicroF1', 'distinctReports']) add('reportGeneration', name, k, rows.map((r) => r[k]));
    }
    results.summary = summary;
    results.perSeed = per;
    results.finished = new Date().toISOString();
    save();
  };

  const variant = async (name: string, seed: number) => {
    const p = await pretrain(name, seed);
    (per.pretraining[name] ??= {})[seed] = { seconds: p.seconds, diag: p.diag, retrieval: p.retrieval };
    if (probes) (per.probe[name] ??= {})[seed] = await probe(name, p.runDir, seed);
    if (rgVariants.includes(name)) (per.reportGeneration[name] ??= {})[seed] = await finetune(name, p.runDir, seed);
    summarise();
  };
  // Per seed: the scratch references (report generator and probe on a random ViT), then every variant.
  for (const seed of seedList) {
    if (rgScratch) (per.reportGeneration.scratch ??= {})[seed] = await finetune('scratch', undefined, seed);
    if (probes) (per.probe.random ??= {})[seed] = await probe('random', undefined, seed);
    summarise();
    for (const name of variantNames) await variant(name, seed);
  }
  log('done');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
