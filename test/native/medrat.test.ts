// MedRAT (seed 001) pieces against independent float64 references written here in plain loops: the
// shared memory of eq. 1 (cosine top-K softmax, at the printed temperature 1 and another one) and the
// self-attentive pooling of eqs. 2-3 (with invalid locals), each with gradients checked against
// central differences of the reference; token-level sentence shuffling (a permutation of whole
// sentences, specials untouched, seeded). The multi-label SupCon of eq. 4 is radkit.nn.losses'
// supervisedContrastive, checked in nn-losses.test.ts.
import { describe, expect, it } from 'vitest';
import { Tensor, mul, sum } from '../../lib/index.js';
import { loadNative } from '../../lib/native.js';
import { arr, boolTensor as bool, expectAllClose as expectClose, f64, finiteDifference, int64Tensor as i64, randArray, rng } from './helpers.js';

type H = unknown;
interface MedratTesting {
  sharedMemory(f: H, o: { slots: number; topK: number; temperature: number; seed: number }): { output: H; indices: H; weights: Record<string, H> };
  pooling(locals: H, valid: H | undefined, o: { seed: number }): { output: H; attention: H; weights: Record<string, H> };
  shuffleSentences(tokens: H, ends: H, p: number, seed: number): H;
}
const T = (): MedratTesting => (loadNative() as unknown as { testing: { medrat: MedratTesting } }).testing.medrat;
const h = (t: Tensor) => Tensor.handle(t) as H;
const w = (x: H) => Tensor.wrap(x as never);
const rand = (n: number, seed: number) => randArray(n, rng(seed), -1, 1);

/** x [n, din] (row-major) times W^T for a torch Linear weight W [dout, din]. */
function linear(x: number[], W: Float64Array, din: number, dout: number): number[] {
  const out: number[] = [];
  for (let o = 0; o < dout; o++) {
    let s = 0;
    for (let i = 0; i < din; i++) s += x[i] * W[o * din + i];
    out.push(s);
  }
  return out;
}
const dotv = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0);
const norm = (a: number[]) => Math.sqrt(dotv(a, a));

/** Eq. 1 for every vector of f [N, d]: f + sum_i softmax_i(cos(Wf f, Win m)/t over the top K) (m Wout); also the chosen rows. */
function sharedMemoryRef(f: Float64Array, N: number, d: number, wts: Record<string, Float64Array>, slots: number, K: number, t: number) {
  const out: number[] = [], rows: number[][] = [];
  const keys = Array.from({ length: slots }, (_, j) => linear(Array.from(wts.memory.subarray(j * d, (j + 1) * d)), wts['keyProj.weight'], d, d));
  const values = Array.from({ length: slots }, (_, j) => linear(Array.from(wts.memory.subarray(j * d, (j + 1) * d)), wts['valueProj.weight'], d, d));
  for (let n = 0; n < N; n++) {
    const x = Array.from(f.subarray(n * d, (n + 1) * d));
    const q = linear(x, wts['queryProj.weight'], d, d);
    const D = keys.map((k) => dotv(q, k) / (Math.max(norm(q), 1e-12) * Math.max(norm(k), 1e-12)));
    const order = D.map((s, j) => [s, j]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, K).map(([, j]) => j);
    const m = Math.max(...order.map((j) => D[j] / t));
    const e = order.map((j) => Math.exp(D[j] / t - m));
    const z = e.reduce((s, v) => s + v, 0);
    const r = new Array(d).fill(0);
    order.forEach((j, i) => values[j].forEach((v, c) => (r[c] += (e[i] / z) * v)));
    out.push(...x.map((v, c) => v + r[c]));
    rows.push(order);
  }
  return { out, rows };
}

/** Eqs. 2-3: A = softmax over valid locals of w2 . tanh(W1 z), z_global = sum A z. */
function poolingRef(z: Float64Array, valid: number[] | undefined, B: number, n: number, d: number, wts: Record<string, Float64Array>) {
  const out: number[] = [], att: number[] = [];
  for (let b = 0; b < B; b++) {
    const s = Array.from({ length: n }, (_, i) => {
      const x = Array.from(z.subarray((b * n + i) * d, (b * n + i + 1) * d));
      return dotv(Array.from(wts['sa2.weight']), linear(x, wts['sa1.weight'], d, d).map(Math.tanh));
    });
    const ok = (i: number) => !valid || valid[b * n + i] === 1;
    const m = Math.max(...s.filter((_, i) => ok(i)));
    const e = s.map((v, i) => (ok(i) ? Math.exp(v - m) : 0));
    const tot = e.reduce((a, v) => a + v, 0);
    const a = e.map((v) => v / tot);
    att.push(...a);
    for (let c = 0; c < d; c++) out.push(a.reduce((acc, ai, i) => acc + ai * z[(b * n + i) * d + c], 0));
  }
  return { out, att };
}

