// radkit retrieve / codebooks / explain: the alignment-model (AdaMatch) commands.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from '../command.js';
import { parseFlags } from '../command.js';
import type { SplitName } from '../../data/r2gen.js';
import { embedSplit } from '../../align/embed.js';
import { retrievalMetrics, similarityMatrices, topMatches } from '../../align/retrieval.js';
import { buildCodebooks, hasCodebooks, loadCodebooks, saveCodebooks, type Codebooks } from '../../align/codebooks.js';
import { explainImages, explainReport } from '../../align/explain.js';
import { modelTask } from '../../models/tasks.js';
import { loadCheckpoint, type LoadedCheckpoint } from '../../train/checkpoint.js';
import { dataset, num, str, writeMetrics } from './models.js';
import { writeHtmlReport } from '../../report/html.js';

async function alignmentCheckpoint(dir: string, fn: string): Promise<LoadedCheckpoint> {
  const ck = await loadCheckpoint(dir);
  if (modelTask(ck.meta.kind) !== 'retrieval') {
    ck.model.dispose();
    throw new Error(`${fn} needs an alignment model checkpoint (adamatch); ${dir} holds ${ck.meta.kind}`);
  }
  return ck;
}

export const retrieveCommand: Command = {
  name: 'retrieve',
  summary: 'image-report retrieval with an AdaMatch checkpoint: R@1/5/10 both ways on a split',
  usage: `usage: radkit retrieve --checkpoint RUN --data DIR [--split test] [--out DIR] [--top 5] [--max-items N] [--html-items 40]
Writes metrics.json / metrics.md, matches.json (each image's best reports and each report's best
images) and report.html (adaptive-patch pictures, keywords when RUN/codebooks exists, best reports).`,
  async run(argv) {
    const { flags } = parseFlags(argv);
    const ckDir = str(flags, 'checkpoint', true)!;
    const ck = await alignmentCheckpoint(ckDir, 'radkit retrieve');
    try {
      const split = (str(flags, 'split') ?? 'test') as SplitName;
      const ds = dataset(flags);
      const e = await embedSplit(ck.model, ds, { split, preprocessing: ck.meta.preprocessing, tokenizer: ck.tokenizer, maxItems: num(flags, 'max-items') });
      const sims = similarityMatrices(e);
      const m = retrievalMetrics(sims);
      const top = num(flags, 'top', 5)!;
      const n = sims.n;
      const matches = e.ids.map((id, i) => ({
        id,
        reports: topMatches((j) => sims.imageToText[i * n + j], n, top).map((x) => ({ id: e.ids[x.index], score: x.score })),
        images: topMatches((j) => sims.textToImage[j * n + i], n, top).map((x) => ({ id: e.ids[x.index], score: x.score })),
      }));
      const out = str(flags, 'out') ?? path.join(ckDir, `retrieval-${split}`);
      writeMetrics(out, `${ck.meta.kind} retrieval on ${split} (${m.n} pairs)`, { split, checkpoint: { kind: ck.meta.kind, epoch: ck.meta.epoch }, headline: m }, { ...m });
      fs.writeFileSync(path.join(out, 'matches.json'), JSON.stringify(matches, null, 1));
      const shown = Math.min(e.n, num(flags, 'html-items', 40)!);
      if (shown > 0) {
        const books = hasCodebooks(path.join(ckDir, 'codebooks')) ? loadCodebooks(path.join(ckDir, 'codebooks')) : undefined;
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

/** --kappa0 / --kappa2 / --kappa3 / --max-items as buildCodebooks options. */
const codebookFlags = (flags: Record<string, string | true>) => ({ kappa0: num(flags, 'kappa0'), kappa2: num(flags, 'kappa2'), kappa3: num(flags, 'kappa3'), maxItems: num(flags, 'max-items') });

async function codebooksFor(ck: LoadedCheckpoint, ckDir: string, flags: Record<string, string | true>): Promise<Codebooks | undefined> {
  const dir = str(flags, 'codebooks') ?? path.join(ckDir, 'codebooks');
  if (hasCodebooks(dir)) return loadCodebooks(dir);
  if (!flags.data) return undefined;
  console.error(`building codebooks from the training split (saved to ${dir})`);
  const c = await buildCodebooks(ck.model, ck.tokenizer, dataset(flags), ck.meta.preprocessing, codebookFlags(flags));
  saveCodebooks(dir, c);
  return c;
}

export const codebooksCommand: Command = {
  name: 'codebooks',
  summary: 'build the textual (keywords) and visual (keypatches) codebooks of an AdaMatch checkpoint',
  usage: `usage: radkit codebooks --checkpoint RUN --data DIR [--out DIR (RUN/codebooks)] [--kappa0 200] [--kappa2 1000] [--kappa3 20] [--max-items N]`,
  async run(argv) {
    const { flags } = parseFlags(argv);
    const ckDir = str(flags, 'checkpoint', true)!;
    str(flags, 'data', true);
    const ck = await alignmentCheckpoint(ckDir, 'radkit codebooks');
    try {
      const dir = str(flags, 'out') ?? path.join(ckDir, 'codebooks');
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
  usage: `usage: radkit explain --checkpoint RUN IMAGE [IMAGE ...] [--out DIR] [--top 10] [--json]
       radkit explain --checkpoint RUN --report "text" [--json]
Codebooks come from RUN/codebooks (radkit codebooks), or are built there when --data DIR is given.
Images: writes IMAGE-name.patches.png (boxes + arrows from the fixed centres) and prints keywords.`,
  async run(argv) {
    const { flags, positional } = parseFlags(argv);
    const ckDir = str(flags, 'checkpoint', true)!;
    const report = str(flags, 'report');
    if (!report && !positional.length) throw new Error('give image files, or --report "text"');
    const ck = await alignmentCheckpoint(ckDir, 'radkit explain');
    try {
      const books = await codebooksFor(ck, ckDir, flags);
      if (report) {
        if (!books) throw new Error(`keypatches need codebooks: run radkit codebooks --checkpoint ${ckDir} --data DIR first, or add --data DIR`);
        const r = await explainReport(ck.model, ck.tokenizer, report, books);
        if (flags.json) console.log(JSON.stringify(r, null, 2));
        else {
          console.log('keypatches (training study, box cx,cy,w,h, similarity, word):');
          for (const t of r.top) console.log(`  ${t.study}  [${t.box.map((v) => v.toFixed(1)).join(', ')}]  ${t.score.toFixed(3)}  ${t.word}`);
        }
      }
      if (positional.length) {
        const out = str(flags, 'out') ?? path.join(ckDir, 'explain');
        fs.mkdirSync(out, { recursive: true });
        if (!books) console.error('no codebooks (run radkit codebooks or add --data DIR): drawing the most shifted patches, no keywords');
        const ex = await explainImages(ck.model, ck.meta.preprocessing, positional, books, num(flags, 'top', 10));
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
