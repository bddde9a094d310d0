/**
 * Benchmark: scores 5,000 synthetic radiology reports (deterministic, seeded) with every metric
 * and prints the timings as JSON. Run after `npm run build:ts`: `node dist/bench/metrics.js [N]`.
 */
import { bleu } from '../lib/metrics/bleu.js';
import { ciderD } from '../lib/metrics/cider.js';
import { clinical } from '../lib/metrics/clinical.js';
import { meteor } from '../lib/metrics/meteor.js';
import { loadWordNet } from '../lib/metrics/wordnet.js';
import { rougeL } from '../lib/metrics/rouge.js';
import { label } from '../lib/text/labeler.js';

const SENTENCES = [
  'the heart is normal in size .',
  'the heart size is mildly enlarged .',
  'cardiomegaly is present .',
  'the mediastinum is within normal limits .',
  'the lungs are clear .',
  'there is no focal consolidation .',
  'there is a small left pleural effusion .',
  'no pleural effusion or pneumothorax is seen .',
  'there is mild pulmonary edema .',
  'patchy opacity in the right lower lobe may represent atelectasis or pneumonia .',
  'a right-sided pneumothorax is noted .',
  'a left chest wall pacemaker is in place with leads in the right atrium and ventricle .',
  'there is a nodule in the left upper lobe .',
  'no acute osseous abnormality .',
  'degenerative changes of the thoracic spine are seen .',
  'healed fracture of the right sixth rib .',
  'the pulmonary vasculature is normal .',
  'there is blunting of the costophrenic angles .',
  'endotracheal tube terminates 4 cm above the carina .',
  'no acute cardiopulmonary process .',
];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function report(r: () => number): string {
  const n = 3 + Math.floor(r() * 5);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(SENTENCES[Math.floor(r() * SENTENCES.length)]);
  return out.join(' ');
}

function main(): void {
  const n = Number(process.argv[2] ?? 5000);
  const r = rng(7);
  const refs: string[][] = [];
  const hyps: string[] = [];
  for (let i = 0; i < n; i++) {
    const ref = report(r);
    refs.push([ref]);
    // hypothesis: half the reference's sentences kept, the rest drawn anew
    const kept = ref.split(' . ').filter(() => r() < 0.5).join(' . ');
    hyps.push((kept ? kept + ' . ' : '') + report(r));
  }
  const tokens = hyps.reduce((a, h) => a + h.split(' ').length, 0) + refs.reduce((a, x) => a + x[0].split(' ').length, 0);
  const seconds: Record<string, number> = {};
  const values: Record<string, number | number[]> = {};
  const time = (name: string, f: () => number | number[]): void => {
    const t0 = performance.now();
    values[name] = f();
    seconds[name] = Number(((performance.now() - t0) / 1000).toFixed(3));
  };
  time('bleu', () => bleu(hyps, refs));
  time('rougeL', () => rougeL(hyps, refs));
  time('ciderD', () => ciderD(hyps, refs));
  time('wordnetLoad', () => loadWordNet().size);
  time('meteor', () => meteor(hyps, refs));
  time('labeler', () => {
    const h = hyps.map(label);
    const g = refs.map((x) => label(x[0]));
    values.clinicalF1 = clinical(h, g).micro.f1;
    return h.length + g.length;
  });
  const total = Object.values(seconds).reduce((a, b) => a + b, 0);
  console.log(
    JSON.stringify(
      { bench: 'metrics', reports: n, tokens, node: process.version, seconds, totalSeconds: Number(total.toFixed(3)), values },
      null,
      2,
    ),
  );
}

main();
