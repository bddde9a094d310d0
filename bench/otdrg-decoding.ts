// Why OTDRG's BLEU-4 sits where it does (seed 002 on SynthCXR): trained otdrg runs of bench/otdrg.ts
// (their last checkpoints) decoded again on the test split with several searches, each scored with
// BLEU-1..4, the brevity penalty and the hypothesis / reference lengths, with predicted and oracle
// states; beside them two references that need no model: the most common training report, and the
// SynthCXR generator itself writing a second report for each test study's own findings (same
// findings, fresh wording: what a model that knew the findings exactly and wrote like the generator
// would score). --image-use: the report cross-entropy with each study's own image vs the next
// study's, the states being the report's own.
// Writes bench/out/otdrg-decoding[-TAG].json as each score finishes.
// Run (from the repository root, after bench/otdrg.js wrote the runs):
//   node dist/bench/otdrg-decoding.js [--train 3000] [--val 100] [--test 300] [--size 128]
//        [--runs /tmp/radkit-bench-otdrg-runs-long] [--variants full-DLE-IRCP-OT-] [--seeds 0,1,2]
//        [--searches greedy,beam3|none] [--states predicted,oracle] [--image-use] [--threads 1] [--tag NAME]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as radkit from '../lib/index.js';
import { mostCommonReport } from '../lib/demo.js';
import { otdrgTokenizer } from '../lib/models/otdrg.js';
import { generateSplit, scoreReports, type GeneratedReport } from '../lib/train/evaluate.js';
import type { Model } from '../lib/models/model.js';
import { imageUse } from './image-use.js';
import { sampleFindings, writeReport } from '../lib/data/synth/plan.js';
import { Rng, hashSeed } from '../lib/data/synth/rng.js';
import type { GenerateOptions } from '../lib/generation.js';
import type { Tokenizer } from '../lib/text/tokenizer.js';

const str = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const arg = (name: string, dflt: number) => Number(str(name, String(dflt)));

/** The searches by name: greedy, beamN (beam search of width N, length penalty 1). */
function search(name: string): GenerateOptions {
  if (name === 'greedy') return { method: 'greedy', maxLength: 80 };
  const m = /^beam(\d+)$/.exec(name);
  if (m) return { method: 'beam', beams: Number(m[1]), maxLength: 80 };
  throw new Error(`otdrg-decoding: unknown search '${name}' (greedy or beamN)`);
}

const words = (s: string) => s.split(/\s+/).filter(Boolean);
const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** BLEU and length statistics of a set of generated reports. */
function stats(reports: GeneratedReport[]) {
  const r = scoreReports(reports);
  const sentences = (s: string) => s.split(/\s*\.\s*/).filter(Boolean);
  // share of generated sentences found word for word in the reference, and of reference sentences in the hypothesis
  let hypIn = 0, hypN = 0, refIn = 0, refN = 0;
  for (const x of reports) {
    const h = sentences(x.hypothesis), ref = sentences(x.reference);
    hypN += h.length;
    hypIn += h.filter((s) => ref.includes(s)).length;
    refN += ref.length;
    refIn += ref.filter((s) => h.includes(s)).length;
  }
  return {
    ...r.bleu!,
    ceMicroF1: r.clinical?.micro.f1,
    meanHypWords: meanOf(reports.map((x) => words(x.hypothesis).length)),
    meanRefWords: meanOf(reports.map((x) => words(x.reference).length)),
    hypSentencesInReference: hypIn / Math.max(1, hypN),
    refSentencesInHypothesis: refIn / Math.max(1, refN),
    distinctHypotheses: new Set(reports.map((x) => x.hypothesis)).size,
  };
}

