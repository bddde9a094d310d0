import { describe, expect, it } from 'vitest';
import { ArgumentError, Tensor, nn } from '../../lib/index.js';
import { arr, dot, expectAllClose as expectClose, f64, finiteDifference, int64Tensor as i64, randArray, rng } from './helpers.js';

// Every loss is checked against an independent float64 reference written here in plain loops over
// Float64Arrays (never calling the native loss): forward in float64 and float32, the analytic
// gradient (backward through the native loss) against central differences of the reference, and
// edge cases and argument errors.
const { symmetricInfoNCE, supervisedContrastive, focalLoss, maskedCrossEntropy } = nn.losses;

const rand = (n: number, seed: number, lo = -1, hi = 1) => randArray(n, rng(seed), lo, hi);
const randInt = (n: number, seed: number, k: number) => Array.from(rand(n, seed, 0, 1), (u) => Math.min(k - 1, Math.floor(u * k)));
const t32 = (data: Float64Array, shape: number[]) => Tensor.from(Float32Array.from(data), shape);
const scalar = (t: Tensor) => {
  expect(t.shape).toEqual([]);
  return Number(t.toArray()[0]) + 0; // + 0: -0 reads as 0
};
const fround = (x: Float64Array) => Float64Array.from(x, Math.fround);

// ---- float64 references
function logSumExp(xs: number[]): number {
  const m = Math.max(...xs);
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (const x of xs) s += Math.exp(x - m);
  return m + Math.log(s);
}

function rows(x: Float64Array, n: number, d: number, normalize: boolean): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < n; ++i) {
    const r = Array.from(x.subarray(i * d, (i + 1) * d));
    const norm = Math.sqrt(r.reduce((s, v) => s + v * v, 0));
    out.push(normalize ? r.map((v) => v / Math.max(norm, 1e-12)) : r);
  }
  return out;
}

function refInfoNCE(a: Float64Array, b: Float64Array, n: number, d: number, temperature: number, normalize = true): number {
  const A = rows(a, n, d, normalize), Bm = rows(b, n, d, normalize);
  const S = A.map((ai) => Bm.map((bj) => dot(ai, bj) / temperature));
  let ab = 0, ba = 0;
  for (let i = 0; i < n; ++i) {
    ab += logSumExp(S[i]) - S[i][i];
    ba += logSumExp(S.map((r) => r[i])) - S[i][i];
  }
  return (ab / n + ba / n) / 2;
}

// pos(i, j) for i != j; rows with no positive are left out of the mean (divideByAll: eq. 4's 1/N instead).
function refSupCon(f: Float64Array, n: number, d: number, pos: (i: number, j: number) => boolean, temperature: number, normalize = true, divideByAll = false): number {
  const Z = rows(f, n, d, normalize);
  let total = 0, anchors = 0;
  for (let i = 0; i < n; ++i) {
    const others: number[] = [];
    for (let j = 0; j < n; ++j) if (j !== i) others.push(dot(Z[i], Z[j]) / temperature);
    const logDen = logSumExp(others);
    let sum = 0, count = 0;
    for (let p = 0; p < n; ++p) {
      if (p === i || !pos(i, p)) continue;
      sum += dot(Z[i], Z[p]) / temperature - logDen;
      ++count;
    }
    if (count === 0) continue;
    total += -sum / count;
    ++anchors;
  }
  return divideByAll ? total / n : anchors ? total / anchors : 0;
}

function refFocal(logits: Float64Array, groups: number, k: number, targets: number[], gamma: number, alpha?: number[]): number {
  let total = 0;
  for (let g = 0; g < groups; ++g) {
    const row = Array.from(logits.subarray(g * k, (g + 1) * k));
    const m = Math.max(...row);
    const z = row.reduce((s, v) => s + Math.exp(v - m), 0);
    const p = Math.exp(row[targets[g]] - m) / z;
    total += (alpha ? alpha[targets[g]] : 1) * Math.pow(1 - p, gamma) * -Math.log(p);
  }
  return total / groups;
}

