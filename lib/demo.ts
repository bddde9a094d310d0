import * as fs from 'node:fs';
import * as path from 'node:path';
import { readR2Gen, type R2GenDataset } from './data/r2gen.js';
import { holdsSynthesis, synthesize } from './data/synth/index.js';
import { Tokenizer } from './text/tokenizer.js';
import { xpronet } from './models/xpronet.js';
import { setNumThreads, getNumThreads } from './runtime.js';
import { train, type TrainOptions } from './train/trainer.js';
import { RadkitError } from './errors.js';
import { generationTokenizer, loadCheckpoint } from './train/checkpoint.js';
import { generateSplit, headline, scoreReports, type GeneratedReport } from './train/evaluate.js';
import { writeHtmlReport } from './report/html.js';
import { checkDevice, devices } from './runtime.js';
import type { Precision } from './models/model.js';

export interface DemoOptions {
  outDir?: string;
  train?: number;
  val?: number;
  test?: number;
  epochs?: number;
  seed?: number;
  log?: (line: string) => void;
  /**
   * 'cpu' (default): the small preset at 128 px. 'cuda' / 'cuda:N': the GPU preset, XProNet's paper
   * size (3+3 layers, d 512, the ResNet extractor) at 224 px, in OUT = runs/demo-gpu by default,
   * reported beside the CPU demo's scores when runs/demo/results.json exists.
   */
  device?: string;
  /** Training precision (default float32; see train()). */
  precision?: Precision;
}

/** The most common cleaned training report, emitted for every test study: the trivial baseline. */
export function mostCommonReport(ds: R2GenDataset, tokenizer: Tokenizer): string {
  const counts = new Map<string, number>();
  for (const e of ds.splits.train) {
    const c = tokenizer.clean(e.report);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0][0];
}

/**
 * `npm run demo`: SynthCXR -> a small XProNet trained on the CPU -> beam-3 reports for the test
 * split -> scores against the most-common-report baseline -> runs/demo/report.html.
 */
