// radkit train / generate / evaluate / report: the model commands shared by every system.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from '../command.js';
import { parseFlags } from '../command.js';
import { readR2Gen } from '../../data/r2gen.js';
import { loadImage } from '../../data/image.js';
import { Tokenizer } from '../../text/tokenizer.js';
import { xpronet } from '../../models/xpronet.js';
import { adamatch, adamatchTraining, bertTextOptions } from '../../models/adamatch.js';
import { modelTask } from '../../models/tasks.js';
import type { Model } from '../../models/model.js';
import { evaluateRetrieval } from '../../align/evaluate.js';
import { TensorBatch, type GenerateOptions } from '../../models/model.js';
import { train } from '../../train/trainer.js';
import { generationTokenizer, loadCheckpoint } from '../../train/checkpoint.js';
import { evaluateSplit } from '../../train/evaluate.js';
import { writeHtmlReport } from '../../report/html.js';
import type { SplitName } from '../../data/r2gen.js';

type Flags = Record<string, string | true>;

export function str(flags: Flags, name: string, required = false): string | undefined {
  const v = flags[name];
  if (v === true) throw new Error(`--${name} needs a value`);
  if (required && v === undefined) throw new Error(`--${name} is required`);
  return v;
}

export function num(flags: Flags, name: string, dflt?: number): number | undefined {
  const v = str(flags, name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} needs a number, got '${v}'`);
  return n;
}

function generateFlags(flags: Flags): GenerateOptions {
  const method = (str(flags, 'method') ?? 'beam') as GenerateOptions['method'];
  return {
    method,
    beams: num(flags, 'beams', 3),
    maxLength: num(flags, 'max-length', 60),
    noRepeatNgram: num(flags, 'no-repeat-ngram', 3),
    labelSource: str(flags, 'label-source') as GenerateOptions['labelSource'],
    seed: num(flags, 'seed'),
  };
}

export function dataset(flags: Flags) {
  const data = str(flags, 'data', true)!;
  const ann = fs.statSync(data).isDirectory() ? path.join(data, 'annotation.json') : data;
  const labels = str(flags, 'labels') ?? (fs.existsSync(path.join(path.dirname(ann), 'labels.json')) ? path.join(path.dirname(ann), 'labels.json') : undefined);
  return readR2Gen(ann, { labels });
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'train a model on an R2Gen-format dataset (resumes an interrupted run)',
  usage: `usage: radkit train --model xpronet|adamatch --data DIR|annotation.json --out RUN [options]
  --epochs N (10)  --batch-size N (16)  --image-size PX (128)  --lr X  --visual-lr X
  --preset small|paper (small)  --threshold N (3, tokenizer count threshold)  --seed S (0)
  --metric NAME (model selection on val: bleu4 for xpronet, meanRecall for adamatch)
  --no-resume (start over)  --progress bar|json|none
  xpronet:  --label-source oracle|predicted|none  (lr 1e-3, visual-lr lr/2, Adam)
  adamatch: --fixed-patches (no AdaPatch: the ablation)  --bert DIR (model.safetensors + vocab.txt
            + config.json: BERT text encoder and WordPiece tokenizer)  (LAMB, cosine warm-up over
            the first quarter to 6e-3 * sqrt(batch / 512))`,
  async run(argv) {
    const { flags } = parseFlags(argv);
    const kind = str(flags, 'model') ?? 'xpronet';
    if (kind !== 'xpronet' && kind !== 'adamatch') throw new Error(`--model must be 'xpronet' or 'adamatch', got '${kind}'`);
    const ds = dataset(flags);
    const out = str(flags, 'out', true)!;
    const preset = (str(flags, 'preset') ?? 'small') as 'small' | 'paper';
    const seed = num(flags, 'seed', 0);
    const bert = str(flags, 'bert');
    const text = bert ? bertTextOptions(bert) : null;
    const tokenizer = text ? text.tokenizer : Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: num(flags, 'threshold', 3) });
    let model: Model;
    let extra: Record<string, unknown> = {};
    if (kind === 'adamatch') {
      // The classification head (stand-in for the paper's classification pre-training) needs labels.
      const labelled = ds.splits.train.every((e) => e.labels);
      if (!labelled) console.error('radkit train: the dataset has no CheXpert labels; training AdaMatch without its classification head');
      model = adamatch({ tokenizer, preset, seed, adaptive: !flags['fixed-patches'], imageSize: num(flags, 'image-size'), classWeight: labelled ? undefined : 0, ...(text ?? {}) });
      extra = adamatchTraining(num(flags, 'batch-size', 32)!);
    } else {
      if (bert) throw new Error('--bert is for --model adamatch (XProNet decodes with radkit\'s tokenizer)');
      model = xpronet({ tokenizer: tokenizer as Tokenizer, preset, seed, labelSource: str(flags, 'label-source') as 'oracle' | undefined });
    }
    const controller = new AbortController();
    process.once('SIGINT', () => {
      console.error('\nradkit train: stopping after this step (the last epoch stays checkpointed; run again to resume)');
      controller.abort();
    });
    try {
      const task = modelTask(kind);
      const r = await train(model, ds, {
        ...extra,
        tokenizer,
        outDir: out,
        epochs: num(flags, 'epochs', 10)!,
        batchSize: num(flags, 'batch-size', (extra.batchSize as number | undefined) ?? 16),
        imageSize: num(flags, 'image-size'),
        lr: num(flags, 'lr', extra.lr as number | undefined),
        visualLr: num(flags, 'visual-lr', extra.visualLr as number | undefined),
        seed,
        resume: flags['no-resume'] ? false : 'auto',
        evaluate: { metric: str(flags, 'metric') ?? (task === 'retrieval' ? 'meanRecall' : 'bleu4'), generate: { beams: 3, maxLength: 60, noRepeatNgram: 3 } },
        progress: (str(flags, 'progress') as 'bar' | undefined) ?? 'auto',
        signal: controller.signal,
      });
      console.log(JSON.stringify({ outDir: r.outDir, best: r.best }, null, 2));
    } finally {
      model.dispose();
    }
    return 0;
  },
};

export const generateCommand: Command = {
  name: 'generate',
  summary: 'write reports for new images with a checkpoint (no dataset needed)',
  usage: `usage: radkit generate --checkpoint RUN|CHECKPOINT_DIR IMAGE [IMAGE ...] [--views-per-study N]
  [--beams 3] [--method beam|greedy|sample] [--max-length 60] [--label-source predicted|none] [--json]
Each study takes the checkpoint's number of views from consecutive images (one image is repeated).`,
  async run(argv) {
    const { flags, positional } = parseFlags(argv);
    if (!positional.length) throw new Error('give at least one image file');
    const ck = await loadCheckpoint(str(flags, 'checkpoint', true)!);
    try {
      const tokenizer = generationTokenizer(ck, 'radkit generate');
      const pre = ck.meta.preprocessing;
      const per = num(flags, 'views-per-study', pre.views)!;
      const studies: string[][] = [];
      for (let i = 0; i < positional.length; i += per) studies.push(positional.slice(i, i + per));
      const HW = pre.imageSize * pre.imageSize;
      const data = new Float32Array(studies.length * pre.views * HW);
      studies.forEach((files, s) => {
        for (let v = 0; v < pre.views; v++) {
          const img = loadImage(files[Math.min(v, files.length - 1)], { height: pre.imageSize, width: pre.imageSize, mean: pre.mean, std: pre.std });
          data.set(img.data, (s * pre.views + v) * HW);
        }
      });
      const batch = new TensorBatch({ images: { data, shape: [studies.length, pre.views, 1, pre.imageSize, pre.imageSize] } });
      const opts = { ...generateFlags(flags), labelSource: (str(flags, 'label-source') ?? 'predicted') as GenerateOptions['labelSource'] };
      const g = await ck.model.generate(batch, opts);
      batch.dispose();
      const results = studies.map((files, i) => {
        const wp = g.extras.wordPrototypes;
        const per2 = wp ? wp.data.length / wp.shape[0] : 0;
        return { images: files, report: tokenizer.decode(g.tokens[i]), score: g.scores[i], labelSource: opts.labelSource, wordPrototypes: wp ? wp.data.slice(i * per2, (i + 1) * per2) : undefined };
      });
      if (flags.json) console.log(JSON.stringify(results, null, 2));
      else for (const r of results) console.log(`${r.images.join(' ')}\n  ${r.report}\n`);
    } finally {
      ck.model.dispose();
    }
    return 0;
  },
};

