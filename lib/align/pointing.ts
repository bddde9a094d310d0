import type { EmbeddedSplit } from './embed.js';
import { dot } from './vectors.js';

/** A ground-truth finding box of a study: `[x0, y0, x1, y1]` in input pixels (x1/y1 exclusive). */
export interface GroundTruthBox {
  finding: string;
  box: [number, number, number, number];
}

/**
 * Word stems that name each SynthCXR finding in its reports (see lib/data/synth/plan.ts). A report
 * word matches when it starts with one of them.
 */
export const FINDING_WORDS: Record<string, string[]> = {
  cardiomegaly: ['cardiomegaly', 'heart'],
  widened_mediastinum: ['mediastin'],
  pleural_effusion: ['effusion'],
  pneumothorax: ['pneumothora'],
  consolidation: ['consolidat'],
  pneumonia: ['pneumonia'],
  opacity: ['opacit'],
  nodule: ['nodul'],
  mass: ['mass'],
  edema: ['edema'],
  atelectasis: ['atelecta'],
  pacemaker: ['pacemaker'],
  endotracheal_tube: ['endotracheal'],
  central_line: ['central', 'catheter'],
  enteric_tube: ['enteric'],
  fracture: ['fractur'],
  pleural_thickening: ['thickening'],
};

export interface PointingResult {
  /** Boxes scored (their finding's words occur in the report). */
  boxes: number;
  hits: number;
  /** hits / boxes (0 when none). */
  accuracy: number;
  /** Expected accuracy of pointing at a uniformly random patch centre of the grid. */
  randomAccuracy: number;
  /** Boxes left out because the report does not name the finding. */
  skipped: number;
  perFinding: Record<string, { boxes: number; hits: number }>;
}

const inside = (x: number, y: number, b: [number, number, number, number]) => x >= b[0] && x < b[2] && y >= b[1] && y < b[3];

/**
 * Pointing game for patch-word alignment: for every ground-truth finding box of a study, the report
 * words naming the finding (FINDING_WORDS, matched on decoded tokens) each pick their best patch;
 * the single best (word, patch) match points at the image, and it is a hit when that patch's centre
 * (adaptive box, or the fixed patch for `useFixed`) falls inside the box.
 */
export function pointingGame(
  e: EmbeddedSplit,
  boxesById: Record<string, GroundTruthBox[]>,
  wordOf: (study: number, position: number) => string,
  options: { useFixed?: boolean } = {},
): PointingResult {
  const { patches: N, words: K, dim: d } = e;
  const r: PointingResult = { boxes: 0, hits: 0, accuracy: 0, randomAccuracy: 0, skipped: 0, perFinding: {} };
  let randomSum = 0;
  for (let i = 0; i < e.n; i++) {
    const gts = boxesById[e.ids[i]] ?? [];
    if (!gts.length) continue;
    const words: string[] = [];
    for (let k = 0; k < K; k++) words.push(e.textMask[i * K + k] ? wordOf(i, k).toLowerCase() : '');
    for (const gt of gts) {
      const stems = FINDING_WORDS[gt.finding] ?? [gt.finding.replace(/_/g, ' ')];
      let best = -Infinity, patch = -1;
      for (let k = 0; k < K; k++) {
        if (!words[k] || !stems.some((s) => words[k].startsWith(s))) continue;
        for (let n = 0; n < N; n++) {
          const s = dot(e.image, (i * N + n) * d, e.text, (i * K + k) * d, d);
          if (s > best) [best, patch] = [s, n];
        }
      }
      if (patch < 0) {
        r.skipped++;
        continue;
      }
      const src = options.useFixed ? e.fixedBoxes : e.boxes;
      const o = options.useFixed ? patch * 4 : (i * N + patch) * 4;
      const hit = inside(src[o], src[o + 1], gt.box);
      let covered = 0;
      for (let n = 0; n < N; n++) if (inside(e.fixedBoxes[n * 4], e.fixedBoxes[n * 4 + 1], gt.box)) covered++;
      randomSum += covered / N;
      r.boxes++;
      if (hit) r.hits++;
      const f = (r.perFinding[gt.finding] ??= { boxes: 0, hits: 0 });
      f.boxes++;
      if (hit) f.hits++;
    }
  }
  r.accuracy = r.boxes ? r.hits / r.boxes : 0;
  r.randomAccuracy = r.boxes ? randomSum / r.boxes : 0;
  return r;
}
