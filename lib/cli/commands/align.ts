// radkit retrieve / codebooks / explain: the alignment-model (AdaMatch) commands.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatFlags, UsageError, type CliFlags, type Command } from '../command.js';
import type { FlagValues } from '../../models/registry.js';
import type { SplitName } from '../../data/r2gen.js';
import { embedSplit } from '../../align/embed.js';
import { retrievalMetrics, similarityMatrices, topMatches } from '../../align/retrieval.js';
import { buildCodebooks, hasCodebooks, loadCodebooks, saveCodebooks, type Codebooks } from '../../align/codebooks.js';
import { explainImages, explainReport } from '../../align/explain.js';
import { modelTask } from '../../models/registry.js';
import { checkOutputOutsideCheckpoints, defaultOutputDir, loadCheckpoint, type LoadedCheckpoint } from '../../train/checkpoint.js';
import { DATA_FLAGS, dataset, kindsWithTask, writeMetrics } from './models.js';
import { writeHtmlReport } from '../../report/html.js';

async function alignmentCheckpoint(dir: string, fn: string): Promise<LoadedCheckpoint> {
  const ck = await loadCheckpoint(dir);
  if (modelTask(ck.meta.kind) !== 'retrieval') {
    ck.model.dispose();
    throw new UsageError(`${fn} needs an alignment model checkpoint (${kindsWithTask('retrieval')}); ${dir} holds ${ck.meta.kind}`);
  }
  return ck;
}

export const retrieveCommand: Command = {
  name: 'retrieve',
  summary: 'image-report retrieval with an AdaMatch checkpoint: R@1/5/10 both ways on a split',
  get usage() {
    return `usage: radkit retrieve --checkpoint RUN --data DIR [options]
Writes metrics.json / metrics.md, matches.json (each image's best reports and each report's best
images) and report.html (adaptive-patch pictures, keywords when RUN/codebooks exists, best reports).
${formatFlags(RETRIEVE_FLAGS)}`;
  },
  flags: () => RETRIEVE_FLAGS,
  async run({ values: flags }) {
    const ckDir = flags.checkpoint as string;
    const ck = await alignmentCheckpoint(ckDir, 'radkit retrieve');
    try {
      const split = flags.split as SplitName;
      const ds = dataset(flags);
      const e = await embedSplit(ck.model, ds, { split, preprocessing: ck.meta.preprocessing, tokenizer: ck.tokenizer, maxItems: flags['max-items'] as number | undefined });
      const sims = similarityMatrices(e);
      const m = retrievalMetrics(sims);
      const top = flags.top as number;
      const n = sims.n;
      const matches = e.ids.map((id, i) => ({
        id,
        reports: topMatches((j) => sims.imageToText[i * n + j], n, top).map((x) => ({ id: e.ids[x.index], score: x.score })),
        images: topMatches((j) => sims.textToImage[j * n + i], n, top).map((x) => ({ id: e.ids[x.index], score: x.score })),
      }));
      const out = (flags.out as string | undefined) ?? defaultOutputDir(ckDir, `retrieval-${split}`, 'radkit retrieve');
      checkOutputOutsideCheckpoints(out, 'radkit retrieve');
      writeMetrics(out, `${ck.meta.kind} retrieval on ${split} (${m.n} pairs)`, { split, checkpoint: { kind: ck.meta.kind, epoch: ck.meta.epoch }, headline: m }, { ...m });
      fs.writeFileSync(path.join(out, 'matches.json'), JSON.stringify(matches, null, 1));
      const shown = Math.min(e.n, flags['html-items'] as number);
      if (shown > 0) {
        const books = existingCodebooks(ckDir);
        const entries = new Map(ds.splits[split].map((x) => [x.id, x]));
        const row = new Map(e.ids.map((id, i) => [id, i]));
        const files = e.ids.slice(0, shown).map((id) => entries.get(id)!.imagePaths[0]);
        const pictures = await explainImages(ck.model, ck.meta.preprocessing, files, books);
        const page = path.join(out, 'report.html');
        writeHtmlReport(page, {
          title: `radkit: ${ck.meta.kind} retrieval on ${split}`,
          scores: { [ck.meta.kind]: { ...m } },
          settings: { checkpoint: { kind: ck.meta.kind, epoch: ck.meta.epoch }, config: ck.meta.config, codebooks: books?.settings ?? 'none (run radkit codebooks)' },
          items: matches.slice(0, shown).map((x, i) => ({
            id: x.id,
            images: [`data:image/png;base64,${pictures[i].png.toString('base64')}`],
            reference: e.reports[i],
            generated: Object.fromEntries(x.reports.slice(0, 3).map((r, k) => [`retrieved #${k + 1} (${r.score.toFixed(3)}${r.id === x.id ? ', the pair' : ''})`, e.reports[row.get(r.id)!]])),
            notes: pictures[i].keywords ? [`keywords: ${pictures[i].keywords!.map((k) => `${k.keyword} (${k.score.toFixed(2)})`).join(', ')}`] : undefined,
          })),
        });
        console.log(`wrote ${page}`);
      }
    } finally {
      ck.model.dispose();
    }
    return 0;
  },
};