async function main() {
  const trainN = arg('train', 3000), valN = arg('val', 100), testN = arg('test', 300), size = arg('size', 128);
  const runs = str('runs', path.join(os.tmpdir(), 'radkit-bench-otdrg-runs-long'));
  const variants = str('variants', 'full-DLE-IRCP-OT-').split(',').filter(Boolean);
  const seeds = str('seeds', '0,1,2').split(',').map(Number);
  const searches = str('searches', 'greedy,beam3').split(',').filter((x) => x && x !== 'none');
  const states = str('states', 'predicted,oracle').split(',').filter(Boolean);
  const tag = str('tag', '');
  radkit.setNumThreads(arg('threads', 1));
  const dir = path.join(os.tmpdir(), `radkit-bench-otdrg-${trainN}-${valN}-${testN}-${size}`);
  const ds = radkit.data.readR2Gen(path.join(dir, 'annotation.json'), { labels: path.join(dir, 'labels.json') });
  const tokenizer = otdrgTokenizer(ds, { threshold: 3 }) as Tokenizer;
  const pre = { imageSize: size, views: 1 };
  const out = path.resolve('bench', 'out');
  fs.mkdirSync(out, { recursive: true });
  const file = path.join(out, `otdrg-decoding${tag ? `-${tag}` : ''}.json`);
  const results: Record<string, unknown> = {
    conditions: { machine: `${os.cpus().length} CPUs (${os.cpus()[0]?.model}), shared with other engineers' jobs (load average at start ${os.loadavg()[0].toFixed(1)})`, threads: radkit.getNumThreads(), runs, data: { train: trainN, val: valN, test: testN, size, synthSeed: 41 } },
    searches: Object.fromEntries(searches.map((s) => [s, search(s)])),
    bleu: "coco-caption corpus BLEU, option 'closest' (radkit.metrics); sentences split at '.' for the sentence overlap shares",
  };
  const save = () => fs.writeFileSync(file, JSON.stringify(results, null, 2));
  const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s} (load ${os.loadavg()[0].toFixed(1)})`);

  const refs = ds.splits.test.map((e) => ({ id: e.id, reference: tokenizer.clean(e.report), labels: e.labels, extras: {} }));
  const common = mostCommonReport(ds, tokenizer);
  results.mostCommon = stats(refs.map((r) => ({ ...r, hypothesis: common })));
  // The generator with each test study's own findings and a fresh wording (3 draws). The study's
  // random stream is replayed (findings, then the report); the replayed report must equal the
  // reference, which checks that the findings are the study's.
  const resampled: ReturnType<typeof stats>[] = [];
  for (const draw of [1, 2, 3]) {
    const hyps = ds.splits.test.map((e) => {
      const index = Number(/-(\d+)$/.exec(e.id)![1]);
      const r = new Rng(hashSeed('synthcxr-v1', 41, 'test', index));
      const findings = sampleFindings(r);
      const again = writeReport(r, findings);
      if (tokenizer.clean(again.report) !== tokenizer.clean(e.report)) throw new Error(`otdrg-decoding: replaying ${e.id} did not give its report (not synthesis seed 41?)`);
      return tokenizer.clean(writeReport(new Rng(hashSeed('otdrg-decoding-rewrite', draw, index)), findings).report);
    });
    resampled.push(stats(refs.map((r, i) => ({ ...r, hypothesis: hyps[i] }))));
  }
  results.generatorRewrite = { draws: resampled, meanBleu4: meanOf(resampled.map((s) => s.bleu4)) };
  log(`most common BLEU-4 ${(results.mostCommon as { bleu4: number }).bleu4.toFixed(3)}; generator rewrite ${resampled.map((s) => s.bleu4.toFixed(3)).join(' ')}`);
  save();

  /**
   * --image-use: teacher-forced test report cross-entropy (parts.rg) with the reports' own states,
   * with each study's image and with the next study's (rolled by one in the batch of 16): how much
   * the image tells the LM beyond the 14 states.
   */
  const imageUseOf = (m: Model) => imageUse(m, ds, tokenizer, pre, 'rg');

  const table: Record<string, unknown[]> = {};
  results.runs = table;
  const imageUseRows: unknown[] = [];
  if (process.argv.includes('--image-use')) results.imageUse = imageUseRows;
  for (const variant of variants)
    for (const seed of seeds) {
      const runDir = path.join(runs, `otdrg-${variant}-s${seed}`);
      const ck = await radkit.loadCheckpoint(path.join(runDir, 'checkpoints', 'last'));
      try {
        if (process.argv.includes('--image-use')) {
          const u = await imageUseOf(ck.model);
          imageUseRows.push({ variant, seed, ...u });
          log(`${variant} s${seed} image use: report cross-entropy ${u.own.toFixed(4)} own image, ${u.rolled.toFixed(4)} next study's`);
          save();
        }
        for (const source of states)
          for (const s of searches) {
            const t0 = performance.now();
            const reports = await generateSplit(ck.model, tokenizer, ds, { split: 'test', preprocessing: pre, generate: { ...search(s), systemOptions: { labelSource: source } } });
            const row = { variant, seed, states: source, search: s, seconds: (performance.now() - t0) / 1000, ...stats(reports), examples: reports.slice(0, 2).map((x) => ({ hypothesis: x.hypothesis, reference: x.reference })) };
            (table[`${variant} ${source} ${s}`] ??= []).push(row);
            log(`${variant} s${seed} ${source} ${s}: BLEU-4 ${row.bleu4.toFixed(3)} (BLEU-1 ${row.bleu1.toFixed(3)}, BP ${row.brevityPenalty.toFixed(3)}, hyp/ref words ${row.meanHypWords.toFixed(1)}/${row.meanRefWords.toFixed(1)}) CE ${row.ceMicroF1?.toFixed(3)}, ${row.seconds.toFixed(0)} s`);
            save();
          }
      } finally {
        ck.model.dispose();
      }
    }
  const summary: Record<string, Record<string, { mean: number; sd: number; n: number }>> = {};
  for (const [name, rows] of Object.entries(table)) {
    const s: Record<string, { mean: number; sd: number; n: number }> = {};
    for (const k of ['bleu1', 'bleu4', 'brevityPenalty', 'ceMicroF1', 'meanHypWords']) {
      const xs = (rows as Record<string, number>[]).map((r) => r[k]);
      const mu = meanOf(xs);
      s[k] = { mean: mu, sd: xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mu) ** 2, 0) / (xs.length - 1)) : NaN, n: xs.length };
    }
    summary[name] = s;
  }
  results.summary = summary;
  save();
  log(`written ${file}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
