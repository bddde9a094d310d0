// AdaMatch-Cyclic on SynthCXR at a CPU budget: scores a trained `adamatch-cyclic` run (radkit train
// --model adamatch-cyclic --codes FILE --vq RUN --hints none|oracle|FILE) on a split, both
// directions, with the baselines in the same evaluation:
//   image -> report: BLEU / METEOR / ROUGE-L / CE-F1 (greedy, text ids only) against the most
//     common training report;
//   report -> image: the share of generated codes equal to the study's own codes, and the PSNR of
//     the decoded generated image against the decoded true codes (the VQ reconstruction), each
//     against a random training image's codes;
//   the cycle image -> report -> image: the generated report of each study turned back into an
//     image (greedy; keypatch hints of the second leg --cycle-keypatches none|study, default none),
//     scored like report -> image (the classifier's label recovery is adamatch-cyclic-images.ts').
// Writes the JSON (settings, numbers, the training log) and an HTML page (real | reconstruction |
// generated images, reports, hints).
// Run: node dist/bench/adamatch-cyclic.js --run RUN --data DIR [--split test] [--max-items N]
//        [--out bench/out/adamatch-cyclic-RUNNAME.json] [--html FILE.html] [--cycle-keypatches none|study]
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as radkit from '../lib/index.js';
import { mostCommonReport } from '../lib/demo.js';
import { headline } from '../lib/train/evaluate.js';
import { cyclicEvaluation, cyclicRoundTrip, cyclicTable, writeCyclicReport } from '../lib/models/adamatch-cyclic.js';
import { decodeCodes } from '../lib/models/vqgan.js';
import { loadCheckpoint } from '../lib/train/checkpoint.js';
import { psnr } from '../lib/metrics/image.js';
import type { SplitName } from '../lib/data/r2gen.js';

const str = (name: string, dflt?: string) => {
  const i = process.argv.indexOf(`--${name}`);
  if (i > 0) return process.argv[i + 1];
  if (dflt === undefined) throw new Error(`--${name} is required`);
  return dflt;
};

async function main() {
  const t0 = performance.now();
  const runDir = str('run');
  const split = str('split', 'test') as SplitName;
  const maxItems = Number(str('max-items', '100000'));
  const data = str('data');
  const ds = radkit.data.readR2Gen(path.join(data, 'annotation.json'), { labels: path.join(data, 'labels.json') });
  const ck = await loadCheckpoint(runDir);
  const tokenizer = ck.tokenizer as radkit.text.Tokenizer;
  const vq = await loadCheckpoint(String(ck.model.config.vq));
  try {
    const table = cyclicTable(ck.model, tokenizer, ds);
    const ev = await cyclicEvaluation(ck.model, tokenizer, ds, { split, preprocessing: ck.meta.preprocessing, maxItems });
    const entries = ds.splits[split].slice(0, maxItems);
    const refs = entries.map((e) => [tokenizer.clean(e.report)]);
    const common = mostCommonReport(ds, tokenizer);
    const baseline = headline(radkit.metrics.evaluate(entries.map(() => common), refs, { refLabels: entries.map((e) => e.labels!) }));
    // PSNR of decoded generated / random-training codes against the decoded true codes.
    const reps = (ev.record!.reports as { id: string; extras: { imageCodes: number[] } }[]);
    const cycleKeypatches = str('cycle-keypatches', 'none') as 'none' | 'study';
    const cycle = await cyclicRoundTrip(ck.model, table, entries.map((e) => ({ id: e.id, report: e.report })), { keypatches: cycleKeypatches });
    const train = ds.splits.train;
    let s = 12345, psnrModel = 0, psnrRandom = 0, psnrCycle = 0, accCycle = 0;
    const next = () => ((s = (s * 1103515245 + 12345) % 2 ** 31), s / 2 ** 31);
    const grid: [number, number, number] = [1, table.grid[0], table.grid[1]];
    for (const r of reps) {
      const real = (await decodeCodes(vq.model, table.codesFile.codes[r.id], grid)).data;
      psnrModel += psnr((await decodeCodes(vq.model, r.extras.imageCodes, grid)).data, real);
      const c = cycle.codes[reps.indexOf(r)];
      psnrCycle += psnr((await decodeCodes(vq.model, c, grid)).data, real);
      accCycle += c.filter((x, k) => x === table.codesFile.codes[r.id][k]).length / c.length;
      psnrRandom += psnr((await decodeCodes(vq.model, table.codesFile.codes[train[Math.floor(next() * train.length)].id], grid)).data, real);
    }
    const n = Math.max(1, reps.length);
    const log = fs.readFileSync(path.join(runDir, 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const steps = log.filter((e) => e.type === 'step');
    const out = {
      settings: {
        run: runDir,
        split,
        studies: entries.length,
        hints: table.hints,
        lm: { arch: 'gpt_neox', hiddenSize: ck.model.config.hiddenSize, numLayers: ck.model.config.numLayers, numHeads: ck.model.config.numHeads, intermediateSize: ck.model.config.intermediateSize, vocab: table.vocab.size },
        imageTokens: table.imageTokens,
        codes: table.vocab.codes,
        trainStudies: ds.splits.train.length,
        generation: 'greedy; reports: text ids only, <= 60 tokens; images: exactly N image tokens',
        trainSteps: steps.length,
        firstLoss: steps[0]?.loss,
        lastLoss: steps[steps.length - 1]?.loss,
      },
      imageToReport: { model: ev.headline, mostCommonReport: baseline, mostCommonText: common },
      reportToImage: { codeAccuracy: ev.headline.imageCodeAccuracy, randomTrainImageCodeAccuracy: ev.headline.randomImageCodeAccuracy, psnrToReconstruction: psnrModel / n, randomTrainImagePsnr: psnrRandom / n },
      cycle: { keypatches: cycleKeypatches, codeAccuracy: accCycle / n, psnrToReconstruction: psnrCycle / n },
      examples: (ev.record!.reports as unknown[]).slice(0, 5),
      generatedImageCodes: Object.fromEntries(reps.map((r) => [r.id, r.extras.imageCodes])),
      cycleImageCodes: Object.fromEntries(entries.map((e, i) => [e.id, cycle.codes[i]])),
      hypotheses: Object.fromEntries((ev.record!.reports as { id: string; hypothesis: string }[]).map((r) => [r.id, r.hypothesis])),
      seconds: (performance.now() - t0) / 1000,
    };
    const file = str('out', `bench/out/adamatch-cyclic-${path.basename(runDir)}.json`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(out, null, 1));
    const html = str('html', file.replace(/\.json$/, '.html'));
    await writeCyclicReport(html, ck.model, tokenizer, ds, ev, vq.model, { scores: { 'adamatch-cyclic': ev.headline, 'most common report': baseline } });
    console.log(JSON.stringify({ imageToReport: { bleu4: ev.headline.bleu4, ceMicroF1: ev.headline.ceMicroF1, baselineBleu4: baseline.bleu4, baselineF1: baseline.ceMicroF1, distinct: ev.headline.distinctReports }, reportToImage: out.reportToImage, cycle: out.cycle }));
  } finally {
    ck.model.dispose();
    vq.model.dispose();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
