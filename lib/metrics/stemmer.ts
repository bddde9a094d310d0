/**
 * The Snowball English stemmer ("Porter2"), the stemmer METEOR 1.5 uses for its stem module
 * (`org.tartarus.snowball.ext.englishStemmer`). This follows the Snowball `english.sbl` program of
 * that era: exceptional forms, R1 prefixes gener/commun/arsen, steps 0, 1a, 1b, 1c, 2, 3, 4, 5.
 * Input is expected lower case.
 */

const EXCEPTION1: Record<string, string> = {
  skis: 'ski',
  skies: 'sky',
  dying: 'die',
  lying: 'lie',
  tying: 'tie',
  idly: 'idl',
  gently: 'gentl',
  ugly: 'ugli',
  early: 'earli',
  only: 'onli',
  singly: 'singl',
  sky: 'sky',
  news: 'news',
  howe: 'howe',
  atlas: 'atlas',
  cosmos: 'cosmos',
  bias: 'bias',
  andes: 'andes',
};

const EXCEPTION2 = new Set(['inning', 'outing', 'canning', 'herring', 'earring', 'proceed', 'exceed', 'succeed']);

const isV = (c: string | undefined): boolean =>
  c === 'a' || c === 'e' || c === 'i' || c === 'o' || c === 'u' || c === 'y';

/** Index just past the first non-vowel that follows a vowel, searching from `from`. */
function regionAfter(w: string, from: number): number {
  let i = from;
  while (i < w.length && !isV(w[i])) i++;
  if (i >= w.length) return w.length;
  while (i < w.length && isV(w[i])) i++;
  if (i >= w.length) return w.length;
  return i + 1;
}

/** Snowball `shortv` on the prefix w[0..end): a short syllable ends there. */
function shortV(w: string, end: number): boolean {
  const c3 = w[end - 1];
  const c2 = w[end - 2];
  // non-v_WXY v non-v
  if (end >= 3) {
    const c1 = w[end - 3];
    if (!isV(c3) && c3 !== 'w' && c3 !== 'x' && c3 !== 'Y' && isV(c2) && !isV(c1)) return true;
  }
  // non-v v atlimit
  return end === 2 && !isV(c3) && isV(c2);
}

function endsWith(w: string, s: string): boolean {
  return w.length >= s.length && w.endsWith(s);
}

/** Longest suffix of `w` among `list` (which must be sorted longest first), or ''. */
function longestSuffix(w: string, list: readonly string[]): string {
  for (const s of list) if (endsWith(w, s)) return s;
  return '';
}

const STEP2: Array<[string, string]> = [
  ['ization', 'ize'],
  ['ational', 'ate'],
  ['fulness', 'ful'],
  ['ousness', 'ous'],
  ['iveness', 'ive'],
  ['tional', 'tion'],
  ['biliti', 'ble'],
  ['lessli', 'less'],
  ['entli', 'ent'],
  ['ation', 'ate'],
  ['alism', 'al'],
  ['aliti', 'al'],
  ['ousli', 'ous'],
  ['iviti', 'ive'],
  ['fulli', 'ful'],
  ['enci', 'ence'],
  ['anci', 'ance'],
  ['abli', 'able'],
  ['izer', 'ize'],
  ['ator', 'ate'],
  ['alli', 'al'],
  ['bli', 'ble'],
  ['ogi', 'og'],
  ['li', ''],
];
const STEP2_KEYS = STEP2.map((x) => x[0]);

const STEP3: Array<[string, string]> = [
  ['ational', 'ate'],
  ['tional', 'tion'],
  ['alize', 'al'],
  ['icate', 'ic'],
  ['iciti', 'ic'],
  ['ative', ''],
  ['ical', 'ic'],
  ['ness', ''],
  ['ful', ''],
];
const STEP3_KEYS = STEP3.map((x) => x[0]);

const STEP4 = [
  'ement', 'ance', 'ence', 'able', 'ible', 'ment', 'ant', 'ent', 'ism', 'ate', 'iti', 'ous', 'ive', 'ize', 'ion', 'al', 'er', 'ic',
];
STEP4.sort((a, b) => b.length - a.length);

const STEP1B = ['eedly', 'ingly', 'edly', 'eed', 'ing', 'ed'];

