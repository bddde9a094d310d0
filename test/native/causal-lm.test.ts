// Causal LMs against an independent float64 reference (test/native/causal-lm-reference.ts) on tiny
// random checkpoints that the tests write in the Hugging Face layout.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ArgumentError, DataError, Tensor, nn, readSafetensorsHeader } from '../../lib/index.js';
import type { CausalLM } from '../../lib/nn/index.js';
import { HFTokenizer } from '../../lib/text/index.js';
import { byteLevelTokenizer } from '../unit/hf-tokenizer-fixtures.js';
import { type HFConfig, type Weights, randomWeights, referenceGreedy, referenceLogits, writeCheckpoint, writeSafetensorsFile } from './causal-lm-reference.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-causal-lm-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const llamaGQA: HFConfig = {
  model_type: 'llama',
  vocab_size: 48,
  hidden_size: 32,
  intermediate_size: 40,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: false,
  hidden_act: 'silu',
  bos_token_id: 1,
  eos_token_id: 2,
};
const llamaTied: HFConfig = { ...llamaGQA, num_key_value_heads: 4, tie_word_embeddings: true, rope_theta: 500 };
const neoxParallel: HFConfig = {
  model_type: 'gpt_neox',
  vocab_size: 40,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  rotary_pct: 0.5,
  rotary_emb_base: 10000,
  max_position_embeddings: 64,
  layer_norm_eps: 1e-5,
  use_parallel_residual: true,
  hidden_act: 'gelu',
  tie_word_embeddings: false,
  bos_token_id: 0,
  eos_token_id: 0,
};
const neoxSequential: HFConfig = { ...neoxParallel, use_parallel_residual: false, rotary_pct: 0.25 };

function ids(rows: number[][]): Tensor {
  return Tensor.from(BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0].length]);
}

function mask(rows: number[][]): Tensor {
  return Tensor.from(BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0].length]);
}