const CHECKPOINT: CliFlags = { checkpoint: { type: 'string', required: true, help: 'AdaMatch run or checkpoint folder' } };
const SPLIT: CliFlags = { split: { type: 'string', choices: ['train', 'val', 'test'], default: 'test', help: 'split' } };

const RETRIEVE_FLAGS: CliFlags = {
  ...CHECKPOINT,
  ...DATA_FLAGS,
  ...SPLIT,
  out: { type: 'string', help: 'output folder (default RUN/retrieval-SPLIT, beside the checkpoints)' },
  top: { type: 'integer', min: 1, default: 5, help: 'matches kept per item' },
  'max-items': { type: 'integer', min: 1, help: 'the first N studies only' },
  'html-items': { type: 'integer', min: 0, default: 40, help: 'items on the HTML page' },
};

/** --kappa0 / --kappa2 / --kappa3 / --max-items: buildCodebooks options. */
const CODEBOOK_FLAGS: CliFlags = {
  kappa0: { type: 'integer', min: 1, help: 'textual codebook: kappa0 (default 200)' },
  kappa2: { type: 'integer', min: 1, help: 'visual codebook: kappa2 (default 1000)' },
  kappa3: { type: 'integer', min: 1, help: 'visual codebook: kappa3 (default 20)' },
  'max-items': { type: 'integer', min: 1, help: 'training studies used' },
};
const codebookFlags = (flags: FlagValues) => ({ kappa0: flags.kappa0 as number | undefined, kappa2: flags.kappa2 as number | undefined, kappa3: flags.kappa3 as number | undefined, maxItems: flags['max-items'] as number | undefined });

/** Where a checkpoint's codebooks live by default: beside its checkpoints (RUN/codebooks), never inside one. */
const codebookDir = (ckDir: string, fn: string) => defaultOutputDir(ckDir, 'codebooks', fn);

/** The codebooks saved for a checkpoint, if any (also where radkit before 0.1 saved them: inside the folder named). */
function existingCodebooks(ckDir: string): Codebooks | undefined {
  for (const dir of [codebookDir(ckDir, 'radkit'), path.join(ckDir, 'codebooks')]) if (hasCodebooks(dir)) return loadCodebooks(dir);
  return undefined;
}

async function codebooksFor(ck: LoadedCheckpoint, ckDir: string, flags: FlagValues): Promise<Codebooks | undefined> {
  if (typeof flags.codebooks === 'string') {
    if (hasCodebooks(flags.codebooks)) return loadCodebooks(flags.codebooks);
  } else {
    const found = existingCodebooks(ckDir);
    if (found) return found;
  }
  const dir = (flags.codebooks as string | undefined) ?? codebookDir(ckDir, 'radkit explain');
  if (!flags.data) return undefined;
  checkOutputOutsideCheckpoints(dir, 'radkit explain');
  console.error(`building codebooks from the training split (saved to ${dir})`);
  const c = await buildCodebooks(ck.model, ck.tokenizer, dataset(flags), ck.meta.preprocessing, codebookFlags(flags));
  saveCodebooks(dir, c);
  return c;
}