/** Writes `out/metrics.json` (the record) and `out/metrics.md` (the headline table) and prints the table. */
export function writeMetrics(out: string, title: string, record: unknown, headline: Record<string, number>): void {
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'metrics.json'), JSON.stringify(record, null, 2));
  const md = ['| metric | value |', '|---|---|', ...Object.entries(headline).map(([k, v]) => `| ${k} | ${v.toFixed(4)} |`)].join('\n');
  fs.writeFileSync(path.join(out, 'metrics.md'), `# ${title}\n\n${md}\n`);
  console.log(md);
  console.log(`\nwrote ${path.join(out, 'metrics.json')} and metrics.md`);
}

export const evaluateCommand: Command = {
  name: 'evaluate',
  summary: 'score a checkpoint on a split: generated reports, or retrieval R@k for alignment models (JSON + Markdown)',
  usage: `usage: radkit evaluate --checkpoint RUN --data DIR [--split test] [--out DIR] [--beams 3] [--label-source predicted|oracle|none]`,
  async run(argv) {
    const { flags } = parseFlags(argv);
    const ck = await loadCheckpoint(str(flags, 'checkpoint', true)!);
    try {
      const ds = dataset(flags);
      const split = (str(flags, 'split') ?? 'test') as SplitName;
      if (modelTask(ck.meta.kind) === 'retrieval') {
        const ev = await evaluateRetrieval(ck.model, ck.tokenizer, ds, { split, preprocessing: ck.meta.preprocessing });
        writeMetrics(str(flags, 'out') ?? path.join(str(flags, 'checkpoint')!, `eval-${split}`), `${ck.meta.kind} retrieval on ${split}`, { split, checkpoint: { kind: ck.meta.kind, epoch: ck.meta.epoch }, headline: ev.headline }, ev.headline);
        return 0;
      }
      const generate = { ...generateFlags(flags), labelSource: (str(flags, 'label-source') ?? 'predicted') as GenerateOptions['labelSource'] };
      const ev = await evaluateSplit(ck.model, generationTokenizer(ck, 'radkit evaluate'), ds, { split, preprocessing: ck.meta.preprocessing, generate });
      const record = { split, generate, checkpoint: { kind: ck.meta.kind, epoch: ck.meta.epoch }, headline: ev.headline, result: ev.result, reports: ev.reports };
      writeMetrics(str(flags, 'out') ?? path.join(str(flags, 'checkpoint')!, `eval-${split}`), `${ck.meta.kind} on ${split} (label source: ${generate.labelSource})`, record, ev.headline);
    } finally {
      ck.model.dispose();
    }
    return 0;
  },
};

