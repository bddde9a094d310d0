/**
 * `radkit metrics --hyps H.json --refs R.json [--format json|md]`: scores generated reports.
 *
 * H.json: an array of strings, or an object id -> string (or id -> [string]).
 * R.json: an array (one string or an array of strings per item), or an object id -> string | string[];
 * with objects, items are matched by id: every hypothesis id must have references and every
 * reference id a hypothesis (with --partial the ids of H.json are scored and the others recorded).
 * Files must be valid UTF-8 JSON. The input policy of the scores: lib/metrics/evaluate.ts.
 */
import * as fs from 'node:fs';
import { formatFlags, type CliFlags, type Command } from '../command.js';
import { RadkitError } from '../../errors.js';
import { readUtf8 } from '../../data/r2gen.js';
import { evaluate, type EvaluateResult, type MetricName, type ReferenceMode } from '../../metrics/evaluate.js';
import type { UncertainPolicy } from '../../metrics/clinical.js';

const FLAGS: CliFlags = {
  hyps: { type: 'string', required: true, help: 'JSON array of hypotheses, or object id -> text' },
  refs: { type: 'string', required: true, help: 'JSON array (text or [texts] per item), or object id -> text | [texts]' },
  format: { type: 'string', choices: ['json', 'md'], default: 'json', help: 'output format' },
  out: { type: 'string', help: 'write the result there instead of stdout' },
  metrics: { type: 'string', help: 'comma list of bleu,meteor,rougeL,ciderD,clinical (default all)' },
  'reference-mode': { type: 'string', choices: ['full', 'r2gen-truncated'], default: 'full', help: 'references as given, or R2Gen-truncated' },
  'max-seq-length': { type: 'integer', min: 1, help: 'R2Gen max_seq_length for r2gen-truncated (default 60)' },
  uncertain: { type: 'string', choices: ['negative', 'positive'], default: 'negative', help: "how 'uncertain' labels count" },
  partial: { type: 'boolean', help: 'id-keyed inputs: score the ids of --hyps only (reference ids without a hypothesis are recorded, not refused)' },
};

const USAGE = `usage: radkit metrics --hyps H.json --refs R.json [options]

Scores generated reports against references: BLEU-1..4, METEOR, ROUGE-L, CIDEr-D (coco-caption
definitions) and CheXpert clinical efficacy (labels from radkit's rule labeler).

${formatFlags(FLAGS)}

Inputs must be pre-tokenised (e.g. with radkit's tokenizer); the settings used are recorded in the output.`;

const inputError = (message: string) => new RadkitError(message, 'ERR_DATA', 'radkit metrics');

