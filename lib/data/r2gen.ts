/**
 * Readers for R2Gen `annotation.json` files, IU X-Ray and MIMIC-CXR styles.
 *
 * - IU X-Ray entry: `{ id, report, image_path: ["CXR1_1_IM-0001/0.png", "CXR1_1_IM-0001/1.png"], split }`
 * - MIMIC-CXR entry: `{ id, study_id, subject_id, report, image_path: ["p10/p10000032/s50414267/x.jpg"], split }`
 * - either may carry `labels` (14 CheXpert observations -> positive|negative|uncertain|absent), or a
 *   separate labels file keyed by id can be given (`labels.json` of SynthCXR has that form).
 *
 * Every problem (malformed JSON, non-UTF-8 bytes, missing fields, empty reports, bad labels,
 * missing images when checked) is reported with the file and the entry (`train[12] (id "x")`).
 * With `onError: 'throw'` (default) the first one throws a `DataError`; with `'skip'` the entry is
 * left out and the problem is recorded in `dataset.issues`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ArgumentError, DataError, type DataIssue } from '../errors.js';
import { CHEXPERT_OBSERVATIONS, type LabelValue, type Observation, type ReportLabels } from '../text/chexpert.js';

export type SplitName = 'train' | 'val' | 'test';
export const SPLITS: readonly SplitName[] = ['train', 'val', 'test'];
export type R2GenStyle = 'iu' | 'mimic';
export type OnError = 'throw' | 'skip';

// DataError lives in ../errors.ts with the other RadkitError classes; re-exported here for existing imports.
export { DataError, type DataIssue };

export interface R2GenEntry {
  id: string;
  split: SplitName;
  report: string;
  /** Absolute image paths, in annotation order (IU: frontal then lateral). */
  imagePaths: string[];
  /** Image paths as written in the annotation (relative to the image directory). */
  imagePathsRaw: string[];
  labels?: ReportLabels;
  studyId?: string;
  subjectId?: string;
}

export interface R2GenDataset {
  style: R2GenStyle;
  annotationPath: string;
  imageDir: string;
  splits: Record<SplitName, R2GenEntry[]>;
  /** Problems met with `onError: 'skip'` (entries left out). */
  issues: DataIssue[];
}

export interface ReadR2GenOptions {
  /** Directory the `image_path`s are relative to. Default: `<annotation dir>/images`, or the annotation dir if that does not exist. */
  imageDir?: string;
  /** 'iu', 'mimic' or 'auto' (default: MIMIC when entries have study_id/subject_id). */
  style?: R2GenStyle | 'auto';
  /** Labels file (JSON object keyed by id) or an object of that form. Entry-level `labels` win. */
  labels?: string | Record<string, unknown>;
  /** Check that every image file exists (default false: the loader reports missing images when it reads them). */
  checkImages?: boolean;
  onError?: OnError;
  /** Splits to read (default all three; a missing split is an empty list). */
  splits?: SplitName[];
}

const LABEL_VALUES = new Set<LabelValue>(['positive', 'negative', 'uncertain', 'absent']);

/** Reads a text file as strict UTF-8 (BOM stripped); non-UTF-8 bytes are an error naming the byte offset. */
export function readUtf8(file: string): string {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new DataError({ file, message: err.code === 'ENOENT' ? 'file not found' : `cannot read: ${err.message}` }, 'readUtf8');
  }
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  } catch {
    const off = firstBadUtf8(buf);
    throw new DataError({ file, message: `not valid UTF-8 text (first bad byte at offset ${off})` }, 'readUtf8');
  }
}

/** Offset of the first byte that does not start a valid UTF-8 sequence (-1 if all valid). */
export function firstBadUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    let n = 0;
    let min = 0;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      min = 0x10000;
    } else return i;
    if (i + n >= b.length) return i;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || (d & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return -1;
}

export function readJson(file: string): unknown {
  const text = readUtf8(file);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DataError({ file, message: `malformed JSON: ${(e as Error).message}` }, 'readJson');
  }
}

/** Validates a labels object; returns the labels with missing observations as 'absent', or an error message. */
export function parseLabels(x: unknown): ReportLabels | string {
  if (!x || typeof x !== 'object' || Array.isArray(x)) return 'labels must be an object of observation -> value';
  const out = {} as ReportLabels;
  const obj = x as Record<string, unknown>;
  for (const k of Object.keys(obj))
    if (!(CHEXPERT_OBSERVATIONS as readonly string[]).includes(k)) return `labels: unknown observation '${k}'`;
  for (const o of CHEXPERT_OBSERVATIONS) {
    const v = obj[o];
    if (v === undefined || v === null) out[o] = 'absent';
    else if (typeof v === 'string' && LABEL_VALUES.has(v as LabelValue)) out[o] = v as LabelValue;
    else return `labels: '${o}' has invalid value ${JSON.stringify(v)} (expected positive|negative|uncertain|absent)`;
  }
  return out;
}

