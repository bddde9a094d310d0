// OTDRG (seed 002) on SynthCXR at a CPU-sized budget: the staged chain ircp -> diseasenet -> otdrg,
// the predictor against the majority state, otdrg's test scores with predicted and oracle states
// against the most-common-report and label-template baselines, the ablations the paper claims
// (Table 3: none / DLE / DLE + IRCP / full over seeds; Table 4 and Fig. 4: epsilon and iterations;
// the label features at the LM embeddings' raw scale) and the plan statistics and localisation
// check (Fig. 5).
// Every score is written to bench/out/otdrg.json as it finishes, with every open choice.
// Run (from the repository root): node dist/bench/otdrg.js [--train 3000] [--val 100] [--test 300] [--size 128]
//        [--seeds 3] [--ircp-epochs 1] [--dn-epochs 4] [--lm-steps 400] [--ot-steps 120] [--ot-lr 0 (recipe)] [--lm bench|small] [--threads 1]
//        [--experiments table3,table4,scale,costscale] [--first-seed 0] [--variants full,DLE,...] [--tag NAME]
//        [--reuse-stages] [--reuse-runs] [--runs-tag NAME] [--dn-lse R] [--dn-tag NAME] [--dn-select-val] [--dn-augment JSON]
//        (--experiments visible adds the visible-findings oracle: see visibleDs below)
//        (--variants keeps the variants whose name starts with one of the given prefixes; --tag writes otdrg-NAME.json)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as radkit from '../lib/index.js';
import { mostCommonReport } from '../lib/demo.js';
import { ircp, ircpEvaluation } from '../lib/models/ircp.js';
import { diseasenet, diseasenetEvaluation, predictSplitStates } from '../lib/models/diseasenet.js';
import { otdrg, otdrgTokenizer } from '../lib/models/otdrg.js';
import { OTDRG_PROMPT, OTDRG_STATE_WORDS } from '../lib/models/otdrg-common.js';
import { TensorBatch, type Model } from '../lib/models/model.js';
import { generateSplit, headline, scoreReports } from '../lib/train/evaluate.js';
import { CHEXPERT_OBSERVATIONS, LABEL_STATES } from '../lib/text/chexpert.js';
import type { Tokenizer } from '../lib/text/tokenizer.js';
import type { AugmentOptions } from '../lib/data/augment.js';
import { arg, str } from './flags.js';

/** The label-template baseline: one sentence per mentioned observation, from the states alone. */
function templateReport(states: number[]): string {
  const s: string[] = [];
  CHEXPERT_OBSERVATIONS.forEach((o, k) => {
    const name = o.toLowerCase();
    if (k === 0) {
      if (states[k] === 1) s.push('no acute cardiopulmonary process.');
      return;
    }
    if (states[k] === 1) s.push(`there is ${name}.`);
    else if (states[k] === 2) s.push(`no ${name}.`);
    else if (states[k] === 3) s.push(`possible ${name}.`);
  });
  return s.join(' ') || 'no acute cardiopulmonary process.';
}

