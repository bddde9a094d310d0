// Can mpma-rg's decoder read its source at all? A controlled set where the report is a deterministic
// function of something plainly visible: the quadrants set (test/train/quadrants.cjs: a bright
// square in one quadrant of a noisy image; the report names its size, side and zone, 8 reports in
// all). mpma-rg from scratch (and, with --pre-epochs N, from an mpma pre-trained N epochs on the same
// images and reports), against XProNet over the same nn::EncoderDecoder with its labels and label
// losses off (labelSource 'none', lambdas 0: a ResNet feeding the same decoder) as the control.
// Scores on the test split: exact-match and per-attribute accuracy of the beam reports (chance: 1/8
// and 1/2), the teacher-forced cross-entropy with the own vs the next study's image, and the
// training cross-entropy every 10 steps (the unconditional floor is ln 8 / words per report).
// Run: node dist/bench/mpma-controlled.js [--models mpma-rg,xpronet] [--train 384] [--epochs 20] [--size 64]
//        [--pre-epochs 0] [--seed 0] [--vit-layers 3] [--name mpma-controlled]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as radkit from '../lib/index.js';
import { mpma } from '../lib/models/mpma.js';
import { mpmaRg } from '../lib/models/mpma-rg.js';
import { generateSplit } from '../lib/train/evaluate.js';
import { imageUse } from './image-use.js';
import { arg, str } from './flags.js';

