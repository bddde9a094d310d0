/**
 * `radkit metrics --hyps H.json --refs R.json [--format json|md]`: scores generated reports.
 *
 * H.json: an array of strings, or an object id -> string (or id -> [string]).
 * R.json: an array (one string or an array of strings per item), or an object id -> string | string[];
 * with objects, items are matched by id (every hypothesis id must have references).
 */
import * as fs from 'node:fs';
import { parseFlags, type Command } from '../command.js';
import { evaluate, type EvaluateResult, type MetricName, type ReferenceMode } from '../../metrics/evaluate.js';
import type { UncertainPolicy } from '../../metrics/clinical.js';

const USAGE = `usage: radkit metrics --hyps H.json --refs R.json [options]

Scores generated reports against references: BLEU-1..4, METEOR, ROUGE-L, CIDEr-D (coco-caption
definitions) and CheXpert clinical efficacy (labels from radkit's rule labeler).

  --hyps FILE             JSON array of hypotheses, or object id -> text
  --refs FILE             JSON array (text or [texts] per item), or object id -> text | [texts]
  --format json|md        output format (default json)
  --out FILE              write the result there instead of stdout
  --metrics LIST          comma list of bleu,meteor,rougeL,ciderD,clinical (default all)
  --reference-mode MODE   full (default) or r2gen-truncated
  --max-seq-length N      R2Gen max_seq_length for r2gen-truncated (default 60)
  --uncertain POLICY      negative (default) or positive: how 'uncertain' labels count

Inputs must be pre-tokenised (e.g. with radkit's tokenizer); the settings used are recorded in the output.`;

function readJson(flag: string, file: string | true | undefined): unknown {
  if (typeof file !== 'string') throw new Error(`--${flag} FILE is required\n\n${USAGE}`);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read --${flag} ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`--${flag} ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

const asRefList = (v: unknown, where: string): string[] => {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  throw new TypeError(`${where}: expected a string or an array of strings, got ${Array.isArray(v) ? 'an array with non-strings' : typeof v}`);
};

/** Normalises the two JSON inputs into aligned hyps / refs lists. */
export function loadPairs(h: unknown, r: unknown): { hyps: string[]; refs: string[][]; ids: string[] | null } {
  if (Array.isArray(h)) {
    if (!Array.isArray(r)) throw new TypeError('--refs: expected a JSON array when --hyps is an array');
    const hyps = h.map((x, i) => {
      if (typeof x === 'string') return x;
      if (Array.isArray(x) && x.length === 1 && typeof x[0] === 'string') return x[0] as string;
      throw new TypeError(`--hyps[${i}]: expected a string, got ${typeof x}`);
    });
    return { hyps, refs: r.map((x, i) => asRefList(x, `--refs[${i}]`)), ids: null };
  }
  if (h === null || typeof h !== 'object') throw new TypeError('--hyps: expected a JSON array or object');
  if (r === null || typeof r !== 'object' || Array.isArray(r)) throw new TypeError('--refs: expected a JSON object (id -> references) when --hyps is an object');
  const ids = Object.keys(h);
  const hyps: string[] = [];
  const refs: string[][] = [];
  for (const id of ids) {
    const hv = (h as Record<string, unknown>)[id];
    const one = asRefList(hv, `--hyps["${id}"]`);
    if (one.length !== 1) throw new RangeError(`--hyps["${id}"]: expected one hypothesis, got ${one.length}`);
    if (!Object.prototype.hasOwnProperty.call(r, id)) throw new RangeError(`--refs: no references for id "${id}"`);
    hyps.push(one[0]);
    refs.push(asRefList((r as Record<string, unknown>)[id], `--refs["${id}"]`));
  }
  return { hyps, refs, ids };
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
  async run(argv: string[]): Promise<number> {
    const { flags, positional } = parseFlags(argv);
    const known = new Set(['hyps', 'refs', 'format', 'out', 'metrics', 'reference-mode', 'max-seq-length', 'uncertain']);
    for (const k of Object.keys(flags)) if (!known.has(k)) throw new Error(`unknown option --${k}\n\n${USAGE}`);
    if (positional.length) throw new Error(`unexpected argument '${positional[0]}'\n\n${USAGE}`);
    const format = flags.format === undefined ? 'json' : flags.format;
    if (format !== 'json' && format !== 'md') throw new Error(`--format: expected json or md, got ${String(format)}`);
    const { hyps, refs } = loadPairs(readJson('hyps', flags.hyps), readJson('refs', flags.refs));
    const metrics = typeof flags.metrics === 'string' ? (flags.metrics.split(',').map((s) => s.trim()) as MetricName[]) : undefined;
    const maxSeq = flags['max-seq-length'];
    const result = evaluate(hyps, refs, {
      metrics,
      referenceMode: typeof flags['reference-mode'] === 'string' ? (flags['reference-mode'] as ReferenceMode) : undefined,
      maxSeqLength: typeof maxSeq === 'string' ? Number(maxSeq) : undefined,
      uncertain: typeof flags.uncertain === 'string' ? (flags.uncertain as UncertainPolicy) : undefined,
    });
    const text = format === 'md' ? toMarkdown(result) : JSON.stringify(result, null, 2) + '\n';
    if (typeof flags.out === 'string') fs.writeFileSync(flags.out, text);
    else process.stdout.write(text);
    return 0;
  },
};
