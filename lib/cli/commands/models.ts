// radkit train / generate / evaluate / report: the model commands shared by every system. Which
// systems exist, their flags, recipes and evaluations come from the model registry.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatFlags, UsageError, type CliFlags, type Command, type CommandArgs } from '../command.js';
import { readR2Gen } from '../../data/r2gen.js';
import { readImage, RESIZE_FILTERS, type FitMode, type ResizeFilter } from '../../data/image.js';
import { HFReportTokenizer } from '../../text/hf-report-tokenizer.js';
import '../../models/builtins.js';
import { findModelKind, modelKinds, reportTokenizer, type FlagValues, type ModelKind } from '../../models/registry.js';
import { TensorBatch } from '../../models/model.js';
import type { GenerateOptions } from '../../generation.js';
import { train } from '../../train/trainer.js';
import { parseInitSpec } from '../../train/init.js';
import { checkOutputOutsideCheckpoints, defaultOutputDir, generationTokenizer, loadCheckpoint, type LoadedCheckpoint } from '../../train/checkpoint.js';
import { generationEvaluation } from '../../train/evaluate.js';
import { writeHtmlReport } from '../../report/html.js';
import type { SplitName } from '../../data/r2gen.js';
import type { AugmentOptions } from '../../data/augment.js';
import { RadkitError } from '../../errors.js';
import { checkDevice } from '../../runtime.js';
import { PRECISIONS } from '../../models/model.js';
import { LAUNCH_FLAGS, launchIfAsked, workerGroup } from '../launch.js';

/** --device of the model commands (checked before anything is read or written). */
const DEVICE_FLAG: CliFlags = { device: { type: 'string', arg: 'DEVICE', help: 'cpu, cuda or cuda:N (default cpu; radkit doctor lists the usable ones)' } };

const SPLITS = ['train', 'val', 'test'] as const;

/** --data / --labels: every command that reads a dataset. */
export const DATA_FLAGS: CliFlags = {
  data: { type: 'string', arg: 'DIR', required: true, help: 'dataset folder (annotation.json) or annotation file' },
  labels: { type: 'string', arg: 'FILE', help: 'labels.json (default: next to annotation.json when present)' },
};

export function dataset(values: FlagValues) {
  const data = values.data as string;
  if (!fs.existsSync(data)) throw new RadkitError(`--data ${data}: no such file or folder`, 'ERR_DATA', 'cli');
  const ann = fs.statSync(data).isDirectory() ? path.join(data, 'annotation.json') : data;
  const labels = (values.labels as string | undefined) ?? (fs.existsSync(path.join(path.dirname(ann), 'labels.json')) ? path.join(path.dirname(ann), 'labels.json') : undefined);
  return readR2Gen(ann, { labels });
}

/** The search flags of generate / evaluate (search options only; defaults are the model kind's). */
const SEARCH_FLAGS: CliFlags = {
  method: { type: 'string', choices: ['beam', 'greedy', 'sample'], help: 'search (default: the model kind\'s)' },
  beams: { type: 'integer', min: 1, max: 64, help: 'beam size' },
  'max-length': { type: 'integer', min: 1, max: 4096, help: 'most generated tokens' },
  'min-length': { type: 'integer', min: 0, max: 4096, help: 'EOS blocked before this many tokens' },
  'no-repeat-ngram': { type: 'integer', min: 0, max: 100, help: 'no n-gram of this size twice' },
  temperature: { type: 'number', min: 1e-6, help: 'sampling temperature' },
  'top-k': { type: 'integer', min: 0, help: 'sampling: k most likely tokens' },
  'top-p': { type: 'number', min: 1e-6, max: 1, help: 'sampling: nucleus mass' },
  seed: { type: 'integer', min: 0, help: 'sampling seed' },
};

/** generate / evaluate flags of every registered kind that has them (systemOptions). */
function systemFlags(): CliFlags {
  const out: CliFlags = {};
  for (const k of modelKinds()) for (const [name, f] of Object.entries(k.generateFlags ?? {})) out[name] = { ...f, help: `${k.name}: ${f.help}` };
  return out;
}

