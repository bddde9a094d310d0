import { describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { ArgumentError, DisposedError, Tensor, nn } from '../../lib/index.js';
import type { GenerateOptions, TransformerConfig, TransformerModel } from '../../lib/nn/index.js';

const small: TransformerConfig = { vocabSize: 24, dModel: 16, numHeads: 2, dFF: 32, encoderLayers: 2, decoderLayers: 2, dtype: 'float64', initGain: 2 };

function features(b: number, s: number, d: number, seed: number): Tensor {
  radkit.manualSeed(seed);
  return Tensor.randn([b, s, d], { dtype: 'float64' });
}

function ids(rows: number[][]): Tensor {
  return Tensor.from(BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0].length]);
}

function values(t: Tensor): number[] {
  return Array.from(t.toArray() as Float64Array | Float32Array);
}

async function allModes(model: TransformerModel, src: Tensor, options: GenerateOptions) {
  const out = [];
  for (const cache of ['full', 'cross', 'none'] as const) out.push(await model.generate(src, { ...options, cache }));
  return out;
}

function ngrams(seq: number[], n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i + n <= seq.length; i++) out.push(seq.slice(i, i + n).join(','));
  return out;
}

describe('nn transformer: cached decoding equals full recompute', () => {
  const configs: [string, TransformerConfig][] = [
    ['pre-norm, sinusoidal, feature source', { ...small, seed: 1 }],
    ['post-norm, learned positions, projected features', { ...small, seed: 2, norm: 'post', positions: 'learned', sourceDim: 12, sourcePositions: true }],
    ['token source', { ...small, seed: 3, sourceVocabSize: 30 }],
  ];
  for (const [name, config] of configs) {
    it(`${name}: greedy, beam and seeded sampling give the same tokens with and without the cache`, async () => {
      using model = nn.createTransformer(config);
      const c = model.config;
      const src = c.sourceVocabSize > 0 ? ids([[5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 0, 0]]) : features(2, 6, c.sourceDim, 7);
      for (const options of [{ maxLength: 12 }, { beams: 3, maxLength: 12 }, { method: 'sample', seed: 5, maxLength: 12 }] as GenerateOptions[]) {
        const [full, cross, none] = await allModes(model, src, options);
        expect(cross.tokens).toEqual(full.tokens);
        expect(none.tokens).toEqual(full.tokens);
        for (let b = 0; b < 2; b++) {
          expect(cross.scores[b]).toBeCloseTo(full.scores[b], 9);
          expect(none.scores[b]).toBeCloseTo(full.scores[b], 9);
        }
      }
      src.dispose();
    });
  }

  it('greedy scores equal teacher-forced log-probabilities of the generated tokens', async () => {
    using model = nn.createTransformer({ ...small, seed: 4 });
    using src = features(3, 5, 16, 1);
    const r = await model.generate(src, { maxLength: 9 });
    for (let b = 0; b < 3; b++) {
      const seq = r.tokens[b];
      using one = features(3, 5, 16, 1); // same source rows
      using target = ids([[1, ...seq.slice(0, -1)], [1, ...seq.slice(0, -1)], [1, ...seq.slice(0, -1)]]);
      using lp = model.logProbs(one, target);
      const v = values(lp);
      const V = 24;
      let sum = 0;
      for (let t = 0; t < seq.length; t++) sum += v[(b * seq.length + t) * V + seq[t]];
      expect(sum).toBeCloseTo(r.scores[b], 9);
    }
  });

  it('decoder-only model with left-padded prompts: same tokens with and without the cache, padding ignored', async () => {
    using model = nn.createTransformer({ ...small, kind: 'decoder-only', seed: 9 });
    using prompts = ids([
      [0, 0, 5, 6],
      [7, 8, 9, 10],
    ]);
    for (const options of [{ maxLength: 10 }, { beams: 3, maxLength: 10 }, { method: 'sample', seed: 2, maxLength: 10 }] as GenerateOptions[]) {
      const [full, cross, none] = await allModes(model, prompts, options);
      expect(cross.tokens).toEqual(full.tokens);
      expect(none.tokens).toEqual(full.tokens);
      expect(none.scores[0]).toBeCloseTo(full.scores[0], 9);
    }
    // the left-padded prompt gives what the unpadded prompt gives
    using alone = ids([[5, 6]]);
    const a = await model.generate(alone, { beams: 3, maxLength: 10 });
    const batch = await model.generate(prompts, { beams: 3, maxLength: 10 });
    expect(a.tokens[0]).toEqual(batch.tokens[0]);
    expect(a.scores[0]).toBeCloseTo(batch.scores[0], 9);
  });
});

