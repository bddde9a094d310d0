import { ArgumentError } from '../errors.js';
import { loadNative } from '../native.js';
import { Tensor, handleOf } from '../tensor.js';

/** Options of {@link maxSimilarity}. */
export interface MaxSimilarityOptions {
  /** bool `[Bi, N]`, true = real patch. Default: every patch is real. */
  imageMask?: Tensor;
  /** bool `[Bt, K]`, true = real word (padding false). Default: every word is real. */
  textMask?: Tensor;
  /** Also return the arg-max indices (keyword / keypatch explanations). Default false. */
  returnArgmax?: boolean;
}

/** Result of {@link maxSimilarity}; dispose the tensors when done. */
export interface MaxSimilarityResult {
  /** `[Bi, Bt]`: mean over real patches n of the max over real words k of `<image[i,n], text[j,k]>` (eq. 5). */
  imageToText: Tensor;
  /** `[Bi, Bt]`: mean over real words k of the max over real patches n of `<image[i,n], text[j,k]>` (eq. 6). */
  textToImage: Tensor;
  /** int64 `[Bi, Bt, N]` (with `returnArgmax`): the word k chosen by each patch n; -1 at padded patches. */
  imageToTextArgmax?: Tensor;
  /** int64 `[Bi, Bt, K]` (with `returnArgmax`): the patch n chosen by each word k; -1 at padded words. */
  textToImageArgmax?: Tensor;
}

/**
 * Patch-word max similarity (AdaMatch / FILIP style, seed 000 eqs. 5-6) between every image i of
 * `image [Bi, N, D]` and every text j of `text [Bt, K, D]`.
 *
 * Never materialises the `[Bi, Bt, N, K]` similarity tensor (peak extra memory is the outputs and
 * the arg-max indices kept for backward: O(Bi Bt (N + K))). Padded positions may hold any finite
 * garbage; they change no result. Ties resolve to the lowest index. An image with no real patch or a
 * text with no real word gives similarity 0 (and -1 indices) for its pairs.
 *
 * Differentiable in `image` and `text`: each gradient flows to the arg-max element only.
 * float32/float64 (CUDA also float16/bfloat16, fp32 accumulation). Inputs must be finite.
 */
export function maxSimilarity(image: Tensor, text: Tensor, options: MaxSimilarityOptions = {}): MaxSimilarityResult {
  const fn = 'ops.maxSimilarity';
  if (options === null || typeof options !== 'object')
    throw new ArgumentError(`${fn}: options must be an object, got ${options === null ? 'null' : typeof options}`, 'ERR_INVALID_ARG', fn);
  const n = loadNative();
  const raw = n.maxSimilarity(handleOf(image, 'image', fn), handleOf(text, 'text', fn), {
    imageMask: options.imageMask === undefined ? undefined : handleOf(options.imageMask, 'options.imageMask', fn),
    textMask: options.textMask === undefined ? undefined : handleOf(options.textMask, 'options.textMask', fn),
    returnArgmax: options.returnArgmax,
  });
  const out: MaxSimilarityResult = { imageToText: Tensor.wrap(raw.imageToText), textToImage: Tensor.wrap(raw.textToImage) };
  if (raw.imageToTextArgmax) out.imageToTextArgmax = Tensor.wrap(raw.imageToTextArgmax);
  if (raw.textToImageArgmax) out.textToImageArgmax = Tensor.wrap(raw.textToImageArgmax);
  return out;
}
