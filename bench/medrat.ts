// MedRAT (seed 001) on SynthCXR at a CPU-sized budget: unpaired training (disjoint halves of the
// training split: labelled images, labelled reports), validated and tested on the paired splits,
// model selection by validation CE micro-F1 of image -> report generation. Baselines in the same
// evaluation: the most common training report, the label template (the most common training report
// with the positive set the model's classifier predicts for the image), and the same model trained
// paired (the ceiling). Alignment: image -> report label retrieval P@10 (same positive set) on test
// against chance, and the modality gap (cosine of the mean image and mean report globals) before and
// after training. Ablations (Tables 4-5 directions): no contrastive loss, no classification loss, no
// local augmentation, memory off, noise instead of dropout. Several seeds: mean and sample sd.
// Everything goes to bench/out/medrat.json as it finishes, with every open choice under `choices`.
// Run: node dist/bench/medrat.js [--data DIR] [--train 3000] [--val 100] [--test 300] [--size 128]
//        [--epochs 10] [--seeds 1] [--seed-start 0] [--variants full,paired,noContrast,noClass,noAugment,noMemory,noise]
//        [--max-steps N] [--threads 1] [--out bench/out/medrat.json]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as radkit from '../lib/index.js';
import { mostCommonReport } from '../lib/demo.js';
import { medrat, medratConfig, type MedRATOptions } from '../lib/models/medrat.js';
import { generateSplit, headline, scoreReports, splitLoader, type GeneratedReport } from '../lib/train/evaluate.js';
import { restoreInto } from '../lib/train/checkpoint.js';
import { CHEXPERT_OBSERVATIONS, type ReportLabels } from '../lib/text/chexpert.js';
import type { R2GenDataset } from '../lib/data/r2gen.js';
import { arg, str } from './flags.js';

const VARIANTS: Record<string, Partial<MedRATOptions>> = {
  full: {},
  paired: { pairing: 'paired' },
  noContrast: { gammaContrast: 0 },
  noClass: { gammaClass: 0 },
  noAugment: { localAugment: 'none' },
  noMemory: { memory: false },
  noise: { localAugment: 'noise' },
  // Not a paper ablation: the classification weight XProNet needed on SynthCXR (lambdaClass 10).
  class10: { gammaClass: 10 },
  // Not the paper: vector dropout 1 (the decoder auto-encodes from the report's global alone) and
  // generation from the image's global alone (systemOptions.imageLocals 'none', GENERATE_OPTIONS).
  globalOnly: { vectorDropout: 1 },
};
/** Generation switches of a variant (val selection and test alike); others use the paper's [z_global; Z_l]. */
const GENERATE_OPTIONS: Record<string, Record<string, string>> = { globalOnly: { imageLocals: 'none' } };

const positiveSet = (l: ReportLabels | undefined) => (l ? CHEXPERT_OBSERVATIONS.filter((o) => l[o] === 'positive').join('|') : '');

/** The most common cleaned training report per positive set (the label-template baseline's table). */
function templates(reports: { report: string; labels: ReportLabels }[], tokenizer: radkit.text.Tokenizer) {
  const by = new Map<string, Map<string, number>>();
  for (const r of reports) {
    const k = positiveSet(r.labels);
    const m = by.get(k) ?? new Map<string, number>();
    const c = tokenizer.clean(r.report);
    m.set(c, (m.get(c) ?? 0) + 1);
    by.set(k, m);
  }
  return new Map([...by].map(([k, m]) => [k, [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0][0]]));
}

/** Image and report globals of a split (and the image classifier's positive sets). */
async function globals(model: radkit.Model, ds: R2GenDataset, tokenizer: radkit.text.Tokenizer, size: number, split: 'val' | 'test') {
  const img: number[][] = [], rep: number[][] = [], predicted: string[] = [], truth: string[] = [];
  for await (const b of splitLoader(ds, { split, preprocessing: { imageSize: size, views: 1 }, batchSize: 16 }, tokenizer, 16)) {
    const tb = new radkit.TensorBatch(b);
    const e = await model.encode(tb);
    tb.dispose();
    const d = e.imageGlobal.shape[1];
    const gi = e.imageGlobal.toArray() as Float32Array, gr = e.reportGlobal.toArray() as Float32Array, lg = e.imageLogits.toArray() as Float32Array;
    for (let i = 0; i < b.ids.length; i++) {
      img.push(Array.from(gi.subarray(i * d, (i + 1) * d)));
      rep.push(Array.from(gr.subarray(i * d, (i + 1) * d)));
      const p = CHEXPERT_OBSERVATIONS.filter((_, k) => lg[i * 14 + k] > 0);
      predicted.push((p.length ? p : [CHEXPERT_OBSERVATIONS[lg.subarray(i * 14, (i + 1) * 14).indexOf(Math.max(...lg.subarray(i * 14, (i + 1) * 14)))]]).join('|'));
      truth.push(positiveSet(b.labels?.[i]));
    }
    for (const t of Object.values(e)) t.dispose();
  }
  return { img, rep, predicted, truth };
}