describe('nn search', () => {
  it('beam search with one beam equals greedy', async () => {
    for (const seed of [11, 12, 13]) {
      using model = nn.createTransformer({ ...small, seed });
      using src = features(4, 5, 16, seed);
      const g = await model.generate(src, { maxLength: 15 });
      const b0 = await model.generate(src, { beams: 1, method: 'beam', maxLength: 15, lengthPenalty: 0 });
      const b1 = await model.generate(src, { beams: 1, method: 'beam', maxLength: 15, lengthPenalty: 1, earlyStopping: true });
      expect(b0.tokens).toEqual(g.tokens);
      expect(b1.tokens).toEqual(g.tokens);
      for (let i = 0; i < 4; i++) expect(b0.scores[i]).toBeCloseTo(g.scores[i], 9);
      // with n-gram blocking and a repetition penalty the two still agree
      const gb = await model.generate(src, { maxLength: 15, noRepeatNgram: 2, repetitionPenalty: 1.3 });
      const bb = await model.generate(src, { beams: 1, method: 'beam', maxLength: 15, lengthPenalty: 0, noRepeatNgram: 2, repetitionPenalty: 1.3 });
      expect(bb.tokens).toEqual(gb.tokens);
    }
  });

  it('beam search equals exhaustive search on a tiny vocabulary', async () => {
    const V = 5;
    const L = 4;
    const EOS = 2;
    using model = nn.createTransformer({ vocabSize: V, dModel: 8, numHeads: 2, dFF: 16, encoderLayers: 1, decoderLayers: 2, dtype: 'float64', seed: 21, initGain: 3 });
    // every target prefix [BOS, x1, x2, x3]: V^3 rows, for two sources
    const prefixes: number[][] = [];
    for (let a = 0; a < V; a++) for (let b = 0; b < V; b++) for (let c = 0; c < V; c++) prefixes.push([1, a, b, c]);
    for (const [lengthPenalty, minLength] of [
      [0, 0],
      [1, 0],
      [1, 2],
      [-0.5, 1],
    ]) {
      for (const seed of [1, 2]) {
        using src = features(1, 4, 8, seed);
        using many = Tensor.from(new Float64Array(Array.from({ length: prefixes.length }, () => values(src)).flat()), [prefixes.length, 4, 8], { dtype: 'float64' });
        using target = ids(prefixes);
        using lp = model.logProbs(many, target);
        const v = values(lp);
        const logp = (seq: number[], t: number) => {
          // row of the prefix seq[0..t) padded with zeros
          const p = [...seq.slice(0, t), 0, 0, 0].slice(0, 3);
          const row = p[0] * V * V + p[1] * V + p[2];
          return v[(row * L + t) * V + seq[t]];
        };
        let best = -Infinity;
        let bestSeq: number[] = [];
        const visit = (seq: number[], sum: number) => {
          const t = seq.length;
          for (let tok = 0; tok < V; tok++) {
            if (tok === EOS && t < minLength) continue;
            const s = sum + logp([...seq, tok], t);
            const next = [...seq, tok];
            if (tok === EOS || next.length === L) {
              const score = lengthPenalty === 0 ? s : s / Math.pow(next.length, lengthPenalty);
              if (score > best) [best, bestSeq] = [score, next];
            } else visit(next, s);
          }
        };
        visit([], 0);
        const r = await model.generate(src, { beams: V ** (L - 1) * V, maxLength: L, minLength, lengthPenalty });
        expect(r.tokens[0]).toEqual(bestSeq);
        expect(r.scores[0]).toBeCloseTo(best, 9);
        // a narrow beam can only do as well or worse
        const narrow = await model.generate(src, { beams: 2, maxLength: L, minLength, lengthPenalty });
        expect(narrow.scores[0]).toBeLessThanOrEqual(best + 1e-12);
      }
    }
  });

  it('no-repeat n-gram blocking never emits a repeated n-gram (greedy, beam, sampling)', async () => {
    using model = nn.createTransformer({ ...small, vocabSize: 8, seed: 31, initGain: 3 });
    using src = features(3, 4, 16, 3);
    const plain = await model.generate(src, { maxLength: 30, minLength: 30 });
    const repeats = (seq: number[], n: number) => new Set(ngrams(seq, n)).size < ngrams(seq, n).length;
    expect(plain.tokens.some((s) => repeats(s, 2))).toBe(true); // the test is meaningful: this model repeats itself
    for (const n of [1, 2, 3]) {
      for (const options of [{}, { beams: 3 }, { method: 'sample', seed: 4 }] as GenerateOptions[]) {
        const r = await model.generate(src, { ...options, maxLength: 30, noRepeatNgram: n });
        for (const seq of r.tokens) expect(repeats(seq, n)).toBe(false);
        if (n === 1) for (const seq of r.tokens) expect(seq.length).toBeLessThanOrEqual(8);
      }
    }
  });

  it('repetition penalty reduces repeated tokens; min/max length and EOS are respected', async () => {
    using model = nn.createTransformer({ ...small, vocabSize: 10, seed: 41, initGain: 3 });
    using src = features(4, 4, 16, 8);
    const count = (r: { tokens: number[][] }) => r.tokens.reduce((a, s) => a + (s.length - new Set(s).size), 0);
    const plain = await model.generate(src, { maxLength: 20, minLength: 20 });
    const penalised = await model.generate(src, { maxLength: 20, minLength: 20, repetitionPenalty: 3 });
    expect(count(penalised)).toBeLessThan(count(plain));
    for (const options of [{}, { beams: 4 }, { method: 'sample', seed: 1 }] as GenerateOptions[]) {
      const r = await model.generate(src, { ...options, maxLength: 12, minLength: 5 });
      r.tokens.forEach((seq, i) => {
        expect(seq.length).toBeGreaterThanOrEqual(5);
        expect(seq.length).toBeLessThanOrEqual(12);
        expect(seq.slice(0, -1)).not.toContain(2); // EOS only at the end
        expect(r.finished[i]).toBe(seq[seq.length - 1] === 2);
      });
    }
  });

  it('padding in the source changes nothing (features with a mask, tokens with padId), and batching changes nothing', async () => {
    using model = nn.createTransformer({ ...small, seed: 51 });
    using src = features(2, 5, 16, 9);
    // the same two sources padded to 8 positions with garbage, masked out
    const d = values(src);
    const padded = new Float64Array(2 * 8 * 16).map(() => 1e3 * (Math.random() - 0.5));
    for (let b = 0; b < 2; b++) padded.set(d.slice(b * 80, b * 80 + 80), b * 128);
    using big = Tensor.from(padded, [2, 8, 16]);
    using mask = Tensor.from(new Uint8Array(16).map((_, i) => (i % 8 < 5 ? 1 : 0)), [2, 8]);
    for (const options of [{ maxLength: 10 }, { beams: 3, maxLength: 10 }, { method: 'sample', seed: 3, maxLength: 10 }] as GenerateOptions[]) {
      const a = await model.generate(src, { ...options, returnAttention: true });
      const b = await model.generate(big, { ...options, sourceMask: mask, returnAttention: true });
      expect(b.tokens).toEqual(a.tokens);
      for (let i = 0; i < 2; i++) expect(b.scores[i]).toBeCloseTo(a.scores[i], 9);
      const aa = values(a.attention!);
      const ba = values(b.attention!);
      const T = a.attention!.shape[1];
      for (let i = 0; i < 2; i++)
        for (let t = 0; t < T; t++)
          for (let s = 0; s < 8; s++) {
            const x = ba[(i * T + t) * 8 + s];
            if (s >= 5) expect(x).toBe(0);
            else expect(x).toBeCloseTo(aa[(i * T + t) * 5 + s], 6);
          }
      a.attention!.dispose();
      b.attention!.dispose();
    }
    // each source alone decodes as it does inside the batch (beam search)
    const batch = await model.generate(src, { beams: 3, maxLength: 10 });
    const one = features(2, 5, 16, 9);
    const first = Tensor.from(new Float64Array(values(one).slice(0, 80)), [1, 5, 16]);
    const alone = await model.generate(first, { beams: 3, maxLength: 10 });
    expect(alone.tokens[0]).toEqual(batch.tokens[0]);
    one.dispose();
    first.dispose();
    // token sources: trailing padId positions are masked automatically
    using tok = nn.createTransformer({ ...small, seed: 52, sourceVocabSize: 20 });
    using s1 = ids([[4, 5, 6]]);
    using s2 = ids([[4, 5, 6, 0, 0, 0]]);
    const r1 = await tok.generate(s1, { beams: 2, maxLength: 8 });
    const r2 = await tok.generate(s2, { beams: 2, maxLength: 8 });
    expect(r2.tokens).toEqual(r1.tokens);
    expect(r2.scores[0]).toBeCloseTo(r1.scores[0], 9);
  });

  it('source attention rows are distributions over the valid source positions', async () => {
    using model = nn.createTransformer({ ...small, seed: 61 });
    using src = features(2, 5, 16, 2);
    const r = await model.generate(src, { beams: 2, maxLength: 6, returnAttention: true });
    const a = values(r.attention!);
    const T = r.attention!.shape[1];
    expect(r.attention!.shape).toEqual([2, T, 5]);
    for (let i = 0; i < 2; i++)
      for (let t = 0; t < r.tokens[i].length; t++) {
        const row = a.slice((i * T + t) * 5, (i * T + t) * 5 + 5);
        expect(row.reduce((x, y) => x + y, 0)).toBeCloseTo(1, 5);
      }
    r.attention!.dispose();
  });

  it('sampling is deterministic under a seed; top-k 1 and tiny top-p reduce to greedy', async () => {
    using model = nn.createTransformer({ ...small, seed: 71 });
    using src = features(4, 5, 16, 4);
    const opts: GenerateOptions = { method: 'sample', maxLength: 15, temperature: 1.5 };
    const a = await model.generate(src, { ...opts, seed: 123 });
    const b = await model.generate(src, { ...opts, seed: 123 });
    const c = await model.generate(src, { ...opts, seed: 124 });
    expect(b.tokens).toEqual(a.tokens);
    expect(b.scores).toEqual(a.scores);
    expect(c.tokens).not.toEqual(a.tokens);
    radkit.manualSeed(5);
    const g1 = await model.generate(src, opts);
    radkit.manualSeed(5);
    const g2 = await model.generate(src, opts);
    expect(g2.tokens).toEqual(g1.tokens);
    const greedy = await model.generate(src, { maxLength: 15 });
    expect((await model.generate(src, { method: 'sample', maxLength: 15, topK: 1, seed: 1 })).tokens).toEqual(greedy.tokens);
    expect((await model.generate(src, { method: 'sample', maxLength: 15, topP: 1e-9, seed: 1 })).tokens).toEqual(greedy.tokens);
    const k3 = await model.generate(src, { method: 'sample', maxLength: 15, topK: 3, topP: 0.9, seed: 9 });
    expect(k3.tokens.length).toBe(4);
  });
});

