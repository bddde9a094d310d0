// The generated-image metrics against independent float64 references: mean and covariance against
// the E[xy] - E[x]E[y] form, Jacobi eigenpairs reconstructing the matrix, the Frechet distance
// against closed forms (diagonal covariances; 2 x 2 via tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)))
// and against a Denman-Beavers square root of S1 S2 for a random 5 x 5 case; label agreement.
import { describe, expect, it } from 'vitest';
import { frechetDistance, frechetDistanceOfGaussians, labelAgreement, meanAndCovariance, symmetricEigen } from '../../lib/metrics/frechet.js';
import { CHEXPERT_OBSERVATIONS, type ReportLabels } from '../../lib/text/chexpert.js';

function rng(seed: number) {
  let s = seed;
  return () => ((s = (s * 1103515245 + 12345) % 2 ** 31), s / 2 ** 31 - 0.5);
}
const matmul = (a: number[], b: number[], d: number) => Array.from({ length: d * d }, (_, i) => Array.from({ length: d }, (_, k) => a[Math.floor(i / d) * d + k] * b[k * d + (i % d)]).reduce((x, y) => x + y, 0));
const inverse = (m: number[], d: number): number[] => {
  // Gauss-Jordan with partial pivoting.
  const a = m.map((x) => x), inv = Array.from({ length: d * d }, (_, i) => (Math.floor(i / d) === i % d ? 1 : 0));
  for (let c = 0; c < d; c++) {
    let p = c;
    for (let r = c + 1; r < d; r++) if (Math.abs(a[r * d + c]) > Math.abs(a[p * d + c])) p = r;
    for (let k = 0; k < d; k++) {
      [a[c * d + k], a[p * d + k]] = [a[p * d + k], a[c * d + k]];
      [inv[c * d + k], inv[p * d + k]] = [inv[p * d + k], inv[c * d + k]];
    }
    const piv = a[c * d + c];
    for (let k = 0; k < d; k++) {
      a[c * d + k] /= piv;
      inv[c * d + k] /= piv;
    }
    for (let r = 0; r < d; r++)
      if (r !== c) {
        const f = a[r * d + c];
        for (let k = 0; k < d; k++) {
          a[r * d + k] -= f * a[c * d + k];
          inv[r * d + k] -= f * inv[c * d + k];
        }
      }
  }
  return inv;
};
/** Denman-Beavers: Y -> sqrt(M) for M with positive eigenvalues (not symmetric). */
const sqrtm = (m: number[], d: number) => {
  let y = m.slice(), z = Array.from({ length: d * d }, (_, i) => (Math.floor(i / d) === i % d ? 1 : 0));
  for (let it = 0; it < 60; it++) {
    const yi = inverse(y, d), zi = inverse(z, d);
    [y, z] = [y.map((x, i) => (x + zi[i]) / 2), z.map((x, i) => (x + yi[i]) / 2)];
  }
  return y;
};

