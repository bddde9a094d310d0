/**
 * `metrics.evaluate`: every report-generation metric in one JSON-ready object that records each
 * setting that changes a number (tokenisation, reference mode, uncertain-label policy, METEOR
 * modules, where the clinical labels came from).
 *
 * Input policy (what is refused, what is scored and reported in `result.inputs`):
 * - refused (ArgumentError naming the item): no items, unequal counts, non-strings, an item whose
 *   references are all empty (there is nothing to score against);
 * - scored and reported: an empty (or whitespace-only) hypothesis says nothing: no n-gram matches
 *   and no findings; its clinical labels are all 'absent' (not the labeler's 'No Finding', which
 *   would reward saying nothing on a normal study). Text holding U+FFFD (bytes that were not valid
 *   UTF-8 before they reached here) is scored as given. Both are counted in `result.inputs` with
 *   the first item numbers, and `inputs.notes` says so in words;
 * - `radkit metrics` also refuses files that are not valid UTF-8 and, with id-keyed inputs, ids on
 *   one side only (unless `--partial`, which scores the ids of --hyps and records the others).
 */
import { ArgumentError } from '../errors.js';
import type { ReportLabels } from '../text/chexpert.js';
import { emptyLabels, label as ruleLabel } from '../text/labeler.js';
import { bleuWithStats } from './bleu.js';
import { ciderDWithStats } from './cider.js';
import { clinical, type ClinicalResult, type UncertainPolicy } from './clinical.js';
import { checkCorpus, splitWhitespace } from './inputs.js';
import { meteorWithStats, type MeteorOptions, type MeteorSettings } from './meteor.js';
import { retrieval, type RetrievalResult, type SimilarityMatrix } from './retrieval.js';
import { rougeLWithStats } from './rouge.js';

export type MetricName = 'bleu' | 'meteor' | 'rougeL' | 'ciderD' | 'clinical';
export type ReferenceMode = 'full' | 'r2gen-truncated';

export interface EvaluateOptions {
  /**
   * 'full' scores against the references as given (default). 'r2gen-truncated' keeps the first
   * `maxSeqLength - 1` tokens of every reference, which is what R2Gen-style code scores against
   * (it decodes the `[:max_seq_length]`-truncated ids of `[bos] + ids + [eos]`).
   */
  referenceMode?: ReferenceMode;
  /** R2Gen `max_seq_length` for 'r2gen-truncated' (default 60, IU X-Ray; MIMIC-CXR uses 100). */
  maxSeqLength?: number;
  /** Which metrics to compute (default all five). */
  metrics?: MetricName[];
  /** Uncertain-label policy of the clinical scores (default 'negative'). */
  uncertain?: UncertainPolicy;
  /** Labels of the hypotheses; labelled with `labeler` when absent. */
  hypLabels?: ReportLabels[];
  /** Labels of the references; the first reference of each item is labelled when absent. */
  refLabels?: ReportLabels[];
  /** Report -> CheXpert labels (default: radkit's rule labeler, `text.label`). */
  labeler?: (report: string) => ReportLabels;
  /** Optional [images x reports] similarity matrix for retrieval R@K. */
  similarity?: SimilarityMatrix;
  retrievalK?: number[];
  meteor?: MeteorOptions;
}

/** What the inputs held that changes how numbers read (see the input policy above). */
export interface InputReport {
  /** Hypotheses that are empty or whitespace only (scored as saying nothing). */
  emptyHypotheses: number;
  /** Items whose hypothesis or references hold U+FFFD (text that was not valid UTF-8 upstream). */
  replacementCharacters: number;
  /** The first item numbers (0-based) of each, at most 10. */
  emptyHypothesisItems: number[];
  replacementCharacterItems: number[];
  /** The same in words; empty when the inputs are clean. */
  notes: string[];
}

export interface EvaluateResult {
  n: number;
  inputs: InputReport;
  settings: {
    tokenisation: string;
    referenceMode: ReferenceMode;
    maxSeqLength: number | null;
    referencesPerItem: { min: number; max: number };
    scorers: Record<string, string>;
    meteor: MeteorSettings | null;
    clinical: { uncertain: UncertainPolicy; hypLabels: string; refLabels: string } | null;
  };
  bleu?: { bleu1: number; bleu2: number; bleu3: number; bleu4: number; testLength: number; referenceLength: number; brevityPenalty: number };
  meteor?: number;
  rougeL?: number;
  ciderD?: number;
  clinical?: ClinicalResult;
  retrieval?: RetrievalResult;
  seconds: Record<string, number>;
}

const ALL: MetricName[] = ['bleu', 'meteor', 'rougeL', 'ciderD', 'clinical'];

/** First `maxSeqLength - 1` whitespace tokens, re-joined with single spaces. */
export function r2genTruncate(report: string, maxSeqLength: number): string {
  return splitWhitespace(report).slice(0, Math.max(0, maxSeqLength - 1)).join(' ');
}