describe('nn generate: streaming, event loop, weights', () => {
  it('keeps the event loop ticking during generation', async () => {
    using model = nn.createTransformer({ vocabSize: 500, dModel: 64, numHeads: 4, dFF: 128, encoderLayers: 2, decoderLayers: 3, seed: 1 });
    radkit.manualSeed(1);
    using src = Tensor.randn([4, 49, 64]);
    const ticks: number[] = [];
    const timer = setInterval(() => ticks.push(performance.now()), 5);
    const started = performance.now();
    const r = await model.generate(src, { beams: 3, maxLength: 40, minLength: 40, cache: 'none' });
    const elapsed = performance.now() - started;
    clearInterval(timer);
    expect(r.steps).toBe(40);
    expect(elapsed).toBeGreaterThan(100);
    expect(ticks.length).toBeGreaterThan(elapsed / 5 / 4);
    const gaps = ticks.slice(1).map((t, i) => t - ticks[i]);
    expect(Math.max(...gaps)).toBeLessThan(Math.max(250, elapsed / 4));
  });

  it('streams one event per step (onToken and async iterator); onToken false and AbortSignal stop early', async () => {
    using model = nn.createTransformer({ ...small, seed: 81 });
    using src = features(2, 5, 16, 5);
    const events: radkit.nn.TokenEvent[] = [];
    const r = await model.generate(src, { maxLength: 10, onToken: (e) => void events.push(e) });
    expect(events.length).toBe(r.steps);
    expect(events.map((e) => e.step)).toEqual([...Array(r.steps).keys()]);
    for (let b = 0; b < 2; b++) expect(events.map((e) => e.tokens[b]).filter((t) => t >= 0)).toEqual(r.tokens[b]);
    const stream = model.stream(src, { maxLength: 10 });
    const seen: radkit.nn.TokenEvent[] = [];
    for await (const e of stream) seen.push(e);
    expect(seen).toEqual(events);
    expect((await stream.result).tokens).toEqual(r.tokens);
    const stopped = await model.generate(src, { maxLength: 10, minLength: 10, onToken: (e) => e.step < 2 });
    expect(stopped.steps).toBe(3);
    expect(stopped.tokens[0].length).toBe(3);
    const beamStopped = await model.generate(src, { beams: 3, maxLength: 10, minLength: 10, onToken: (e) => e.step < 3 });
    expect(beamStopped.tokens[0].length).toBe(4);
    const ac = new AbortController();
    const aborted = await model.generate(src, { maxLength: 10, minLength: 10, signal: ac.signal, onToken: (e) => void (e.step === 4 && ac.abort()) });
    expect(aborted.steps).toBe(5);
    await expect(model.generate(src, { maxLength: 10, onToken: () => { throw new Error('boom'); } })).rejects.toThrow('boom');
  });

  it('seeded initialisation is deterministic; stateDict / loadStateDict round-trip', async () => {
    using a = nn.createTransformer({ ...small, seed: 91 });
    using b = nn.createTransformer({ ...small, seed: 91 });
    using c = nn.createTransformer({ ...small, seed: 92 });
    const wa = a.stateDict();
    const wb = b.stateDict();
    const wc = c.stateDict();
    expect(Object.keys(wa)).toEqual(a.parameterNames);
    expect(Object.keys(wa)).toContain('decoder.layer0.crossAttn.wq.weight');
    for (const k of Object.keys(wa)) expect(values(wb[k])).toEqual(values(wa[k]));
    expect(values(wc['decoder.out.weight'])).not.toEqual(values(wa['decoder.out.weight']));
    using src = features(2, 5, 16, 6);
    const ra = await a.generate(src, { beams: 2, maxLength: 10 });
    const rc = await c.generate(src, { beams: 2, maxLength: 10 });
    c.loadStateDict(wa);
    const rc2 = await c.generate(src, { beams: 2, maxLength: 10 });
    expect(rc2.tokens).toEqual(ra.tokens);
    expect(rc2.scores).toEqual(ra.scores);
    expect(rc.scores).not.toEqual(ra.scores);
    // a subset with strict = false
    using zero = Tensor.zeros(wa['decoder.out.bias'].shape, { dtype: 'float64' });
    c.loadStateDict({ 'decoder.out.bias': zero }, { strict: false });
    for (const w of [wa, wb, wc]) for (const t of Object.values(w)) t.dispose();
    expect(a.parameterCount).toBeGreaterThan(1000);
  });
});