function refMaskedCE(logits: Float64Array, positions: number, v: number, targets: number[], mask: number[], smoothing = 0): number {
  let total = 0, count = 0;
  for (let q = 0; q < positions; ++q) {
    if (!mask[q]) continue;
    const row = Array.from(logits.subarray(q * v, (q + 1) * v));
    const lse = logSumExp(row);
    let uniform = 0;
    for (const x of row) uniform += (lse - x) / v;
    total += (1 - smoothing) * (lse - row[targets[q]]) + smoothing * uniform;
    ++count;
  }
  return count ? total / count : 0;
}

function expectGradient(analytic: Tensor | null, f: (x: Float64Array) => number, x0: Float64Array) {
  expect(analytic).not.toBeNull();
  const fd = Array.from(finiteDifference(([x]) => f(x), [Float64Array.from(x0)], 0));
  expect(Math.max(...fd.map(Math.abs))).toBeGreaterThan(1e-3); // not a vacuous comparison
  expectClose(arr(analytic!), fd, 1e-5, 1e-8);
}

function expectArgError(call: () => unknown, code: string, message: RegExp) {
  let err: unknown;
  try { call(); } catch (e) { err = e; }
  expect(err, String(message)).toBeInstanceOf(ArgumentError);
  expect((err as ArgumentError).code, String(message)).toBe(code);
  expect((err as Error).message).toMatch(message);
  expect((err as Error).message).not.toMatch(/Exception raised from|frame #/);
}

describe('nn.losses.symmetricInfoNCE', () => {
  const B = 6, D = 5;
  const a = rand(B * D, 1), b = rand(B * D, 2);

  it('matches the float64 reference in float64 and float32, normalised or not', () => {
    for (const [temperature, normalize] of [[0.07, true], [0.5, true], [2, false]] as const) {
      const expected = refInfoNCE(a, b, B, D, temperature, normalize);
      expect(scalar(symmetricInfoNCE(f64(a, [B, D]), f64(b, [B, D]), { temperature, normalize }))).toBeCloseTo(expected, 12);
      const single = symmetricInfoNCE(t32(a, [B, D]), t32(b, [B, D]), { temperature, normalize });
      expect(single.dtype).toBe('float32');
      expectClose([scalar(single)], [refInfoNCE(fround(a), fround(b), B, D, temperature, normalize)], 1e-5);
    }
    // Symmetric in a and b, and not the one-direction a -> b cross-entropy.
    const sym = scalar(symmetricInfoNCE(f64(a, [B, D]), f64(b, [B, D]), { temperature: 0.1 }));
    expect(scalar(symmetricInfoNCE(f64(b, [B, D]), f64(a, [B, D]), { temperature: 0.1 }))).toBeCloseTo(sym, 14);
    const A = rows(a, B, D, true), Bm = rows(b, B, D, true);
    let aToB = 0;
    for (let i = 0; i < B; ++i) aToB += (logSumExp(Bm.map((bj) => dot(A[i], bj) / 0.1)) - dot(A[i], Bm[i]) / 0.1) / B;
    expect(sym).not.toBeCloseTo(aToB, 3);
  });

  it('has the gradient of the reference (central differences, float64)', () => {
    for (const normalize of [true, false]) {
      const ta = f64(a, [B, D], true), tb = f64(b, [B, D], true);
      symmetricInfoNCE(ta, tb, { temperature: 0.3, normalize }).backward();
      expectGradient(ta.grad, (x) => refInfoNCE(x, b, B, D, 0.3, normalize), a);
      expectGradient(tb.grad, (x) => refInfoNCE(a, x, B, D, 0.3, normalize), b);
    }
  });

  it('is stable for large similarities and 0 for a single pair', () => {
    const big = a.map((v) => v * 1e3), big2 = b.map((v) => v * 1e3);
    const loss = scalar(symmetricInfoNCE(f64(big, [B, D]), f64(big2, [B, D]), { temperature: 0.01, normalize: false }));
    expect(Number.isFinite(loss)).toBe(true);
    expect(loss).toBeCloseTo(refInfoNCE(big, big2, B, D, 0.01, false), 6);
    const one = f64(a.subarray(0, D), [1, D], true);
    const l1 = symmetricInfoNCE(one, f64(b.subarray(0, D), [1, D]), { temperature: 0.1 });
    expect(scalar(l1)).toBe(0);
    l1.backward();
    expect(arr(one.grad!).every((g) => g === 0)).toBe(true);
  });

  it('rejects bad arguments with codes', () => {
    const good = f64(a, [B, D]);
    expectArgError(() => symmetricInfoNCE(good, f64(b.subarray(0, D * 5), [5, D]), { temperature: 0.1 }), 'ERR_SHAPE', /a and b must have one shape \[B, D\].*\[6, 5\] and \[5, 5\]/);
    expectArgError(() => symmetricInfoNCE(f64(a, [B, D, 1]), good, { temperature: 0.1 }), 'ERR_SHAPE', /a must have shape \[B, D\], got \[6, 5, 1\]/);
    expectArgError(() => symmetricInfoNCE(good, i64(new Array(B * D).fill(0), [B, D]), { temperature: 0.1 }), 'ERR_DTYPE', /b must be float32 or float64.*got int64/);
    expectArgError(() => symmetricInfoNCE(good, t32(b, [B, D]), { temperature: 0.1 }), 'ERR_DTYPE', /a and b must have one dtype/);
    expectArgError(() => symmetricInfoNCE(good, good, { temperature: 0 }), 'ERR_INVALID_ARG', /temperature must be a finite number > 0, got 0/);
    expectArgError(() => symmetricInfoNCE(good, good, { temperature: -1 }), 'ERR_INVALID_ARG', /temperature must be a finite number > 0/);
    expectArgError(() => symmetricInfoNCE(good, good, {} as never), 'ERR_INVALID_ARG', /nn\.losses\.symmetricInfoNCE: options\.temperature must be a number/);
    expectArgError(() => symmetricInfoNCE(good, good, { temperature: 0.1, normalize: 1 as never }), 'ERR_INVALID_ARG', /options\.normalize must be a boolean/);
    expectArgError(() => symmetricInfoNCE([] as never, good, { temperature: 0.1 }), 'ERR_INVALID_ARG', /a must be a Tensor/);
  });
});

describe('nn.losses.supervisedContrastive (MedRAT eq. 4)', () => {
  // The MedRAT layout: 2 modalities x 2 augmentations of 3 items each = 12 rows; rows 6 + i are the
  // second augmentation of rows i (instances), multi-hot labels over C = 4 pathologies.
  const N = 12, D = 6, C = 4;
  const f = rand(N * D, 3);
  const itemLabels = [[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];
  const multiHot = [...itemLabels, ...itemLabels].flat();
  const instances = Array.from({ length: N }, (_, i) => i % 6);
  const share = (i: number, j: number) => multiHot.slice(i * C, (i + 1) * C).some((v, c) => v === 1 && multiHot[j * C + c] === 1);
  const posMedRAT = (i: number, j: number) => share(i, j) || instances[i] === instances[j];
  const classIds = [0, 1, 2, 0, 1, 3, 0, 1, 2, 0, 1, 3];
  const hot = () => Tensor.from(Float64Array.from(multiHot), [N, C]);

  it('matches the float64 reference with multi-hot labels plus instances, and with class ids', () => {
    for (const normalize of [true, false]) {
      const t = normalize ? 0.07 : 2;
      const expected = refSupCon(f, N, D, posMedRAT, t, normalize);
      const got = supervisedContrastive(f64(f, [N, D]), hot(), { temperature: t, normalize, instances: i64(instances, [N]) });
      expect(scalar(got)).toBeCloseTo(expected, 11);
      const single = supervisedContrastive(t32(f, [N, D]), hot(), { temperature: t, normalize, instances: i64(instances, [N]) });
      expectClose([scalar(single)], [refSupCon(fround(f), N, D, posMedRAT, t, normalize)], 2e-5);
    }
    const byClass = refSupCon(f, N, D, (i, j) => classIds[i] === classIds[j], 0.2);
    expect(scalar(supervisedContrastive(f64(f, [N, D]), i64(classIds, [N]), { temperature: 0.2 }))).toBeCloseTo(byClass, 12);
    const int32Ids = Tensor.from(Int32Array.from(classIds), [N]);
    expect(scalar(supervisedContrastive(f64(f, [N, D]), int32Ids, { temperature: 0.2 }))).toBeCloseTo(byClass, 12);
  });

  it('has the gradient of the reference (central differences, float64)', () => {
    const x = f64(f, [N, D], true);
    supervisedContrastive(x, hot(), { temperature: 0.3, instances: i64(instances, [N]) }).backward();
    expectGradient(x.grad, (y) => refSupCon(y, N, D, posMedRAT, 0.3), f);
    const x2 = f64(f, [N, D], true);
    supervisedContrastive(x2, i64(classIds, [N]), { temperature: 0.5, normalize: false }).backward();
    expectGradient(x2.grad, (y) => refSupCon(y, N, D, (i, j) => classIds[i] === classIds[j], 0.5, false), f);
  });

  it('leaves rows with no positive out of the mean', () => {
    // Without instances, the all-zero label rows (2 and 8) and ids seen once have no positive.
    const expected = refSupCon(f, N, D, share, 0.2);
    expect(expected).not.toBeCloseTo(refSupCon(f, N, D, share, 0.2, true, true), 3); // eq. 4's 1/N would differ
    expect(scalar(supervisedContrastive(f64(f, [N, D]), hot(), { temperature: 0.2 }))).toBeCloseTo(expected, 12);
    const ids = [0, 1, 1, 2, 3, 3];
    const few = f.subarray(0, 6 * D);
    const got = supervisedContrastive(f64(few, [6, D]), i64(ids, [6]), { temperature: 0.2 });
    expect(scalar(got)).toBeCloseTo(refSupCon(few, 6, D, (i, j) => ids[i] === ids[j], 0.2), 12);
  });

  it('gives 0 with a zero (not NaN) gradient when no row has a positive, or for one row', () => {
    for (const [n, labels] of [[4, i64([0, 1, 2, 3], [4])], [3, Tensor.zeros([3, C])], [1, i64([0], [1])]] as const) {
      const x = f64(f.subarray(0, n * D), [n, D], true);
      const loss = supervisedContrastive(x, labels, { temperature: 0.1 });
      expect(scalar(loss)).toBe(0);
      loss.backward();
      expect(arr(x.grad!).every((g) => g === 0)).toBe(true);
    }
  });

  it('reads multi-hot labels of any dtype alike, and one-hot rows as class ids', () => {
    const ref = scalar(supervisedContrastive(f64(f, [N, D]), hot(), { temperature: 0.2 }));
    const asBool = Tensor.from(Uint8Array.from(multiHot), [N, C], { dtype: 'bool' });
    const asLong = i64(multiHot, [N, C]);
    expect(scalar(supervisedContrastive(f64(f, [N, D]), asBool, { temperature: 0.2 }))).toBe(ref);
    expect(scalar(supervisedContrastive(f64(f, [N, D]), asLong, { temperature: 0.2 }))).toBe(ref);
    const oneHot = classIds.flatMap((c) => [0, 1, 2, 3].map((k) => (k === c ? 1 : 0)));
    expect(scalar(supervisedContrastive(f64(f, [N, D]), i64(oneHot, [N, 4]), { temperature: 0.2 }))).toBeCloseTo(
      scalar(supervisedContrastive(f64(f, [N, D]), i64(classIds, [N]), { temperature: 0.2 })),
      12,
    );
  });

  it('rejects bad arguments with codes', () => {
    const x = f64(f, [N, D]);
    expectArgError(() => supervisedContrastive(x, i64(classIds.slice(1), [N - 1]), { temperature: 0.1 }), 'ERR_SHAPE', /labels must be class ids \[N\] or multi-hot \[N, C\] with N = 12.*got \[11\]/);
    expectArgError(() => supervisedContrastive(x, f64(Float64Array.from(classIds), [N]), { temperature: 0.1 }), 'ERR_DTYPE', /labels \(class ids \[N\]\) must be an integer tensor/);
    expectArgError(() => supervisedContrastive(x, i64(multiHot.map((v) => v * 2), [N, C]), { temperature: 0.1 }), 'ERR_INVALID_ARG', /labels \(multi-hot \[N, C\]\) must hold only 0 and 1/);
    expectArgError(() => supervisedContrastive(x, hot(), { temperature: 0.1, instances: i64([0, 1], [2]) }), 'ERR_SHAPE', /instances must have shape \[12\]/);
    expectArgError(() => supervisedContrastive(x, hot(), { temperature: 0.1, instances: f64(new Float64Array(N), [N]) }), 'ERR_DTYPE', /instances must be an integer tensor/);
    expectArgError(() => supervisedContrastive(f64(f, [N, D, 1]), hot(), { temperature: 0.1 }), 'ERR_SHAPE', /features must have shape \[N, D\]/);
    expectArgError(() => supervisedContrastive(x, hot(), { temperature: Number.POSITIVE_INFINITY }), 'ERR_NOT_FINITE', /options\.temperature must be finite/);
    expectArgError(() => supervisedContrastive(x, hot(), { temperature: -0.5 }), 'ERR_INVALID_ARG', /temperature must be a finite number > 0/);
  });
});

describe('nn.losses.focalLoss (OTDRG eq. 10)', () => {
  // OTDRG's disease predictor: 14 observations x 4 states per image.
  const B = 3, O = 14, K = 4, G = B * O;
  const logits = rand(G * K, 4, -3, 3);
  const targets = randInt(G, 5, K);
  const alpha = [0.25, 1, 0.5, 2];

  it('matches the float64 reference in float64 and float32 (gamma 2, 0.5, with alpha)', () => {
    for (const [gamma, w] of [[2, undefined], [0.5, undefined], [2, alpha], [0, alpha]] as const) {
      const expected = refFocal(logits, G, K, targets, gamma, w as number[] | undefined);
      const opts = { gamma, alpha: w && f64(Float64Array.from(w), [K]) };
      expect(scalar(focalLoss(f64(logits, [B, O, K]), i64(targets, [B, O]), opts))).toBeCloseTo(expected, 12);
      const single = focalLoss(t32(logits, [B, O, K]), i64(targets, [B, O]), { gamma, alpha: w && t32(Float64Array.from(w), [K]) });
      expectClose([scalar(single)], [refFocal(fround(logits), G, K, targets, gamma, w as number[] | undefined)], 2e-5);
    }
    // Default gamma is 2.
    expect(scalar(focalLoss(f64(logits, [B, O, K]), i64(targets, [B, O])))).toBeCloseTo(refFocal(logits, G, K, targets, 2), 12);
    // float16 / bfloat16 logits are computed, and returned, in float32.
    for (const dtype of ['float16', 'bfloat16'] as const) {
      const half = f64(logits, [B, O, K]).to(dtype);
      const loss = focalLoss(half, i64(targets, [B, O]));
      expect(loss.dtype).toBe('float32');
      expect(scalar(loss)).toBe(scalar(focalLoss(half.to('float32'), i64(targets, [B, O]))));
    }
  });

  it('has the gradient of the reference (central differences, float64)', () => {
    for (const [gamma, w] of [[2, alpha], [0.5, undefined], [3, undefined]] as const) {
      const x = f64(logits, [B, O, K], true);
      focalLoss(x, i64(targets, [B, O]), { gamma, alpha: w && f64(Float64Array.from(w), [K]) }).backward();
      expectGradient(x.grad, (y) => refFocal(y, G, K, targets, gamma, w as number[] | undefined), logits);
    }
  });

  it('is cross-entropy at gamma 0 and below it otherwise', () => {
    const ce = scalar(maskedCrossEntropy(f64(logits, [B, O, K]), i64(targets, [B, O]), Tensor.ones([B, O])));
    expect(scalar(focalLoss(f64(logits, [B, O, K]), i64(targets, [B, O]), { gamma: 0 }))).toBeCloseTo(ce, 12);
    expect(scalar(focalLoss(f64(logits, [B, O, K]), i64(targets, [B, O]), { gamma: 1 }))).toBeLessThan(ce);
  });

  it('stays finite, value and gradient, on saturated logits and on no groups', () => {
    const sat = logits.map((v, i) => (i % K === targets[Math.floor(i / K)] ? 300 : v)); // p_t = 1 in float64
    for (const gamma of [0.5, 1, 2]) {
      const x = f64(sat, [B, O, K], true);
      const loss = focalLoss(x, i64(targets, [B, O]), { gamma });
      expect(scalar(loss)).toBe(0);
      loss.backward();
      expect(arr(x.grad!).every(Number.isFinite)).toBe(true);
    }
    const empty = f64(new Float64Array(0), [0, K], true);
    const loss = focalLoss(empty, i64([], [0]));
    expect(scalar(loss)).toBe(0);
  });

  it('rejects bad arguments with codes', () => {
    const x = f64(logits, [B, O, K]);
    const y = i64(targets, [B, O]);
    const bad = targets.slice();
    bad[5] = K;
    expectArgError(() => focalLoss(x, i64(bad, [B, O])), 'ERR_INVALID_ARG', /targets must lie in \[0, 4\).*found 4/);
    bad[5] = -1;
    expectArgError(() => focalLoss(x, i64(bad, [B, O])), 'ERR_INVALID_ARG', /targets must lie in \[0, 4\).*found -1/);
    expectArgError(() => focalLoss(x, i64(targets.slice(0, B * 13), [B, 13])), 'ERR_SHAPE', /targets must have shape \[3, 14\].*got \[3, 13\]/);
    expectArgError(() => focalLoss(x, f64(Float64Array.from(targets), [B, O])), 'ERR_DTYPE', /targets must be an integer tensor/);
    expectArgError(() => focalLoss(x, y, { gamma: -1 }), 'ERR_INVALID_ARG', /gamma must be a finite number >= 0, got -1/);
    expectArgError(() => focalLoss(x, y, { alpha: f64(new Float64Array(3).fill(1), [3]) }), 'ERR_SHAPE', /alpha must have shape \[K\] = \[4\]/);
    expectArgError(() => focalLoss(x, y, { alpha: f64(Float64Array.from([1, -1, 1, 1]), [K]) }), 'ERR_INVALID_ARG', /alpha must hold finite weights >= 0/);
    expectArgError(() => focalLoss(i64(targets, [B, O]), y), 'ERR_DTYPE', /logits must be float32 or float64.*got int64/);
    expectArgError(() => focalLoss(x, y, { gamma: 'two' as never }), 'ERR_INVALID_ARG', /options\.gamma must be a number/);
  });
});

describe('nn.losses.maskedCrossEntropy', () => {
  const B = 3, T = 5, V = 7, P = B * T;
  const logits = rand(P * V, 6, -2, 2);
  const mask = [1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0];
  // Padding under mask 0 is -100 (never read).
  const targets = randInt(P, 7, V).map((t, q) => (mask[q] ? t : -100));
  const m = () => Tensor.from(Uint8Array.from(mask), [B, T], { dtype: 'bool' });

  it('matches the float64 reference in float64 and float32, with and without label smoothing', () => {
    for (const labelSmoothing of [0, 0.1, 1]) {
      const expected = refMaskedCE(logits, P, V, targets, mask, labelSmoothing);
      expect(scalar(maskedCrossEntropy(f64(logits, [B, T, V]), i64(targets, [B, T]), m(), { labelSmoothing }))).toBeCloseTo(expected, 12);
      const single = maskedCrossEntropy(t32(logits, [B, T, V]), i64(targets, [B, T]), m(), { labelSmoothing });
      expectClose([scalar(single)], [refMaskedCE(fround(logits), P, V, targets, mask, labelSmoothing)], 2e-5);
    }
    // The mean runs over masked positions only (the mean over all positions would differ).
    const all = refMaskedCE(logits, P, V, targets.map((t) => Math.max(t, 0)), new Array(P).fill(1));
    expect(all).not.toBeCloseTo(refMaskedCE(logits, P, V, targets, mask), 3);
  });

  it('has the gradient of the reference (central differences, float64), zero at masked-out positions', () => {
    for (const labelSmoothing of [0, 0.1]) {
      const x = f64(logits, [B, T, V], true);
      maskedCrossEntropy(x, i64(targets, [B, T]), m(), { labelSmoothing }).backward();
      expectGradient(x.grad, (y) => refMaskedCE(y, P, V, targets, mask, labelSmoothing), logits);
      const g = arr(x.grad!);
      for (let q = 0; q < P; ++q) if (!mask[q]) for (let v = 0; v < V; ++v) expect(g[q * V + v]).toBe(0);
    }
  });

  it('gives 0 with a zero (not NaN) gradient for an all-zero mask', () => {
    const x = f64(logits, [B, T, V], true);
    const loss = maskedCrossEntropy(x, i64(new Array(P).fill(-1), [B, T]), Tensor.zeros([B, T], { dtype: 'bool' }), { labelSmoothing: 0.1 });
    expect(scalar(loss)).toBe(0);
    loss.backward();
    expect(arr(x.grad!).every((g) => g === 0)).toBe(true);
  });

  it('reads bool, uint8 and float 0/1 masks and int32 targets alike', () => {
    const x = f64(logits, [B, T, V]);
    const ref = scalar(maskedCrossEntropy(x, i64(targets, [B, T]), m()));
    const masks = [Tensor.from(Uint8Array.from(mask), [B, T]), f64(Float64Array.from(mask), [B, T]), t32(Float64Array.from(mask), [B, T])];
    for (const mk of masks) expect(scalar(maskedCrossEntropy(x, i64(targets, [B, T]), mk))).toBe(ref);
    expect(scalar(maskedCrossEntropy(x, Tensor.from(Int32Array.from(targets), [B, T]), m()))).toBe(ref);
  });

  it('rejects bad arguments with codes', () => {
    const x = f64(logits, [B, T, V]);
    const y = i64(targets, [B, T]);
    const out = targets.slice();
    out[0] = V;
    expectArgError(() => maskedCrossEntropy(x, i64(out, [B, T]), m()), 'ERR_INVALID_ARG', /targets \(where mask is 1\) must lie in \[0, 7\).*found 7/);
    expectArgError(() => maskedCrossEntropy(x, y, i64(mask.map((v) => v * 2), [B, T])), 'ERR_INVALID_ARG', /mask must hold only 0 and 1/);
    expectArgError(() => maskedCrossEntropy(x, y, Tensor.ones([B, T + 1])), 'ERR_SHAPE', /mask must have shape \[3, 5\].*got \[3, 6\]/);
    expectArgError(() => maskedCrossEntropy(x, i64(targets.slice(0, 10), [2, T]), m()), 'ERR_SHAPE', /targets must have shape \[3, 5\]/);
    expectArgError(() => maskedCrossEntropy(x, f64(new Float64Array(P), [B, T]), m()), 'ERR_DTYPE', /targets must be an integer tensor/);
    expectArgError(() => maskedCrossEntropy(x, y, m(), { labelSmoothing: 1.5 }), 'ERR_INVALID_ARG', /labelSmoothing must be a number in \[0, 1\], got 1\.5/);
    expectArgError(() => maskedCrossEntropy(x, y, undefined as never), 'ERR_INVALID_ARG', /mask must be a Tensor/);
  });
});
