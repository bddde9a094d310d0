// AdaMatch-Cyclic's LM stage on SynthCXR at a CPU budget (lib/models/cyclic-lm.ts): one
// from-scratch GPT-NeoX LM over [words][task tokens][VQ codes] learns image -> report and
// report -> image together with the response-only loss, on the codes of `radkit tokenize-images`.
// Keyword hints: 'none' (Table 7's first row) or 'oracle' (the entities of the reference report,
// N_w = 10: the ceiling of what keywords can give; AdaMatch-found keywords are not run here).
// Keypatch hints are not used (no AdaMatch run at this budget).
// Scores: image -> report BLEU/METEOR/ROUGE-L/CE-F1 against the most common training report;
// report -> image: code accuracy and PSNR of the decoded generated image against the decoded true
// codes (the VQ reconstruction), both against a random training image's codes.
// Run: node dist/bench/adamatch-cyclic.js --data DIR --codes FILE --vq RUN [--hints none|oracle]
//        [--epochs 3] [--seed 0] [--max-train N] [--max-test N] [--out bench/out/adamatch-cyclic-HINTS-SEED.json]
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as radkit from '../lib/index.js';
import { mostCommonReport } from '../lib/demo.js';
import { headline } from '../lib/train/evaluate.js';
import { readImageCodes } from '../lib/models/image-codes.js';
import { SpecialsVocabulary } from '../lib/models/cyclic-prompts.js';
import { CYCLIC_LM_SMALL, createCyclicLM, cyclicSequence, generateImageCodes, generateReports, sequenceBatch, type CyclicExample } from '../lib/models/cyclic-lm.js';
import { decodeCodes } from '../lib/models/vqgan.js';
import { loadCheckpoint } from '../lib/train/checkpoint.js';
import { extractEntities } from '../lib/text/entities.js';
import { psnr } from '../lib/metrics/image.js';

const str = (name: string, dflt?: string) => {
  const i = process.argv.indexOf(`--${name}`);
  if (i > 0) return process.argv[i + 1];
  if (dflt === undefined) throw new Error(`--${name} is required`);
  return dflt;
};
const num = (name: string, dflt: number) => Number(str(name, String(dflt)));

