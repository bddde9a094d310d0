// The adamatch-cyclic kind at a tiny size, trained by radkit.train: every training batch holds both
// directions of each study with only the responses scored; the loss falls; on the studies it
// learned, image -> report beats writing the most common report (CE micro-F1) and report -> image
// recovers more of the codes than a random training image; constrained generation gives text ids
// for reports and exactly N image tokens for images; the cycle image -> report -> image recovers
// the codes better than another study's codes. The image codes here are written by the test
// (4 tokens per image, each a function of one finding's label), so no VQ run is needed.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { mostCommonReport } from '../../lib/demo.js';
import { adamatchCyclic, cyclicEvaluation, cyclicRoundTrip, cyclicTable, cyclicSequences, generateCyclicImages, generateCyclicReports, oracleKeywords } from '../../lib/models/adamatch-cyclic.js';
import type { ImageCodesFile } from '../../lib/models/image-codes.js';
import { TASK_TOKENS, imagePrompt, renderPrompt, reportPrompt } from '../../lib/models/cyclic-prompts.js';
import { cyclicTokenizer, promptTensors } from '../../lib/models/adamatch-cyclic.js';
import { writeTinyNeoXFolder } from '../unit/hf-tokenizer-fixtures.js';
import { roundBF16 } from '../native/causal-lm-reference.js';
import { tensorAsFloat32 } from './run-weights.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-cyclic-'));
const dataDir = path.join(tmp, 'data');
const codesFile = path.join(tmp, 'codes.json');
const FINDINGS = ['Cardiomegaly', 'Pleural Effusion', 'Pneumothorax', 'Edema'] as const;
let ds: ReturnType<typeof radkit.data.readR2Gen>;
let tokenizer: radkit.text.Tokenizer;
const TINY = { hiddenSize: 64, numLayers: 2, numHeads: 4, intermediateSize: 128, maxPositions: 160 };

beforeAll(async () => {
  await radkit.data.synthesize({ out: dataDir, train: 48, val: 4, test: 4, size: 32, seed: 11, views: 1 });
  ds = radkit.data.readR2Gen(path.join(dataDir, 'annotation.json'), { labels: path.join(dataDir, 'labels.json') });
  tokenizer = radkit.text.Tokenizer.build(ds.splits.train.map((e) => e.report), { threshold: 1 });
  // Token k of an image says whether finding k is positive (codes 2k / 2k + 1 of 8).
  const codes: Record<string, number[]> = {};
  for (const s of ['train', 'val', 'test'] as const) for (const e of ds.splits[s]) codes[e.id] = FINDINGS.map((f, k) => 2 * k + (e.labels?.[f] === 'positive' ? 1 : 0));
  const file: ImageCodesFile = { format: 'radkit-image-codes', version: 1, tokenizer: { kind: 'vqgan', weightsSha256: '0'.repeat(64), config: {} }, imageSize: 32, grid: [2, 2], nEmbed: 8, codes };
  fs.writeFileSync(codesFile, JSON.stringify(file));
}, 120_000);