/** Stem one lower-case word with the Snowball English algorithm. */
export function snowballEnglishStem(word: string): string {
  const ex = EXCEPTION1[word];
  if (ex !== undefined && Object.prototype.hasOwnProperty.call(EXCEPTION1, word)) return ex;
  if (word.length < 3) return word;

  // prelude
  let w = word;
  if (w[0] === "'") w = w.slice(1);
  if (w.length === 0) return w;
  let chars = w.split('');
  if (chars[0] === 'y') chars[0] = 'Y';
  for (let i = 1; i < chars.length; i++) if (chars[i] === 'y' && isV(chars[i - 1])) chars[i] = 'Y';
  w = chars.join('');

  // regions
  let p1: number;
  if (w.startsWith('gener') || w.startsWith('arsen')) p1 = 5;
  else if (w.startsWith('commun')) p1 = 6;
  else p1 = regionAfter(w, 0);
  const p2 = p1 >= w.length ? w.length : regionAfter(w, p1);

  // Step 0
  const s0 = longestSuffix(w, ["'s'", "'s", "'"]);
  if (s0) w = w.slice(0, -s0.length);

  // Step 1a
  if (endsWith(w, 'sses')) w = w.slice(0, -2);
  else if (endsWith(w, 'ied') || endsWith(w, 'ies')) w = w.length > 4 ? w.slice(0, -2) : w.slice(0, -1);
  else if (endsWith(w, 'us') || endsWith(w, 'ss')) {
    /* unchanged */
  } else if (endsWith(w, 's')) {
    // next gopast v: a vowel somewhere before the letter preceding the s
    let found = false;
    for (let i = 0; i < w.length - 2; i++) if (isV(w[i])) { found = true; break; }
    if (found) w = w.slice(0, -1);
  }

  if (EXCEPTION2.has(w)) return w;

  // Step 1b
  const s1b = longestSuffix(w, STEP1B);
  if (s1b === 'eed' || s1b === 'eedly') {
    if (w.length - s1b.length >= p1) w = w.slice(0, -s1b.length) + 'ee';
  } else if (s1b) {
    const stem = w.slice(0, -s1b.length);
    let hasV = false;
    for (let i = 0; i < stem.length; i++) if (isV(stem[i])) { hasV = true; break; }
    if (hasV) {
      w = stem;
      if (endsWith(w, 'at') || endsWith(w, 'bl') || endsWith(w, 'iz')) w += 'e';
      else if (/(bb|dd|ff|gg|mm|nn|pp|rr|tt)$/.test(w)) w = w.slice(0, -1);
      else if (w.length === p1 && shortV(w, w.length)) w += 'e';
    }
  }

  // Step 1c
  if (w.length > 2 && (w.endsWith('y') || w.endsWith('Y')) && !isV(w[w.length - 2])) {
    w = w.slice(0, -1) + 'i';
  }

  // Step 2
  const s2 = longestSuffix(w, STEP2_KEYS);
  if (s2 && w.length - s2.length >= p1) {
    const rep = STEP2[STEP2_KEYS.indexOf(s2)][1];
    const before = w[w.length - s2.length - 1];
    if (s2 === 'ogi') {
      if (before === 'l') w = w.slice(0, -3) + 'og';
    } else if (s2 === 'li') {
      if (before !== undefined && 'cdeghkmnrt'.includes(before)) w = w.slice(0, -2);
    } else {
      w = w.slice(0, -s2.length) + rep;
    }
  }

  // Step 3
  const s3 = longestSuffix(w, STEP3_KEYS);
  if (s3 && w.length - s3.length >= p1) {
    if (s3 === 'ative') {
      if (w.length - s3.length >= p2) w = w.slice(0, -5);
    } else {
      w = w.slice(0, -s3.length) + STEP3[STEP3_KEYS.indexOf(s3)][1];
    }
  }

  // Step 4
  const s4 = longestSuffix(w, STEP4);
  if (s4 && w.length - s4.length >= p2) {
    if (s4 === 'ion') {
      const before = w[w.length - 4];
      if (before === 's' || before === 't') w = w.slice(0, -3);
    } else {
      w = w.slice(0, -s4.length);
    }
  }

  // Step 5
  if (w.endsWith('e')) {
    const at = w.length - 1;
    if (at >= p2 || (at >= p1 && !shortV(w, at))) w = w.slice(0, -1);
  } else if (w.endsWith('l')) {
    if (w.length - 1 >= p2 && w[w.length - 2] === 'l') w = w.slice(0, -1);
  }

  return w.replace(/Y/g, 'y');
}