async function main() {
  const trainN = arg('train', 384), epochs = arg('epochs', 20), size = arg('size', 64), seed = arg('seed', 0), preEpochs = arg('pre-epochs', 0);
  const models = str('models', 'mpma-rg,xpronet').split(',');
  const extra = JSON.parse(str('rg-config', '{}')) as Record<string, unknown>; // mpma-rg configuration keys over the bench's
  const lr = arg('lr', 1e-3), visualLr = arg('visual-lr', 5e-4);
  radkit.setNumThreads(arg('threads', 1));
  const dir = path.join(os.tmpdir(), `radkit-bench-mpma-quadrants-${trainN}-${size}`);
  if (!fs.existsSync(path.join(dir, 'annotation.json'))) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(path.join(__dirname, '../../test/train/quadrants.cjs')).writeQuadrants(dir, { train: trainN, val: 32, test: 64 }, 3, size);
  }
  const ds = radkit.data.readR2Gen(path.join(dir, 'annotation.json'), {});
  const tokenizer = radkit.text.Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: 1 });
  const VIT = { imageSize: size, patch: 8, vitDim: 96, vitLayers: arg('vit-layers', 3), vitHeads: 3, vitIntermediate: 192 };
  const HEAD = { dModel: 64, heads: 4, dFF: 128, encoderLayers: 1, decoderLayers: 1 };
  const pre = { imageSize: size, views: 1 };
  const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
  const out = path.join(__dirname, '..', '..', 'bench', 'out');
  fs.mkdirSync(out, { recursive: true });
  const results: Record<string, unknown> = {
    conditions: {
      machine: `${os.cpus().length} CPUs (${os.cpus()[0]?.model}), shared with other engineers' jobs`,
      threads: radkit.getNumThreads(),
      started: new Date().toISOString(),
      data: { set: 'quadrants (test/train/quadrants.cjs, seed 3)', train: trainN, val: 32, test: 64, size, views: 1, reports: 8 },
      epochs, batch: 16, lr, visualLr, schedule: 'cosine, 5% warm-up', seed, vit: VIT, head: HEAD, rgConfig: extra, preEpochs,
      xpronetControl: "resnet [16,24,32,64,96] x [1,1,1,1], labelSource 'none', lambdaImage = lambdaText = lambdaClass = 0, same head sizes and rates",
    },
    runs: [] as unknown[],
  };
  const save = () => fs.writeFileSync(path.join(out, `${str('name', 'mpma-controlled')}.json`), JSON.stringify(results, null, 2));

  const imageSensitivity = (m: radkit.Model) => imageUse(m, ds, tokenizer, pre, 'ce');

  let preDir: string | undefined;
  if (preEpochs > 0) {
    preDir = path.join(os.tmpdir(), `radkit-bench-mpma-quadrants-pre-${trainN}-${size}-${preEpochs}-s${seed}-l${VIT.vitLayers}`);
    if (!fs.existsSync(path.join(preDir, 'done'))) {
      fs.rmSync(preDir, { recursive: true, force: true });
      const PRE = { ...VIT, maeDim: 64, maeLayers: 1, maeHeads: 4, memorySlots: 16, mlmLayers: 1, mlmHeads: 4, textHidden: 64, textLayers: 1, textHeads: 4, textIntermediate: 128 };
      const m = mpma({ tokenizer, ...PRE, seed });
      const t0 = performance.now();
      await radkit.train(m, ds, { tokenizer, outDir: preDir, epochs: preEpochs, batchSize: 16, lr: 1e-3, visualLr: 1e-3, imageSize: size, views: 1, seed, progress: 'none', evaluate: false, workers: 0 });
      m.dispose();
      fs.writeFileSync(path.join(preDir, 'done'), String((performance.now() - t0) / 1000));
    }
    log(`pre-trained mpma ${preEpochs} epochs: ${preDir}`);
  }

  const variants: { name: string; make: () => radkit.Model; init?: string }[] = [];
  for (const m of models) {
    if (m === 'mpma-rg') variants.push({ name: 'mpma-rg scratch', make: () => mpmaRg({ tokenizer, ...VIT, ...HEAD, ...extra, seed }) });
    else if (m === 'mpma-rg-pre') {
      if (!preDir) throw new Error('mpma-rg-pre needs --pre-epochs > 0');
      variants.push({ name: 'mpma-rg pre-trained', make: () => mpmaRg({ tokenizer, ...VIT, ...HEAD, ...extra, seed }), init: `${preDir}:image.` });
    } else if (m === 'xpronet')
      variants.push({ name: 'xpronet control', make: () => radkit.xpronet({ tokenizer, preset: 'small', ...HEAD, labelSource: 'none', lambdaImage: 0, lambdaText: 0, lambdaClass: 0, seed }) });
    else throw new Error(`unknown model '${m}' (mpma-rg, mpma-rg-pre, xpronet)`);
  }
  for (const v of variants) {
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-bench-mpma-controlled-'));
    const m = v.make();
    const t0 = performance.now();
    await radkit.train(m, ds, { tokenizer, outDir: runDir, epochs, batchSize: 16, imageSize: size, views: 1, seed, progress: 'none', evaluate: false, workers: 0, lr, visualLr,
      schedule: { kind: 'cosine', warmupFraction: 0.05 }, optimizer: 'adamw', weightDecay: 0.01, clipNorm: 1, initBatches: v.name.startsWith('xpronet') ? 8 : 0, ...(v.init ? { init: v.init } : {}) });
    const seconds = (performance.now() - t0) / 1000;
    const steps = fs.readFileSync(path.join(runDir, 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.type === 'step');
    const curve: [number, number][] = [];
    for (let i = 0; i < steps.length; i += 10) {
      const w = steps.slice(i, i + 10);
      curve.push([i + w.length, w.reduce((s, e) => s + (e.parts?.ce ?? e.loss), 0) / w.length]);
    }
    const use = await imageSensitivity(m);
    const reports = await generateSplit(m, tokenizer, ds, { split: 'test', preprocessing: pre, generate: m.generateDefaults });
    m.dispose();
    const words = (s: string) => s.split(' ').filter((w) => w);
    let exact = 0;
    const attr = { size: 0, side: 0, zone: 0 };
    for (const r of reports) {
      const h = words(r.hypothesis), ref = words(r.reference);
      if (h.join(' ') === ref.join(' ')) exact++;
      if (h[0] === ref[0]) attr.size++;
      const side = (ws: string[]) => ws.find((w) => w === 'left' || w === 'right');
      const zone = (ws: string[]) => ws.find((w) => w === 'upper' || w === 'lower');
      if (side(h) === side(ref)) attr.side++;
      if (zone(h) === zone(ref)) attr.zone++;
    }
    const n = reports.length;
    const row = {
      variant: v.name, init: v.init ?? null, steps: steps.length, seconds,
      exactMatch: exact / n, sizeAccuracy: attr.size / n, sideAccuracy: attr.side / n, zoneAccuracy: attr.zone / n,
      distinctReports: new Set(reports.map((r) => r.hypothesis)).size,
      testCeOwnImages: use.own, testCeRolledImages: use.rolled, trainCeEvery10Steps: curve, example: reports.slice(0, 3).map((r) => [r.hypothesis, r.reference]),
    };
    (results.runs as unknown[]).push(row);
    save();
    log(`${v.name}: ${steps.length} steps in ${seconds.toFixed(0)} s; exact ${row.exactMatch.toFixed(3)} (size ${row.sizeAccuracy.toFixed(2)}, side ${row.sideAccuracy.toFixed(2)}, zone ${row.zoneAccuracy.toFixed(2)}), ${row.distinctReports} distinct; test CE own ${use.own.toFixed(4)} / next ${use.rolled.toFixed(4)}`);
    log(`  train CE every 10 steps: ${curve.map(([, c]) => c.toFixed(2)).join(' ')}`);
  }
  log('done');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
