import { describe, expect, it } from 'vitest';
import { bleu, bleuWithStats } from '../../lib/metrics/bleu.js';
import { rougeL, rougeLSentence, lcsLength } from '../../lib/metrics/rouge.js';
import { ciderD, ciderDWithStats } from '../../lib/metrics/cider.js';
import { ArgumentError } from '../../lib/errors.js';

const TINY = 1e-15;
const SMALL = 1e-9;

describe('metrics.bleu (coco-caption Bleu, closest ref length)', () => {
  it('scores an exact match ~1 at every order (the 1e-9 guard keeps it a hair below 1)', () => {
    const s = bleu(['a b c d e'], [['a b c d e']]);
    for (const x of s) {
      expect(x).toBeCloseTo(1, 8);
      expect(x).toBeLessThan(1);
    }
  });

  it('applies the brevity penalty exp(1 - r/c), and the 1e-15/1e-9 guard on orders with no n-gram', () => {
    // c = 3, r = 6: BP = exp(1 - 2); orders 1..3 are exact, order 4 has no 4-gram: (0+1e-15)/(0+1e-9) = 1e-6
    const r = bleuWithStats(['a b c'], [['a b c d e f']]);
    const bp = Math.exp(1 - 1 / ((3 + TINY) / (6 + SMALL)));
    expect(r.brevityPenalty).toBeCloseTo(Math.exp(-1), 9);
    expect(r.scores[0]).toBeCloseTo(bp, 9);
    expect(r.scores[1]).toBeCloseTo(bp, 9);
    expect(r.scores[2]).toBeCloseTo(bp, 9);
    expect(r.scores[3]).toBeCloseTo(Math.pow(1e-6, 0.25) * bp, 9);
    expect(r.scores[3]).toBeCloseTo(0.0116334, 6);
  });

  it('handles a hypothesis with no 4-gram match (precisions 4/5, 2/4, 1/3, ~0)', () => {
    const r = bleuWithStats(['the cat sat on mat'], [['the cat sat in the mat']]);
    expect(r.correct).toEqual([4, 2, 1, 0]);
    expect(r.guess).toEqual([5, 4, 3, 2]);
    const bp = Math.exp(-0.2);
    expect(r.scores[0]).toBeCloseTo(0.8 * bp, 9);
    expect(r.scores[1]).toBeCloseTo(Math.sqrt(0.8 * 0.5) * bp, 9);
    expect(r.scores[2]).toBeCloseTo(Math.cbrt((0.8 * 0.5) / 3) * bp, 9);
    const p4 = TINY / (2 + SMALL);
    expect(r.scores[3]).toBeCloseTo(Math.pow(((0.8 * 0.5) / 3) * p4, 0.25) * bp, 12);
    expect(r.scores[3]).toBeLessThan(1e-4);
  });

  it('clips repeated words (the classic "the the the ..." example: BLEU-1 = 2/7)', () => {
    const s = bleu(['the the the the the the the'], [['the cat is on the mat', 'there is a cat on the mat']]);
    expect(s[0]).toBeCloseTo(2 / 7, 9);
  });

  it('picks the closest reference length, the shorter one on a tie', () => {
    // |5-3| = |7-5|: the shorter (3) is taken, so c > r and there is no penalty
    expect(bleuWithStats(['a b c d e'], [['a b c', 'a b c d e f g']]).referenceLength).toBe(3);
    expect(bleuWithStats(['a b c d e'], [['a b c', 'a b c d e f g']]).brevityPenalty).toBe(1);
    // 6 is closer than 8
    const r = bleuWithStats(['a b c d e'], [['a b c d e f', 'a b c d e f g h']]);
    expect(r.referenceLength).toBe(6);
    expect(r.scores[0]).toBeCloseTo(Math.exp(1 - 6 / 5), 9);
  });

  it('is corpus level: counts are summed before the precisions are formed', () => {
    const r = bleuWithStats(['a b', 'c d e f'], [['a x'], ['c d e f']]);
    expect(r.correct[0]).toBe(5);
    expect(r.guess[0]).toBe(6);
    // c = r = 6, yet (6 + 1e-15) / (6 + 1e-9) < 1, so the scorer applies a penalty of ~1 - 1.7e-10
    const bp = Math.exp(1 - 1 / ((6 + TINY) / (6 + SMALL)));
    expect(r.brevityPenalty).toBe(bp);
    expect(r.scores[0]).toBeCloseTo(((5 + TINY) / (6 + SMALL)) * bp, 14);
  });

  it('scores an empty hypothesis 0 (ratio ~1e-15 makes the penalty vanish)', () => {
    const s = bleu([''], [['a b']]);
    for (const x of s) expect(x).toBe(0);
    // an empty hypothesis in a corpus adds its closest (shortest) reference length to r
    const r = bleuWithStats(['a b c', ''], [['a b c'], ['x y', 'x y z']]);
    expect(r.testLength).toBe(3);
    expect(r.referenceLength).toBe(5);
  });

  it('agrees with a Python transcription of pycocoevalcap on a random corpus', () => {
    const e = VEC.expected.bleu;
    const s = bleu(VEC.hyps, VEC.refs);
    for (let k = 0; k < 4; k++) expect(Math.abs(s[k] - e[k])).toBeLessThan(1e-12);
  });
});