export async function runDemo(o: DemoOptions = {}) {
  const log = o.log ?? ((l: string) => console.log(l));
  const t0 = performance.now();
  // The device first: one that cannot be used here fails before anything is written.
  const device = o.device === undefined ? 'cpu' : checkDevice(o.device, 'demo');
  const gpu = device !== 'cpu';
  const size = gpu ? 224 : 128;
  const preset = gpu ? 'paper' : 'small';
  const out = path.resolve(o.outDir ?? (gpu ? 'runs/demo-gpu' : 'runs/demo'));
  const dataDir = path.join(out, 'data');
  const seed = o.seed ?? 0;
  const counts = { train: o.train ?? 3000, val: o.val ?? 40, test: o.test ?? 100 };
  setNumThreads(Math.max(getNumThreads(), 2));
  if (!holdsSynthesis(dataDir, { ...counts, size, seed })) {
    if (fs.existsSync(dataDir)) {
      // Made with other counts or seed (or an older generator): the demo owns this folder.
      log(`1/5 SynthCXR: ${dataDir} holds another dataset; replacing it (and the run trained on it)`);
      fs.rmSync(dataDir, { recursive: true, force: true });
      fs.rmSync(path.join(out, 'run'), { recursive: true, force: true });
    }
    log(`1/5 SynthCXR: ${counts.train}/${counts.val}/${counts.test} studies at ${size} px -> ${dataDir}`);
    const s = await synthesize({ out: dataDir, ...counts, size, seed });
    log(`    done in ${s.seconds.toFixed(1)} s`);
  } else log(`1/5 SynthCXR: reusing ${dataDir}`);
  const ds = readR2Gen(path.join(dataDir, 'annotation.json'), { labels: path.join(dataDir, 'labels.json') });
  const tokenizer = Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: 3, maxLength: 60 });
  log(`2/5 tokenizer: ${tokenizer.vocabSize} words (R2Gen cleaning, threshold 3)`);

  const runDir = path.join(out, 'run');
  // lambdaClass 10: the label classifier's gradient teaches the from-scratch ResNet the findings early
  // (with 1, the model collapses to one normal report in this budget).
  const model = xpronet({ tokenizer, preset, seed, lambdaClass: 10 });
  log(`3/5 training XProNet (${preset} preset, ${model.parameterCount.toLocaleString()} parameters, ${size} px, ${device}, ${o.precision ?? 'float32'}) -> ${runDir}`);
  const tTrain = performance.now();
  const trainOptions: TrainOptions = {
    tokenizer,
    outDir: runDir,
    epochs: o.epochs ?? 8,
    batchSize: 16,
    imageSize: size,
    device,
    precision: o.precision,
    lr: 2e-3, // XProNet's IU X-Ray learning rates: 2e-3, and 1e-3 for the visual extractor
    visualLr: 1e-3,
    schedule: { kind: 'step', gamma: 0.8 },
    seed,
    evaluate: { split: 'val', metric: 'bleu4', generate: { systemOptions: { labelSource: 'predicted' } } },
    progress: process.stderr.isTTY ? 'bar' : 'none',
  };
  let result;
  try {
    result = await train(model, ds, trainOptions);
  } catch (err) {
    // A run left by another radkit version or other settings: the demo owns runs/demo/run.
    if (!(err instanceof RadkitError && err.code === 'ERR_CHECKPOINT')) throw err;
    log(`    ${runDir} holds another run (${err.message.split('; ')[0]}); training from scratch`);
    result = await train(model, ds, { ...trainOptions, resume: false });
  }
  model.dispose();
  const trainSeconds = (performance.now() - tTrain) / 1000;
  const imagesPerSecond = result.history.reduce((s, h) => s + h.imagesPerSecond, 0) / Math.max(1, result.history.length);
  log(`    ${result.history.length} epochs in ${trainSeconds.toFixed(0)} s (${imagesPerSecond.toFixed(1)} studies/s); best val BLEU-4 ${result.best?.score.toFixed(4)} at epoch ${result.best?.epoch}`);

  log('4/5 generating test reports (beam 3) and scoring');
  const ck = await loadCheckpoint(runDir, { device });
  // XProNet's generation defaults (beam 3, at most 60 tokens, no repeated trigram), as recorded below.
  const generate = ck.model.generateDefaults;
  const predicted = await generateSplit(ck.model, generationTokenizer(ck, 'demo'), ds, { split: 'test', preprocessing: ck.meta.preprocessing, generate: { systemOptions: { labelSource: 'predicted' } } });
  const oracle = await generateSplit(ck.model, generationTokenizer(ck, 'demo'), ds, { split: 'test', preprocessing: ck.meta.preprocessing, generate: { systemOptions: { labelSource: 'oracle' } } });
  ck.model.dispose();
  const baselineText = mostCommonReport(ds, tokenizer);
  const baseline: GeneratedReport[] = predicted.map((r) => ({ ...r, hypothesis: baselineText, extras: {} }));
  const scored = {
    'XProNet (predicted labels)': scoreReports(predicted),
    'XProNet (oracle labels, as the public code tests)': scoreReports(oracle),
    'most common training report': scoreReports(baseline),
  };
  const scores = Object.fromEntries(Object.entries(scored).map(([k, v]) => [k, headline(v)]));

  log('5/5 writing results');
  const seconds = (performance.now() - t0) / 1000;
  const settings = {
    data: { generator: 'SynthCXR', ...counts, size, seed },
    device: { name: device, ...(gpu ? { detail: devices().find((d) => d.name === device)?.detail } : {}), precision: o.precision ?? 'float32' },
    model: ck.meta.config,
    training: ck.meta.trainOptions,
    generation: generate,
    labelSources: { headline: 'predicted (classifier on the image)', alsoShown: 'oracle (labels of the ground-truth report)' },
    evaluation: scored['most common training report'].settings,
    measured: { totalSeconds: seconds, trainSeconds, studiesPerSecond: imagesPerSecond, threads: getNumThreads() },
  };
  // The GPU preset beside the CPU demo's scores, when that demo has run here.
  const cpuResults = path.resolve('runs/demo/results.json');
  const cpuDemo = gpu && fs.existsSync(cpuResults) ? (JSON.parse(fs.readFileSync(cpuResults, 'utf8')) as { scores: Record<string, Record<string, number>> }).scores : undefined;
  fs.writeFileSync(path.join(out, 'results.json'), JSON.stringify({ scores, settings, full: scored, ...(cpuDemo ? { cpuDemo: { file: cpuResults, scores: cpuDemo } } : {}) }, null, 2));
  const byId = new Map(oracle.map((r) => [r.id, r]));
  const items = predicted.slice(0, 40).map((r) => {
    const entry = ds.splits.test.find((e) => e.id === r.id)!;
    const wp = r.extras.wordPrototypes as { shape: number[]; data: number[] } | undefined;
    const words = r.hypothesis.split(' ');
    const notes = wp
      ? words.slice(0, 8).map((w, i) => `${w}: prototypes ${wp.data.slice(i * wp.shape[1], i * wp.shape[1] + 5).join(',')}...`)
      : [];
    return {
      id: r.id,
      images: entry.imagePaths,
      reference: r.reference,
      generated: { 'XProNet (predicted labels)': r.hypothesis, 'XProNet (oracle labels)': byId.get(r.id)?.hypothesis ?? '', baseline: baselineText },
      notes: notes.length ? ['selected prototypes (first head, class index = prototype / 20):', ...notes] : [],
    };
  });
  const html = path.join(out, 'report.html');
  writeHtmlReport(html, { title: 'radkit demo: XProNet on SynthCXR', scores, settings, items });

  const cols = Object.keys(scores);
  const rows = ['bleu1', 'bleu4', 'meteor', 'rougeL', 'ciderD', 'ceMicroF1', 'ceMacroF1'];
  log('');
  log(`${'metric'.padEnd(11)}${cols.map((c) => c.slice(0, 28).padStart(30)).join('')}`);
  for (const m of rows) log(`${m.padEnd(11)}${cols.map((c) => (scores[c][m] ?? NaN).toFixed(4).padStart(30)).join('')}`);
  const cpuHeadline = cpuDemo?.['XProNet (predicted labels)'];
  if (cpuHeadline) {
    log('');
    log(`beside the CPU demo (${cpuResults}), XProNet with predicted labels:`);
    for (const m of rows) log(`${m.padEnd(11)}${`${preset} ${size} px ${device}`.padStart(30)}: ${(scores['XProNet (predicted labels)'][m] ?? NaN).toFixed(4)}   small 128 px cpu: ${(cpuHeadline[m] ?? NaN).toFixed(4)}`);
  }
  log('');
  log(`report: ${html}`);
  log(`results: ${path.join(out, 'results.json')}`);
  log(`total ${(seconds / 60).toFixed(1)} min`);
  return { scores, html, seconds, trainSeconds, imagesPerSecond };
}
