/**
 * CIDEr-D exactly as coco-caption's scorer (`pycocoevalcap/cider/cider_scorer.py`, which is the
 * CIDEr-D variant: clipping and a Gaussian length penalty) computes it:
 *
 * - tokens: whitespace split (Python `str.split()`); n-grams of order 1..4;
 * - document frequency df(g): the number of items whose reference set contains g, counted over
 *   the references given to this call ("corpus" mode);
 * - tf-idf weight of g in a sentence: count(g) * (log(N) - log(max(1, df(g)))), N = number of items;
 * - per order n and per reference: sum over hypothesis n-grams of
 *   min(w_hyp(g), w_ref(g)) * w_ref(g) (the clipping), divided by |w_hyp| |w_ref| when both
 *   norms are non-zero, times the length penalty exp(-(l_hyp - l_ref)^2 / (2 sigma^2)), sigma = 6;
 * - the "length" in that penalty is what the scorer computes: the number of bigrams of the
 *   sentence (max(0, words - 1)), kept as is so that numbers agree;
 * - item score: mean over the 4 orders, summed over references and divided by their number,
 *   times 10; corpus score: mean over items.
 */
import { ArgumentError } from '../errors.js';
import { checkCorpus, checkPositiveInt, ngramCounts, splitWhitespace } from './inputs.js';

export interface CiderOptions {
  /** Highest n-gram order (default 4). */
  n?: number;
  /** Standard deviation of the length penalty (default 6). */
  sigma?: number;
}

export interface CiderResult {
  score: number;
  perItem: number[];
}

type Counts = Map<string, number>[]; // one map per order

function precook(s: string, n: number): Counts {
  return ngramCounts(splitWhitespace(s), n);
}

interface Vec {
  w: Map<string, number>[];
  norm: number[];
  length: number;
}

export function ciderDWithStats(hyps: string[], refs: string[][], options: CiderOptions = {}): CiderResult {
  const c = checkCorpus('metrics.ciderD', hyps, refs);
  const n = checkPositiveInt('metrics.ciderD', 'options.n', options.n ?? 4);
  const sigma = options.sigma ?? 6.0;
  if (typeof sigma !== 'number' || !(sigma > 0)) {
    throw new ArgumentError(`metrics.ciderD: expected options.sigma to be a positive number, got ${String(sigma)}`, 'ERR_INVALID_ARG', 'metrics.ciderD');
  }

  const crefs = c.refs.map((rs) => rs.map((r) => precook(r, n)));
  const ctest = c.hyps.map((h) => precook(h, n));

  // document frequency over the reference sets
  const df = new Map<string, number>();
  for (const rs of crefs) {
    const seen = new Set<string>();
    for (const r of rs) for (const m of r) for (const g of m.keys()) seen.add(g);
    for (const g of seen) df.set(g, (df.get(g) ?? 0) + 1);
  }
  const refLen = Math.log(crefs.length);

  const counts2vec = (cnts: Counts): Vec => {
    const w: Map<string, number>[] = [];
    const norm: number[] = [];
    let length = 0;
    for (let k = 0; k < n; k++) {
      const mk = new Map<string, number>();
      let nk = 0;
      for (const [g, tf] of cnts[k]) {
        const d = Math.log(Math.max(1.0, df.get(g) ?? 0));
        const v = tf * (refLen - d);
        mk.set(g, v);
        nk += v * v;
        if (k === 1) length += tf; // the scorer's "length": bigram count
      }
      w.push(mk);
      norm.push(Math.sqrt(nk));
    }
    return { w, norm, length };
  };

  const twoSigma2 = 2 * sigma ** 2;
  const perItem: number[] = [];
  for (let item = 0; item < ctest.length; item++) {
    const h = counts2vec(ctest[item]);
    const score = new Array<number>(n).fill(0);
    for (const ref of crefs[item]) {
      const r = counts2vec(ref);
      const delta = h.length - r.length;
      const penalty = Math.pow(Math.E, -(delta * delta) / twoSigma2);
      for (let k = 0; k < n; k++) {
        let val = 0;
        const rk = r.w[k];
        for (const [g, vh] of h.w[k]) {
          const vr = rk.get(g) ?? 0;
          val += Math.min(vh, vr) * vr;
        }
        if (h.norm[k] !== 0 && r.norm[k] !== 0) val /= h.norm[k] * r.norm[k];
        score[k] += val * penalty;
      }
    }
    let mean = 0;
    for (const s of score) mean += s;
    mean /= n;
    perItem.push((mean / crefs[item].length) * 10.0);
  }
  let sum = 0;
  for (const s of perItem) sum += s;
  return { score: sum / perItem.length, perItem };
}

/** Corpus CIDEr-D (x10 scale, sigma 6, df from the given references), as coco-caption's Cider. */
export function ciderD(hyps: string[], refs: string[][], options: CiderOptions = {}): number {
  return ciderDWithStats(hyps, refs, options).score;
}
