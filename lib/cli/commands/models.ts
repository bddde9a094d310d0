// radkit train / generate / evaluate / report: the model commands shared by every system.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from '../command.js';
import { parseFlags } from '../command.js';
import { readR2Gen } from '../../data/r2gen.js';
import { loadImage } from '../../data/image.js';
import { Tokenizer } from '../../text/tokenizer.js';
import { xpronet } from '../../models/xpronet.js';
import { TensorBatch, type GenerateOptions } from '../../models/model.js';
import { train } from '../../train/trainer.js';
import { loadCheckpoint } from '../../train/checkpoint.js';
import { evaluateSplit } from '../../train/evaluate.js';
import { writeHtmlReport } from '../../report/html.js';
import type { SplitName } from '../../data/r2gen.js';

type Flags = Record<string, string | true>;

function str(flags: Flags, name: string, required = false): string | undefined {
  const v = flags[name];
  if (v === true) throw new Error(`--${name} needs a value`);
  if (required && v === undefined) throw new Error(`--${name} is required`);
  return v;
}

function num(flags: Flags, name: string, dflt?: number): number | undefined {
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

function dataset(flags: Flags) {
  const data = str(flags, 'data', true)!;
  const ann = fs.statSync(data).isDirectory() ? path.join(data, 'annotation.json') : data;
  const labels = str(flags, 'labels') ?? (fs.existsSync(path.join(path.dirname(ann), 'labels.json')) ? path.join(path.dirname(ann), 'labels.json') : undefined);
  return readR2Gen(ann, { labels });
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'train a model on an R2Gen-format dataset (resumes an interrupted run)',
  usage: `usage: radkit train --model xpronet --data DIR|annotation.json --out RUN [options]
  --epochs N (10)  --batch-size N (16)  --image-size PX (128)  --lr X (1e-3)  --visual-lr X (lr/2)
  --preset small|paper (small)  --threshold N (3, tokenizer count threshold)  --seed S (0)
  --metric bleu4|ciderD|... (bleu4, model selection on val)  --label-source oracle|predicted|none
  --no-resume (start over)  --progress bar|json|none`,
  async run(argv) {
    const { flags } = parseFlags(argv);
    const kind = str(flags, 'model') ?? 'xpronet';
    if (kind !== 'xpronet') throw new Error(`--model: only 'xpronet' is available in this version, got '${kind}'`);
    const ds = dataset(flags);
    const out = str(flags, 'out', true)!;
    const tokenizer = Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: num(flags, 'threshold', 3) });
    const model = xpronet({ tokenizer, preset: (str(flags, 'preset') ?? 'small') as 'small' | 'paper', seed: num(flags, 'seed', 0), labelSource: str(flags, 'label-source') as 'oracle' | undefined });
    const controller = new AbortController();
    process.once('SIGINT', () => {
      console.error('\nradkit train: stopping after this step (the last epoch stays checkpointed; run again to resume)');
      controller.abort();
    });
    try {
      const r = await train(model, ds, {
        tokenizer,
        outDir: out,
        epochs: num(flags, 'epochs', 10)!,
        batchSize: num(flags, 'batch-size'),
        imageSize: num(flags, 'image-size'),
        lr: num(flags, 'lr'),
        visualLr: num(flags, 'visual-lr'),
        seed: num(flags, 'seed', 0),
        resume: flags['no-resume'] ? false : 'auto',
        evaluate: { metric: str(flags, 'metric') ?? 'bleu4', generate: { beams: 3, maxLength: 60, noRepeatNgram: 3 } },
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
        return { images: files, report: ck.tokenizer.decode(g.tokens[i]), score: g.scores[i], labelSource: opts.labelSource, wordPrototypes: wp ? wp.data.slice(i * per2, (i + 1) * per2) : undefined };
      });
      if (flags.json) console.log(JSON.stringify(results, null, 2));
      else for (const r of results) console.log(`${r.images.join(' ')}\n  ${r.report}\n`);
    } finally {
      ck.model.dispose();
    }
    return 0;
  },
};

export const evaluateCommand: Command = {
  name: 'evaluate',
  summary: 'generate and score reports of a split with a checkpoint (JSON + Markdown)',
  usage: `usage: radkit evaluate --checkpoint RUN --data DIR [--split test] [--out DIR] [--beams 3] [--label-source predicted|oracle|none]`,
  async run(argv) {
    const { flags } = parseFlags(argv);
    const ck = await loadCheckpoint(str(flags, 'checkpoint', true)!);
    try {
      const ds = dataset(flags);
      const split = (str(flags, 'split') ?? 'test') as SplitName;
      const generate = { ...generateFlags(flags), labelSource: (str(flags, 'label-source') ?? 'predicted') as GenerateOptions['labelSource'] };
      const ev = await evaluateSplit(ck.model, ck.tokenizer, ds, { split, preprocessing: ck.meta.preprocessing, generate });
      const out = str(flags, 'out') ?? path.join(str(flags, 'checkpoint')!, `eval-${split}`);
      fs.mkdirSync(out, { recursive: true });
      const record = { split, generate, checkpoint: { kind: ck.meta.kind, epoch: ck.meta.epoch }, headline: ev.headline, result: ev.result, reports: ev.reports };
      fs.writeFileSync(path.join(out, 'metrics.json'), JSON.stringify(record, null, 2));
      const md = ['| metric | value |', '|---|---|', ...Object.entries(ev.headline).map(([k, v]) => `| ${k} | ${v.toFixed(4)} |`)].join('\n');
      fs.writeFileSync(path.join(out, 'metrics.md'), `# ${ck.meta.kind} on ${split} (label source: ${generate.labelSource})\n\n${md}\n`);
      console.log(md);
      console.log(`\nwrote ${path.join(out, 'metrics.json')} and metrics.md`);
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
