/**
 * Input checks and tokenisation shared by the caption metrics.
 *
 * Every metric takes `hyps: string[]` (one pre-tokenised hypothesis per item) and
 * `refs: string[][]` (one or more pre-tokenised references per item). Mistakes are reported as
 * TypeError / RangeError naming what was expected and what was given.
 */
import { ArgumentError } from '../errors.js';

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (typeof v === 'string') return `a string (${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)})`;
  return `a ${typeof v}`;
}

/** Checks `hyps`/`refs` and returns them typed; `metric` names the caller in messages. */
export function checkCorpus(metric: string, hyps: unknown, refs: unknown): { hyps: string[]; refs: string[][] } {
  if (!Array.isArray(hyps)) throw new ArgumentError(`${metric}: expected hyps to be an array of strings, got ${describe(hyps)}`, 'ERR_INVALID_ARG', metric);
  if (!Array.isArray(refs)) {
    throw new ArgumentError(`${metric}: expected refs to be an array of string arrays, got ${describe(refs)}`, 'ERR_INVALID_ARG', metric);
  }
  if (hyps.length !== refs.length) {
    throw new ArgumentError(
      `${metric}: expected one reference list per hypothesis, got ${hyps.length} hypotheses and ${refs.length} reference lists`,
      'ERR_INVALID_ARG',
      metric,
    );
  }
  if (hyps.length === 0) throw new ArgumentError(`${metric}: expected at least one hypothesis, got an empty list`, 'ERR_INVALID_ARG', metric);
  for (let i = 0; i < hyps.length; i++) {
    if (typeof hyps[i] !== 'string') {
      throw new ArgumentError(`${metric}: expected hyps[${i}] to be a string, got ${describe(hyps[i])}`, 'ERR_INVALID_ARG', metric);
    }
    const r = refs[i];
    if (!Array.isArray(r)) {
      throw new ArgumentError(`${metric}: expected refs[${i}] to be an array of strings, got ${describe(r)}`, 'ERR_INVALID_ARG', metric);
    }
    if (r.length === 0) {
      throw new ArgumentError(`${metric}: expected refs[${i}] to hold at least one reference, got an empty list`, 'ERR_INVALID_ARG', metric);
    }
    for (let j = 0; j < r.length; j++) {
      if (typeof r[j] !== 'string') {
        throw new ArgumentError(`${metric}: expected refs[${i}][${j}] to be a string, got ${describe(r[j])}`, 'ERR_INVALID_ARG', metric);
      }
    }
  }
  return { hyps: hyps as string[], refs: refs as string[][] };
}

/**
 * Python's `str.split()` with no argument: split on runs of whitespace, dropping empty strings.
 * (coco-caption's Bleu and Cider tokenise this way.)
 */
export function splitWhitespace(s: string): string[] {
  const t = s.split(/\s+/);
  let a = 0;
  let b = t.length;
  if (b > 0 && t[0] === '') a = 1;
  if (b > a && t[b - 1] === '') b--;
  return a === 0 && b === t.length ? t : t.slice(a, b);
}

/** Upper bound check for small integer options. */
export function checkPositiveInt(metric: string, name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new ArgumentError(`${metric}: expected ${name} to be a positive integer, got ${String(v)}`, 'ERR_INVALID_ARG', metric);
  }
  return v;
}

/** Counts of the 1..n-grams of `words`, one map per order (n-grams joined with single spaces). */
export function ngramCounts(words: string[], n: number): Map<string, number>[] {
  const out: Map<string, number>[] = [];
  for (let k = 1; k <= n; k++) {
    const m = new Map<string, number>();
    for (let i = 0; i + k <= words.length; i++) {
      const g = k === 1 ? words[i] : words.slice(i, i + k).join(' ');
      m.set(g, (m.get(g) ?? 0) + 1);
    }
    out.push(m);
  }
  return out;
}