/** GenerateOptions from the parsed flags of a checkpoint of `kind`; flags of other kinds are refused. */
function generateOptions(values: FlagValues, kind: ModelKind | undefined, kindName: string): GenerateOptions {
  const systemOptions: Record<string, string | number | boolean> = {};
  const own = kind?.generateFlags ?? {};
  for (const k of modelKinds())
    for (const [name, f] of Object.entries(k.generateFlags ?? {})) {
      if (own[name]) {
        const v = values[name] ?? own[name].default;
        if (v !== undefined) systemOptions[own[name].option] = v;
      } else if (values[name] !== undefined && values[name] !== f.default) throw new UsageError(`--${name} is for ${k.name} checkpoints; this one holds ${kindName}`);
    }
  const o: GenerateOptions = {
    method: values.method as GenerateOptions['method'],
    beams: values.beams as number | undefined,
    maxLength: values['max-length'] as number | undefined,
    minLength: values['min-length'] as number | undefined,
    noRepeatNgram: values['no-repeat-ngram'] as number | undefined,
    temperature: values.temperature as number | undefined,
    topK: values['top-k'] as number | undefined,
    topP: values['top-p'] as number | undefined,
    seed: values.seed as number | undefined,
  };
  if (Object.keys(systemOptions).length) o.systemOptions = systemOptions;
  return o;
}

/** The flags of kinds with their own `radkit generate` (defaults stripped: they belong to one kind). */
function kindGenerateFlags(): CliFlags {
  const out: CliFlags = {};
  for (const k of modelKinds()) for (const [name, f] of Object.entries(k.generateCommand?.flags ?? {})) out[name] = { ...f, default: undefined, help: `${k.name}: ${f.help}` };
  return out;
}

/** systemFlags() without their defaults: a flag's default applies only to its own kind (generateOptions). */
function systemFlagsForParsing(): CliFlags {
  return Object.fromEntries(Object.entries(systemFlags()).map(([k, f]) => [k, { ...f, default: undefined }]));
}

const TRAIN_FLAGS: CliFlags = {
  model: { type: 'string', arg: 'KIND', default: 'xpronet', help: 'model kind (below)' },
  ...DATA_FLAGS,
  out: { type: 'string', arg: 'RUN', required: true, help: 'run folder (checkpoints, logs, metrics)' },
  epochs: { type: 'integer', min: 1, default: 10, help: 'epochs' },
  'batch-size': { type: 'integer', min: 1, help: 'batch size (default: the kind\'s recipe)' },
  'image-size': { type: 'integer', min: 8, max: 4096, help: 'input side in pixels (default 128)' },
  fit: { type: 'string', choices: ['stretch', 'center-crop'], help: 'how images become square: stretch (default) or center-crop (keeps the aspect ratio); recorded for generate/evaluate' },
  filter: { type: 'string', choices: [...RESIZE_FILTERS], help: 'resize kernel (default lanczos3); recorded like --fit' },
  lr: { type: 'number', min: 1e-12, help: 'learning rate (default: the kind\'s recipe)' },
  'visual-lr': { type: 'number', min: 1e-12, help: 'learning rate of the visual extractor' },
  preset: { type: 'string', arg: 'NAME', help: 'size preset (the kind\'s first by default)' },
  threshold: { type: 'integer', min: 1, default: 3, help: 'tokenizer: least count of a kept word' },
  seed: { type: 'integer', min: 0, default: 0, help: 'seed' },
  metric: { type: 'string', arg: 'NAME', help: 'validation metric selecting the best checkpoint (default: the kind\'s)' },
  init: { type: 'string', arg: 'RUN[:prefix]', help: 'start from another run\'s best weights named prefix*' },
  'init-partial': { type: 'boolean', help: 'with --init: copy what fits, report the rest (default: a misfit is an error)' },
  freeze: { type: 'string', arg: 'PREFIX,...', help: 'comma-separated parameter-name prefixes to freeze' },
  'no-resume': { type: 'boolean', help: 'start over instead of resuming' },
  'force-new-settings': { type: 'boolean', help: 'resume a run with other settings than it recorded (listed otherwise)' },
  'no-eval': { type: 'boolean', help: 'no evaluation after epochs (the last epoch is best)' },
  augment: { type: 'string', arg: 'JSON|none', help: 'training augmentations, e.g. \'{"image":{"resizedCrop":{},"affine":{}}}\' (lib/data/augment.ts; default: the kind\'s; none: off); recorded in the run' },
  'derive-labels': { type: 'boolean', help: "CheXpert labels of every study from radkit's labeler (a dataset without labels gets them anyway when the model needs labels)" },
  progress: { type: 'string', choices: ['bar', 'json', 'none', 'auto'], default: 'auto', help: 'progress output' },
  ...DEVICE_FLAG,
  precision: { type: 'string', choices: PRECISIONS, help: 'float32 (default), bfloat16 (autocast, float32 master weights) or float16 (loss scaling; CUDA only)' },
  ...LAUNCH_FLAGS,
};