export const codebooksCommand: Command = {
  name: 'codebooks',
  summary: 'build the textual (keywords) and visual (keypatches) codebooks of an AdaMatch checkpoint',
  get usage() {
    return `usage: radkit codebooks --checkpoint RUN --data DIR [options]\n${formatFlags(CODEBOOKS_FLAGS)}`;
  },
  flags: () => CODEBOOKS_FLAGS,
  async run({ values: flags }) {
    const ckDir = flags.checkpoint as string;
    const ck = await alignmentCheckpoint(ckDir, 'radkit codebooks');
    try {
      const dir = (flags.out as string | undefined) ?? codebookDir(ckDir, 'radkit codebooks');
      checkOutputOutsideCheckpoints(dir, 'radkit codebooks');
      const c = await buildCodebooks(ck.model, ck.tokenizer, dataset(flags), ck.meta.preprocessing, codebookFlags(flags));
      saveCodebooks(dir, c);
      console.log(`wrote ${dir}: ${c.keywords.keywords.length} keywords, ${c.visual.keypatches.length} keypatches from ${c.settings.trainStudies} training studies`);
    } finally {
      ck.model.dispose();
    }
    return 0;
  },
};

export const explainCommand: Command = {
  name: 'explain',
  summary: 'adaptive patches + keywords of images, or keypatches of a report, with an AdaMatch checkpoint',
  get usage() {
    return `usage: radkit explain --checkpoint RUN IMAGE [IMAGE ...] [options]
       radkit explain --checkpoint RUN --report "text" [--json]
Codebooks come from RUN/codebooks (radkit codebooks), or are built there when --data DIR is given.
Images: writes IMAGE-name.patches.png (boxes + arrows from the fixed centres) and prints keywords.
${formatFlags(EXPLAIN_FLAGS)}`;
  },
  flags: () => EXPLAIN_FLAGS,
  positionals: { min: 0, name: 'image file' },
  async run({ values: flags, positionals: positional }) {
    const ckDir = flags.checkpoint as string;
    const report = flags.report as string | undefined;
    if (!report && !positional.length) throw new UsageError('give image files, or --report "text"');
    const ck = await alignmentCheckpoint(ckDir, 'radkit explain');
    try {
      const books = await codebooksFor(ck, ckDir, flags);
      if (report) {
        if (!books) throw new UsageError(`keypatches need codebooks: run radkit codebooks --checkpoint ${ckDir} --data DIR first, or add --data DIR`);
        const r = await explainReport(ck.model, ck.tokenizer, report, books);
        if (flags.json) console.log(JSON.stringify(r, null, 2));
        else {
          console.log('keypatches (training study, box cx,cy,w,h, similarity, word):');
          for (const t of r.top) console.log(`  ${t.study}  [${t.box.map((v) => v.toFixed(1)).join(', ')}]  ${t.score.toFixed(3)}  ${t.word}`);
        }
      }
      if (positional.length) {
        const out = (flags.out as string | undefined) ?? defaultOutputDir(ckDir, 'explain', 'radkit explain');
        checkOutputOutsideCheckpoints(out, 'radkit explain');
        fs.mkdirSync(out, { recursive: true });
        if (!books) console.error('no codebooks (run radkit codebooks or add --data DIR): drawing the most shifted patches, no keywords');
        const ex = await explainImages(ck.model, ck.meta.preprocessing, positional, books, flags.top as number);
        const summary = ex.map((x) => {
          const png = path.join(out, `${path.basename(x.image).replace(/\.[^.]+$/, '')}.patches.png`);
          fs.writeFileSync(png, x.png);
          return { image: x.image, picture: png, keywords: x.keywords };
        });
        if (flags.json) console.log(JSON.stringify(summary, null, 2));
        else for (const s of summary) console.log(`${s.image}\n  picture: ${s.picture}${s.keywords ? `\n  keywords: ${s.keywords.map((k) => k.keyword).join(', ')}` : ''}`);
      }
    } finally {
      ck.model.dispose();
    }
    return 0;
  },
};

const CODEBOOKS_FLAGS: CliFlags = {
  ...CHECKPOINT,
  ...DATA_FLAGS,
  out: { type: 'string', help: 'codebook folder (default RUN/codebooks)' },
  ...CODEBOOK_FLAGS,
};

const EXPLAIN_FLAGS: CliFlags = {
  ...CHECKPOINT,
  report: { type: 'string', help: 'a report to find keypatches for' },
  data: { type: 'string', help: 'dataset folder: build codebooks when RUN/codebooks is missing' },
  labels: { type: 'string', help: 'labels.json' },
  codebooks: { type: 'string', help: 'codebook folder (default RUN/codebooks)' },
  out: { type: 'string', help: 'picture folder (default RUN/explain)' },
  top: { type: 'integer', min: 1, default: 10, help: 'patches drawn per image' },
  json: { type: 'boolean', help: 'print JSON' },
  ...CODEBOOK_FLAGS,
};