/** Reads an R2Gen annotation.json (IU or MIMIC style). */
export function readR2Gen(annotationPath: string, opts: ReadR2GenOptions = {}): R2GenDataset {
  const file = resolve(annotationPath);
  const onError = opts.onError ?? 'throw';
  if (onError !== 'throw' && onError !== 'skip') throw new ArgumentError(`readR2Gen: onError must be 'throw' or 'skip', got '${String(onError)}'`, 'ERR_INVALID_ARG', 'readR2Gen');
  const issues: DataIssue[] = [];
  const problem = (issue: DataIssue) => {
    if (onError === 'throw') throw new DataError(issue, 'readR2Gen');
    issues.push(issue);
  };
  const root = readJson(file);
  if (!root || typeof root !== 'object' || Array.isArray(root))
    throw new DataError({ file, message: 'expected an object { "train": [...], "val": [...], "test": [...] }' }, 'readR2Gen');
  const ann = root as Record<string, unknown>;
  const wanted = opts.splits ?? [...SPLITS];
  if (!SPLITS.some((s) => s in ann)) throw new DataError({ file, message: 'no "train", "val" or "test" array' }, 'readR2Gen');

  let style: R2GenStyle;
  if (opts.style === 'iu' || opts.style === 'mimic') style = opts.style;
  else {
    const first = SPLITS.map((s) => ann[s]).find((a) => Array.isArray(a) && a.length > 0) as Array<Record<string, unknown>> | undefined;
    style = first && first[0] && typeof first[0] === 'object' && ('study_id' in first[0] || 'subject_id' in first[0]) ? 'mimic' : 'iu';
  }
  let imageDir: string;
  if (opts.imageDir) imageDir = resolve(opts.imageDir);
  else imageDir = existsSync(join(dirname(file), 'images')) ? join(dirname(file), 'images') : dirname(file);

  // external labels
  let extLabels: Record<string, unknown> | undefined;
  let labelsFile = '<labels object>';
  if (typeof opts.labels === 'string') {
    labelsFile = resolve(opts.labels);
    const l = readJson(labelsFile);
    if (!l || typeof l !== 'object' || Array.isArray(l)) throw new DataError({ file: labelsFile, message: 'expected an object keyed by study id' }, 'readR2Gen');
    extLabels = l as Record<string, unknown>;
  } else if (opts.labels) extLabels = opts.labels;

  const splits: Record<SplitName, R2GenEntry[]> = { train: [], val: [], test: [] };
  const seen = new Set<string>();
  for (const split of wanted) {
    const arr = ann[split];
    if (arr === undefined) continue;
    if (!Array.isArray(arr)) {
      problem({ file, entry: split, message: `"${split}" must be an array` });
      continue;
    }
    arr.forEach((raw: unknown, i: number) => {
      let where = `${split}[${i}]`;
      if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return problem({ file, entry: where, message: 'entry is not an object' });
      const e = raw as Record<string, unknown>;
      if (typeof e.id !== 'string' && typeof e.id !== 'number') return problem({ file, entry: where, message: 'missing "id"' });
      const id = String(e.id);
      where = `${split}[${i}] (id "${id}")`;
      if (seen.has(id)) return problem({ file, entry: where, message: 'duplicate id' });
      if (typeof e.report !== 'string') return problem({ file, entry: where, message: 'missing "report" (string)' });
      if (e.report.trim() === '') return problem({ file, entry: where, message: 'empty report' });
      if (e.report.includes('\ufffd')) return problem({ file, entry: where, message: 'report contains U+FFFD (text was not valid UTF-8 before conversion)' });
      const ip = e.image_path;
      if (!Array.isArray(ip) || ip.length === 0) return problem({ file, entry: where, message: 'missing "image_path" (non-empty array of strings)' });
      if (!ip.every((p) => typeof p === 'string' && p.length > 0)) return problem({ file, entry: where, message: '"image_path" must contain non-empty strings' });
      const imagePaths = (ip as string[]).map((p) => (isAbsolute(p) ? p : join(imageDir, p)));
      if (opts.checkImages) {
        const missing = imagePaths.find((p) => !existsSync(p));
        if (missing) return problem({ file, entry: where, message: `image not found: ${missing}` });
      }
      const entry: R2GenEntry = { id, split, report: e.report, imagePaths, imagePathsRaw: ip as string[] };
      if (style === 'mimic') {
        if (e.study_id !== undefined) entry.studyId = String(e.study_id);
        if (e.subject_id !== undefined) entry.subjectId = String(e.subject_id);
      }
      const rawLabels = e.labels !== undefined ? e.labels : extLabels?.[id];
      if (rawLabels !== undefined) {
        const l = parseLabels(rawLabels);
        if (typeof l === 'string') return problem({ file: e.labels !== undefined ? file : labelsFile, entry: where, message: l });
        entry.labels = l;
      }
      seen.add(id);
      splits[split].push(entry);
    });
  }
  return { style, annotationPath: file, imageDir, splits, issues };
}