/** --augment: 'none' (no augmentation), a JSON object of AugmentOptions, or absent (the kind's). */
function augmentFlag(v: string | undefined): AugmentOptions | false | undefined {
  if (v === undefined) return undefined;
  if (v === 'none') return false;
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch (err) {
    throw new UsageError(`--augment must be 'none' or a JSON object such as '{"image":{"resizedCrop":{}}}': ${(err as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError(`--augment must be 'none' or a JSON object, got ${v}`);
  return parsed as AugmentOptions;
}

/** The --model value of a train command line (before strict parsing: the kind decides the flags). */
function modelArg(argv: string[]): string {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--model' && i + 1 < argv.length) return argv[i + 1];
    if (argv[i].startsWith('--model=')) return argv[i].slice('--model='.length);
  }
  return TRAIN_FLAGS.model.default as string;
}

function kindForTraining(name: string): ModelKind {
  const k = findModelKind(name);
  if (!k) throw new UsageError(`--model must be one of ${modelKinds().map((x) => x.name).join(', ')}, got '${name}'`);
  return k;
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'train a model on an R2Gen-format dataset (resumes an interrupted run)',
  get usage() {
    const kinds = modelKinds()
      .map((k) => {
        const flags = k.trainFlags ? `\n${formatFlags(k.trainFlags, '      ')}` : '';
        return `  ${k.name.padEnd(Math.max(10, ...modelKinds().map((x) => x.name.length + 2)))}${k.summary}; ${k.task}, presets ${k.presets.join('|')}, metric ${k.metric}${flags}`;
      })
      .join('\n');
    return `usage: radkit train --model KIND --data DIR|annotation.json --out RUN [options]
${formatFlags(TRAIN_FLAGS)}
model kinds (and their own flags):
${kinds}`;
  },
  flags: (argv) => ({ ...TRAIN_FLAGS, ...(kindForTraining(modelArg(argv)).trainFlags ?? {}) }),
  async run({ values }) {
    const launched = await launchIfAsked(values);  // --nproc-per-node: this process starts the workers
    if (launched !== null) return launched;
    const kind = kindForTraining(values.model as string);
    if (values.device !== undefined) checkDevice(values.device as string, 'radkit train');
    const preset = (values.preset as string | undefined) ?? kind.presets[0];
    if (!kind.presets.includes(preset)) throw new UsageError(`--preset must be one of ${kind.presets.join(', ')} for ${kind.name}, got '${preset}'`);
    const ds = dataset(values);
    const tokenizer = (kind.tokenizer ?? reportTokenizer)(ds, values);
    if (values['init-partial'] && !values.init) throw new UsageError('--init-partial needs --init RUN[:prefix]');
    if (values['no-eval'] && values.metric !== undefined) throw new UsageError('--metric selects by evaluation; it does not go with --no-eval');
    const augment = augmentFlag(values.augment as string | undefined);
    const freeze = typeof values.freeze === 'string' ? values.freeze.split(',').map((p) => p.trim()).filter(Boolean) : undefined;
    const model = kind.create({ dataset: ds, tokenizer, preset, seed: values.seed as number, imageSize: values['image-size'] as number | undefined, batchSize: values['batch-size'] as number | undefined, flags: values });
    const controller = new AbortController();
    const onInt = () => {
      console.error('\nradkit train: stopping after this step (the last epoch stays checkpointed; run again to resume)');
      controller.abort();
    };
    process.once('SIGINT', onInt);
    const group = await workerGroup(values);  // a worker of a data-parallel run (torchrun's environment)
    try {
      const r = await train(model, ds, {
        distributed: group ?? undefined,
        tokenizer,
        outDir: values.out as string,
        epochs: values.epochs as number,
        batchSize: values['batch-size'] as number | undefined,
        imageSize: values['image-size'] as number | undefined,
        fit: values.fit as FitMode | undefined,
        filter: values.filter as ResizeFilter | undefined,
        lr: values.lr as number | undefined,
        visualLr: values['visual-lr'] as number | undefined,
        seed: values.seed as number,
        resume: values['no-resume'] ? false : 'auto',
        forceNewSettings: values['force-new-settings'] === true,
        labels: values['derive-labels'] ? 'labeler' : 'auto',
        evaluate: values['no-eval'] ? false : { metric: values.metric as string | undefined },
        init: typeof values.init === 'string' ? { ...parseInitSpec(values.init, 'radkit train'), partial: values['init-partial'] === true } : undefined,
        freeze,
        augment,
        progress: (group && group.rank !== 0 ? 'none' : values.progress) as 'auto',
        signal: controller.signal,
        device: values.device as string | undefined,
        precision: values.precision as (typeof PRECISIONS)[number] | undefined,
      });
      if (!group || group.rank === 0) console.log(JSON.stringify({ outDir: r.outDir, best: r.best, ...(r.init ? { init: { from: r.init.from, copied: r.init.copied.length, skipped: r.init.skipped.length, new: r.init.new.length } } : {}) }, null, 2));
    } finally {
      process.removeListener('SIGINT', onInt);
      group?.close();
      model.dispose();
    }
    return 0;
  },
};

/** Loads the checkpoint a command names, with its registered kind (undefined for kinds this process does not know). */
async function checkpointWithKind(dir: string, device?: string): Promise<{ ck: LoadedCheckpoint; kind: ModelKind | undefined }> {
  const ck = await loadCheckpoint(dir, { device });
  return { ck, kind: findModelKind(ck.meta.kind) };
}

export const generateCommand: Command = {
  name: 'generate',
  summary: 'write reports for new images with a checkpoint (no dataset needed)',
  get usage() {
    return `usage: radkit generate --checkpoint RUN|CHECKPOINT_DIR IMAGE [IMAGE ...] [options]
Each study takes the checkpoint's number of views from consecutive images (one image is repeated).
${formatFlags({ ...GENERATE_FLAGS, ...systemFlags() })}${modelKinds()
      .filter((k) => k.generateCommand)
      .map((k) => `\n${k.name} checkpoints: ${k.generateCommand!.usage}\n${formatFlags(k.generateCommand!.flags)}`)
      .join('')}`;
  },
  flags: () => ({ ...GENERATE_FLAGS, ...systemFlagsForParsing(), ...kindGenerateFlags() }),
  positionals: { min: 0, name: 'image file' },
  async run({ values, positionals }) {
    const own = Object.keys(kindGenerateFlags()).filter((f) => values[f] !== undefined);
    if (!positionals.length && !own.length) throw new UsageError('give at least 1 image file');
    const { ck, kind } = await checkpointWithKind(values.checkpoint as string, values.device as string | undefined);
    try {
      if (kind?.generateCommand) return await kind.generateCommand.run(ck, values, positionals);
      if (own.length) throw new UsageError(`--${own[0]} is a flag of another kind's generate; ${values.checkpoint} holds ${ck.meta.kind}`);
      if ((kind?.task ?? 'generation') !== 'generation') throw new UsageError(`${values.checkpoint} holds ${ck.meta.kind}, a ${kind?.task} model: it does not generate reports`);
      // A kind that builds its own tokenizer may decode with a language model's (as train() allows).
      const tokenizer = kind?.tokenizer && ck.tokenizer instanceof HFReportTokenizer ? ck.tokenizer : generationTokenizer(ck, 'radkit generate');
      const pre = ck.meta.preprocessing;
      const given = values['views-per-study'] as number | undefined;
      if (given !== undefined && given > pre.views)
        throw new UsageError(`--views-per-study ${given}: this checkpoint reads ${pre.views} view${pre.views === 1 ? '' : 's'} per study, so images past the ${pre.views === 1 ? 'first' : `first ${pre.views}`} of each study would be dropped`);
      // One image alone is one study (its view repeated); otherwise the images must split evenly.
      const per = given ?? (positionals.length === 1 ? 1 : pre.views);
      if (positionals.length % per !== 0)
        throw new UsageError(
          `${positionals.length} images do not split into studies of ${per} (this checkpoint reads ${pre.views} views per study); give whole studies, or --views-per-study 1 to take each image as a study of its own (its view repeated)`,
        );
      const studies: string[][] = [];
      for (let i = 0; i < positionals.length; i += per) studies.push(positionals.slice(i, i + per));
      const HW = pre.imageSize * pre.imageSize;
      const data = new Float32Array(studies.length * pre.views * HW);
      for (const [s, files] of studies.entries())
        for (let v = 0; v < pre.views; v++) {
          const img = await readImage(files[Math.min(v, files.length - 1)], { height: pre.imageSize, width: pre.imageSize, fit: pre.fit, filter: pre.filter, mean: pre.mean, std: pre.std });
          data.set(img.data, (s * pre.views + v) * HW);
        }
      const opts = generateOptions(values, kind, ck.meta.kind);
      const batch = new TensorBatch({ images: { data, shape: [studies.length, pre.views, 1, pre.imageSize, pre.imageSize] } });
      let g;
      try {
        g = await ck.model.generate(batch, opts);
      } finally {
        batch.dispose();
      }
      const results = studies.map((files, i) => {
        const extras = Object.fromEntries(
          Object.entries(g.extras).map(([k, v]) => {
            const per2 = v.data.length / v.shape[0];
            return [k, v.data.slice(i * per2, (i + 1) * per2)];
          }),
        );
        return { images: files, report: tokenizer.decode(g.tokens[i]), score: g.scores[i], ...opts.systemOptions, ...extras };
      });
      if (values.json) console.log(JSON.stringify(results, null, 2));
      else for (const r of results) console.log(`${r.images.join(' ')}\n  ${r.report}\n`);
    } finally {
      ck.model.dispose();
    }
    return 0;
  },
};