describe('shared memory (eq. 1) against a float64 composite', () => {
  const B = 2, L = 3, d = 4, slots = 7, K = 3;
  for (const temperature of [1, 0.1]) {
    it(`temperature ${temperature}: output, chosen rows and the gradient w.r.t. f`, () => {
      const f = rand(B * L * d, 11);
      const run = (fd: Float64Array, grad = false) => {
        const ft = f64(fd, [B, L, d], grad);
        const r = T().sharedMemory(h(ft), { slots, topK: K, temperature, seed: 3 });
        return { ft, out: w(r.output), indices: w(r.indices), weights: Object.fromEntries(Object.entries(r.weights).map(([k, x]) => [k, w(x).toArray() as Float64Array])) };
      };
      const first = run(f);
      expect(Object.keys(first.weights).sort()).toEqual(['keyProj.weight', 'memory', 'queryProj.weight', 'valueProj.weight']);
      expect(first.out.shape).toEqual([B, L, d]);
      expect(first.indices.shape).toEqual([B, L, K]);
      const ref = (fd: Float64Array) => sharedMemoryRef(fd, B * L, d, first.weights, slots, K, temperature);
      const r = ref(f);
      expectClose(arr(first.out), r.out, 1e-10, 1e-12);
      expect(arr(first.indices)).toEqual(r.rows.flat());
      const R = rand(B * L * d, 12);
      const g = run(f, true);
      sum(mul(g.out, f64(R, [B, L, d]))).backward();
      const refLoss = (ds: Float64Array[]) => dotv(ref(ds[0]).out, Array.from(R));
      expectClose(arr(g.ft.grad!), finiteDifference(refLoss, [Float64Array.from(f)], 0), 1e-5, 1e-7);
    });
  }

  it('temperature 1 weights are nearly uniform over the top K (why the temperature is exposed)', () => {
    const f = rand(1 * 4 * 8, 5);
    const weightsOf = (temperature: number) => {
      const r = T().sharedMemory(h(f64(f, [1, 4, 8])), { slots: 32, topK: 8, temperature, seed: 9 });
      const wts = Object.fromEntries(Object.entries(r.weights).map(([k, x]) => [k, w(x).toArray() as Float64Array]));
      // the largest softmax weight over the K rows, per vector, from the reference's scores
      const keys = Array.from({ length: 32 }, (_, j) => linear(Array.from(wts.memory.subarray(j * 8, (j + 1) * 8)), wts['keyProj.weight'], 8, 8));
      return Array.from({ length: 4 }, (_, n) => {
        const q = linear(Array.from(f.subarray(n * 8, (n + 1) * 8)), wts['queryProj.weight'], 8, 8);
        const D = keys.map((k) => dotv(q, k) / (norm(q) * norm(k))).sort((a, b) => b - a).slice(0, 8);
        const e = D.map((s) => Math.exp(s / temperature));
        return Math.max(...e) / e.reduce((a, v) => a + v, 0);
      });
    };
    for (const m of weightsOf(1)) expect(m).toBeLessThan(2 / 8);
    expect(Math.max(...weightsOf(0.05))).toBeGreaterThan(2 / 8);
  });
});

describe('self-attentive pooling (eqs. 2-3) against a float64 reference', () => {
  const B = 2, n = 4, d = 3;
  for (const valid of [undefined, [1, 1, 0, 1, 1, 0, 0, 0]]) {
    it(`${valid ? 'with' : 'without'} invalid locals: output, weights and the gradient`, () => {
      const z = rand(B * n * d, 21);
      const run = (zd: Float64Array, grad = false) => {
        const zt = f64(zd, [B, n, d], grad);
        const r = T().pooling(h(zt), valid && h(bool(valid, [B, n])), { seed: 4 });
        return { zt, out: w(r.output), att: w(r.attention), weights: Object.fromEntries(Object.entries(r.weights).map(([k, x]) => [k, w(x).toArray() as Float64Array])) };
      };
      const first = run(z);
      expect(first.out.shape).toEqual([B, d]);
      const ref = (zd: Float64Array) => poolingRef(zd, valid, B, n, d, first.weights);
      expectClose(arr(first.out), ref(z).out, 1e-12, 1e-13);
      expectClose(arr(first.att), ref(z).att, 1e-12, 1e-13);
      if (valid) for (let i = 0; i < B * n; i++) if (!valid[i]) expect(arr(first.att)[i]).toBe(0);
      const R = rand(B * d, 22);
      const g = run(z, true);
      sum(mul(g.out, f64(R, [B, d]))).backward();
      const refLoss = (ds: Float64Array[]) => dotv(ref(ds[0]).out, Array.from(R));
      expectClose(arr(g.zt.grad!), finiteDifference(refLoss, [Float64Array.from(z)], 0), 1e-6, 1e-8);
    });
  }
});

describe('sentence shuffling on token ids', () => {
  // BOS 0, sentences ended by 9 ('.'), EOS 0, PAD 0
  const rows = [
    [0, 1, 2, 9, 3, 9, 4, 5, 6, 9, 7, 9, 0],
    [0, 1, 2, 3, 9, 0, 0, 0, 0, 0, 0, 0, 0],
  ];
  const sentencesOf = (r: number[]) => {
    const words = r.slice(1, r.indexOf(0, 1));
    const out: string[] = [];
    let cur: number[] = [];
    for (const t of words) {
      cur.push(t);
      if (t === 9) (out.push(cur.join(',')), (cur = []));
    }
    if (cur.length) out.push(cur.join(','));
    return out;
  };
  const shuffled = (p: number, seed: number) => {
    const t = i64(rows.flat(), [2, 13]);
    const a = arr(w(T().shuffleSentences(h(t), h(i64([9], [1])), p, seed)));
    return [a.slice(0, 13), a.slice(13)];
  };

  it('permutes whole sentences, keeps specials and single-sentence rows, is seeded; p = 0 changes nothing', () => {
    expect(shuffled(0, 1)).toEqual(rows);
    let changed = 0;
    for (let seed = 0; seed < 20; seed++) {
      const [a, b] = shuffled(1, seed);
      expect(b).toEqual(rows[1]);
      expect(a[0]).toBe(0);
      expect(a[12]).toBe(0);
      expect(sentencesOf(a).sort()).toEqual(sentencesOf(rows[0]).sort());
      if (a.join() !== rows[0].join()) changed++;
      expect(shuffled(1, seed)).toEqual([a, b]);
    }
    expect(changed).toBeGreaterThan(10);
  });
});