/** An id the reference never chose, as the EOS of a run that must not stop early. */
function unused(tokens: number[]): number {
  let id = 0;
  while (tokens.includes(id)) id++;
  return id;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const made = new Map<string, { dir: string; cfg: HFConfig; w: Weights }>();
function checkpoint(name: string, cfg: HFConfig, seed: number, dtype: 'F32' | 'BF16', shards = 1) {
  if (!made.has(name)) {
    const dir = path.join(tmp, name);
    const w = randomWeights(cfg, seed, dtype);
    writeCheckpoint(dir, cfg, w, { dtype, shards });
    made.set(name, { dir, cfg, w });
  }
  return made.get(name)!;
}

/** Logits of the model vs the reference at every valid position of every row. */
function compareLogits(lm: CausalLM, cfg: HFConfig, w: Weights, rows: number[][], valid?: number[][], prefix?: number[][][]): number {
  const V = cfg.vocab_size as number, T = rows[0].length;
  const opts: Parameters<CausalLM['logits']>[1] = {};
  if (valid) opts.attentionMask = mask(valid);
  if (prefix) opts.inputsEmbeds = Tensor.from(Float32Array.from(prefix.flat(2)), [prefix.length, prefix[0].length, prefix[0][0].length]);
  const got = lm.logits(ids(rows), opts);
  expect(got.shape).toEqual([rows.length, T, V]);
  expect(got.dtype).toBe('float32');
  const a = got.toArray() as Float32Array;
  let worst = 0;
  rows.forEach((row, b) => {
    const ref = referenceLogits(cfg, w, row, valid?.[b].map((x) => x !== 0), prefix?.[b] ?? []);
    const P = prefix ? prefix[b].length : 0;
    for (let t = 0; t < T; t++) {
      if (valid && !valid[b][t]) continue;
      worst = Math.max(worst, maxDiff(a.subarray((b * T + t) * V, (b * T + t + 1) * V), ref[P + t]));
    }
  });
  got.dispose();
  opts.attentionMask?.dispose();
  opts.inputsEmbeds?.dispose();
  return worst;
}

describe('causal LMs match a float64 reference forward', () => {
  const cases: [string, HFConfig, 'F32' | 'BF16', number][] = [
    ['llama, grouped-query attention, untied, 3 shards', llamaGQA, 'F32', 3],
    ['llama, tied embeddings, one file', llamaTied, 'F32', 1],
    ['gpt_neox, rotary_pct 0.5, parallel residual, bfloat16', neoxParallel, 'BF16', 1],
    ['gpt_neox, rotary_pct 0.25, sequential residual, bfloat16, 2 shards', neoxSequential, 'BF16', 2],
  ];
  cases.forEach(([name, cfg, dtype, shards], i) => {
    it(`${name}: logits within 1e-4 (left padding included) and identical greedy continuations`, async () => {
      const { dir, w } = checkpoint(`ref-${i}`, cfg, 100 + i, dtype, shards);
      const lm = await nn.loadCausalLM(dir);
      try {
        expect(lm.config.arch).toBe(cfg.model_type);
        expect(lm.dtype).toBe('float32');
        const rows = [
          [1, 5, 9, 17, 3, 22, 8],
          [0, 0, 1, 30, 12, 6, 31],
        ];
        const valid = [
          [1, 1, 1, 1, 1, 1, 1],
          [0, 0, 1, 1, 1, 1, 1],
        ];
        expect(compareLogits(lm, cfg, w, rows, valid)).toBeLessThan(1e-4);
        // greedy continuations equal the reference's (every step's top-1 margin reported so a tie cannot pass by luck)
        const prompt = [1, 7, 11, 4];
        const ref = referenceGreedy(cfg, w, prompt, 8);
        expect(ref.minGap).toBeGreaterThan(1e-3);
        const out = await lm.generate(ids([prompt]), { maxNewTokens: 8, eosId: unused(ref.tokens) });
        expect(out.tokens[0]).toEqual(ref.tokens);
      } finally {
        lm.dispose();
      }
    });
  });

  it('an embedding prefix (inputsEmbeds) is placed before the ids, in logits and in generation', async () => {
    const { dir, w } = checkpoint('ref-0', llamaGQA, 100, 'F32', 3);
    const lm = await nn.loadCausalLM(dir);
    try {
      const d = llamaGQA.hidden_size as number;
      const prefix = [0, 1].map((b) => [0, 1, 2].map((p) => Array.from({ length: d }, (_, j) => Math.sin(b + 3 * p + 0.7 * j))));
      const rows = [
        [4, 9, 13],
        [0, 21, 5],
      ];
      expect(compareLogits(lm, llamaGQA, w, rows, [[1, 1, 1], [0, 1, 1]], prefix)).toBeLessThan(1e-4);
      const ref = referenceGreedy(llamaGQA, w, rows[0], 6, prefix[0]);
      expect(ref.minGap).toBeGreaterThan(1e-3);
      const pre = Tensor.from(Float32Array.from(prefix[0].flat()), [1, 3, d]);
      const out = await lm.generate(ids([rows[0]]), { inputsEmbeds: pre, maxNewTokens: 6, eosId: unused(ref.tokens) });
      expect(out.tokens[0]).toEqual(ref.tokens);
      pre.dispose();
    } finally {
      lm.dispose();
    }
  });
});

describe('cached generation equals recompute', () => {
  it('greedy, beam and seeded sampling; left-padded batches; with and without a prefix', async () => {
    const { dir } = checkpoint('ref-2', neoxParallel, 102, 'BF16', 1);
    const lm = await nn.loadCausalLM(dir);
    try {
      const prompt = ids([
        [0, 0, 3, 9, 14],
        [5, 6, 7, 8, 9],
        [0, 0, 0, 0, 33],
      ]);
      const attentionMask = mask([
        [0, 0, 1, 1, 1],
        [1, 1, 1, 1, 1],
        [0, 0, 0, 0, 1],
      ]);
      const prefix = Tensor.from(Float32Array.from({ length: 3 * 2 * 32 }, (_, i) => Math.cos(i)), [3, 2, 32]);
      for (const inputsEmbeds of [undefined, prefix]) {
        for (const opts of [{ maxNewTokens: 10 }, { method: 'beam' as const, beams: 3, maxNewTokens: 8 }, { method: 'sample' as const, seed: 7, topK: 10, maxNewTokens: 10 }]) {
          const full = await lm.generate(prompt, { ...opts, attentionMask, inputsEmbeds, cache: 'full' });
          const none = await lm.generate(prompt, { ...opts, attentionMask, inputsEmbeds, cache: 'none' });
          expect(full.tokens).toEqual(none.tokens);
          expect(maxDiff(full.scores, none.scores)).toBeLessThan(1e-4);
        }
      }
      // each row of a padded batch continues as it does alone
      const alone = await lm.generate(ids([[3, 9, 14]]), { maxNewTokens: 10 });
      const batch = await lm.generate(prompt, { attentionMask, maxNewTokens: 10 });
      expect(batch.tokens[0]).toEqual(alone.tokens[0]);
      prompt.dispose();
      attentionMask.dispose();
      prefix.dispose();
    } finally {
      lm.dispose();
    }
  });

  it('stop ids, minNewTokens and allowedTokens (constrained decoding)', async () => {
    const { dir } = checkpoint('ref-1', llamaTied, 101, 'F32', 1);
    const lm = await nn.loadCausalLM(dir);
    try {
      const p = ids([[1, 4, 6]]);
      const free = await lm.generate(p, { maxNewTokens: 12 });
      expect(free.tokens[0].length).toBeGreaterThan(3);
      const stop = free.tokens[0][3];
      const stopped = await lm.generate(p, { maxNewTokens: 12, stopIds: [stop] });
      const first = free.tokens[0].indexOf(stop);
      expect(stopped.tokens[0]).toEqual(free.tokens[0].slice(0, first));
      expect(stopped.finished[0]).toBe(true);
      const constrained = await lm.generate(p, { maxNewTokens: 10, minNewTokens: 10, allowedTokens: [[20, 30], [40, 44]] });
      expect(constrained.tokens[0]).toHaveLength(10);
      for (const t of constrained.tokens[0]) expect((t >= 20 && t < 30) || (t >= 40 && t < 44)).toBe(true);
      const sampled = await lm.generate(p, { method: 'sample', seed: 3, maxNewTokens: 10, minNewTokens: 10, allowedTokens: [[10, 12]] });
      for (const t of sampled.tokens[0]) expect(t === 10 || t === 11).toBe(true);
      await expect(lm.generate(p, { maxLength: 3, maxNewTokens: 4 })).rejects.toThrow(/maxLength and options.maxNewTokens/);
      await expect(lm.generate(p, { allowedTokens: [[5, 5]] })).rejects.toThrow(/allowedTokens\[0\]\[1\]/);
      await expect(lm.generate(p, { stopIds: [48] })).rejects.toThrow(/stopIds\[0\]/);
      await expect(lm.generate(p, { bogus: 1 } as never)).rejects.toThrow(/unknown generate option 'bogus'/);
      p.dispose();
    } finally {
      lm.dispose();
    }
  });
});

describe('loss, LoRA and vocabulary extension', () => {
  it('loss with a response mask equals the cross-entropy of the reference logits', async () => {
    const { dir, w } = checkpoint('ref-0', llamaGQA, 100, 'F32', 3);
    const lm = await nn.loadCausalLM(dir);
    try {
      const row = [1, 5, 9, 17, 3, 22];
      const lossMask = [0, 0, 0, 1, 1, 1];
      const ref = referenceLogits(llamaGQA, w, row);
      let sum = 0;
      for (let t = 3; t < 6; t++) {
        const l = ref[t - 1];
        const m = Math.max(...l);
        sum += Math.log(l.reduce((a, v) => a + Math.exp(v - m), 0)) + m - l[row[t]];
      }
      const loss = lm.loss(ids([row]), { lossMask: mask([lossMask]) });
      expect(loss.shape).toEqual([]);
      expect(Math.abs((loss.toArray() as Float32Array)[0] - sum / 3)).toBeLessThan(1e-4);
      loss.dispose();
    } finally {
      lm.dispose();
    }
  });

  it('LoRA: identity at init, training lowers the loss with base weights bit-identical, merge keeps the logits, adapters reload', async () => {
    const { dir } = checkpoint('ref-0', llamaGQA, 100, 'F32', 3);
    const lm = await nn.loadCausalLM(dir);
    const fresh = await nn.loadCausalLM(dir);
    try {
      const probe = ids([[1, 5, 9, 17, 3, 22, 8, 2]]);
      const before = lm.logits(probe).toArray() as Float32Array;
      const base = lm.weights();
      const modules = lm.addLora({ rank: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'down_proj'] });
      expect(modules).toHaveLength(6);
      expect(modules).toContain('model.layers.1.mlp.down_proj');
      expect(lm.trainableParameterCount()).toBe(2 * (4 * 32 + 32 * 4) + 2 * (4 * 32 + 16 * 4) + 2 * (4 * 40 + 32 * 4));
      // B = 0: the adapted model is exactly the base model
      expect(Array.from(lm.logits(probe).toArray() as Float32Array)).toEqual(Array.from(before));
      // toy task: answer [7, 7, 3] after the prompt; loss on the answer only
      const seq = ids([[1, 12, 30, 44, 7, 7, 3]]);
      const lossMask = mask([[0, 0, 0, 0, 1, 1, 1]]);
      lm.setupOptimizer({ lr: 0.02 });
      const first = await lm.trainStep(seq, { lossMask });
      let last = first;
      for (let i = 0; i < 30; i++) last = await lm.trainStep(seq, { lossMask });
      expect(last.loss).toBeLessThan(first.loss * 0.5);
      const after = lm.weights();
      for (const [name, t] of Object.entries(base)) {
        expect(Buffer.from((after[name].toArray() as Float32Array).buffer).equals(Buffer.from((t.toArray() as Float32Array).buffer)), name).toBe(true);
      }
      Object.values(after).forEach((t) => t.dispose());
      const adapted = lm.logits(probe).toArray() as Float32Array;
      expect(maxDiff(adapted, before)).toBeGreaterThan(1e-3);
      // saved adapters, loaded onto another copy of the base, give the same logits
      const adapterDir = path.join(tmp, 'adapter');
      await lm.saveLora(adapterDir);
      expect(JSON.parse(fs.readFileSync(path.join(adapterDir, 'adapter_config.json'), 'utf8'))).toMatchObject({ r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj', 'down_proj'] });
      fresh.loadLora(adapterDir);
      expect(maxDiff(fresh.logits(probe).toArray() as Float32Array, adapted)).toBe(0);
      // merged: no adapters, same logits
      lm.mergeLora();
      expect(lm.lora).toBeNull();
      expect(Object.keys(lm.weights()).some((k) => k.includes('lora_'))).toBe(false);
      expect(maxDiff(lm.logits(probe).toArray() as Float32Array, adapted)).toBeLessThan(1e-5);
      Object.values(base).forEach((t) => t.dispose());
      probe.dispose();
      seq.dispose();
      lossMask.dispose();
    } finally {
      lm.dispose();
      fresh.dispose();
    }
  });

  it('LoRA failures change nothing', async () => {
    const lm = nn.createCausalLM({ arch: 'gpt_neox', vocabSize: 16, hiddenSize: 8, numLayers: 1, numHeads: 2, intermediateSize: 16, rotaryDim: 2 }, { seed: 1 });
    try {
      expect(() => lm.addLora({ targets: ['q_proj'] })).toThrow(/no module named 'q_proj'.*query_key_value/);
      expect(() => lm.addLora({ targets: ['dense'], trainModules: ['nope'] })).toThrow(/trainModules: no module named 'nope'/);
      expect(() => lm.addLora({ rank: 0 })).toThrow(ArgumentError);
      expect(lm.lora).toBeNull();
      expect(lm.trainableParameterCount()).toBe(lm.parameterCount());
      expect(() => lm.mergeLora()).toThrow(/no LoRA adapters/);
      lm.addLora({ targets: ['query_key_value', 'dense'] });
      expect(() => lm.addLora({})).toThrow(/already has LoRA adapters/);
      const bad = path.join(tmp, 'bad-adapter');
      fs.mkdirSync(bad, { recursive: true });
      fs.writeFileSync(path.join(bad, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 8, lora_alpha: 16, target_modules: ['query_key_value', 'dense'] }));
      writeSafetensorsFile(path.join(bad, 'adapter_model.safetensors'), [['base_model.model.gpt_neox.layers.0.attention.dense.lora_A.weight', { shape: [8, 9], data: new Float64Array(72) }]], 'F32');
      expect(() => lm.loadLora(bad)).toThrow(/does not fit the model's adapters[\s\S]*file \[8, 9\], model \[8, 8\][\s\S]*missing tensor/);
    } finally {
      lm.dispose();
    }
  });

  it('vocabulary extension: new rows start at the mean embedding; trainModules keep them trainable', () => {
    const lm = nn.createCausalLM({ arch: 'llama', vocabSize: 10, hiddenSize: 8, numLayers: 1, numHeads: 2, intermediateSize: 12 }, { seed: 3 });
    try {
      const before = lm.weights();
      lm.resizeVocab(13);
      expect(lm.config.vocabSize).toBe(13);
      const after = lm.weights();
      for (const name of ['model.embed_tokens.weight', 'lm_head.weight']) {
        const old = before[name].toArray() as Float32Array;
        const now = after[name].toArray() as Float32Array;
        expect(after[name].shape).toEqual([13, 8]);
        expect(Array.from(now.subarray(0, 80))).toEqual(Array.from(old));
        for (let j = 0; j < 8; j++) {
          let mean = 0;
          for (let r = 0; r < 10; r++) mean += old[r * 8 + j] / 10;
          for (let r = 10; r < 13; r++) expect(Math.abs(now[r * 8 + j] - mean)).toBeLessThan(1e-6);
        }
      }
      const l = lm.logits(ids([[1, 12, 11]]));
      expect(l.shape).toEqual([1, 3, 13]);
      expect(() => lm.resizeVocab(12)).toThrow(/can only grow/);
      lm.addLora({ targets: ['q_proj'], trainModules: ['embed_tokens', 'lm_head'] });
      expect(Object.keys(lm.weights('adapter')).sort()).toEqual(
        ['lm_head.weight', 'model.embed_tokens.weight', 'model.layers.0.self_attn.q_proj.lora_A.weight', 'model.layers.0.self_attn.q_proj.lora_B.weight'].sort(),
      );
      [before, after].forEach((d) => Object.values(d).forEach((t) => t.dispose()));
      l.dispose();
    } finally {
      lm.dispose();
    }
  });
});

describe('tokenizer and model together', () => {
  it('left-padded batches from encodeBatch generate like single prompts; extendVocabulary grows both', async () => {
    const tok = HFTokenizer.fromJSON(byteLevelTokenizer(), { eos_token: '<|endoftext|>' });
    const lm = nn.createCausalLM({ arch: 'gpt_neox', vocabSize: tok.vocabSize, hiddenSize: 16, numLayers: 1, numHeads: 2, intermediateSize: 32, rotaryDim: 4, eosId: tok.eosId }, { seed: 4 });
    try {
      const { ids: batch, attentionMask, lengths } = tok.encodeBatch(['hello world', 'the'], { padId: 0 });
      expect(lengths).toEqual([2, 2]);
      const two = tok.encodeBatch(['hello world the hello', 'the']);
      const width = Math.max(...two.lengths);
      expect(two.lengths[1]).toBeLessThan(width);
      expect(Array.from(two.attentionMask.toArray() as BigInt64Array).map(Number)).toEqual([
        ...Array(width).fill(1),
        ...Array(width - two.lengths[1]).fill(0),
        ...Array(two.lengths[1]).fill(1),
      ]);
      const out = await lm.generate(two.ids, { attentionMask: two.attentionMask, maxNewTokens: 5 });
      const single = await lm.generate(tok.encodeBatch(['the']).ids, { maxNewTokens: 5 });
      expect(out.tokens[1]).toEqual(single.tokens[0]);
      expect(typeof tok.decode(out.tokens[0])).toBe('string');
      const added = nn.extendVocabulary(lm, tok, ['<img_0>', '<img_1>', '<img_2>']);
      expect(added).toEqual([tok.vocabSize - 3, tok.vocabSize - 2, tok.vocabSize - 1]);
      expect(lm.config.vocabSize).toBe(tok.vocabSize);
      const img = await lm.generate(tok.encodeBatch(['hello<img_1>']).ids, { maxNewTokens: 4, minNewTokens: 4, allowedTokens: [[added[0], added[2] + 1]] });
      for (const t of img.tokens[0]) expect(added).toContain(t);
      expect(tok.decode(img.tokens[0])).toMatch(/^(<img_[012]>){4}$/);
      const other = nn.createCausalLM({ arch: 'llama', vocabSize: 5, hiddenSize: 8, numLayers: 1, numHeads: 2, intermediateSize: 8 });
      expect(() => nn.extendVocabulary(other, tok, ['x'])).toThrow(/do not belong together/);
      expect(tok.vocabSize).toBe(lm.config.vocabSize);
      other.dispose();
      [batch, attentionMask, two.ids, two.attentionMask].forEach((t) => t.dispose());
    } finally {
      lm.dispose();
    }
  });
});

describe('loading checks', () => {
  it('save writes a checkpoint that loads back to the same logits', async () => {
    const lm = nn.createCausalLM({ arch: 'gpt_neox', vocabSize: 20, hiddenSize: 16, numLayers: 2, numHeads: 2, intermediateSize: 24, rotaryDim: 4, parallelResidual: false }, { seed: 5 });
    const dir = path.join(tmp, 'saved');
    await lm.save(dir);
    const back = await nn.loadCausalLM(dir);
    try {
      const p = ids([[1, 2, 3, 4]]);
      expect(maxDiff(back.logits(p).toArray() as Float32Array, lm.logits(p).toArray() as Float32Array)).toBe(0);
      expect(back.config).toEqual(lm.config);
      p.dispose();
    } finally {
      lm.dispose();
      back.dispose();
    }
  });

  it('bfloat16 compute on the CPU: close to float32, cached == recompute, LoRA steps train; saved as BF16', async () => {
    for (const arch of ['gpt_neox', 'llama'] as const) {
      const f32 = nn.createCausalLM({ arch, vocabSize: 50, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: arch === 'llama' ? 2 : 4, intermediateSize: 48, rotaryDim: 8 }, { seed: 3 });
      const dir = path.join(tmp, `bf16-${arch}`);
      await f32.save(dir);
      const bf = await nn.loadCausalLM(dir, { dtype: 'bfloat16' });
      try {
        expect(bf.dtype).toBe('bfloat16');
        const p = ids([[1, 5, 9, 13, 2]]);
        expect(maxDiff(bf.logits(p).toArray() as Float32Array, f32.logits(p).toArray() as Float32Array)).toBeLessThan(2e-2);
        const full = await bf.generate(p, { maxNewTokens: 6, cache: 'full' });
        const none = await bf.generate(p, { maxNewTokens: 6, cache: 'none' });
        expect(full.tokens).toEqual(none.tokens);
        bf.addLora({ rank: 2 });
        bf.setupOptimizer({ lr: 0.05 });
        const first = await bf.trainStep(p);
        let last = first;
        for (let i = 0; i < 5; i++) last = await bf.trainStep(p);
        expect(last.loss).toBeLessThan(first.loss);
        bf.mergeLora();
        const out = path.join(tmp, `bf16-${arch}-merged`);
        await bf.save(out);
        expect(new Set(readSafetensorsHeader(path.join(out, 'model.safetensors')).entries.map((e) => e.code))).toEqual(new Set(['BF16']));
        expect(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).torch_dtype).toBe('bfloat16');
        p.dispose();
      } finally {
        bf.dispose();
        f32.dispose();
      }
    }
  });

  it('one error lists missing, unexpected and mis-shaped tensors; unknown model_type and bad shards are named', async () => {
    const cfg: HFConfig = { ...llamaGQA, num_hidden_layers: 1 };
    const w = randomWeights(cfg, 9, 'F32');
    w.delete('model.norm.weight');
    w.set('model.extra.weight', { shape: [2], data: new Float64Array(2) });
    w.set('lm_head.weight', { shape: [47, 32], data: new Float64Array(47 * 32) });
    const dir = path.join(tmp, 'broken');
    writeCheckpoint(dir, cfg, w, { dtype: 'F32' });
    const err = await nn.loadCausalLM(dir).catch((e) => e);
    expect(err).toBeInstanceOf(ArgumentError);
    expect(err.message).toMatch(/missing tensors \(1\):\s+model\.norm\.weight/);
    expect(err.message).toMatch(/unexpected tensors \(1\):\s+model\.extra\.weight/);
    expect(err.message).toMatch(/lm_head\.weight: checkpoint \[47, 32\], model \[48, 32\]/);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, model_type: 'mamba' }));
    await expect(nn.loadCausalLM(dir)).rejects.toThrow(DataError);
    await expect(nn.loadCausalLM(dir)).rejects.toThrow(/model_type "mamba" is not supported/);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, rope_scaling: { type: 'linear', factor: 2 } }));
    await expect(nn.loadCausalLM(dir)).rejects.toThrow(/rope_scaling/);
    // an index that disagrees with its shards
    const sharded = checkpoint('ref-0', llamaGQA, 100, 'F32', 3).dir;
    const copy = path.join(tmp, 'bad-index');
    fs.cpSync(sharded, copy, { recursive: true });
    const index = JSON.parse(fs.readFileSync(path.join(copy, 'model.safetensors.index.json'), 'utf8'));
    index.weight_map['model.norm.weight'] = 'model-00001-of-00003.safetensors';
    fs.writeFileSync(path.join(copy, 'model.safetensors.index.json'), JSON.stringify(index));
    await expect(nn.loadCausalLM(copy)).rejects.toThrow(/the index does not match the shards: model\.norm\.weight/);
    await expect(nn.loadCausalLM(path.join(tmp, 'nowhere'))).rejects.toThrow(/cannot read .*config\.json/);
  });

  it('argument errors name the argument', async () => {
    const lm = nn.createCausalLM({ arch: 'llama', vocabSize: 10, hiddenSize: 8, numLayers: 1, numHeads: 2, numKvHeads: 1, intermediateSize: 12, maxPositions: 6 });
    try {
      expect(() => lm.logits(ids([[1, 10]]))).toThrow(/ids token ids must be in \[0, 9\]/);
      expect(() => lm.logits(ids([[1, 2]]), { attentionMask: mask([[1, 1, 1]]) })).toThrow(/attentionMask must be \[1, 2\]/);
      expect(() => lm.logits(ids([[1, 2]]), { inputsEmbeds: Tensor.zeros([1, 2, 7]) })).toThrow(/inputsEmbeds must be \[1, prefix length >= 1, 8\]/);
      expect(() => lm.logits(ids([[1, 2, 3, 4, 5, 6, 7]]))).toThrow(/exceeds config\.maxPositions/);
      await expect(lm.generate(ids([[1, 2]]), { attentionMask: mask([[1, 0]]) })).rejects.toThrow(/left-padded/);
      expect(() => lm.logits(ids([[1]]), { lossMask: mask([[1]]) } as never)).toThrow(/unknown option 'lossMask'/);
      await expect(lm.trainStep(ids([[1, 2]]))).rejects.toThrow(/setupOptimizer first/);
      // one worker call at a time: the model refuses other calls until the generate settles
      const running = lm.generate(ids([[1, 2]]), { maxNewTokens: 3 });
      expect(() => lm.logits(ids([[1]]))).toThrow(expect.objectContaining({ code: 'ERR_BUSY' }));
      await expect(lm.generate(ids([[1, 2]]))).rejects.toThrow(/await it first/);
      expect((await running).tokens[0]).toHaveLength(3);
      expect(lm.logits(ids([[1]])).shape).toEqual([1, 1, 10]);
      expect(() => nn.createCausalLM({ arch: 'llama', vocabSize: 10, hiddenSize: 8, numLayers: 1, numHeads: 3, numKvHeads: 2, intermediateSize: 4 })).toThrow(/numKvHeads must divide numHeads/);
    } finally {
      lm.dispose();
    }
    expect(() => lm.logits(ids([[1]]))).toThrow(/disposed/);
  });
});