describe('nn bad calls', () => {
  it('rejects bad configs with codes', () => {
    const bad: [unknown, string, RegExp][] = [
      [{}, 'ERR_INVALID_ARG', /vocabSize is required/],
      [{ vocabSize: 10, dModel: 10, numHeads: 3 }, 'ERR_INVALID_ARG', /divisible/],
      [{ vocabSize: 10, dropout: 1 }, 'ERR_INVALID_ARG', /dropout/],
      [{ vocabSize: 10, norm: 'middle' }, 'ERR_INVALID_ARG', /config.norm/],
      [{ vocabSize: 10, eosId: 10 }, 'ERR_INVALID_ARG', /eosId/],
      [{ vocabSize: 10, dtype: 'int32' }, 'ERR_DTYPE', /dtype/],
      [{ vocabSize: 10, kind: 'decoder-only', sourceDim: 4 }, 'ERR_INVALID_ARG', /decoder-only/],
      [{ vocabSize: 1.5 }, 'ERR_INVALID_ARG', /integer/],
    ];
    for (const [config, code, message] of bad) {
      let err: unknown;
      try {
        nn.createTransformer(config as TransformerConfig);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(config)).toBeInstanceOf(ArgumentError);
      expect((err as ArgumentError).code).toBe(code);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('rejects bad generate calls with codes and leaves the model usable', async () => {
    using model = nn.createTransformer({ ...small, seed: 101, maxPositions: 32 });
    using src = features(2, 5, 16, 1);
    using ints = ids([[1, 2, 3]]);
    using wrongDim = features(2, 5, 8, 1);
    using nan = Tensor.from(new Float64Array(16).fill(NaN), [1, 1, 16]);
    using badMask = Tensor.zeros([2, 5], { dtype: 'uint8' });
    using shortMask = Tensor.ones([2, 4], { dtype: 'uint8' });
    const cases: [() => Promise<unknown>, string, RegExp][] = [
      [() => model.generate(null as unknown as Tensor), 'ERR_INVALID_ARG', /source must be a Tensor/],
      [() => model.generate(ints), 'ERR_DTYPE', /floating-point/],
      [() => model.generate(wrongDim), 'ERR_SHAPE', /\[batch, length, 16\]/],
      [() => model.generate(nan), 'ERR_NOT_FINITE', /finite/],
      [() => model.generate(src, { beams: 0 }), 'ERR_INVALID_ARG', /options.beams/],
      [() => model.generate(src, { beams: 2, method: 'greedy' }), 'ERR_INVALID_ARG', /method 'beam'/],
      [() => model.generate(src, { method: 'nucleus' as 'sample' }), 'ERR_INVALID_ARG', /options.method/],
      [() => model.generate(src, { maxLength: 33 }), 'ERR_INVALID_ARG', /options.maxLength/],
      [() => model.generate(src, { maxLength: 5, minLength: 6 }), 'ERR_INVALID_ARG', /options.minLength/],
      [() => model.generate(src, { method: 'sample', temperature: 0 }), 'ERR_INVALID_ARG', /temperature/],
      [() => model.generate(src, { method: 'sample', topP: 0 }), 'ERR_INVALID_ARG', /topP/],
      [() => model.generate(src, { lengthPenalty: Infinity }), 'ERR_NOT_FINITE', /lengthPenalty/],
      [() => model.generate(src, { repetitionPenalty: -1 }), 'ERR_INVALID_ARG', /repetitionPenalty/],
      [() => model.generate(src, { cache: 'some' as 'full' }), 'ERR_INVALID_ARG', /options.cache/],
      [() => model.generate(src, { sourceMask: badMask }), 'ERR_INVALID_ARG', /at least one valid/],
      [() => model.generate(src, { sourceMask: shortMask }), 'ERR_SHAPE', /sourceMask/],
      [() => model.generate(src, { onToken: 3 as unknown as () => void }), 'ERR_INVALID_ARG', /onToken/],
    ];
    for (const [call, code, message] of cases) {
      const err = await call().then(
        () => null,
        (e) => e,
      );
      expect(err, String(message)).toBeInstanceOf(ArgumentError);
      expect(err.code, String(message)).toBe(code);
      expect(err.message).toMatch(message);
    }
    expect(() => model.logProbs(src, ids([[1, 2], [1, 99]]))).toThrow(/target token ids/);
    expect(() => model.loadStateDict({ nope: src })).toThrow(/not a parameter/);
    expect(() => model.loadStateDict({ 'decoder.out.bias': src }, { strict: false })).toThrow(/must be \[24\]/);
    const ok = await model.generate(src, { maxLength: 4 });
    expect(ok.tokens.length).toBe(2);
    // decoder-only: right-padded prompts and source attention are refused
    using lm = nn.createTransformer({ ...small, kind: 'decoder-only', seed: 1 });
    using right = ids([[5, 6, 0]]);
    await expect(lm.generate(right)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/left-padded/) });
    await expect(lm.generate(ids([[5, 6]]), { returnAttention: true })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(lm.generate(ids([[5, 60]]))).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/\[0, 23\]/) });
    model.dispose();
    await expect(model.generate(src)).rejects.toBeInstanceOf(DisposedError);
    expect(() => model.stateDict()).toThrow(DisposedError);
    model.dispose(); // idempotent
  });

  it('a model disposed while generate runs still completes that call', async () => {
    const model = nn.createTransformer({ ...small, seed: 111 });
    using src = features(2, 5, 16, 1);
    const p = model.generate(src, { beams: 3, maxLength: 20, cache: 'none' });
    model.dispose();
    const r = await p;
    expect(r.tokens.length).toBe(2);
  });
});
