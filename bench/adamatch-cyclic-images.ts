// AdaMatch-Cyclic's report -> image direction scored by a radkit classifier trained on the same
// data (a `diseasenet` run: 14 CheXpert observations x 4 states), no downloaded weights:
//   label agreement: the classifier's positive findings on an image against the labels of the
//     report (clinical-efficacy micro/macro F1), for the generated images, for a random training
//     image's VQ reconstruction (the baseline), for the study's own VQ reconstruction and for the
//     original image (ceilings; also the VQ item "classifier F1 on reconstructions vs originals");
//   FD-radkit: the Frechet distance between the classifier's 56 state probabilities on the test
//     studies' own reconstructions and on the generated images (and on random training
//     reconstructions). Probabilities, not a hidden layer: diseasenet's encode gives no features;
//   the cycle image -> report -> image (when the bench file has cycleImageCodes): label recovery =
//     the classifier's positives on the cycle's image against the original report's labels, and
//     its FD-radkit.
// Run: node dist/bench/adamatch-cyclic-images.js --bench FILE.json (of bench/adamatch-cyclic.ts)
//        --classifier DISEASENET_RUN --data DIR [--out FILE.json]
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as radkit from '../lib/index.js';
import { readImage } from '../lib/data/image.js';
import { frechetDistance, labelAgreement } from '../lib/metrics/frechet.js';
import { TensorBatch, type Model } from '../lib/models/model.js';
import { decodeCodes } from '../lib/models/vqgan.js';
import { loadCheckpoint } from '../lib/train/checkpoint.js';
import { CHEXPERT_OBSERVATIONS, type LabelValue, type ReportLabels } from '../lib/text/chexpert.js';
import { readImageCodes } from '../lib/models/image-codes.js';

const str = (name: string, dflt?: string) => {
  const i = process.argv.indexOf(`--${name}`);
  if (i > 0) return process.argv[i + 1];
  if (dflt === undefined) throw new Error(`--${name} is required`);
  return dflt;
};
const STATES: LabelValue[] = ['absent', 'positive', 'negative', 'uncertain'];

/** Classifier states and probabilities of images [n, H*W] at the classifier's size. */
async function classify(clf: Model, images: Float32Array[], size: number): Promise<{ labels: ReportLabels[]; probs: Float32Array }> {
  const labels: ReportLabels[] = [];
  const probs: number[] = [];
  for (let s = 0; s < images.length; s += 32) {
    const chunk = images.slice(s, s + 32);
    const data = new Float32Array(chunk.length * size * size);
    chunk.forEach((im, i) => data.set(im, i * size * size));
    const tb = new TensorBatch({ images: { data, shape: [chunk.length, 1, 1, size, size] } });
    try {
      const enc = await clf.encode(tb);
      const st = Array.from(enc.states.toArray() as BigInt64Array, Number);
      probs.push(...(enc.probabilities.toArray() as Float32Array));
      for (let i = 0; i < chunk.length; i++) labels.push(Object.fromEntries(CHEXPERT_OBSERVATIONS.map((o, k) => [o, STATES[st[i * 14 + k]]])) as ReportLabels);
      Object.values(enc).forEach((t) => t.dispose());
    } finally {
      tb.dispose();
    }
  }
  return { labels, probs: Float32Array.from(probs) };
}

async function main() {
  const t0 = performance.now();
  const bench = JSON.parse(fs.readFileSync(str('bench'), 'utf8'));
  const data = str('data');
  const ds = radkit.data.readR2Gen(path.join(data, 'annotation.json'), { labels: path.join(data, 'labels.json') });
  const run = await loadCheckpoint(bench.settings.run);
  const codesFile = readImageCodes(String(run.model.config.codesFile));
  const vq = await loadCheckpoint(String(run.model.config.vq));
  run.model.dispose();
  const clf = await loadCheckpoint(str('classifier'));
  try {
    const size = clf.meta.preprocessing.imageSize;
    if (size !== codesFile.imageSize) throw new Error(`classifier reads ${size} px, the VQ codes are of ${codesFile.imageSize} px`);
    const grid: [number, number, number] = [1, codesFile.grid[0], codesFile.grid[1]];
    const byId = new Map(Object.values(ds.splits).flat().map((e) => [e.id, e]));
    const ids = Object.keys(bench.generatedImageCodes as Record<string, number[]>);
    const train = ds.splits.train.filter((e) => codesFile.codes[e.id]);
    let s = 777;
    const next = () => ((s = (s * 1103515245 + 12345) % 2 ** 31), s / 2 ** 31);
    const dec = async (c: number[]) => (await decodeCodes(vq.model, c, grid)).data;
    const cycleCodes = bench.cycleImageCodes as Record<string, number[]> | undefined;
    const gen: Float32Array[] = [], recon: Float32Array[] = [], rand: Float32Array[] = [], orig: Float32Array[] = [], cyc: Float32Array[] = [];
    for (const id of ids) {
      gen.push(await dec(bench.generatedImageCodes[id]));
      recon.push(await dec(codesFile.codes[id]));
      rand.push(await dec(codesFile.codes[train[Math.floor(next() * train.length)].id]));
      orig.push((await readImage(byId.get(id)!.imagePaths[0], { height: size, width: size })).data);
      if (cycleCodes) cyc.push(await dec(cycleCodes[id]));
    }
    const reportLabels = ids.map((id) => byId.get(id)!.labels!);
    const sets = { generated: await classify(clf.model, gen, size), randomTrainReconstruction: await classify(clf.model, rand, size), ownReconstruction: await classify(clf.model, recon, size), original: await classify(clf.model, orig, size), ...(cycleCodes ? { cycle: await classify(clf.model, cyc, size) } : {}) };
    const agreement = Object.fromEntries(Object.entries(sets).map(([k, v]) => [k, labelAgreement(v.labels, reportLabels)]));
    const n = ids.length, d = 56;
    const fd = {
      generatedVsOwnReconstructions: frechetDistance(sets.generated.probs, n, sets.ownReconstruction.probs, n, d),
      randomTrainVsOwnReconstructions: frechetDistance(sets.randomTrainReconstruction.probs, n, sets.ownReconstruction.probs, n, d),
      originalsVsOwnReconstructions: frechetDistance(sets.original.probs, n, sets.ownReconstruction.probs, n, d),
      ...(sets.cycle ? { cycleVsOwnReconstructions: frechetDistance(sets.cycle.probs, n, sets.ownReconstruction.probs, n, d) } : {}),
    };
    const out = { settings: { bench: str('bench'), classifier: str('classifier'), studies: n, features: 'diseasenet 14 x 4 state probabilities (56-d)', labelAgreement: 'clinical-efficacy F1 of classifier positives vs report positives' }, labelAgreement: agreement, fdRadkit: fd, seconds: (performance.now() - t0) / 1000 };
    const file = str('out', str('bench').replace(/\.json$/, '-images.json'));
    fs.writeFileSync(file, JSON.stringify(out, null, 1));
    console.log(JSON.stringify(out));
  } finally {
    vq.model.dispose();
    clf.model.dispose();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