describe('adamatch-cyclic', () => {
  it('a batch holds both directions of every study; only responses are scored', () => {
    const m = adamatchCyclic({ dataset: ds, tokenizer, codes: codesFile, vq: 'unused', hints: 'oracle', sizes: TINY });
    try {
      const t = cyclicTable(m, tokenizer, ds);
      const e = ds.splits.train[0];
      const words = t.words(e.report);
      const [toReport, toImage] = cyclicSequences(t, [e.id], [e.report]);
      const v = t.vocab;
      expect(v.textIds).toBe(tokenizer.vocabSize + 1);
      expect(v.size).toBe(v.textIds + TASK_TOKENS.length + 8);
      expect(toReport.ids.slice(toReport.start)).toEqual([...words, 0]);
      expect(toReport.ids[0]).toBe(v.task('<i2r>'));
      const kw = oracleKeywords(e.report).flatMap((k) => t.words(k));
      expect(toReport.ids.slice(0, toReport.start)).toEqual([v.task('<i2r>'), v.task('<img>'), ...t.study(e.id).codes.map((c) => v.imageToken(c)), ...(kw.length ? [v.task('<kw>'), ...kw] : [v.task('<kw>')]), v.task('<resp>')]);
      expect(toImage.ids.slice(toImage.start)).toEqual(t.study(e.id).codes.map((c) => v.imageToken(c)));
      expect(toImage.ids.slice(0, toImage.start)).toEqual([v.task('<r2i>'), ...words, v.task('<resp>'), v.task('<img>')]);
      expect(m.config.textIds).toBe(v.textIds);
      expect(m.config.imageTokens).toBe(4);
    } finally {
      m.dispose();
    }
  });

  it('learns both directions: loss falls, reports beat the most common one, images beat a random training image', async () => {
    const m = adamatchCyclic({ dataset: ds, tokenizer, codes: codesFile, vq: 'unused', hints: 'none', sizes: TINY, seed: 3 });
    try {
      const dir = path.join(tmp, 'learn');
      await radkit.train(m, ds, { tokenizer, outDir: dir, epochs: 25, batchSize: 16, imageSize: 32, lr: 3e-3, progress: 'none', workers: 0, evaluate: false, initBatches: 0 });
      const steps = fs.readFileSync(path.join(dir, 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((x) => x.type === 'step');
      const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
      expect(mean(steps.slice(-3).map((s) => s.loss))).toBeLessThan(0.5 * mean(steps.slice(0, 3).map((s) => s.loss)));
      expect(steps[0].parts.text).toBeGreaterThan(0);
      expect(steps[0].parts.image).toBeGreaterThan(0);

      const ev = await cyclicEvaluation(m, tokenizer, ds, { split: 'train', preprocessing: { imageSize: 32, views: 1 } as never });
      const common = mostCommonReport(ds, tokenizer);
      const base = radkit.metrics.evaluate(ds.splits.train.map(() => common), ds.splits.train.map((e) => [tokenizer.clean(e.report)]), { refLabels: ds.splits.train.map((e) => e.labels!) });
      expect(ev.headline.ceMicroF1).toBeGreaterThan(base.clinical!.micro.f1 + 0.1);
      expect(ev.headline.imageCodeAccuracy).toBeGreaterThan(ev.headline.randomImageCodeAccuracy + 0.1);

      // The cycle image -> report -> image recovers the study's own codes (one per finding) better
      // than the next study's codes do, and its reports are those of the image -> report direction.
      const t = cyclicTable(m, tokenizer, ds);
      const train = ds.splits.train;
      const cyc = await cyclicRoundTrip(m, t, train.map((e) => ({ id: e.id, report: e.report })));
      expect(cyc.codes).toHaveLength(train.length);
      expect(cyc.reports).toEqual((ev.record!.reports as { hypothesis: string }[]).map((r) => r.hypothesis));
      const agree = (a: number[], b: number[]) => a.filter((c, k) => c === b[k]).length / b.length;
      const own = mean(train.map((e, i) => agree(cyc.codes[i], t.study(e.id).codes)));
      const other = mean(train.map((e, i) => agree(t.study(train[(i + 1) % train.length].id).codes, t.study(e.id).codes)));
      expect(own).toBeGreaterThan(other + 0.05);
      await expect(cyclicRoundTrip(m, t, [{ id: train[0].id }], { keypatches: 'reference' as never })).rejects.toThrow(/keypatches must be 'none' or 'study'/);

      // Constrained generation: text ids only for reports; exactly N image tokens (also sampled).
      const studies = ds.splits.test.map((e) => t.study(e.id));
      const reports = await generateCyclicReports(m, t, studies.map((s) => t.reportPrompt(s.codes, null)));
      expect(reports.every((r) => r.length > 0 && !TASK_TOKENS.some((x) => r.includes(x)))).toBe(true);
      for (const method of ['greedy', 'sample'] as const) {
        const imgs = await generateCyclicImages(m, t, ds.splits.test.map((e) => t.imagePrompt(e.report, null)), { method, seed: 1 });
        for (const c of imgs) {
          expect(c).toHaveLength(4);
          for (const x of c) expect(x >= 0 && x < 8).toBe(true);
        }
      }
    } finally {
      m.dispose();
    }
  }, 120_000);

  it('--lm: a GPT-NeoX folder starts the LM, its rows grown by the codes at the mean row; Fig. 3-4 text prompts; it learns; generation stays in range', async () => {
    const lmDir = path.join(tmp, 'tiny-neox');
    const { ids, rows } = await writeTinyNeoXFolder(lmDir, { seed: 5 });
    const saved = radkit.readSafetensors(path.join(lmDir, 'model.safetensors')).tensors;
    const tok = cyclicTokenizer(ds, { lm: lmDir }) as radkit.text.HFReportTokenizer;
    const m = adamatchCyclic({ dataset: ds, tokenizer: tok, codes: codesFile, vq: 'unused', lm: lmDir, seed: 2 });
    try {
      expect(m.config).toMatchObject({ vocabLayout: 'joint', textIds: rows, codes: 8, imageTokens: 4, hiddenSize: 32, rotaryDim: 8, eosId: 0, lm: lmDir, reportRanges: [1, ids - 1] });
      // Every folder tensor is loaded; the embedding and output tables have one more row per code,
      // each the mean of the folder's rows (float64 composite).
      const w = m.namedTensors();
      try {
        for (const [name, t] of Object.entries(saved)) {
          const src = Array.from(t.toArray() as Float32Array);
          const got = Array.from(w[`lm.${name}`].toArray() as Float32Array);
          if (name === 'gpt_neox.embed_in.weight' || name === 'embed_out.weight') {
            expect(w[`lm.${name}`].shape).toEqual([rows + 8, 32]);
            expect(got.slice(0, src.length)).toEqual(src);
            for (let j = 0; j < 32; j++) {
              let mean = 0;
              for (let r = 0; r < rows; r++) mean += src[r * 32 + j];
              mean /= rows;
              for (let r = rows; r < rows + 8; r++) expect(Math.abs(got[r * 32 + j] - mean)).toBeLessThan(1e-6);
            }
          } else expect(got).toEqual(src);
        }
      } finally {
        Object.values(w).forEach((t) => t.dispose());
      }

      // The prompts are the figures' text byte for byte (image tokens shown as the figures print them).
      const t = cyclicTable(m, tok, ds);
      const render = (seq: number[]) => {
        const out: string[] = [];
        for (let i = 0; i < seq.length; ) {
          let j = i;
          const image = t.vocab.isImageToken(seq[i]);
          while (j < seq.length && t.vocab.isImageToken(seq[j]) === image) j++;
          out.push(image ? seq.slice(i, j).map((x) => t.vocab.codeOf(x)).join(', ') : tok.hf.decode(seq.slice(i, j)));
          i = j;
        }
        return out.join('');
      };
      const codes = t.study(ds.splits.train[0].id).codes;
      expect(render(t.reportPrompt(codes, ['Pleural effusions', 'tube']))).toBe(renderPrompt(reportPrompt(codes, ['Pleural effusions', 'tube'])).trimEnd());
      expect(render(t.imagePrompt('No acute process.', [3, 5]))).toBe(renderPrompt(imagePrompt('No acute process.', [3, 5])));
      const e = ds.splits.train[0];
      const [toReport, toImage] = cyclicSequences(t, [e.id], [e.report]);
      expect(toReport.ids.at(-1)).toBe(tok.eosId);
      expect(` ${tok.clean(e.report)}`.startsWith(render(toReport.ids.slice(toReport.start, -1)))).toBe(true);
      expect(toImage.ids.slice(toImage.start)).toEqual(codes.map((c) => rows + c));

      const dir = path.join(tmp, 'learn-lm');
      await radkit.train(m, ds, { tokenizer: tok, outDir: dir, epochs: 12, batchSize: 16, imageSize: 32, lr: 1e-2, progress: 'none', workers: 0, evaluate: false, initBatches: 0 });
      const steps = fs.readFileSync(path.join(dir, 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((x) => x.type === 'step');
      const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
      expect(mean(steps.slice(-3).map((s) => s.loss))).toBeLessThan(0.6 * mean(steps.slice(0, 3).map((s) => s.loss)));

      // Reports use BPE ids only, never a special token; images exactly N image tokens.
      const prompts = ds.splits.test.map((x) => t.reportPrompt(t.study(x.id).codes, null));
      const tb = new radkit.TensorBatch({}, { extras: promptTensors(prompts) });
      try {
        const g = await m.generate(tb, { method: 'greedy', maxLength: 12, systemOptions: { direction: 'report' } });
        for (const row of g.tokens) for (const id of row) expect(id >= 1 && id < ids - 1).toBe(true);
      } finally {
        tb.dispose();
      }
      const reports = await generateCyclicReports(m, t, prompts, { maxLength: 12 });
      expect(reports.every((r) => typeof r === 'string')).toBe(true);
      const imgs = await generateCyclicImages(m, t, ds.splits.test.map((x) => t.imagePrompt(x.report, null)), { method: 'sample', seed: 1 });
      for (const c of imgs) {
        expect(c).toHaveLength(4);
        for (const x of c) expect(x >= 0 && x < 8).toBe(true);
      }
    } finally {
      m.dispose();
      Object.values(saved).forEach((x) => x.dispose());
    }

    // The paper preset keeps the LM in bfloat16: every loaded weight is the folder's, rounded; the
    // recipe is the paper's AdamW at 5e-6 for a pretrained LM.
    const paper = adamatchCyclic({ dataset: ds, tokenizer: tok, codes: codesFile, vq: 'unused', lm: lmDir, preset: 'paper' });
    try {
      expect(paper.config).toMatchObject({ lmDtype: 'bfloat16', vocabLayout: 'joint' });
      const name = 'gpt_neox.layers.0.attention.query_key_value.weight';
      const file = radkit.readSafetensors(path.join(lmDir, 'model.safetensors')).tensors;
      const got = tensorAsFloat32(paper, `lm.${name}`);
      expect(got.dtype).toBe('bfloat16');
      expect(got.values).toEqual(Array.from(file[name].toArray() as Float32Array).map(roundBF16));
      Object.values(file).forEach((x) => x.dispose());
      const dir = path.join(tmp, 'learn-lm-paper');
      await radkit.train(paper, ds, { tokenizer: tok, outDir: dir, epochs: 1, batchSize: 16, imageSize: 32, progress: 'none', workers: 0, evaluate: false, initBatches: 0, maxStepsPerEpoch: 1 });
      const step = fs.readFileSync(path.join(dir, 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).find((x) => x.type === 'step');
      expect(Number.isFinite(step.loss)).toBe(true);
      const meta = JSON.parse(fs.readFileSync(path.join(dir, 'checkpoints', 'last', 'checkpoint.json'), 'utf8'));
      expect(meta.trainOptions.lr).toBe(5e-6);
    } finally {
      paper.dispose();
    }

    // Misfits are refused before a model exists: the paper preset without an LM, sizes with an LM,
    // a LLaMA folder, a folder missing a tensor.
    expect(() => adamatchCyclic({ dataset: ds, tokenizer, codes: codesFile, vq: 'x', preset: 'paper' })).toThrow(/paper preset .* give --lm DIR/);
    expect(() => adamatchCyclic({ dataset: ds, tokenizer: tok, codes: codesFile, vq: 'x', lm: lmDir, sizes: TINY })).toThrow(/sizes and lm do not go together/);
    const llama = path.join(tmp, 'tiny-llama-as-neox');
    fs.cpSync(lmDir, llama, { recursive: true });
    const cfg = JSON.parse(fs.readFileSync(path.join(llama, 'config.json'), 'utf8'));
    fs.writeFileSync(path.join(llama, 'config.json'), JSON.stringify({ ...cfg, model_type: 'llama' }));
    expect(() => adamatchCyclic({ dataset: ds, tokenizer: tok, codes: codesFile, vq: 'x', lm: llama })).toThrow(/model_type must be gpt_neox/);
    const partial = path.join(tmp, 'tiny-neox-partial');
    fs.cpSync(lmDir, partial, { recursive: true });
    const all = radkit.readSafetensors(path.join(lmDir, 'model.safetensors')).tensors;
    radkit.writeSafetensors(path.join(partial, 'model.safetensors'), Object.fromEntries(Object.entries(all).filter(([n]) => n !== 'embed_out.weight')));
    Object.values(all).forEach((x) => x.dispose());
    expect(() => adamatchCyclic({ dataset: ds, tokenizer: tok, codes: codesFile, vq: 'x', lm: partial })).toThrow(/embed_out\.weight: not in the checkpoint/);
  }, 120_000);

  it('refuses a codes file without every training study, an unknown size and a bad direction', async () => {
    const partial = path.join(tmp, 'partial.json');
    const full = JSON.parse(fs.readFileSync(codesFile, 'utf8')) as ImageCodesFile;
    delete full.codes[ds.splits.train[3].id];
    fs.writeFileSync(partial, JSON.stringify(full));
    expect(() => adamatchCyclic({ dataset: ds, tokenizer, codes: partial, vq: 'x' })).toThrow(/1 training studies .* have no codes/);
    expect(() => adamatchCyclic({ dataset: ds, tokenizer, codes: codesFile, vq: 'x', sizes: { depth: 3 } as never })).toThrow(/unknown size 'depth'/);
    expect(() => adamatchCyclic({ dataset: ds, tokenizer, codes: path.join(tmp, 'nope.json'), vq: 'x' })).toThrow(/not readable JSON/);
    const m = adamatchCyclic({ dataset: ds, tokenizer, codes: codesFile, vq: 'x', sizes: TINY });
    try {
      const t = cyclicTable(m, tokenizer, ds);
      const tb = new radkit.TensorBatch({}, { extras: { prompt: { data: new BigInt64Array([1n]), shape: [1, 1], dtype: 'int64' }, promptMask: { data: new BigInt64Array([1n]), shape: [1, 1], dtype: 'int64' } } });
      await expect(m.generate(tb, { systemOptions: { direction: 'sideways' } })).rejects.toThrow(/direction must be 'report' or 'image'/);
      tb.dispose();
      expect(t.imageTokens).toBe(4);
    } finally {
      m.dispose();
    }
  });
});