describe('metrics.rougeL (coco-caption Rouge, beta 1.2)', () => {
  it('computes LCS lengths', () => {
    expect(lcsLength([1, 2, 3, 4], [1, 3, 5])).toBe(2);
    expect(lcsLength([], [1])).toBe(0);
    expect(lcsLength([1, 2, 3], [3, 2, 1])).toBe(1);
  });

  it('is 1 for an exact match', () => {
    expect(rougeL(['no acute findings .'], [['no acute findings .']])).toBe(1);
  });

  it('matches a hand-worked case: LCS 2, P = 2/4, R = 2/3', () => {
    const p = 0.5;
    const r = 2 / 3;
    const f = ((1 + 1.44) * p * r) / (r + 1.44 * p);
    expect(rougeLSentence('a b c d', ['a c e'])).toBeCloseTo(f, 12);
    expect(f).toBeCloseTo(0.586538, 6);
  });

  it('takes the max precision and max recall over references separately', () => {
    // ref "a": P = 1/2, R = 1; ref "a b c d": P = 1, R = 1/2 -> Pmax = Rmax = 1
    expect(rougeLSentence('a b', ['a', 'a b c d'])).toBe(1);
  });

  it('is not symmetric (beta weights recall)', () => {
    const ab = rougeLSentence('a b c d', ['a c e']);
    const ba = rougeLSentence('a c e', ['a b c d']);
    expect(ab).not.toBeCloseTo(ba, 6);
  });

  it('scores an empty hypothesis 0 and averages over items', () => {
    expect(rougeL(['', 'a b'], [['a b'], ['a b']])).toBe(0.5);
  });

  it('agrees with a Python transcription of pycocoevalcap on a random corpus', () => {
    expect(Math.abs(rougeL(VEC.hyps, VEC.refs) - VEC.expected.rouge)).toBeLessThan(1e-12);
  });
});