export const reportCommand: Command = {
  name: 'report',
  summary: 'write an HTML page for an evaluated run (images, ground truth vs generated, scores)',
  usage: 'usage: radkit report EVAL_DIR (a folder written by radkit evaluate) [--data DIR] [--out page.html]',
  async run(argv) {
    const { flags, positional } = parseFlags(argv);
    const dir = positional[0];
    if (!dir) throw new Error('give the folder written by radkit evaluate');
    const rec = JSON.parse(fs.readFileSync(path.join(dir, 'metrics.json'), 'utf8'));
    const ds = flags.data ? dataset(flags) : null;
    const images = (id: string) => (ds ? Object.values(ds.splits).flat().find((e) => e.id === id)?.imagePaths ?? [] : []);
    const out = str(flags, 'out') ?? path.join(dir, 'report.html');
    writeHtmlReport(out, {
      title: `radkit: ${rec.checkpoint.kind} on ${rec.split}`,
      scores: { [rec.checkpoint.kind]: rec.headline },
      settings: { generate: rec.generate, evaluation: rec.result.settings },
      items: rec.reports.slice(0, 100).map((r: { id: string; reference: string; hypothesis: string }) => ({ id: r.id, images: images(r.id), reference: r.reference, generated: { generated: r.hypothesis } })),
    });
    console.log(`wrote ${out}`);
    return 0;
  },
};
