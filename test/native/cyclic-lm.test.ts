// AdaMatch-Cyclic's LM stage at a tiny size: one GPT-NeoX LM learns both directions with the
// response-only loss (the loss falls; image -> report beats always writing the most common report;
// report -> image recovers the codes better than the most common code everywhere), the prompt's
// tokens are not scored, and constrained decoding holds for trained and untrained models, greedy
// and sampled: reports use text ids only, images get exactly N image tokens.
import { describe, expect, it } from 'vitest';
import { SpecialsVocabulary } from '../../lib/models/cyclic-prompts.js';
import { createCyclicLM, cyclicSequence, generateImageCodes, generateReports, sequenceBatch, type CyclicExample } from '../../lib/models/cyclic-lm.js';

// Four findings, each with its own report and image pattern (4 codes of 8); the vocabulary: 0, 8 words.
const WORDS = ['<eos>', 'no', 'effusion', 'small', 'left', 'right', 'opacity', 'large', 'normal'];
const words = (s: string) => s.split(' ').map((w) => WORDS.indexOf(w));
const text = (ids: number[]) => ids.map((i) => WORDS[i]).join(' ');
const STUDIES: CyclicExample[] = [
  { report: 'no effusion', codes: [0, 1, 0, 1], keywords: ['normal'] },
  { report: 'small left effusion', codes: [2, 3, 2, 0], keywords: ['left'] },
  { report: 'large right opacity', codes: [4, 5, 6, 7], keywords: ['right'] },
  { report: 'small right effusion', codes: [2, 3, 6, 7], keywords: ['right'] },
];
const v = new SpecialsVocabulary(WORDS.length, 8);
const TINY = { hiddenSize: 32, numLayers: 2, numHeads: 2, intermediateSize: 64, maxPositions: 64 };

describe('AdaMatch-Cyclic LM stage', () => {
  it('scores only the responses', () => {
    const s = cyclicSequence('report', v, STUDIES[1], words);
    expect(s.ids.slice(s.responseStart)).toEqual([3, 4, 2, 0]); // the words, then EOS
    const i = cyclicSequence('image', v, STUDIES[1], words);
    expect(i.ids.slice(i.responseStart)).toEqual([2, 3, 2, 0].map((c) => v.imageToken(c)));
    const b = sequenceBatch([s, i]);
    const T = b.ids.shape[1];
    const mask = Array.from(b.lossMask.toArray() as BigInt64Array, Number);
    expect(mask.slice(0, T).reduce((a, x) => a + x, 0)).toBe(4);
    expect(mask.slice(T).reduce((a, x) => a + x, 0)).toBe(4);
    expect(mask[s.responseStart - 1]).toBe(0);
    expect(mask[s.responseStart]).toBe(1);
    [b.ids, b.attentionMask, b.lossMask].forEach((t) => t.dispose());
  });

  it('constrained decoding: text ids only for reports, exactly N image tokens for images (untrained, greedy and sampled)', async () => {
    const lm = createCyclicLM(v, TINY, 5);
    try {
      const reportPrompts = STUDIES.map((s) => cyclicSequence('report', v, s, words)).map((s) => s.ids.slice(0, s.responseStart));
      const imagePrompts = STUDIES.map((s) => cyclicSequence('image', v, s, words)).map((s) => s.ids.slice(0, s.responseStart));
      for (const method of ['greedy', 'sample'] as const) {
        const reports = await generateReports(lm, v, reportPrompts, { maxNewTokens: 12, method, seed: 3 });
        for (const r of reports) for (const id of r) expect(id >= 1 && id < v.textIds, `report token ${id}`).toBe(true);
        const images = await generateImageCodes(lm, v, imagePrompts, 4, { method, seed: 4 });
        for (const c of images) {
          expect(c).toHaveLength(4);
          for (const x of c) expect(x >= 0 && x < 8).toBe(true);
        }
      }
    } finally {
      lm.dispose();
    }
  });

  it('learns both directions with the response-only loss', async () => {
    const lm = createCyclicLM(v, TINY, 1);
    try {
      lm.setupOptimizer({ lr: 3e-3, weightDecay: 0 });
      const seqs = STUDIES.flatMap((s) => [cyclicSequence('report', v, s, words), cyclicSequence('image', v, s, words)]);
      const batch = sequenceBatch(seqs);
      const losses: number[] = [];
      for (let step = 0; step < 150; step++) losses.push((await lm.trainStep(batch.ids, { attentionMask: batch.attentionMask, lossMask: batch.lossMask, clipNorm: 1 })).loss);
      [batch.ids, batch.attentionMask, batch.lossMask].forEach((t) => t.dispose());
      expect(losses[149]).toBeLessThan(0.2 * losses[0]);
      const reportPrompts = STUDIES.map((s) => cyclicSequence('report', v, s, words)).map((s) => s.ids.slice(0, s.responseStart));
      const reports = (await generateReports(lm, v, reportPrompts, { maxNewTokens: 8 })).map(text);
      // The most common report is right for 1 study of 4; the model should get at least 3.
      expect(reports.filter((r, i) => r === STUDIES[i].report).length).toBeGreaterThanOrEqual(3);
      const imagePrompts = STUDIES.map((s) => cyclicSequence('image', v, s, words)).map((s) => s.ids.slice(0, s.responseStart));
      const images = await generateImageCodes(lm, v, imagePrompts, 4);
      const right = images.flatMap((c, i) => c.map((x, k) => (x === STUDIES[i].codes[k] ? 1 : 0))).reduce((a: number, b) => a + b, 0);
      // Code 2 everywhere (the most common code) gets 3 of 16 positions.
      expect(right).toBeGreaterThanOrEqual(12);
    } finally {
      lm.dispose();
    }
  }, 60_000);
});