const GENERATE_FLAGS: CliFlags = {
  checkpoint: { type: 'string', arg: 'RUN', required: true, help: 'run folder or checkpoint folder' },
  'views-per-study': { type: 'integer', min: 1, max: 64, help: 'images per study (default: the checkpoint\'s views)' },
  ...SEARCH_FLAGS,
  json: { type: 'boolean', help: 'print JSON' },
  ...DEVICE_FLAG,
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

const EVALUATE_FLAGS: CliFlags = {
  checkpoint: { type: 'string', arg: 'RUN', required: true, help: 'run folder or checkpoint folder' },
  ...DATA_FLAGS,
  split: { type: 'string', choices: SPLITS, default: 'test', help: 'split to score' },
  out: { type: 'string', arg: 'DIR', help: 'output folder (default: RUN/eval-SPLIT, beside the checkpoints)' },
  'max-items': { type: 'integer', min: 1, help: 'score the first N studies' },
  ...SEARCH_FLAGS,
  ...DEVICE_FLAG,
};

export const evaluateCommand: Command = {
  name: 'evaluate',
  summary: 'score a checkpoint on a split with its kind\'s evaluation (generated reports, or retrieval R@k) (JSON + Markdown)',
  get usage() {
    return `usage: radkit evaluate --checkpoint RUN --data DIR [options]
${formatFlags({ ...EVALUATE_FLAGS, ...systemFlags() })}`;
  },
  flags: () => ({ ...EVALUATE_FLAGS, ...systemFlagsForParsing() }),
  async run({ values }) {
    const split = values.split as SplitName;
    // Outputs go beside the checkpoints, never inside a folder that training rewrites.
    const out = (values.out as string | undefined) ?? defaultOutputDir(values.checkpoint as string, `eval-${split}`, 'radkit evaluate');
    checkOutputOutsideCheckpoints(out, 'radkit evaluate');
    const { ck, kind } = await checkpointWithKind(values.checkpoint as string, values.device as string | undefined);
    try {
      const ds = dataset(values);
      const evaluate = kind?.evaluate ?? generationEvaluation;
      const generate = (kind?.task ?? 'generation') === 'generation' ? generateOptions(values, kind, ck.meta.kind) : undefined;
      const ev = await evaluate(ck.model, ck.tokenizer, ds, { split, preprocessing: ck.meta.preprocessing, generate, maxItems: values['max-items'] as number | undefined });
      const record = { split, checkpoint: { kind: ck.meta.kind, epoch: ck.meta.epoch }, headline: ev.headline, ...ev.record };
      const label = generate?.systemOptions ? ` (${Object.entries(generate.systemOptions).map(([k, v]) => `${k}: ${v}`).join(', ')})` : '';
      writeMetrics(out, `${ck.meta.kind} on ${split}${label}`, record, ev.headline);
    } finally {
      ck.model.dispose();
    }
    return 0;
  },
};

export const reportCommand: Command = {
  name: 'report',
  summary: 'write an HTML page for an evaluated run (images, ground truth vs generated, scores)',
  get usage() {
    return `usage: radkit report EVAL_DIR (a folder written by radkit evaluate) [options]
${formatFlags(REPORT_FLAGS)}`;
  },
  flags: () => REPORT_FLAGS,
  positionals: { min: 1, name: 'folder written by radkit evaluate' },
  async run({ values, positionals }) {
    const dir = positionals[0];
    const file = path.join(dir, 'metrics.json');
    if (!fs.existsSync(file)) throw new RadkitError(`${file}: not found (give a folder written by radkit evaluate)`, 'ERR_DATA', 'radkit report');
    let rec;
    try {
      rec = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new RadkitError(`${file}: not valid JSON (${(err as Error).message}); run radkit evaluate again to rewrite it`, 'ERR_DATA', 'radkit report');
    }
    if (!rec || typeof rec !== 'object' || typeof rec.checkpoint?.kind !== 'string' || typeof rec.split !== 'string')
      throw new RadkitError(`${file}: not a metrics.json written by radkit evaluate (no checkpoint.kind or split)`, 'ERR_DATA', 'radkit report');
    if (!Array.isArray(rec.reports)) throw new RadkitError(`${file}: holds no generated reports (a ${rec.checkpoint?.kind ?? 'non-generating'} evaluation)`, 'ERR_DATA', 'radkit report');
    const ds = values.data ? dataset(values) : null;
    const images = (id: string) => (ds ? Object.values(ds.splits).flat().find((e) => e.id === id)?.imagePaths ?? [] : []);
    const out = (values.out as string | undefined) ?? path.join(dir, 'report.html');
    checkOutputOutsideCheckpoints(path.dirname(path.resolve(out)), 'radkit report');
    writeHtmlReport(out, {
      title: `radkit: ${rec.checkpoint.kind} on ${rec.split}`,
      scores: { [rec.checkpoint.kind]: rec.headline },
      settings: { generate: rec.generate, evaluation: rec.result?.settings },
      items: rec.reports.slice(0, 100).map((r: { id: string; reference: string; hypothesis: string; extras?: Record<string, { shape: number[]; data: number[] }> }) => ({
        id: r.id,
        images: images(r.id),
        reference: r.reference,
        generated: { generated: r.hypothesis },
        notes: findModelKind(rec.checkpoint.kind)?.explain?.(r.extras ?? {}),
      })),
    });
    console.log(`wrote ${out}${rec.reports.length > 100 ? ` (the first 100 of ${rec.reports.length} reports; metrics.json holds all)` : ''}`);
    return 0;
  },
};

const REPORT_FLAGS: CliFlags = {
  data: { type: 'string', help: 'dataset folder, to show the images' },
  labels: { type: 'string', help: 'labels.json' },
  out: { type: 'string', help: 'page path (default: EVAL_DIR/report.html)' },
};

/** Registered kinds whose task is `task` (for messages). */
export function kindsWithTask(task: ModelKind['task']): string {
  return modelKinds().filter((k) => k.task === task).map((k) => k.name).join(', ') || 'none registered';
}