/** Unpaired (MedRAT-style) lists: images with labels, reports with labels, no pairing. */
export interface UnpairedDataset {
  /** `imagePathsRaw`: the paths as images.json writes them (relative to `imageDir`). */
  images: Array<{ id: string; imagePaths: string[]; imagePathsRaw?: string[]; labels: ReportLabels }>;
  reports: Array<{ id: string; report: string; labels: ReportLabels }>;
  issues: DataIssue[];
  /** Where it was read from (set by readUnpaired). */
  imagesFile?: string;
  reportsFile?: string;
  imageDir?: string;
}

/** Reads `unpaired/images.json` + `unpaired/reports.json` as written by `synthesize({ unpaired: true })`. */
export function readUnpaired(dir: string, opts: { imageDir?: string; onError?: OnError } = {}): UnpairedDataset {
  const onError = opts.onError ?? 'throw';
  if (onError !== 'throw' && onError !== 'skip') throw new ArgumentError(`readUnpaired: onError must be 'throw' or 'skip', got '${String(onError)}'`, 'ERR_INVALID_ARG', 'readUnpaired');
  const issues: DataIssue[] = [];
  const problem = (issue: DataIssue) => {
    if (onError === 'throw') throw new DataError(issue, 'readUnpaired');
    issues.push(issue);
  };
  const imageDir = resolve(opts.imageDir ?? join(dir, '..', 'images'));
  const imgFile = resolve(join(dir, 'images.json'));
  const repFile = resolve(join(dir, 'reports.json'));
  const imgs = readJson(imgFile);
  const reps = readJson(repFile);
  if (!Array.isArray(imgs)) throw new DataError({ file: imgFile, message: 'expected an array' }, 'readUnpaired');
  if (!Array.isArray(reps)) throw new DataError({ file: repFile, message: 'expected an array' }, 'readUnpaired');
  const out: UnpairedDataset = { images: [], reports: [], issues, imagesFile: imgFile, reportsFile: repFile, imageDir };
  imgs.forEach((x: Record<string, unknown>, i) => {
    const where = `[${i}]`;
    if (!x || typeof x !== 'object') return problem({ file: imgFile, entry: where, message: 'entry is not an object' });
    if (typeof x.id !== 'string') return problem({ file: imgFile, entry: where, message: 'missing "id"' });
    if (!Array.isArray(x.image_path) || x.image_path.length === 0 || !x.image_path.every((p) => typeof p === 'string' && p.length > 0))
      return problem({ file: imgFile, entry: `${where} (id "${x.id}")`, message: 'missing "image_path"' });
    const l = parseLabels(x.labels);
    if (typeof l === 'string') return problem({ file: imgFile, entry: `${where} (id "${x.id}")`, message: l });
    out.images.push({ id: x.id, imagePaths: (x.image_path as string[]).map((p) => (isAbsolute(p) ? p : join(imageDir, p))), imagePathsRaw: x.image_path as string[], labels: l });
  });
  reps.forEach((x: Record<string, unknown>, i) => {
    const where = `[${i}]`;
    if (!x || typeof x !== 'object') return problem({ file: repFile, entry: where, message: 'entry is not an object' });
    if (typeof x.id !== 'string') return problem({ file: repFile, entry: where, message: 'missing "id"' });
    if (typeof x.report !== 'string' || x.report.trim() === '') return problem({ file: repFile, entry: `${where} (id "${x.id}")`, message: 'missing or empty "report"' });
    const l = parseLabels(x.labels);
    if (typeof l === 'string') return problem({ file: repFile, entry: `${where} (id "${x.id}")`, message: l });
    out.reports.push({ id: x.id, report: x.report, labels: l });
  });
  return out;
}

export type { Observation };
