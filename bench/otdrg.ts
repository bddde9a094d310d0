// OTDRG (seed 002) on SynthCXR at a CPU-sized budget: the staged chain ircp -> diseasenet -> otdrg,
// the predictor against the majority state, otdrg's test scores with predicted and oracle states
// against the most-common-report and label-template baselines, the ablations the paper claims
// (Table 3: no labels / labels without OT / full, IRCP on vs off, label prefix on/off; Table 4 and
// Fig. 4: epsilon and iterations; the raw cost scale) and the plan localisation check (Fig. 5).
// Every score is written to bench/out/otdrg.json as it finishes, with every open choice.
// Run (from the repository root): node dist/bench/otdrg.js [--train 600] [--size 128] [--seeds 1] [--ot-epochs 6]
//        [--experiments table3,table4,iters,raw] [--first-seed 0] [--variants full,noOT,...] [--tag NAME]
//        (--variants keeps the variants whose name starts with one of the words; --tag writes otdrg-NAME.json)
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

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const str = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};

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
  const trainN = arg('train', 600), size = arg('size', 128), seeds = arg('seeds', 1), otEpochs = arg('ot-epochs', 6), dnEpochs = arg('dn-epochs', 10), ircpEpochs = arg('ircp-epochs', 4);
  const experiments = new Set(str('experiments', 'table3,table4,iters,raw').split(','));
  const firstSeed = arg('first-seed', 0), only = str('variants', ''), tag = str('tag', '');
  radkit.setNumThreads(arg('threads', 2));
  const dir = path.join(os.tmpdir(), `radkit-bench-otdrg-${trainN}-${size}`);
  if (!fs.existsSync(path.join(dir, 'annotation.json'))) await radkit.data.synthesize({ out: dir, train: trainN, val: 50, test: 100, size, seed: 41, views: 1 });
  const ds = radkit.data.readR2Gen(path.join(dir, 'annotation.json'), { labels: path.join(dir, 'labels.json') });
  const boxes = JSON.parse(fs.readFileSync(path.join(dir, 'boxes.json'), 'utf8')) as Record<string, { observation: string; certain: boolean; box: [number, number, number, number] }[]>;
  const tokenizer = otdrgTokenizer(ds, { threshold: 3 }) as Tokenizer;
  // The bench LM (the small preset's 256 x 6 LM, about 5M parameters, does not fit this budget).
  const LM = { lmHidden: 128, lmLayers: 2, lmHeads: 4, lmKvHeads: 4, lmIntermediate: 344 };
  const out = path.resolve('bench', 'out'); // run from the repository root
  fs.mkdirSync(out, { recursive: true });
  const runs = path.join(os.tmpdir(), 'radkit-bench-otdrg-runs');
  const pre = { imageSize: size, views: 1 };
  const results: Record<string, unknown> = {
    conditions: {
      machine: `${os.cpus().length} CPUs (${os.cpus()[0]?.model}), shared and loaded by other jobs`,
      threads: radkit.getNumThreads(),
      data: { generator: 'SynthCXR', train: trainN, val: 50, test: 100, size, views: 1, synthSeed: 41 },
      epochs: { ircp: ircpEpochs, diseasenet: dnEpochs, otdrg: otEpochs },
      seeds,
    },
    choices: {
      labels: 'DLE = SynthCXR labels.json (the generator\'s own 4-state labels), not an LLM labeler',
      encoder: 'ResNet 16-24-32-64-96, one BasicBlock per stage (the paper: Swin-B); patches of the last stage (4 x 4 at 128 px)',
      ircp: 'eq. 2 on the mean-pooled patch feature, cosine, sigma 0.1, tau 0.5, keys a_j + noise_j of the batch as negatives; AdamW 1e-3, cosine schedule',
      diseasenet: 'mean patch feature -> Linear -> 14 x 4 logits; focal loss per 4-way group, gamma 2, mean over the B x 14 groups',
      labelFeatures: 'Y = mean of the LM input embeddings of the tokens of "observation: state" (14 per study); W_l: D -> D',
      cost: 'Euclidean (eq. 6), divided by its detached per-study mean (costScale mean; raw as an ablation)',
      sinkhorn: 'log-domain ops.sinkhorn, uniform marginals, epsilon 0.1, t 50, no tolerance stop; L_OT = <T*, C> (no -h(T*) term)',
      lmInput: '[f_p(X) (16 patches); f_p(Y) (14); label text (mentioned observations only, "observation: state" words); prompt; BOS; report; EOS]',
      prompt: OTDRG_PROMPT,
      stateWords: OTDRG_STATE_WORDS,
      lossRG: 'mean token cross-entropy over the report words and EOS (eq. 11 is a sum; a mean keeps lambda comparable across lengths)',
      lambda: 1,
      lm: { ...LM, layout: 'LLaMA (RMSNorm, RoPE, SwiGLU, no biases)', tokenizer: 'radkit word tokenizer from the training reports + the prompt and label words', pretraining: 'inside the otdrg run: the first half of its steps train the whole LM on [BOS; report; EOS] of the training reports; then the base is frozen' },
      lora: 'rank 8, alpha 16, q_proj + v_proj, dropout 0',
      encoderInOtdrg: 'frozen (eval mode), so the predictor sees the features it was trained on',
      optimizer: 'AdamW 1e-3 (LM pre-training and LoRA alike), weight decay 0.01, cosine with 5% warm-up, clip 1, batch 16',
      decoding: 'greedy, at most 80 tokens',
      evalStates: 'predicted = diseasenet argmax per observation; oracle = labels.json of the test study',
    },
  };
  const file = path.join(out, `otdrg${tag ? `-${tag}` : ''}.json`);
  const save = () => fs.writeFileSync(file, JSON.stringify(results, null, 2));
  const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
  const train = async (m: Model, name: string, epochs: number, extra: Record<string, unknown> = {}) => {
    const runDir = path.join(runs, name);
    fs.rmSync(runDir, { recursive: true, force: true });
    const t0 = performance.now();
    await radkit.train(m, ds, { tokenizer, outDir: runDir, epochs, imageSize: size, views: 1, progress: 'none', evaluate: false, workers: 0, ...extra });
    return { runDir, seconds: (performance.now() - t0) / 1000 };
  };

  // Baselines
  const common = mostCommonReport(ds, tokenizer);
  const refs = ds.splits.test.map((e) => ({ id: e.id, reference: tokenizer.clean(e.report), labels: e.labels, extras: {} }));
  results.mostCommon = headline(scoreReports(refs.map((r) => ({ ...r, hypothesis: common }))));
  const oracleStates = ds.splits.test.map((e) => CHEXPERT_OBSERVATIONS.map((o) => LABEL_STATES[e.labels![o]]));
  results.templateOracle = headline(scoreReports(refs.map((r, i) => ({ ...r, hypothesis: tokenizer.clean(templateReport(oracleStates[i])) }))));
  log(`most common: BLEU-4 ${(results.mostCommon as Record<string, number>).bleu4.toFixed(3)} CE ${(results.mostCommon as Record<string, number>).ceMicroF1.toFixed(3)}; template (oracle): BLEU-4 ${(results.templateOracle as Record<string, number>).bleu4.toFixed(3)} CE ${(results.templateOracle as Record<string, number>).ceMicroF1.toFixed(3)}`);
  save();

  const seedList = Array.from({ length: seeds }, (_, i) => firstSeed + i);
  const table: Record<string, unknown[]> = {};
  results.otdrg = table;
  const stages: Record<string, unknown> = {};
  results.stages = stages;
  for (const seed of seedList) {
    // Stage 1 and 2 (with and without IRCP)
    const m1 = ircp({ preset: 'small', seed });
    const r1 = await train(m1, `ircp-s${seed}`, ircpEpochs, { seed });
    const e1 = await ircpEvaluation(m1, tokenizer, ds, { split: 'val', preprocessing: pre });
    m1.dispose();
    log(`ircp s${seed}: ${r1.seconds.toFixed(0)} s, val loss ${e1.headline.valLoss.toFixed(3)}, spread ${e1.headline.featureSpread.toFixed(3)}`);
    const dnRuns: Record<string, string> = {};
    for (const withIrcp of [true, false]) {
      const m2 = diseasenet({ preset: 'small', seed });
      const r2 = await train(m2, `dn-${withIrcp ? 'ircp' : 'scratch'}-s${seed}`, dnEpochs, { seed, ...(withIrcp ? { init: `${r1.runDir}:encoder.` } : {}) });
      const e2 = await diseasenetEvaluation(m2, tokenizer, ds, { split: 'test', preprocessing: pre });
      m2.dispose();
      dnRuns[withIrcp ? 'ircp' : 'scratch'] = r2.runDir;
      stages[`diseasenet-${withIrcp ? 'ircp' : 'scratch'}-s${seed}`] = { seconds: r2.seconds, ...e2.headline, perObservation: (e2.record as { perObservation: unknown }).perObservation };
      log(`diseasenet ${withIrcp ? 'from ircp' : 'from scratch'} s${seed}: ${r2.seconds.toFixed(0)} s, test accuracy ${e2.headline.accuracy.toFixed(3)} vs majority ${e2.headline.majorityAccuracy.toFixed(3)}, macro-F1 ${e2.headline.macroF1.toFixed(3)} vs ${e2.headline.majorityMacroF1.toFixed(3)}`);
      if (withIrcp && seed === 0) {
        const m = diseasenet({ preset: 'small', seed });
        const ck = await radkit.loadCheckpoint(r2.runDir);
        const pred = await predictSplitStates(ck.model, tokenizer, ds, { split: 'test', preprocessing: pre });
        ck.model.dispose();
        m.dispose();
        const predStates = ds.splits.test.map((_, i) => pred.predicted.slice(i * 14, i * 14 + 14));
        results.templatePredicted = headline(scoreReports(refs.map((r, i) => ({ ...r, hypothesis: tokenizer.clean(templateReport(predStates[i])) }))));
      }
    }
    save();

    const variants: [string, Record<string, unknown>, string, boolean][] = [];
    if (experiments.has('table3')) {
      variants.push(['full', {}, 'ircp', true]);
      variants.push(['noOT (lambda 0)', { lambda: 0 }, 'ircp', true]);
      variants.push(['noLabelPrefix', { labelPrefix: 0 }, 'ircp', true]);
      variants.push(['none (no labels, no OT)', { labelPrefix: 0, labelText: 0, lambda: 0 }, 'ircp', true]);
      variants.push(['full, no IRCP', {}, 'scratch', true]);
    }
    if (experiments.has('table4')) for (const epsilon of [0.01, 0.05, 0.12]) variants.push([`epsilon ${epsilon}`, { epsilon }, 'ircp', false]);
    if (experiments.has('iters')) variants.push(['t 5', { iterations: 5 }, 'ircp', false]);
    if (experiments.has('raw')) variants.push(['raw cost', { costScale: 'raw' }, 'ircp', false]);
    for (const [name, over, encoder, withOracle] of variants) {
      if (only && !only.split(',').includes(name.split(' ')[0])) continue;
      const m = otdrg({ tokenizer, preset: 'small', seed, ...LM, ...over });
      const r = await train(m, `otdrg-${name.replace(/[^a-z0-9]+/gi, '-')}-s${seed}`, otEpochs, { seed, init: dnRuns[encoder] });
      const scores: Record<string, unknown> = { seconds: r.seconds };
      for (const source of withOracle ? ['predicted', 'oracle'] : ['predicted']) {
        const reports = await generateSplit(m, tokenizer, ds, { split: 'test', preprocessing: pre, generate: { ...m.generateDefaults, systemOptions: { labelSource: source } } });
        scores[source] = headline(scoreReports(reports));
        if (name === 'full' && seed === 0 && source === 'predicted') scores.examples = reports.slice(0, 3).map((x) => ({ id: x.id, hypothesis: x.hypothesis, reference: x.reference }));
      }
      if (name === 'full' || name === 'noOT (lambda 0)') scores.localisation = await localisation(m, seed);
      m.dispose();
      (table[name] ??= []).push({ seed, ...scores });
      const p = scores.predicted as Record<string, number>, o = scores.oracle as Record<string, number> | undefined;
      log(`otdrg ${name} s${seed}: ${r.seconds.toFixed(0)} s, predicted BLEU-4 ${p.bleu4.toFixed(3)} CE ${p.ceMicroF1.toFixed(3)}${o ? `; oracle BLEU-4 ${o.bleu4.toFixed(3)} CE ${o.ceMicroF1.toFixed(3)}` : ''}${scores.localisation ? `; localisation ${JSON.stringify(scores.localisation)}` : ''}`);
      save();
    }
  }

  /** For each positive finding with a box: is the patch with most plan mass for its observation inside the box (patch centre), vs a random patch. */
  async function localisation(m: Model, seed: number) {
    const loader = new radkit.data.DataLoader(ds, { split: 'test', batchSize: 16, imageSize: size, views: 1, tokenizer, shuffle: false, workers: 0 });
    let hits = 0, chance = 0, n = 0;
    for await (const b of loader) {
      const tb = new TensorBatch(b);
      const enc = await m.encode(tb);
      const plan = enc.plan.toArray() as Float32Array;
      const [B, Np] = enc.plan.shape;
      Object.values(enc).forEach((t) => t.dispose());
      tb.dispose();
      const g = Math.round(Math.sqrt(Np)), cell = size / g;
      const inside = (p: number, box: number[]) => {
        const cx = ((p % g) + 0.5) * cell, cy = (Math.floor(p / g) + 0.5) * cell;
        return cx >= box[0] && cx < box[2] && cy >= box[1] && cy < box[3];
      };
      for (let i = 0; i < B; i++) {
        const labels = b.labels![i];
        for (const f of boxes[b.ids[i]] ?? []) {
          const k = CHEXPERT_OBSERVATIONS.indexOf(f.observation as (typeof CHEXPERT_OBSERVATIONS)[number]);
          if (k < 0 || labels[CHEXPERT_OBSERVATIONS[k]] !== 'positive') continue;
          let best = 0;
          for (let p = 1; p < Np; p++) if (plan[(i * Np + p) * 14 + k] > plan[(i * Np + best) * 14 + k]) best = p;
          hits += inside(best, f.box) ? 1 : 0;
          let c = 0;
          for (let p = 0; p < Np; p++) c += inside(p, f.box) ? 1 : 0;
          chance += c / Np;
          n++;
        }
      }
    }
    void seed;
    return { findings: n, topPatchInside: n ? hits / n : NaN, randomPatchInside: n ? chance / n : NaN };
  }

  save();
  log(`written ${file}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