async function main() {
  const trainN = arg('train', 3000), valN = arg('val', 100), testN = arg('test', 300), size = arg('size', 128), seeds = arg('seeds', 3);
  const ircpEpochs = arg('ircp-epochs', 1), dnEpochs = arg('dn-epochs', 4), lmSteps = arg('lm-steps', 400), otSteps = arg('ot-steps', 120);
  const experiments = new Set(str('experiments', 'table3,table4,scale').split(','));
  const otLr = arg('ot-lr', 0); // 0: the otdrg kind's recipe (AdamW 1e-3)
  // --dn-lse R: the predictor head pools its per-patch logits by log-sum-exp with sharpness R (0 =
  // the mean); its diseasenet runs are named dn-*-lseR and the otdrg runs read the same pooling.
  const dnLse = arg('dn-lse', 0);
  // --dn-tag NAME: the diseasenet runs (and the otdrg runs that read them) get their own folders, so
  // a predictor trained with other budget flags does not overwrite or reuse another's.
  // --dn-select-val: diseasenet is evaluated on the validation split after every epoch and the epoch
  // with the highest state accuracy is kept (checkpoints/best), instead of the last epoch.
  const dnTag = str('dn-tag', ''), dnSelectVal = process.argv.includes('--dn-select-val');
  // --dn-augment JSON: training augmentations of the diseasenet runs (train's augment option)
  const dnAugment = str('dn-augment', '') ? (JSON.parse(str('dn-augment', '')) as AugmentOptions) : undefined;
  const dnSuffix = (dnLse ? `-lse${dnLse}` : '') + (dnTag ? `-${dnTag}` : '');
  const firstSeed = arg('first-seed', 0), only = str('variants', ''), tag = str('tag', ''), lmPreset = str('lm', 'bench');
  radkit.setNumThreads(arg('threads', 1));
  const dir = path.join(os.tmpdir(), `radkit-bench-otdrg-${trainN}-${valN}-${testN}-${size}`);
  if (!fs.existsSync(path.join(dir, 'annotation.json'))) await radkit.data.synthesize({ out: dir, train: trainN, val: valN, test: testN, size, seed: 41, views: 1 });
  const ds = radkit.data.readR2Gen(path.join(dir, 'annotation.json'), { labels: path.join(dir, 'labels.json') });
  const boxes = JSON.parse(fs.readFileSync(path.join(dir, 'boxes.json'), 'utf8')) as Record<string, { observation: string; certain: boolean; box: [number, number, number, number] }[]>;
  const tokenizer = otdrgTokenizer(ds, { threshold: 3 }) as Tokenizer;
  // The bench LM by default: the small preset's 256 x 6 LM (about 5M parameters) costs 4.3 s per
  // LoRA step and 7.8 s per pre-training step at batch 16 on one idle core (against 0.9 s for this one).
  const LM = lmPreset === 'small' ? {} : { lmHidden: 128, lmLayers: 2, lmHeads: 4, lmKvHeads: 4, lmIntermediate: 344 };
  const out = path.resolve('bench', 'out'); // run from the repository root
  fs.mkdirSync(out, { recursive: true });
  const runsTag = str('runs-tag', tag); // --runs-tag NAME: the run folders of another tag (with --reuse-stages)
  const runs = path.join(os.tmpdir(), `radkit-bench-otdrg-runs${runsTag ? `-${runsTag}` : ''}`);
  const pre = { imageSize: size, views: 1 };
  const batchSize = 16, stepsPerEpoch = Math.ceil(trainN / batchSize);
  const results: Record<string, unknown> = {
    conditions: {
      machine: `${os.cpus().length} CPUs (${os.cpus()[0]?.model}), shared with other engineers' jobs (load average at start ${os.loadavg()[0].toFixed(1)})`,
      threads: radkit.getNumThreads(),
      data: { generator: 'SynthCXR', train: trainN, val: valN, test: testN, size, views: 1, synthSeed: 41 },
      budget: { ircpEpochs, diseasenetEpochs: dnEpochs, lmPretrainSteps: lmSteps, otdrgSteps: otSteps, batchSize, otdrgLr: otLr || 'recipe (1e-3)' },
      seeds: { otdrg: Array.from({ length: seeds }, (_, i) => firstSeed + i), stages: 'ircp, diseasenet and the LM pre-training run once (seed 0) and are shared by every otdrg seed: spreads cover the otdrg stage only' },
    },
    choices: {
      labels: 'DLE = SynthCXR labels.json (the generator\'s own 4-state labels), not an LLM labeler',
      encoder: 'ResNet 16-24-32-64-96, one BasicBlock per stage (the paper: Swin-B); patches of the last stage (4 x 4 at 128 px)',
      predictorPooling: dnLse ? `log-sum-exp over the 16 patches of the per-patch logits, r ${dnLse} (stateLseR)` : 'the head on the mean patch feature (stateLseR 0)',
      ircp: 'eq. 2 on the mean-pooled patch feature, cosine, sigma 0.1, tau 0.5, keys a_j + noise_j of the batch as negatives; AdamW 1e-3, cosine schedule',
      diseasenet: `mean patch feature -> Linear -> 14 x 4 logits; focal loss per 4-way group, gamma 2, mean over the B x 14 groups; ${dnEpochs} epochs${dnSelectVal ? ', the epoch of highest validation state accuracy kept' : ', the last epoch kept'}; augmentations ${dnAugment ? JSON.stringify(dnAugment) : 'none'}`,
      labelFeatures: 'Y = mean of the LM input embeddings of the tokens of "observation: state" (14 per study), divided by the RMS of the 56-row table (labelFeatureScale rms; raw as an ablation); W_l: D -> D',
      cost: "Euclidean (eq. 6), divided by its per-study mean with the gradient through it (costScale 'ratio', the kind's default; L_OT = <T*, C> / mean C); the costscale experiment divides by the detached mean (costScale 'mean')",
      sinkhorn: 'log-domain ops.sinkhorn, uniform marginals, epsilon 0.1, t 50, no tolerance stop; L_OT = <T*, C> (no -h(T*) term)',
      lmInput: '[f_p(X) (16 patches); f_p(Y) (14); label text (mentioned observations only, "observation: state" words); prompt; BOS; report; EOS]',
      prompt: OTDRG_PROMPT,
      stateWords: OTDRG_STATE_WORDS,
      lossRG: 'mean token cross-entropy over the report words and EOS (eq. 11 is a sum; a mean keeps lambda comparable across lengths)',
      lambda: 1,
      lm: {
        ...(lmPreset === 'small' ? { preset: 'small (256 x 6)' } : LM),
        layout: 'LLaMA (RMSNorm, RoPE, SwiGLU, no biases)',
        tokenizer: 'radkit word tokenizer from the training reports + the prompt and label words',
        pretraining: `a separate run before the otdrg runs (${lmSteps} steps, lmPretrainFraction 0.99, seed 0; its base weights lm.* are copied into every otdrg run, whose base stays frozen). Variants with labels use an LM pre-trained with lmPretrainInput 'labelled' ([label text of the ground-truth states; prompt; BOS; report; EOS], loss on the report), the 'none' variant one pre-trained on the reports alone: a from-scratch LM has never seen the label words otherwise, and ${otSteps} LoRA steps do not teach it to read them (the first bench: oracle states moved CE-F1 by 0.007-0.022)`,
      },
      lora: 'rank 8, alpha 16, q_proj + v_proj, dropout 0',
      encoderInOtdrg: 'frozen (eval mode), so the predictor sees the features it was trained on',
      optimizer: 'AdamW 1e-3 (LM pre-training and LoRA alike), weight decay 0.01, cosine with 5% warm-up, clip 1, batch 16',
      decoding: 'greedy, at most 80 tokens',
      evalStates: 'predicted = diseasenet argmax per observation; oracle = labels.json of the test study',
      table3: 'none = no labels anywhere (LM pre-trained on reports alone, no label prefix or text, lambda 0), encoder of the IRCP diseasenet; DLE = label prefix + text, lambda 0, diseasenet from scratch (no IRCP); DLE + IRCP = the same from the IRCP diseasenet; full = DLE + IRCP + OT (lambda 1)',
    },
  };
  const file = path.join(out, `otdrg${tag ? `-${tag}` : ''}.json`);
  const save = () => fs.writeFileSync(file, JSON.stringify(results, null, 2));
  const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s} (load ${os.loadavg()[0].toFixed(1)})`);
  const loads: number[] = [];
  /** Trains for `budget.epochs` whole epochs, or for about `budget.steps` steps of batch 16. */
  // --reuse-stages: a stage or LM pre-training run whose folder holds a last checkpoint is loaded, not
  // trained again (same --tag and budget flags assumed; the otdrg runs are always trained).
  const reuse = process.argv.includes('--reuse-stages');
  // --reuse-runs (with --reuse-stages): the otdrg runs too are loaded when their folder holds a last
  // checkpoint, so that a finished run is scored again (new plan statistics) without training it.
  const reuseRuns = reuse && process.argv.includes('--reuse-runs');
  const train = async (m: Model, name: string, budget: { epochs: number } | { steps: number }, extra: Record<string, unknown> = {}, stage = false) => {
    const runDir = path.join(runs, name);
    const last = path.join(runDir, 'checkpoints', 'last');
    if (reuse && stage && fs.existsSync(path.join(last, 'checkpoint.json'))) {
      const ck = await radkit.loadCheckpoint(last);
      m.loadTensors('', ck.model.namedTensors());
      ck.model.dispose();
      return { runDir, seconds: 0, reused: true };
    }
    fs.rmSync(runDir, { recursive: true, force: true });
    const epochs = 'epochs' in budget ? budget.epochs : Math.max(1, Math.ceil(budget.steps / stepsPerEpoch));
    const limit = 'steps' in budget ? { maxStepsPerEpoch: Math.ceil(budget.steps / epochs), batchSize } : {};
    const t0 = performance.now();
    await radkit.train(m, ds, { tokenizer, outDir: runDir, epochs, ...limit, imageSize: size, views: 1, progress: 'none', evaluate: false, workers: 0, ...extra });
    loads.push(os.loadavg()[0]);
    return { runDir, seconds: (performance.now() - t0) / 1000 };
  };
  const stepLog = (runDir: string) => fs.readFileSync(path.join(runDir, 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.type === 'step') as { parts: Record<string, number> }[];
  const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

  // Baselines
  const common = mostCommonReport(ds, tokenizer);
  const refs = ds.splits.test.map((e) => ({ id: e.id, reference: tokenizer.clean(e.report), labels: e.labels, extras: {} }));
  results.mostCommon = headline(scoreReports(refs.map((r) => ({ ...r, hypothesis: common }))));
  const oracleStates = ds.splits.test.map((e) => CHEXPERT_OBSERVATIONS.map((o) => LABEL_STATES[e.labels![o]]));
  results.templateOracle = headline(scoreReports(refs.map((r, i) => ({ ...r, hypothesis: tokenizer.clean(templateReport(oracleStates[i])) }))));
  log(`most common: BLEU-4 ${(results.mostCommon as Record<string, number>).bleu4.toFixed(3)} CE ${(results.mostCommon as Record<string, number>).ceMicroF1.toFixed(3)}; template (oracle): BLEU-4 ${(results.templateOracle as Record<string, number>).bleu4.toFixed(3)} CE ${(results.templateOracle as Record<string, number>).ceMicroF1.toFixed(3)}`);
  save();

  /**
   * --experiments visible: what a perfect image reader could give. Two test label sets, scored
   * against the true labels: 'visible' takes the oracle's states where the image shows the finding
   * (positive, uncertain) and, for every other observation, the training split's most common state
   * among the non-visible ones; 'visiblePredictedHidden' takes the same visible states and, for the
   * rest, the predictor's guess (its positive or uncertain there becomes absent). Whether a report
   * mentions a normal finding (negative) or leaves it out (absent) is drawn at random by SynthCXR,
   * so no image shows it.
   */
  const VISIBLE = new Set(['positive', 'uncertain']);
  const trueTestLabels = new Map(ds.splits.test.map((e) => [e.id, e.labels]));
  const predictedTest: Record<string, number[][]> = {};
  const labelSets = new Map<string, typeof ds>();
  const hiddenMajority = () => {
    const counts = CHEXPERT_OBSERVATIONS.map(() => new Map<string, number>());
    for (const e of ds.splits.train) CHEXPERT_OBSERVATIONS.forEach((o, k) => { const s = e.labels![o]; if (!VISIBLE.has(s)) counts[k].set(s, (counts[k].get(s) ?? 0) + 1); });
    return counts.map((c) => [...c.entries()].sort((a, b) => b[1] - a[1])[0][0]);
  };
  const STATE_NAMES = Object.keys(LABEL_STATES);
  const visibleDs = (source: 'visible' | 'visiblePredictedHidden', encoder: string) => {
    const key = `${source}:${encoder}`;
    const cached = labelSets.get(key);
    if (cached) return cached;
    const hidden = hiddenMajority();
    const hiddenState = (i: number, k: number) => {
      if (source === 'visible') return hidden[k];
      const p = STATE_NAMES[predictedTest[encoder][i][k]];
      return VISIBLE.has(p) ? 'absent' : p;
    };
    const labels: Record<string, Record<string, string>> = {};
    for (const split of ['train', 'val'] as const) for (const e of ds.splits[split]) labels[e.id] = e.labels!;
    ds.splits.test.forEach((e, i) => { labels[e.id] = Object.fromEntries(CHEXPERT_OBSERVATIONS.map((o, k) => [o, VISIBLE.has(e.labels![o]) ? e.labels![o] : hiddenState(i, k)])); });
    const file = path.join(dir, `labels-${source}-${encoder}${dnSuffix}.json`);
    fs.writeFileSync(file, JSON.stringify(labels));
    const set = radkit.data.readR2Gen(path.join(dir, 'annotation.json'), { labels: file });
    const states = set.splits.test.map((e) => CHEXPERT_OBSERVATIONS.map((o) => LABEL_STATES[e.labels![o]]));
    let same = 0;
    ds.splits.test.forEach((e, i) => CHEXPERT_OBSERVATIONS.forEach((o, k) => { same += LABEL_STATES[e.labels![o]] === states[i][k] ? 1 : 0; }));
    (results.visibleStates ??= {} as Record<string, unknown>);
    (results.visibleStates as Record<string, unknown>)[key] = {
      stateAccuracy: same / (ds.splits.test.length * 14),
      template: headline(scoreReports(refs.map((r, i) => ({ ...r, hypothesis: tokenizer.clean(templateReport(states[i])) })))),
      ...(source === 'visible' ? { hiddenStates: Object.fromEntries(CHEXPERT_OBSERVATIONS.map((o, k) => [o, hidden[k]])) } : {}),
    };
    labelSets.set(key, set);
    return set;
  };

  const table: Record<string, unknown[]> = {};
  results.otdrg = table;
  // [name, config, diseasenet run, LM pre-training input, score oracle too]
  type Variant = [string, Record<string, unknown>, string, string, boolean];
  const table3: Variant[] = [
    ['full (DLE + IRCP + OT)', {}, 'ircp', 'labelled', true],
    ['DLE + IRCP (lambda 0)', { lambda: 0 }, 'ircp', 'labelled', true],
    ['DLE (lambda 0, no IRCP)', { lambda: 0 }, 'scratch', 'labelled', true],
    ['none (no labels, no OT)', { labelPrefix: 0, labelText: 0, lambda: 0 }, 'ircp', 'reports', true],
  ];
  const table4: Variant[] = [
    ...[0.01, 0.05, 0.12].map((epsilon): Variant => [`epsilon ${epsilon}`, { epsilon }, 'ircp', 'labelled', false]),
    ['t 5', { iterations: 5 }, 'ircp', 'labelled', false],
  ];
  const scale: Variant[] = [['raw label features (old scale)', { labelFeatureScale: 'raw' }, 'ircp', 'labelled', false]];
  // The cost's normaliser: the full row uses the kind's default (costScale 'ratio', the mean in the
  // gradient); this row divides by the detached mean (the default before 2026-12-06 23:00).
  const costscale: Variant[] = [['full, detached cost mean', { costScale: 'mean' }, 'ircp', 'labelled', true]];
  const schedule: [number, Variant][] = [];
  const seedList = Array.from({ length: seeds }, (_, i) => firstSeed + i);
  if (experiments.has('table3')) for (const v of table3) schedule.push([seedList[0], v]);
  if (experiments.has('table4')) for (const v of table4) schedule.push([seedList[0], v]);
  if (experiments.has('scale')) for (const v of scale) schedule.push([seedList[0], v]);
  if (experiments.has('table3')) for (const seed of seedList.slice(1)) for (const v of table3) schedule.push([seed, v]);
  if (experiments.has('costscale')) for (const seed of seedList) for (const v of costscale) schedule.push([seed, v]);
  // --variants keeps the variants whose name starts with one of the given prefixes; the stages and LM
  // pre-training runs no kept variant reads are skipped.
  const selected = schedule.filter(([, [name]]) => !only || only.split(',').some((w) => name.startsWith(w)));
  const needDn = new Set(selected.map(([, v]) => v[2])), needLm = new Set(selected.map(([, v]) => v[3]));

  // Stages 1 and 2 (diseasenet with and without IRCP), seed 0, shared by every otdrg seed.
  const stages: Record<string, unknown> = {};
  results.stages = stages;
  const m1 = ircp({ preset: 'small', seed: 0 });
  const r1 = await train(m1, 'ircp', { epochs: ircpEpochs }, { seed: 0 }, true);
  const e1 = await ircpEvaluation(m1, tokenizer, ds, { split: 'val', preprocessing: pre });
  m1.dispose();
  stages.ircp = { seconds: r1.seconds, ...e1.headline };
  log(`ircp: ${r1.seconds.toFixed(0)} s, val loss ${e1.headline.valLoss.toFixed(3)}, spread ${e1.headline.featureSpread.toFixed(3)}`);
  const dnRuns: Record<string, string> = {};
  const stagesBest: Record<string, unknown> = {};
  for (const withIrcp of [true, false]) {
    if (!needDn.has(withIrcp ? 'ircp' : 'scratch')) continue;
    const m2 = diseasenet({ preset: 'small', seed: 0, stateLseR: dnLse });
    const r2 = await train(m2, `dn-${withIrcp ? 'ircp' : 'scratch'}${dnSuffix}`, { epochs: dnEpochs }, { seed: 0, ...(withIrcp ? { init: `${r1.runDir}:encoder.` } : {}), ...(dnSelectVal ? { evaluate: { split: 'val', metric: 'accuracy' } } : {}), ...(dnAugment ? { augment: dnAugment } : {}) }, true);
    if (dnSelectVal) {
      // score the kept (best) epoch, which is what --init copies into the otdrg runs
      const best = await radkit.loadCheckpoint(r2.runDir);
      m2.loadTensors('', best.model.namedTensors());
      stagesBest[withIrcp ? 'ircp' : 'scratch'] = best.meta.best;
      best.model.dispose();
    }
    const e2 = await diseasenetEvaluation(m2, tokenizer, ds, { split: 'test', preprocessing: pre });
    const e2val = await diseasenetEvaluation(m2, tokenizer, ds, { split: 'val', preprocessing: pre });
    m2.dispose();
    dnRuns[withIrcp ? 'ircp' : 'scratch'] = r2.runDir;
    stages[`diseasenet-${withIrcp ? 'ircp' : 'scratch'}`] = { seconds: r2.seconds, epochs: dnEpochs, selected: stagesBest[withIrcp ? 'ircp' : 'scratch'] ?? 'last epoch', ...e2.headline, val: e2val.headline, perObservation: (e2.record as { perObservation: unknown }).perObservation };
    log(`diseasenet ${withIrcp ? 'from ircp' : 'from scratch'}: ${r2.seconds.toFixed(0)} s, test accuracy ${e2.headline.accuracy.toFixed(3)} vs majority ${e2.headline.majorityAccuracy.toFixed(3)}, macro-F1 ${e2.headline.macroF1.toFixed(3)} vs ${e2.headline.majorityMacroF1.toFixed(3)}`);
    const ck = await radkit.loadCheckpoint(r2.runDir);
    const pred = await predictSplitStates(ck.model, tokenizer, ds, { split: 'test', preprocessing: pre });
    ck.model.dispose();
    const predStates = ds.splits.test.map((_, i) => pred.predicted.slice(i * 14, i * 14 + 14));
    predictedTest[withIrcp ? 'ircp' : 'scratch'] = predStates;
    results[withIrcp ? 'templatePredicted' : 'templatePredictedNoIrcp'] = headline(scoreReports(refs.map((r, i) => ({ ...r, hypothesis: tokenizer.clean(templateReport(predStates[i])) }))));
    save();
  }

  // The LM pre-training runs (base weights lm.* of each, without the adapters).
  const lmBase: Record<string, Record<string, radkit.Tensor>> = {};
  for (const input of ['labelled', 'reports']) {
    if (!needLm.has(input)) continue;
    const m = otdrg({ tokenizer, preset: 'small', seed: 0, ...LM, lmPretrainFraction: 0.99, lmPretrainInput: input });
    const r = await train(m, `lm-${input}`, { steps: lmSteps }, { seed: 0 }, true);
    const log1 = stepLog(r.runDir).filter((e) => 'lm' in e.parts).map((e) => e.parts.lm);
    lmBase[input] = Object.fromEntries(Object.entries(m.namedTensors()).filter(([n]) => n.startsWith('lm.') && !n.includes('lora_')));
    m.dispose();
    stages[`lm-${input}`] = { seconds: r.seconds, steps: log1.length, firstLoss: meanOf(log1.slice(0, 10)), lastLoss: meanOf(log1.slice(-10)) };
    log(`LM pre-training (${input}): ${r.seconds.toFixed(0)} s, ${log1.length} steps, loss ${meanOf(log1.slice(0, 10)).toFixed(3)} -> ${meanOf(log1.slice(-10)).toFixed(3)}`);
    save();
  }

  for (const [seed, [name, over, encoder, input, withOracle]] of selected) {
    const m = otdrg({ tokenizer, preset: 'small', seed, ...LM, lmPretrainFraction: 0, stateLseR: dnLse, ...over });
    m.loadTensors('', lmBase[input]);
    const r = await train(m, `otdrg-${name.replace(/[^a-z0-9]+/gi, '-')}${dnSuffix}-s${seed}`, { steps: otSteps }, { seed, init: dnRuns[encoder], ...(otLr > 0 ? { lr: otLr } : {}) }, reuseRuns);
    const parts = stepLog(r.runDir).map((e) => e.parts);
    const scores: Record<string, unknown> = { seconds: r.seconds, ...('reused' in r ? { reused: true } : {}), trainLoss: { rgFirst: meanOf(parts.slice(0, 10).map((p) => p.rg)), rgLast: meanOf(parts.slice(-10).map((p) => p.rg)), otFirst: meanOf(parts.slice(0, 10).map((p) => p.ot)), otLast: meanOf(parts.slice(-10).map((p) => p.ot)) } };
    for (const source of [...(withOracle ? ['predicted', 'oracle'] : ['predicted']), ...(experiments.has('visible') && input === 'labelled' ? ['visible', 'visiblePredictedHidden'] : [])]) {
      // the visible sources: the oracle states of their label sets, scored against the true labels
      const isVisible = source === 'visible' || source === 'visiblePredictedHidden';
      const useDs = isVisible ? visibleDs(source, encoder) : ds, labelSource = isVisible ? 'oracle' : source;
      const reports = (await generateSplit(m, tokenizer, useDs, { split: 'test', preprocessing: pre, generate: { ...m.generateDefaults, systemOptions: { labelSource } } })).map((r) => ({ ...r, labels: trueTestLabels.get(r.id) }));
      scores[source] = headline(scoreReports(reports));
      if (name.startsWith('full') && seed === seedList[0] && source === 'predicted') scores.examples = reports.slice(0, 3).map((x) => ({ id: x.id, hypothesis: x.hypothesis, reference: x.reference }));
    }
    scores.plan = await planStats(m);
    m.dispose();
    (table[name] ??= []).push({ seed, ...scores });
    const p = scores.predicted as Record<string, number>, o = scores.oracle as Record<string, number> | undefined;
    log(`otdrg ${name} s${seed}: ${r.seconds.toFixed(0)} s, predicted BLEU-4 ${p.bleu4.toFixed(3)} CE ${p.ceMicroF1.toFixed(3)}${o ? `; oracle BLEU-4 ${o.bleu4.toFixed(3)} CE ${o.ceMicroF1.toFixed(3)}` : ''}; plan ${JSON.stringify(scores.plan)}`);
    summarise();
    save();
  }

  /** Mean and sample standard deviation over seeds of each variant's headline scores. */
  function summarise() {
    const summary: Record<string, Record<string, { mean: number; sd: number; n: number }>> = {};
    for (const [name, rows] of Object.entries(table)) {
      const s: Record<string, { mean: number; sd: number; n: number }> = {};
      for (const source of ['predicted', 'oracle', 'visible', 'visiblePredictedHidden'])
        for (const k of ['bleu4', 'ceMicroF1']) {
          const xs = (rows as Record<string, Record<string, number> | undefined>[]).map((r) => r[source]?.[k]).filter((x): x is number => typeof x === 'number');
          if (!xs.length) continue;
          const mu = meanOf(xs);
          s[`${source}.${k}`] = { mean: mu, sd: xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mu) ** 2, 0) / (xs.length - 1)) : NaN, n: xs.length };
        }
      summary[name] = s;
    }
    results.summary = summary;
    results.loadAverages = { min: Math.min(...loads), max: Math.max(...loads) };
  }

  /**
   * The plan and cost on the test split with oracle states: how far the plan is from uniform (mean
   * over studies of the total variation distance to the uniform plan), how much the cost varies
   * along the labels (per patch, sd over the 14 labels / mean cost), and the localisation check
   * (for each positive finding with a box, is the patch with most plan mass for its observation
   * inside the box, vs a random patch).
   */
  async function planStats(m: Model) {
    const loader = new radkit.data.DataLoader(ds, { split: 'test', batchSize: 16, imageSize: size, views: 1, tokenizer, shuffle: false, workers: 0 });
    // priorPatch[k]: the patch whose centre lies in most training boxes of observation k, a fixed
    // place per observation that a plan can learn without reading the image
    let priorPatch: number[] = [];
    let priorHits = 0;
    let hits = 0, chance = 0, n = 0, tv = 0, costSpread = 0, studies = 0, camHits = 0, reachable = 0, overlapHits = 0, overlapChance = 0, camOverlapHits = 0;
    // topPatchCounts[k][p]: in how many studies patch p carries the most plan mass of observation k
    let topPatchCounts: number[][] = [];
    for await (const b of loader) {
      const tb = new TensorBatch(b);
      const enc = await m.encode(tb);
      const plan = enc.plan.toArray() as Float32Array, cost = enc.cost.toArray() as Float32Array, cam = enc.patchStateLogits.toArray() as Float32Array;
      const [B, Np] = enc.plan.shape;
      Object.values(enc).forEach((t) => t.dispose());
      tb.dispose();
      for (let i = 0; i < B; i++) {
        let d = 0, spread = 0;
        for (let p = 0; p < Np; p++) {
          let mu = 0, sq = 0;
          for (let k = 0; k < 14; k++) {
            const j = (i * Np + p) * 14 + k;
            d += Math.abs(plan[j] - 1 / (Np * 14));
            mu += cost[j] / 14;
          }
          for (let k = 0; k < 14; k++) sq += (cost[(i * Np + p) * 14 + k] - mu) ** 2 / 13;
          spread += Math.sqrt(sq) / mu / Np;
        }
        tv += d / 2;
        costSpread += spread;
        studies++;
        if (!topPatchCounts.length) topPatchCounts = Array.from({ length: 14 }, () => new Array(Np).fill(0));
        for (let k = 0; k < 14; k++) {
          let best = 0;
          for (let p = 1; p < Np; p++) if (plan[(i * Np + p) * 14 + k] > plan[(i * Np + best) * 14 + k]) best = p;
          topPatchCounts[k][best]++;
        }
      }
      const g = Math.round(Math.sqrt(Np)), cell = size / g;
  /** For each positive finding with a box: is the patch with most plan mass for its observation inside the box (patch centre), vs a random patch. */
      const inside = (p: number, box: number[]) => {
        const cx = ((p % g) + 0.5) * cell, cy = (Math.floor(p / g) + 0.5) * cell;
        return cx >= box[0] && cx < box[2] && cy >= box[1] && cy < box[3];
      };
      // the looser check: the patch's cell overlaps the box (most boxes are smaller than a cell)
      const overlaps = (p: number, box: number[]) => {
        const x0 = (p % g) * cell, y0 = Math.floor(p / g) * cell;
        return x0 < box[2] && x0 + cell > box[0] && y0 < box[3] && y0 + cell > box[1];
      };
      if (!priorPatch.length) priorPatch = locationPrior(g, inside);
      for (let i = 0; i < B; i++) {
        const labels = b.labels![i];
        for (const f of boxes[b.ids[i]] ?? []) {
          const k = CHEXPERT_OBSERVATIONS.indexOf(f.observation as (typeof CHEXPERT_OBSERVATIONS)[number]);
          if (k < 0 || labels[CHEXPERT_OBSERVATIONS[k]] !== 'positive') continue;
          let best = 0;
          for (let p = 1; p < Np; p++) if (plan[(i * Np + p) * 14 + k] > plan[(i * Np + best) * 14 + k]) best = p;
          hits += inside(best, f.box) ? 1 : 0;
          priorHits += inside(priorPatch[k], f.box) ? 1 : 0;
          // the predictor's own map: the patch whose features alone give the finding's observation
          // the highest 'positive' logit (relative to the observation's other states)
          const camScore = (p: number) => {
            const o = ((i * Np + p) * 14 + k) * 4;
            return cam[o + 1] - Math.log(Math.exp(cam[o]) + Math.exp(cam[o + 1]) + Math.exp(cam[o + 2]) + Math.exp(cam[o + 3]));
          };
          let bestCam = 0;
          for (let p = 1; p < Np; p++) if (camScore(p) > camScore(bestCam)) bestCam = p;
          camHits += inside(bestCam, f.box) ? 1 : 0;
          overlapHits += overlaps(best, f.box) ? 1 : 0;
          camOverlapHits += overlaps(bestCam, f.box) ? 1 : 0;
          let c = 0, o = 0;
          for (let p = 0; p < Np; p++) c += inside(p, f.box) ? 1 : 0;
          for (let p = 0; p < Np; p++) o += overlaps(p, f.box) ? 1 : 0;
          overlapChance += o / Np;
          chance += c / Np;
          reachable += c > 0 ? 1 : 0;
          n++;
        }
      }
    }
    // boxWithPatchCentre: share of the findings whose box holds at least one patch centre (the most
    // any patch choice can score); camTopPatchInside: the same check for the predictor's own per-patch map;
    // *Overlaps: the same three with 'the patch's cell overlaps the box'.
    // topPatchSameEverywhere: per observation, the share of studies whose top patch is that
    // observation's most frequent one (mean over the 14): 1 = a fixed place whatever the image
    const topPatchSameEverywhere = meanOf(topPatchCounts.map((c) => Math.max(...c) / studies));
    return { topPatchSameEverywhere, priorPatchInside: n ? priorHits / n : NaN, planTvFromUniform: tv / studies, costSpreadAlongLabels: costSpread / studies, findings: n, topPatchInside: n ? hits / n : NaN, randomPatchInside: n ? chance / n : NaN, boxWithPatchCentre: n ? reachable / n : NaN, camTopPatchInside: n ? camHits / n : NaN, topPatchOverlaps: n ? overlapHits / n : NaN, randomPatchOverlaps: n ? overlapChance / n : NaN, camTopPatchOverlaps: n ? camOverlapHits / n : NaN };
  }

  /** Per observation, the patch (of a g x g grid) whose centre lies inside the most positive findings' boxes of the training split. */
  function locationPrior(g: number, inside: (p: number, box: number[]) => boolean): number[] {
    const counts = Array.from({ length: 14 }, () => new Array(g * g).fill(0));
    for (const e of ds.splits.train)
      for (const f of boxes[e.id] ?? []) {
        const k = CHEXPERT_OBSERVATIONS.indexOf(f.observation as (typeof CHEXPERT_OBSERVATIONS)[number]);
        if (k < 0 || e.labels?.[CHEXPERT_OBSERVATIONS[k]] !== 'positive') continue;
        for (let p = 0; p < g * g; p++) counts[k][p] += inside(p, f.box) ? 1 : 0;
      }
    return counts.map((c) => c.indexOf(Math.max(...c)));
  }

  save();
  log(`written ${file}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
