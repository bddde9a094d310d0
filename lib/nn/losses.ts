/**
 * Training losses shared by the systems (native/nn/losses), as `radkit.nn.losses.*`. Each takes
 * radkit Tensors and returns a 0-dim Tensor tracked by autograd (`.backward()` reaches every input
 * that requires a gradient). Float inputs are float32 or float64; float16/bfloat16 are computed, and
 * returned, in float32. Argument errors are `ArgumentError`s with codes ERR_SHAPE, ERR_DTYPE,
 * ERR_DEVICE or ERR_INVALID_ARG.
 */
import { NativeError } from '../errors.js';
import { loadNative } from '../native.js';
import { Tensor, handleOf } from '../tensor.js';
import type { NativeLosses } from '../../typings/native.js';

/** Options of {@link symmetricInfoNCE}. */
export interface InfoNCEOptions {
  /** Temperature (> 0): similarities are divided by it. */
  temperature: number;
  /** L2-normalise the rows first, so similarities are cosines. Default true. */
  normalize?: boolean;
}

/** Options of {@link supervisedContrastive}. */
export interface SupervisedContrastiveOptions {
  /** Temperature (> 0). MedRAT's decision: 0.07. */
  temperature: number;
  /**
   * L2-normalise the features first (default true, as SupCon does). MedRAT eq. 4 prints raw dot
   * products `z_i . z_p`: `normalize: false` gives exactly that.
   */
  normalize?: boolean;
  /**
   * int `[N]`: rows with one id are views (augmentations) of one item, and positives of each other
   * whatever their labels (MedRAT: "pairs of augmentations of the same data point").
   */
  instances?: Tensor;
}

/** Options of {@link focalLoss}. */
export interface FocalLossOptions {
  /** Focusing parameter (>= 0); 0 gives cross-entropy. Default 2 (OTDRG's decision, Lin et al.). */
  gamma?: number;
  /** Per-class weights `[K]` (>= 0): each group's term is multiplied by `alpha[target]`. Default none. */
  alpha?: Tensor;
}

/** Options of {@link maskedCrossEntropy}. */
export interface MaskedCrossEntropyOptions {
  /** In [0, 1]: the target is `(1 - e)` one-hot plus `e / V` uniform, as PyTorch's. Default 0. */
  labelSmoothing?: number;
}

function native<K extends keyof NativeLosses>(name: K, fn: string): NativeLosses[K] {
  const losses = loadNative().losses;
  if (!losses || typeof losses[name] !== 'function')
    throw new NativeError(`${fn}: this radkit binary was built without nn/losses; rebuild it (npm run build:native)`, 'ERR_NOT_COMPILED', fn);
  return losses[name];
}

/**
 * Symmetric InfoNCE (CLIP; MPMA eq. 9) of `a [B, D]` and `b [B, D]`, row i of `a` paired with row i
 * of `b` and every other row a negative: with `S = a b^T / temperature`,
 * `L = (CE(S, diag) + CE(S^T, diag)) / 2`, `CE(S, diag) = -(1/B) sum_i log softmax(S_i)_i`.
 */
export function symmetricInfoNCE(a: Tensor, b: Tensor, options: InfoNCEOptions): Tensor {
  const fn = 'nn.losses.symmetricInfoNCE';
  return Tensor.wrap(native('symmetricInfoNCE', fn)(handleOf(a, 'a', fn), handleOf(b, 'b', fn), options));
}

/**
 * OTDRG (seed 002) eq. 2, IRCP: InfoNCE of each anchor against a noisy copy of itself, in-batch
 * negatives. `anchors [B, D]`, `noise [B, D]` (draw it as N(0, sigma^2), sigma = 0.1 in the paper),
 * keys `k_j = a_j + noise_j`: `L = -(1/B) sum_i log softmax_j(sim(a_i, k_j) / temperature)_i`, sim the
 * cosine (`normalize`, default) or the dot product.
 */