/** Computes the selected metrics; see `EvaluateOptions` for the settings recorded. */
export function evaluate(hyps: string[], refs: string[][], options: EvaluateOptions = {}): EvaluateResult {
  const c = checkCorpus('metrics.evaluate', hyps, refs);
  const metrics = options.metrics ?? ALL;
  for (const m of metrics) {
    if (!ALL.includes(m)) throw new ArgumentError(`metrics.evaluate: expected metrics among ${ALL.join(', ')}, got ${JSON.stringify(m)}`, 'ERR_INVALID_ARG', 'metrics.evaluate');
  }
  const referenceMode = options.referenceMode ?? 'full';
  if (referenceMode !== 'full' && referenceMode !== 'r2gen-truncated') {
    throw new ArgumentError(`metrics.evaluate: expected referenceMode 'full' or 'r2gen-truncated', got ${JSON.stringify(referenceMode)}`, 'ERR_INVALID_ARG', 'metrics.evaluate');
  }
  const maxSeqLength = options.maxSeqLength ?? 60;
  if (!Number.isInteger(maxSeqLength) || maxSeqLength < 2) {
    throw new ArgumentError(`metrics.evaluate: expected maxSeqLength to be an integer >= 2, got ${String(options.maxSeqLength)}`, 'ERR_INVALID_ARG', 'metrics.evaluate');
  }
  c.refs.forEach((rs, i) => {
    if (rs.every((r) => r.trim() === '')) throw new ArgumentError(`metrics.evaluate: refs[${i}] holds only empty references; there is nothing to score item ${i} against`, 'ERR_INVALID_ARG', 'metrics.evaluate');
  });
  const empty = c.hyps.flatMap((h, i) => (h.trim() === '' ? [i] : []));
  const replaced = c.hyps.flatMap((h, i) => (h.includes('\ufffd') || c.refs[i].some((r) => r.includes('\ufffd')) ? [i] : []));
  const inputs: InputReport = { emptyHypotheses: empty.length, replacementCharacters: replaced.length, emptyHypothesisItems: empty.slice(0, 10), replacementCharacterItems: replaced.slice(0, 10), notes: [] };
  if (empty.length)
    inputs.notes.push(`${empty.length} of ${c.hyps.length} hypotheses are empty (items ${empty.slice(0, 10).join(', ')}${empty.length > 10 ? ', ...' : ''}): scored as saying nothing (no n-grams, all clinical labels absent)`);
  if (replaced.length)
    inputs.notes.push(`${replaced.length} items hold U+FFFD, text that was not valid UTF-8 before it reached the metrics (items ${replaced.slice(0, 10).join(', ')}${replaced.length > 10 ? ', ...' : ''}): scored as given`);
  const usedRefs = referenceMode === 'full' ? c.refs : c.refs.map((rs) => rs.map((r) => r2genTruncate(r, maxSeqLength)));
  const uncertain = options.uncertain ?? 'negative';
  const seconds: Record<string, number> = {};
  const timed = <T>(name: string, f: () => T): T => {
    const t0 = performance.now();
    const v = f();
    seconds[name] = (performance.now() - t0) / 1000;
    return v;
  };
  const lens = usedRefs.map((r) => r.length);

  const out: EvaluateResult = {
    n: c.hyps.length,
    inputs,
    settings: {
      tokenisation:
        'pre-tokenised input; BLEU, CIDEr-D and METEOR split on whitespace, ROUGE-L on single spaces (as coco-caption); ' +
        'METEOR lower-cases; no other normalisation',
      referenceMode,
      maxSeqLength: referenceMode === 'r2gen-truncated' ? maxSeqLength : null,
      referencesPerItem: { min: Math.min(...lens), max: Math.max(...lens) },
      scorers: {
        bleu: "coco-caption Bleu(4), corpus level, option 'closest'",
        rougeL: 'coco-caption Rouge, beta 1.2, mean over items',
        ciderD: 'coco-caption Cider (CIDEr-D), sigma 6, df from the references given, x10',
        meteor: 'METEOR 1.5 algorithm, exact + stem + synonym, no paraphrase table',
      },
      meteor: null,
      clinical: null,
    },
    seconds,
  };

  if (metrics.includes('bleu')) {
    const b = timed('bleu', () => bleuWithStats(c.hyps, usedRefs));
    out.bleu = {
      bleu1: b.scores[0],
      bleu2: b.scores[1],
      bleu3: b.scores[2],
      bleu4: b.scores[3],
      testLength: b.testLength,
      referenceLength: b.referenceLength,
      brevityPenalty: b.brevityPenalty,
    };
  }
  if (metrics.includes('meteor')) {
    const m = timed('meteor', () => meteorWithStats(c.hyps, usedRefs, options.meteor));
    out.meteor = m.score;
    out.settings.meteor = m.settings;
  }
  if (metrics.includes('rougeL')) out.rougeL = timed('rougeL', () => rougeLWithStats(c.hyps, usedRefs).score);
  if (metrics.includes('ciderD')) out.ciderD = timed('ciderD', () => ciderDWithStats(c.hyps, usedRefs).score);
  if (metrics.includes('clinical')) {
    const labeler = options.labeler ?? ruleLabel;
    if (typeof labeler !== 'function') throw new ArgumentError('metrics.evaluate: expected options.labeler to be a function', 'ERR_INVALID_ARG', 'metrics.evaluate');
    // An empty hypothesis reports nothing: every observation absent (the labeler would say 'No Finding').
    const hypLabels = options.hypLabels ?? c.hyps.map((h) => (h.trim() === '' ? emptyLabels() : labeler(h)));
    const refLabels = options.refLabels ?? usedRefs.map((rs) => labeler(rs[0]));
    out.clinical = timed('clinical', () => clinical(hypLabels, refLabels, { uncertain }));
    const source = options.labeler ? 'user labeler' : 'radkit rule labeler (text.label)';
    out.settings.clinical = {
      uncertain,
      hypLabels: options.hypLabels ? 'given' : `${source} on the hypotheses (empty ones: all absent)`,
      refLabels: options.refLabels ? 'given' : `${source} on the first reference of each item, as scored (reference mode applied)`,
    };
  }
  if (options.similarity !== undefined) {
    out.retrieval = timed('retrieval', () => retrieval(options.similarity as SimilarityMatrix, { k: options.retrievalK }));
  }
  return out;
}
