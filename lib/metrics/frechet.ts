/**
 * Generated-image metrics that need no downloaded weights (AdaMatch-Cyclic's report -> image):
 *
 * - `frechetDistance`: the Frechet distance between Gaussians fitted to two feature sets,
 *     FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)),
 *   the formula of FID (Heusel et al. 2017). On features of a radkit classifier trained on the same
 *   data it is an "FD-radkit", not FID: FID means Inception-v3 pool features, which radkit does not
 *   download. Computed in float64; tr((S1 S2)^(1/2)) = sum_i sqrt(lambda_i(S1^(1/2) S2 S1^(1/2)))
 *   through symmetric eigendecompositions (cyclic Jacobi), negative round-off eigenvalues at 0.
 * - `labelAgreement`: CheXpert labels a classifier reads off generated images against the labels
 *   of the reports they were generated from, scored like clinical efficacy (micro / macro F1 of
 *   positive findings).
 */
import { ArgumentError } from '../errors.js';
import type { ReportLabels } from '../text/chexpert.js';
import { clinical, type ClinicalOptions } from './clinical.js';

/** Mean [d] and covariance [d, d] (row-major, divisor n - 1) of n feature rows of width d. */
export function meanAndCovariance(features: ArrayLike<number>, n: number, d: number): { mean: Float64Array; cov: Float64Array } {
  const fn = 'meanAndCovariance';
  if (!(Number.isInteger(n) && n >= 2 && Number.isInteger(d) && d >= 1)) throw new ArgumentError(`${fn}: needs at least 2 rows of width >= 1, got ${n} x ${d}`, 'ERR_SHAPE', fn);
  if (features.length !== n * d) throw new ArgumentError(`${fn}: ${features.length} values for ${n} x ${d}`, 'ERR_SHAPE', fn);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += features[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  const cov = new Float64Array(d * d);
  const x = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const v = features[i * d + j];
      if (!Number.isFinite(v)) throw new ArgumentError(`${fn}: feature [${i}, ${j}] is ${v}`, 'ERR_INVALID_ARG', fn);
      x[j] = v - mean[j];
    }
    for (let a = 0; a < d; a++) for (let b = a; b < d; b++) cov[a * d + b] += x[a] * x[b];
  }
  for (let a = 0; a < d; a++)
    for (let b = a; b < d; b++) {
      cov[a * d + b] /= n - 1;
      cov[b * d + a] = cov[a * d + b];
    }
  return { mean, cov };
}

/**
 * Eigenvalues and eigenvectors of a symmetric d x d matrix (row-major; not modified) by cyclic
 * Jacobi rotations: `vectors` column k belongs to `values[k]`.
 */
export function symmetricEigen(m: ArrayLike<number>, d: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(m as ArrayLike<number>);
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0, diag = 0;
    for (let p = 0; p < d; p++) {
      diag += a[p * d + p] * a[p * d + p];
      for (let q = p + 1; q < d; q++) off += a[p * d + q] * a[p * d + q];
    }
    if (off <= 1e-30 * Math.max(diag, 1e-300)) break;
    for (let p = 0; p < d; p++)
      for (let q = p + 1; q < d; q++) {
        const apq = a[p * d + q];
        if (apq === 0) continue;
        const theta = (a[q * d + q] - a[p * d + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < d; k++) {
          const akp = a[k * d + p], akq = a[k * d + q];
          a[k * d + p] = c * akp - s * akq;
          a[k * d + q] = s * akp + c * akq;
        }
        for (let k = 0; k < d; k++) {
          const apk = a[p * d + k], aqk = a[q * d + k];
          a[p * d + k] = c * apk - s * aqk;
          a[q * d + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < d; k++) {
          const vkp = v[k * d + p], vkq = v[k * d + q];
          v[k * d + p] = c * vkp - s * vkq;
          v[k * d + q] = s * vkp + c * vkq;
        }
      }
  }
  const values = new Float64Array(d);
  for (let i = 0; i < d; i++) values[i] = a[i * d + i];
  return { values, vectors: v };
}

/** Frechet distance of two Gaussians (means [d], covariances [d, d] row-major). */
export function frechetDistanceOfGaussians(mu1: ArrayLike<number>, s1: ArrayLike<number>, mu2: ArrayLike<number>, s2: ArrayLike<number>): number {
  const fn = 'frechetDistance';
  const d = mu1.length;
  if (mu2.length !== d || s1.length !== d * d || s2.length !== d * d) throw new ArgumentError(`${fn}: means of ${mu1.length} and ${mu2.length}, covariances of ${s1.length} and ${s2.length} values do not fit one width`, 'ERR_SHAPE', fn);
  let dist = 0;
  for (let j = 0; j < d; j++) dist += (mu1[j] - mu2[j]) ** 2;
  let trace = 0;
  for (let j = 0; j < d; j++) trace += s1[j * d + j] + s2[j * d + j];
  // S1^(1/2) = V diag(sqrt(max(lambda, 0))) V^T
  const e1 = symmetricEigen(s1, d);
  const root = new Float64Array(d * d);
  for (let a = 0; a < d; a++)
    for (let b = 0; b < d; b++) {
      let x = 0;
      for (let k = 0; k < d; k++) x += e1.vectors[a * d + k] * Math.sqrt(Math.max(e1.values[k], 0)) * e1.vectors[b * d + k];
      root[a * d + b] = x;
    }
  // M = S1^(1/2) S2 S1^(1/2) (symmetric PSD), tr((S1 S2)^(1/2)) = sum sqrt(lambda(M)).
  const t = new Float64Array(d * d), m = new Float64Array(d * d);
  for (let a = 0; a < d; a++)
    for (let b = 0; b < d; b++) {
      let x = 0;
      for (let k = 0; k < d; k++) x += root[a * d + k] * s2[k * d + b];
      t[a * d + b] = x;
    }
  for (let a = 0; a < d; a++)
    for (let b = 0; b < d; b++) {
      let x = 0;
      for (let k = 0; k < d; k++) x += t[a * d + k] * root[k * d + b];
      m[a * d + b] = x;
    }
  for (let a = 0; a < d; a++)
    for (let b = a + 1; b < d; b++) m[a * d + b] = m[b * d + a] = (m[a * d + b] + m[b * d + a]) / 2;
  const em = symmetricEigen(m, d);
  let cross = 0;
  for (const l of em.values) cross += Math.sqrt(Math.max(l, 0));
  return Math.max(0, dist + trace - 2 * cross);
}

/** Frechet distance between the Gaussians of two feature sets (rows [n, d] and [m, d], row-major). */
export function frechetDistance(a: ArrayLike<number>, n: number, b: ArrayLike<number>, m: number, d: number): number {
  const ga = meanAndCovariance(a, n, d), gb = meanAndCovariance(b, m, d);
  return frechetDistanceOfGaussians(ga.mean, ga.cov, gb.mean, gb.cov);
}

/** Labels a classifier gives generated images against the labels of the reports they came from (clinical-efficacy F1). */
export function labelAgreement(imageLabels: ReportLabels[], reportLabels: ReportLabels[], options: ClinicalOptions = {}): { microF1: number; macroF1: number; n: number } {
  if (imageLabels.length !== reportLabels.length) throw new ArgumentError(`labelAgreement: ${imageLabels.length} image labels for ${reportLabels.length} reports`, 'ERR_SHAPE', 'labelAgreement');
  const r = clinical(imageLabels, reportLabels, options);
  return { microF1: r.micro.f1, macroF1: r.macro.f1, n: imageLabels.length };
}