describe('metrics.ciderD (coco-caption CIDEr-D, sigma 6, x10)', () => {
  it('is 0 for a one-item corpus (log N = 0 gives every n-gram weight 0)', () => {
    expect(ciderD(['a b c'], [['a b c']])).toBe(0);
  });

  it('scores exact matches 10 x mean of the 4 orders (a 3-word sentence has no 4-gram: 7.5)', () => {
    expect(ciderD(['a b c', 'd e f'], [['a b c'], ['d e f']])).toBeCloseTo(7.5, 12);
  });

  it('applies the Gaussian length penalty on the scorer\'s length (bigram count)', () => {
    // all weights are log 2 (every n-gram has df <= 1 and N = 2)
    const r = ciderDWithStats(['a b', 'd e'], [['a b c'], ['d e']]);
    const cos1 = 2 / Math.sqrt(6);
    const cos2 = 1 / Math.sqrt(2);
    const pen = Math.exp(-1 / 72); // bigram counts 1 vs 2, sigma 6
    expect(r.perItem[0]).toBeCloseTo(((cos1 + cos2) / 4) * pen * 10, 12);
    expect(r.perItem[1]).toBeCloseTo(5, 12);
    expect(r.score).toBeCloseTo((r.perItem[0] + 5) / 2, 12);
  });

  it('clips hypothesis n-gram weights at the reference weight', () => {
    const r = ciderDWithStats(['a a a a', 'c d'], [['a b'], ['c d']]);
    const clipped = 1 / (4 * Math.SQRT2); // min(4L, L) L / (4L * sqrt(2) L)
    const pen = Math.exp(-4 / 72); // bigram counts 3 vs 1
    expect(r.perItem[0]).toBeCloseTo((clipped / 4) * pen * 10, 12);
  });

  it('averages over multiple references', () => {
    const one = ciderDWithStats(['a b', 'x y'], [['a b'], ['x y']]).perItem[0];
    const two = ciderDWithStats(['a b', 'x y'], [['a b', 'p q'], ['x y']]).perItem[0];
    expect(one).toBeCloseTo(5, 12);
    // the second reference shares nothing: it adds 0 and halves the mean (df of a/b unchanged)
    expect(two).toBeCloseTo(2.5, 12);
  });

  it('scores an empty hypothesis 0 (zero norm is guarded, not NaN)', () => {
    const r = ciderDWithStats(['', 'a b'], [['a b'], ['a b']]);
    expect(r.perItem[0]).toBe(0);
    expect(Number.isNaN(r.score)).toBe(false);
  });

  it('agrees with a Python transcription of pycocoevalcap on a random corpus', () => {
    expect(Math.abs(ciderD(VEC.hyps, VEC.refs) - VEC.expected.cider)).toBeLessThan(1e-12);
  });
});

describe('input checks', () => {
  it('rejects mismatched lengths, non-strings and empty reference lists with clear errors', () => {
    expect(() => bleu(['a'], [['a'], ['b']])).toThrow(ArgumentError);
    expect(() => bleu(['a'], [['a'], ['b']])).toThrow(/1 hypotheses and 2 reference lists/);
    expect(() => rougeL([1 as unknown as string], [['a']])).toThrow(ArgumentError);
    expect(() => rougeL([1 as unknown as string], [['a']])).toThrow(/hyps\[0\] to be a string, got a number/);
    expect(() => ciderD(['a'], [[]])).toThrow(/refs\[0\] to hold at least one reference/);
    expect(() => ciderD(['a'], ['a' as unknown as string[]])).toThrow(ArgumentError);
    expect(() => bleu([], [])).toThrow(ArgumentError);
    expect(() => bleu('a' as unknown as string[], [['a']])).toThrow(/hyps to be an array/);
  });
});

// A random 4-item corpus (vocabulary of 20 words, 1-4 references each) and the values that a
// Python 3 transcription of pycocoevalcap's bleu_scorer.py / rouge.py / cider_scorer.py gives.
const VEC: { hyps: string[]; refs: string[][]; expected: { bleu: number[]; rouge: number; cider: number } } =
{
  "hyps": [
    "there or pneumothorax normal a a there in normal heart in . clear clear heart .",
    "clear the or is normal right are are heart left are effusion right there there lungs in",
    "left heart pneumothorax or are the is normal or",
    "right is pleural pneumothorax size clear is a size heart is a normal the there size small in"
  ],
  "refs": [
    [
      "normal the size there clear effusion pleural is a are effusion effusion . is pleural pleural there are the",
      "there there in normal or left are clear right or clear or no no pneumothorax pneumothorax size size the normal",
      "clear . the is right a pleural right there pneumothorax a right effusion or is there lungs or"
    ],
    [
      "the a",
      "small or size normal heart pleural pleural or heart",
      "size heart normal is size a"
    ],
    [
      "in clear in there the size . lungs are are heart the small heart",
      "left a normal heart in left there lungs right . heart",
      "effusion clear clear clear effusion no the pleural",
      "there small lungs clear is no . clear a clear are a right clear lungs are a pleural"
    ],
    [
      "in are in lungs pneumothorax clear pneumothorax or",
      "left there . pneumothorax heart pleural size are the right no there a clear",
      "pleural the left normal the lungs lungs is lungs clear pleural there no the a",
      "pleural"
    ]
  ],
  "expected": {
    "bleu": [
      0.5833333333236111,
      0.17677669529358542,
      0.08438829764588343,
      1.0577946353829204e-05
    ],
    "rouge": 0.3048772179022552,
    "cider": 0.48954979270039156
  }
};