describe('Frechet distance', () => {
  it('mean and covariance match E[xy] - E[x]E[y] (n - 1 divisor)', () => {
    const r = rng(3), n = 7, d = 3;
    const x = Array.from({ length: n * d }, () => r() * 4);
    const { mean, cov } = meanAndCovariance(x, n, d);
    for (let a = 0; a < d; a++) {
      const ea = x.filter((_, i) => i % d === a).reduce((s, v) => s + v, 0) / n;
      expect(mean[a]).toBeCloseTo(ea, 12);
      for (let b = 0; b < d; b++) {
        let exy = 0;
        for (let i = 0; i < n; i++) exy += x[i * d + a] * x[i * d + b];
        const eb = x.filter((_, i) => i % d === b).reduce((s, v) => s + v, 0) / n;
        expect(cov[a * d + b]).toBeCloseTo(((exy / n - ea * eb) * n) / (n - 1), 12);
      }
    }
    expect(() => meanAndCovariance([1, 2], 1, 2)).toThrow(/at least 2 rows/);
    expect(() => meanAndCovariance([1, 2, 3], 2, 2)).toThrow(/3 values for 2 x 2/);
  });

  it('Jacobi eigenpairs reconstruct a symmetric matrix', () => {
    const e = symmetricEigen([2, 1, 1, 2], 2);
    expect([...e.values].sort()).toEqual([expect.closeTo(1, 12), expect.closeTo(3, 12)]);
    const r = rng(5), d = 6;
    const b = Array.from({ length: d * d }, () => r());
    const s = Array.from({ length: d * d }, (_, i) => b[i] + b[(i % d) * d + Math.floor(i / d)]);
    const { values, vectors } = symmetricEigen(s, d);
    for (let i = 0; i < d; i++)
      for (let j = 0; j < d; j++) {
        let x = 0;
        for (let k = 0; k < d; k++) x += vectors[i * d + k] * values[k] * vectors[j * d + k];
        expect(x).toBeCloseTo(s[i * d + j], 10);
      }
  });

  it('equals the closed forms: diagonal covariances and the 2 x 2 trace of a square root', () => {
    const mu1 = [0.5, -1, 2], mu2 = [1, 1, 1], a = [4, 1, 0.25], b = [1, 9, 0.25];
    const diag = (v: number[]) => v.flatMap((x, i) => v.map((_, j) => (i === j ? x : 0)));
    const want = mu1.reduce((s, m, i) => s + (m - mu2[i]) ** 2, 0) + a.reduce((s, x, i) => s + (Math.sqrt(x) - Math.sqrt(b[i])) ** 2, 0);
    expect(frechetDistanceOfGaussians(mu1, diag(a), mu2, diag(b))).toBeCloseTo(want, 10);

    const s1 = [2, 0.6, 0.6, 1], s2 = [1.5, -0.4, -0.4, 0.8];
    const m = matmul(s1, s2, 2);
    const trSqrt = Math.sqrt(m[0] + m[3] + 2 * Math.sqrt(m[0] * m[3] - m[1] * m[2]));
    const ref = 0.3 ** 2 + 0.1 ** 2 + (2 + 1 + 1.5 + 0.8) - 2 * trSqrt;
    expect(frechetDistanceOfGaussians([0.3, 0], s1, [0, 0.1], s2)).toBeCloseTo(ref, 10);
  });

  it('matches a Denman-Beavers square root of S1 S2 on random features; zero for one set against itself', () => {
    const r = rng(9), d = 5, n = 40, m = 30;
    const x = Array.from({ length: n * d }, () => r() * 2);
    const y = Array.from({ length: m * d }, (_, i) => r() * 3 + (i % d) * 0.2);
    const gx = meanAndCovariance(x, n, d), gy = meanAndCovariance(y, m, d);
    const root = sqrtm(matmul([...gx.cov], [...gy.cov], d), d);
    let tr = 0, trace = 0, dist = 0;
    for (let i = 0; i < d; i++) {
      tr += root[i * d + i];
      trace += gx.cov[i * d + i] + gy.cov[i * d + i];
      dist += (gx.mean[i] - gy.mean[i]) ** 2;
    }
    expect(frechetDistance(x, n, y, m, d)).toBeCloseTo(dist + trace - 2 * tr, 9);
    expect(frechetDistance(y, m, x, n, d)).toBeCloseTo(frechetDistance(x, n, y, m, d), 9);
    expect(frechetDistance(x, n, x, n, d)).toBeCloseTo(0, 9);
  });

  it('label agreement scores the classifier labels of generated images against the reports', () => {
    const none = Object.fromEntries(CHEXPERT_OBSERVATIONS.map((o) => [o, 'absent'])) as ReportLabels;
    const pos = (...obs: string[]) => ({ ...none, ...Object.fromEntries(obs.map((o) => [o, 'positive'])) }) as ReportLabels;
    const reports = [pos('Cardiomegaly'), pos('Edema', 'Pleural Effusion')];
    expect(labelAgreement(reports, reports).microF1).toBeCloseTo(1, 12);
    const got = labelAgreement([pos('Cardiomegaly'), pos('Edema')], reports);
    expect(got.microF1).toBeCloseTo((2 * 1 * (2 / 3)) / (1 + 2 / 3), 12); // precision 1, recall 2/3
    expect(() => labelAgreement([none], reports)).toThrow(/1 image labels for 2 reports/);
  });
});