const unit = (v: number[]) => {
  const n = Math.hypot(...v) || 1;
  return v.map((x) => x / n);
};
const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0);
const meanVec = (vs: number[][]) => vs[0].map((_, j) => vs.reduce((s, v) => s + v[j], 0) / vs.length);

/** Image -> report retrieval P@10 by identical positive set, chance, and the modality gap. */
function alignment(g: { img: number[][]; rep: number[][]; truth: string[] }) {
  const I = g.img.map(unit), R = g.rep.map(unit);
  let hits = 0, chance = 0;
  for (let i = 0; i < I.length; i++) {
    const order = R.map((r, j) => [dot(I[i], r), j]).sort((a, b) => b[0] - a[0]).slice(0, 10);
    hits += order.filter(([, j]) => g.truth[j] === g.truth[i]).length / order.length;
    chance += g.truth.filter((t) => t === g.truth[i]).length / g.truth.length;
  }
  return { p10: hits / I.length, chanceP10: chance / I.length, modalityGapCosine: dot(unit(meanVec(g.img)), unit(meanVec(g.rep))) };
}

async function main() {
  const threads = arg('threads', 1);
  radkit.setNumThreads(threads);
  const size = arg('size', 128), epochs = arg('epochs', 10), seeds = arg('seeds', 1), seed0 = arg('seed-start', 0), maxSteps = arg('max-steps', 0);
  const counts = { train: arg('train', 3000), val: arg('val', 100), test: arg('test', 300) };
  const dataDir = str('data', path.join(os.tmpdir(), `radkit-medrat-synth-${counts.train}-${counts.val}-${counts.test}-${size}`));
  const outFile = str('out', path.join('bench', 'out', 'medrat.json'));
  const runRoot = str('runs', path.join(os.tmpdir(), 'radkit-medrat-runs'));
  const variants = str('variants', 'full,paired,noContrast,noClass,noAugment,noMemory,noise').split(',');
  if (!fs.existsSync(path.join(dataDir, 'annotation.json')))
    await radkit.data.synthesize({ out: dataDir, ...counts, size, seed: 0, views: 1, unpaired: true, workers: 1 });
  const ds = radkit.data.readR2Gen(path.join(dataDir, 'annotation.json'), { labels: path.join(dataDir, 'labels.json') });
  const unpaired = radkit.data.readUnpaired(path.join(dataDir, 'unpaired'));
  // The tokenizer from the training reports the model may read: the unpaired report half.
  const tokenizer = radkit.text.Tokenizer.build(unpaired.reports.map((r) => r.report), { threshold: 3 });
  const searchOptions = { method: 'beam' as const, beams: 3, maxLength: 60, noRepeatNgram: 3 };
  const pre = { imageSize: size, views: 1 };

  const reportHalf: R2GenDataset = { ...ds, splits: { ...ds.splits, train: unpaired.reports.map((r) => ({ id: r.id, split: 'train' as const, report: r.report, imagePaths: [], imagePathsRaw: [], labels: r.labels })) } };
  const common = mostCommonReport(reportHalf, tokenizer);
  const table = templates(unpaired.reports, tokenizer);
  const testRefs = ds.splits.test.map((e) => ({ id: e.id, reference: tokenizer.clean(e.report), labels: e.labels }));
  const baseline = (hyp: (i: number) => string): GeneratedReport[] => testRefs.map((r, i) => ({ ...r, hypothesis: hyp(i), extras: {} }));
  const mostCommon = headline(scoreReports(baseline(() => common)));

  const out: Record<string, unknown> = {
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, loadavg: os.loadavg(), threads, note: 'shared 2-core machine, other engineers running builds and tests' },
    data: { dataDir, ...counts, size, unpairedImages: unpaired.images.length, unpairedReports: unpaired.reports.length, vocab: tokenizer.vocabSize },
    budget: { epochs, maxStepsPerEpoch: maxSteps || null, batch: '16 images + 16 reports' },
    choices: {
      config: medratConfig({ tokenizer, preset: 'small' }),
      notes: [
        'memory temperature 1 (eq. 1 as printed; cosine softmax over top-K nearly uniform); K 16 of 256 rows, d 128',
        'gammas (1, 1, 1); SupCon temperature 0.07 on L2-normalised globals; rows with no positive left out of eq. 4',
        'positives: CheXpert positive only (uncertain = negative); No Finding counts as a label',
        'E_I / E_R: one pre-norm transformer layer each; E_S: 2 layers; decoder: 2 layers, memory LayerNorm([z_global; Z_l])',
        'two views per item made in the system: images by native crop (p 0.8) / affine (0.5) / blur (0.3) / contrast (+-0.3); reports by sentence shuffling (p 1)',
        'L_lang auto-encodes the report as given from its first (shuffled) view; L_cls on the first views of images and reports (eq. 5 sums over the 14 labels, mean over 2N)',
        'vector dropout p 0.9 masks whole locals out of the decoder attention (global kept, no rescaling); noise sigma 5 on every entry',
        'paired ceiling: the same model, decoder reads the image [z_global; Z_l] and predicts the paired report, same auxiliary losses (image and its report share an instance id)',
        'Adam lr 1e-3, visual 5e-4, step decay 0.8 per epoch, clip 1; beam 3, no-repeat trigram, max 60 tokens',
        'model selection by validation CE micro-F1 of image -> report generation; a tie goes to the later epoch (the trainer rule)',
        'ResNet small widths 16-96, 1 block per stage, from scratch (no ImageNet weights here)',
        'word embeddings (report encoder and decoder) initialised N(0, 1/d), i.e. unit scale after the sqrt(d) factor (Vaswani et al.; runs before this fix used LibTorch N(0, 1), 11x larger at d 128, and their decoders did not read their source)',
      ],
    },
    baselines: { mostCommon, mostCommonReport: common },
    runs: {} as Record<string, unknown[]>,
  };
  const save = () => {
    fs.mkdirSync(path.dirname(outFile), { recursive: true });
    fs.writeFileSync(outFile, JSON.stringify(out, null, 2));
  };
  save();
  console.log(`most common: BLEU-4 ${mostCommon.bleu4.toFixed(3)} CE micro-F1 ${mostCommon.ceMicroF1.toFixed(3)}`);

  for (const variant of variants) {
    for (let seed = seed0; seed < seed0 + seeds; seed++) {
      const t0 = performance.now();
      if (!VARIANTS[variant]) throw new Error(`unknown variant '${variant}' (known: ${Object.keys(VARIANTS).join(', ')})`);
      const opts: MedRATOptions = { tokenizer, preset: 'small', seed, ...VARIANTS[variant] };
      const generate = GENERATE_OPTIONS[variant] ? { ...searchOptions, systemOptions: GENERATE_OPTIONS[variant] } : searchOptions;
      const model = medrat(opts);
      const before = alignment(await globals(model, ds, tokenizer, size, 'test'));
      const dir = path.join(runRoot, `${variant}-s${seed}-e${epochs}-${size}`);
      fs.rmSync(dir, { recursive: true, force: true });
      const r = await radkit.train(model, ds, {
        tokenizer, outDir: dir, epochs, imageSize: size, seed, progress: 'none', workers: 1, unpaired,
        evaluate: { split: 'val', metric: 'ceMicroF1', generate }, ...(maxSteps ? { maxStepsPerEpoch: maxSteps } : {}),
      });
      await restoreInto(model, path.join(dir, 'checkpoints', 'best'), false);
      const reports = await generateSplit(model, tokenizer, ds, { split: 'test', preprocessing: pre, generate });
      const test = headline(scoreReports(reports));
      const g = await globals(model, ds, tokenizer, size, 'test');
      const after = alignment(g);
      const template = headline(scoreReports(baseline((i) => table.get(g.predicted[i]) ?? common)));
      const row = {
        seed, seconds: (performance.now() - t0) / 1000, loadavgAtEnd: os.loadavg(), best: r.best, valHistory: r.history.map((h) => ({ epoch: h.epoch, trainLoss: h.trainLoss, ceMicroF1: h.metrics?.ceMicroF1, bleu4: h.metrics?.bleu4 })),
        test, labelTemplate: template, alignment: { before, after }, samples: reports.slice(0, 3).map((x) => ({ id: x.id, hypothesis: x.hypothesis, reference: x.reference })),
      };
      ((out.runs as Record<string, unknown[]>)[variant] ??= []).push(row);
      save();
      console.log(`${variant} seed ${seed}: test BLEU-4 ${test.bleu4.toFixed(3)} CE micro-F1 ${test.ceMicroF1.toFixed(3)} | template ${template.bleu4.toFixed(3)} / ${template.ceMicroF1.toFixed(3)} | P@10 ${after.p10.toFixed(3)} (chance ${after.chanceP10.toFixed(3)}) gap ${before.modalityGapCosine.toFixed(3)} -> ${after.modalityGapCosine.toFixed(3)} | ${row.seconds.toFixed(0)} s`);
      model.dispose();
    }
  }
  // Means and sample sd per variant.
  const summary: Record<string, Record<string, string>> = {};
  for (const [v, rows] of Object.entries(out.runs as Record<string, { test: Record<string, number> }[]>)) {
    const stat = (k: string) => {
      const xs = rows.map((x) => x.test[k]);
      const m = xs.reduce((s, x) => s + x, 0) / xs.length;
      const sd = xs.length > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1)) : NaN;
      return `${m.toFixed(3)}${xs.length > 1 ? ` +- ${sd.toFixed(3)}` : ''} (n ${xs.length})`;
    };
    summary[v] = { bleu4: stat('bleu4'), ceMicroF1: stat('ceMicroF1') };
  }
  out.summary = summary;
  save();
  console.log(JSON.stringify(summary, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