export function noisyPositiveInfoNCE(anchors: Tensor, noise: Tensor, options: InfoNCEOptions): Tensor {
  const fn = 'nn.losses.noisyPositiveInfoNCE';
  return Tensor.wrap(native('noisyPositiveInfoNCE', fn)(handleOf(anchors, 'anchors', fn), handleOf(noise, 'noise', fn), options));
}

/**
 * Multi-positive supervised contrastive loss, MedRAT (seed 001) eq. 4 as printed:
 * `L = (1/N') sum_i -(1/|P(i)|) sum_{p in P(i)} log( exp(z_i.z_p/t) / sum_{j != i} exp(z_i.z_j/t) )`.
 *
 * `features [N, D]`; `labels` either int class ids `[N]` (positives: same class) or multi-hot `[N, C]`
 * of 0/1 (any dtype; positives: rows sharing at least one label, eq. 4's "at least one pathology";
 * an all-zero row shares nothing). `P(i)` also holds the other rows of i's `instances` id, never i.
 * The denominator runs over every `j != i`, positives included, as eq. 4 prints it. Rows with no
 * positive are left out of the mean (`N'` counts the others; eq. 4 would divide by `|P(i)| = 0`);
 * when no row has one the loss is 0 with a zero gradient.
 */
export function supervisedContrastive(features: Tensor, labels: Tensor, options: SupervisedContrastiveOptions): Tensor {
  const fn = 'nn.losses.supervisedContrastive';
  const instances = options?.instances === undefined ? undefined : handleOf(options.instances, 'options.instances', fn);
  return Tensor.wrap(
    native('supervisedContrastive', fn)(handleOf(features, 'features', fn), handleOf(labels, 'labels', fn), instances, options),
  );
}

/**
 * Focal loss over softmax groups, OTDRG (seed 002) eq. 10:
 * `L = (1/N) sum_n alpha[t_n] (1 - exp(-l_n))^gamma l_n`, `l_n = -log softmax(logits_n)[t_n]`.
 * `logits [..., K]`, `targets` int `[...]` in `[0, K)`; n runs over every group. OTDRG's 56-way
 * vector is read as 14 four-way softmaxes (`logits [B, 14, 4]`, `targets [B, 14]` of states 0 absent,
 * 1 positive, 2 negative, 3 uncertain), each focally weighted on its own, and 1/N is the mean over
 * all B x 14 groups. (Eq. 10 taken literally sums l over the 14 groups before the focal factor,
 * which is then about 1 for every sample: no focusing.)
 */
export function focalLoss(logits: Tensor, targets: Tensor, options: FocalLossOptions = {}): Tensor {
  const fn = 'nn.losses.focalLoss';
  const alpha = options?.alpha === undefined ? undefined : handleOf(options.alpha, 'options.alpha', fn);
  return Tensor.wrap(native('focalLoss', fn)(handleOf(logits, 'logits', fn), handleOf(targets, 'targets', fn), alpha, options));
}

/**
 * Token cross-entropy averaged over the positions where `mask` is 1:
 * `L = sum m [(1 - e)(-log p[y]) + e mean_v(-log p[v])] / max(1, sum m)`.
 * `logits [..., V]` (e.g. `[B, T, V]`), `targets` int `[...]`, `mask [...]` bool or 0/1. Targets
 * under mask 0 are never read (any padding id is fine); an all-zero mask gives 0 with a zero gradient.
 */
export function maskedCrossEntropy(logits: Tensor, targets: Tensor, mask: Tensor, options: MaskedCrossEntropyOptions = {}): Tensor {
  const fn = 'nn.losses.maskedCrossEntropy';
  return Tensor.wrap(
    native('maskedCrossEntropy', fn)(handleOf(logits, 'logits', fn), handleOf(targets, 'targets', fn), handleOf(mask, 'mask', fn), options),
  );
}