async function main() {
  const t0 = performance.now();
  const hints = str('hints', 'none');
  if (!['none', 'oracle'].includes(hints)) throw new Error('--hints none|oracle');
  const seed = num('seed', 0), epochs = num('epochs', 3), batchSize = num('batch-size', 16), lr = num('lr', 1e-3);
  const ds = radkit.data.readR2Gen(path.join(str('data'), 'annotation.json'), { labels: path.join(str('data'), 'labels.json') });
  const codes = readImageCodes(str('codes'));
  const tokenizer = radkit.text.Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: 3 });
  const words = (s: string) => tokenizer.encode(s, 10_000).slice(1, -1);
  const v = new SpecialsVocabulary(tokenizer.vocabSize + 1, codes.nEmbed);
  const N = codes.grid[0] * codes.grid[1];
  const keywords = (report: string) => (hints === 'oracle' ? [...new Set(extractEntities(report).map((e) => e.text))].slice(0, 10) : null);
  const example = (e: { id: string; report: string }): CyclicExample => ({ codes: codes.codes[e.id], report: e.report, keywords: keywords(e.report), keypatchCodes: null });
  const train = ds.splits.train.slice(0, num('max-train', ds.splits.train.length)).filter((e) => codes.codes[e.id]);
  const test = ds.splits.test.slice(0, num('max-test', ds.splits.test.length)).filter((e) => codes.codes[e.id]);
  radkit.manualSeed(seed);
  const lm = createCyclicLM(v, CYCLIC_LM_SMALL, seed);
  lm.setupOptimizer({ lr, weightDecay: 0.01 });
  const seqs = train.flatMap((e) => [cyclicSequence('report', v, example(e), words), cyclicSequence('image', v, example(e), words)]);
  let rand = seed + 1;
  const next = () => ((rand = (rand * 1103515245 + 12345) % 2 ** 31), rand / 2 ** 31);
  const log: { epoch: number; loss: number; seconds: number }[] = [];
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = seqs.map((_, i) => i).sort(() => next() - 0.5);
    let sum = 0, n = 0;
    for (let s = 0; s < order.length; s += batchSize) {
      const b = sequenceBatch(order.slice(s, s + batchSize).map((i) => seqs[i]));
      const r = await lm.trainStep(b.ids, { attentionMask: b.attentionMask, lossMask: b.lossMask, clipNorm: 1 });
      [b.ids, b.attentionMask, b.lossMask].forEach((t) => t.dispose());
      sum += r.loss;
      n++;
    }
    log.push({ epoch, loss: sum / n, seconds: (performance.now() - t0) / 1000 });
    console.log(JSON.stringify(log[log.length - 1]));
  }
  // image -> report
  const reportPrompts = test.map((e) => cyclicSequence('report', v, example(e), words)).map((s) => s.ids.slice(0, s.responseStart));
  const hyps: string[] = [];
  for (let s = 0; s < reportPrompts.length; s += 32) hyps.push(...(await generateReports(lm, v, reportPrompts.slice(s, s + 32), { maxNewTokens: 60 })).map((t) => tokenizer.decode(t)));
  const refs = test.map((e) => [tokenizer.clean(e.report)]);
  const refLabels = test.every((e) => e.labels) ? test.map((e) => e.labels!) : undefined;
  const model = headline(radkit.metrics.evaluate(hyps, refs, { refLabels }));
  const common = mostCommonReport(ds, tokenizer);
  const baseline = headline(radkit.metrics.evaluate(test.map(() => common), refs, { refLabels }));
  // report -> image
  const imagePrompts = test.map((e) => cyclicSequence('image', v, example(e), words)).map((s) => s.ids.slice(0, s.responseStart));
  const generated: number[][] = [];
  for (let s = 0; s < imagePrompts.length; s += 32) generated.push(...(await generateImageCodes(lm, v, imagePrompts.slice(s, s + 32), N)));
  const ck = await loadCheckpoint(str('vq'));
  const decode = async (c: number[]) => (await decodeCodes(ck.model, c, [1, codes.grid[0], codes.grid[1]])).data;
  let accModel = 0, accRandom = 0, psnrModel = 0, psnrRandom = 0;
  for (let i = 0; i < test.length; i++) {
    const truth = codes.codes[test[i].id];
    const other = codes.codes[train[Math.floor(next() * train.length)].id];
    accModel += generated[i].filter((c, k) => c === truth[k]).length / N;
    accRandom += other.filter((c, k) => c === truth[k]).length / N;
    const real = await decode(truth);
    psnrModel += psnr(await decode(generated[i]), real);
    psnrRandom += psnr(await decode(other), real);
  }
  ck.model.dispose();
  lm.dispose();
  const n = test.length;
  const out = {
    settings: { hints, seed, epochs, batchSize, lr, optimizer: 'AdamW (weight decay 0.01), constant lr, clip 1', lm: { arch: 'gpt_neox', ...CYCLIC_LM_SMALL, vocab: v.size }, trainStudies: train.length, testStudies: n, imageTokens: N, codes: codes.nEmbed, tokenizerThreshold: 3, generation: 'greedy; reports: text ids only, <= 60 tokens; images: exactly N image tokens', keywords: hints === 'oracle' ? 'entities of the reference report (lexicon extractor), first 10 distinct' : 'none', keypatches: 'none' },
    trainLoss: log,
    imageToReport: { model, mostCommonReport: baseline, mostCommonText: common, distinctReports: new Set(hyps).size, distinctCodeSequences: new Set(generated.map((g) => g.join(','))).size },
    reportToImage: { codeAccuracy: accModel / n, randomTrainImageCodeAccuracy: accRandom / n, psnrToReconstruction: psnrModel / n, randomTrainImagePsnr: psnrRandom / n },
    examples: test.slice(0, 5).map((e, i) => ({ id: e.id, reference: refs[i][0], generated: hyps[i], keywords: keywords(e.report) })),
    hypotheses: Object.fromEntries(test.map((e, i) => [e.id, hyps[i]])),
    seconds: (performance.now() - t0) / 1000,
  };
  const file = str('out', `bench/out/adamatch-cyclic-${hints}-${seed}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(out, null, 1));
  console.log(JSON.stringify({ imageToReport: { bleu4: model.bleu4, ceMicroF1: model.ceMicroF1, baselineBleu4: baseline.bleu4, baselineF1: baseline.ceMicroF1 }, reportToImage: out.reportToImage }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
