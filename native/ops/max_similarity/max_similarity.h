// maxSimilarity (ops.md section 2; seed 000 eqs. 5-6, FILIP-style patch-word alignment).
//   image [Bi, N, D], text [Bt, K, D], optional masks bool [Bi, N], [Bt, K] (true = real token).
//   imageToText[i, j] = mean over real n of max over real k of <image[i, n], text[j, k]>
//   textToImage[i, j] = mean over real k of max over real n of <image[i, n], text[j, k]>
//   argmax: imageToTextArgmax [Bi, Bt, N] (the k of each patch), textToImageArgmax [Bi, Bt, K] (the n
//   of each word), int64, -1 at padded positions. Ties resolve to the lowest index.
// Never materialises [Bi, Bt, N, K]. An image without real patches (or a text without real words)
// gives 0 similarities and -1 indices for its pairs. Backward routes each gradient to the arg-max.
#pragma once
#include <ATen/ATen.h>

#include <tuple>

namespace radkit {
namespace ops {

struct MaxSimilarityResult {
  at::Tensor imageToText;        // [Bi, Bt]
  at::Tensor textToImage;        // [Bi, Bt]
  at::Tensor imageToTextArgmax;  // [Bi, Bt, N] int64
  at::Tensor textToImageArgmax;  // [Bi, Bt, K] int64
};

// Autograd-aware (gradients for image and text). Masks may be undefined tensors (all real).
MaxSimilarityResult max_similarity(const at::Tensor& image, const at::Tensor& text, const at::Tensor& imageMask = {},
                                   const at::Tensor& textMask = {});

// The checks of the TypeScript binding, as RadkitFailures with ERR_SHAPE / ERR_DTYPE / ERR_DEVICE /
// ERR_NOT_FINITE / ERR_OUT_OF_MEMORY codes (`fn` names the caller); the op itself only TORCH_CHECKs.
void checkMaxSimilarityArgs(const at::Tensor& image, const at::Tensor& text, const at::Tensor& imageMask,
                            const at::Tensor& textMask, const char* fn);

// Raw kernels (no autograd).
MaxSimilarityResult max_similarity_forward(const at::Tensor& image, const at::Tensor& text, const at::Tensor& imageMask,
                                           const at::Tensor& textMask);
// grad_i2t / grad_t2i may be undefined (treated as zero). Returns (grad_image, grad_text).
std::tuple<at::Tensor, at::Tensor> max_similarity_backward(const at::Tensor& grad_i2t, const at::Tensor& grad_t2i,
                                                           const at::Tensor& image, const at::Tensor& text,
                                                           const at::Tensor& imageMask, const at::Tensor& textMask,
                                                           const at::Tensor& argN2K, const at::Tensor& argK2N,
                                                           bool need_image, bool need_text);

namespace detail {
// Real-token counts as float64 [Bi] / [Bt] (N or K when there is no mask).
at::Tensor realCounts(const at::Tensor& mask, int64_t batch, int64_t len, const at::Device& device);
MaxSimilarityResult max_similarity_forward_cpu(const at::Tensor& image, const at::Tensor& text,
                                               const at::Tensor& imageMask, const at::Tensor& textMask);
std::tuple<at::Tensor, at::Tensor> max_similarity_backward_cpu(const at::Tensor& c1, const at::Tensor& c2,
                                                               const at::Tensor& image, const at::Tensor& text,
                                                               const at::Tensor& argN2K, const at::Tensor& argK2N,
                                                               bool need_image, bool need_text);
#ifdef RADKIT_WITH_CUDA
MaxSimilarityResult max_similarity_forward_cuda(const at::Tensor& image, const at::Tensor& text,
                                                const at::Tensor& imageMask, const at::Tensor& textMask);
std::tuple<at::Tensor, at::Tensor> max_similarity_backward_cuda(const at::Tensor& c1, const at::Tensor& c2,
                                                                const at::Tensor& image, const at::Tensor& text,
                                                                const at::Tensor& argN2K, const at::Tensor& argK2N,
                                                                bool need_image, bool need_text);
#endif
}  // namespace detail

}  // namespace ops
}  // namespace radkit