function readJson(flag: string, file: string): unknown {
  let text: string;
  try {
    text = readUtf8(file);
  } catch (err) {
    throw inputError(`cannot read --${flag} ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw inputError(`--${flag} ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

const asRefList = (v: unknown, where: string): string[] => {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  throw inputError(`${where}: expected a string or an array of strings, got ${Array.isArray(v) ? 'an array with non-strings' : typeof v}`);
};

/** Normalises the two JSON inputs into aligned hyps / refs lists. */
export function loadPairs(h: unknown, r: unknown, options: { partial?: boolean } = {}): { hyps: string[]; refs: string[][]; ids: string[] | null; unscoredReferenceIds: string[] } {
  if (Array.isArray(h)) {
    if (!Array.isArray(r)) throw inputError('--refs: expected a JSON array when --hyps is an array');
    const hyps = h.map((x, i) => {
      if (typeof x === 'string') return x;
      if (Array.isArray(x) && x.length === 1 && typeof x[0] === 'string') return x[0] as string;
      throw inputError(`--hyps[${i}]: expected a string, got ${typeof x}`);
    });
    return { hyps, refs: r.map((x, i) => asRefList(x, `--refs[${i}]`)), ids: null, unscoredReferenceIds: [] };
  }
  if (h === null || typeof h !== 'object') throw inputError('--hyps: expected a JSON array or object');
  if (r === null || typeof r !== 'object' || Array.isArray(r)) throw inputError('--refs: expected a JSON object (id -> references) when --hyps is an object');
  const ids = Object.keys(h);
  const hyps: string[] = [];
  const refs: string[][] = [];
  for (const id of ids) {
    const hv = (h as Record<string, unknown>)[id];
    const one = asRefList(hv, `--hyps["${id}"]`);
    if (one.length !== 1) throw inputError(`--hyps["${id}"]: expected one hypothesis, got ${one.length}`);
    if (!Object.prototype.hasOwnProperty.call(r, id)) throw inputError(`--refs: no references for id "${id}"`);
    hyps.push(one[0]);
    refs.push(asRefList((r as Record<string, unknown>)[id], `--refs["${id}"]`));
  }
  const unscored = Object.keys(r).filter((id) => !Object.prototype.hasOwnProperty.call(h, id));
  if (unscored.length && !options.partial)
    throw inputError(
      `--refs has ${unscored.length} id${unscored.length === 1 ? '' : 's'} without a hypothesis (${unscored.slice(0, 5).map((x) => `"${x}"`).join(', ')}${unscored.length > 5 ? ', ...' : ''}); ` +
        'give a hypothesis for every reference, or --partial to score the ids of --hyps only',
    );
  return { hyps, refs, ids, unscoredReferenceIds: unscored };
}

const f = (x: number | undefined, d = 4): string => (x === undefined ? '-' : x.toFixed(d));

/** Markdown rendering of an evaluate() result. */
export function toMarkdown(r: EvaluateResult): string {
  const lines = [`# radkit metrics (${r.n} reports)`, '', '| metric | value |', '| --- | --- |'];
  if (r.bleu) {
    lines.push(`| BLEU-1 | ${f(r.bleu.bleu1)} |`, `| BLEU-2 | ${f(r.bleu.bleu2)} |`, `| BLEU-3 | ${f(r.bleu.bleu3)} |`, `| BLEU-4 | ${f(r.bleu.bleu4)} |`);
  }
  if (r.meteor !== undefined) lines.push(`| METEOR | ${f(r.meteor)} |`);
  if (r.rougeL !== undefined) lines.push(`| ROUGE-L | ${f(r.rougeL)} |`);
  if (r.ciderD !== undefined) lines.push(`| CIDEr-D | ${f(r.ciderD)} |`);
  if (r.clinical) {
    const c = r.clinical;
    lines.push('', `## Clinical efficacy (uncertain = ${c.policy.uncertain})`, '', '| average | precision | recall | F1 |', '| --- | --- | --- | --- |');
    lines.push(`| micro | ${f(c.micro.precision)} | ${f(c.micro.recall)} | ${f(c.micro.f1)} |`);
    lines.push(`| macro | ${f(c.macro.precision)} | ${f(c.macro.recall)} | ${f(c.macro.f1)} |`);
    lines.push(`| example-based | ${f(c.exampleBased.precision)} | ${f(c.exampleBased.recall)} | ${f(c.exampleBased.f1)} |`);
  }
  if (r.inputs?.notes.length) lines.push('', '## Inputs', '', ...r.inputs.notes.map((n) => `- ${n}`));
  lines.push('', '## Settings', '', `- tokenisation: ${r.settings.tokenisation}`, `- reference mode: ${r.settings.referenceMode}` +
    (r.settings.maxSeqLength ? ` (max_seq_length ${r.settings.maxSeqLength})` : ''));
  for (const [k, v] of Object.entries(r.settings.scorers)) lines.push(`- ${k}: ${v}`);
  if (r.settings.meteor) lines.push(`- METEOR: ${r.settings.meteor.note}`);
  if (r.settings.clinical) {
    lines.push(`- clinical labels: hypotheses from ${r.settings.clinical.hypLabels}; references from ${r.settings.clinical.refLabels}`);
    if (r.clinical) lines.push(`- clinical policy: ${r.clinical.policy.description}`);
  }
  return lines.join('\n') + '\n';
}

export const metricsCommand: Command = {
  name: 'metrics',
  summary: 'score generated reports (BLEU, METEOR, ROUGE-L, CIDEr-D, clinical efficacy)',
  usage: USAGE,
  flags: FLAGS,
  async run({ values: flags }) {
    const format = flags.format as string;
    const { hyps, refs, unscoredReferenceIds } = loadPairs(readJson('hyps', flags.hyps as string), readJson('refs', flags.refs as string), { partial: flags.partial === true });
    const metrics = typeof flags.metrics === 'string' ? (flags.metrics.split(',').map((s) => s.trim()) as MetricName[]) : undefined;
    const result = evaluate(hyps, refs, {
      metrics,
      referenceMode: flags['reference-mode'] as ReferenceMode,
      maxSeqLength: flags['max-seq-length'] as number | undefined,
      uncertain: flags.uncertain as UncertainPolicy,
    });
    if (unscoredReferenceIds.length) {
      result.inputs.notes.push(`--partial: ${unscoredReferenceIds.length} reference ids without a hypothesis were not scored`);
      Object.assign(result.inputs, { unscoredReferenceIds });
    }
    const text = format === 'md' ? toMarkdown(result) : JSON.stringify(result, null, 2) + '\n';
    if (typeof flags.out === 'string') fs.writeFileSync(flags.out, text);
    else process.stdout.write(text);
    return 0;
  },
};
