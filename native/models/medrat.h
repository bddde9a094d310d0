// MedRAT (seed 001): the pieces of the medrat system that tests recompute on their own: the shared
// memory of eq. 1 and the self-attentive pooling of eqs. 2-3. Compute code only (no N-API).
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>

namespace radkit {
namespace medrat {

// Shared memory (eq. 1), queried the same way by image patches and report words:
//   D_j = cos(W_f f, W_in m_j) / temperature over the M memory rows, top-K rows s_1..s_K,
//   r_f = sum_i softmax_i(D_s) (m_{s_i} W_out),   f_m = f + r_f.
// temperature 1 is eq. 1 as printed (ops::memoryQuery, cosine similarity, softmax, k = K); another
// temperature divides the cosines before the softmax (the same op on L2-normalised query / temperature
// and keys with a dot product; the top-K rows are the same). W_f, W_in, W_out have no bias (the
// equation's linear maps).
class SharedMemoryImpl : public torch::nn::Module {
 public:
  SharedMemoryImpl(int64_t slots, int64_t dim, int64_t topK, double temperature);
  // f [B, L, d] -> f + r_f [B, L, d]; the K rows each vector read [B, L, K] int64 on request.
  at::Tensor forward(const at::Tensor& f, at::Tensor* indices = nullptr);
  int64_t topK;
  double temperature;
  at::Tensor memory;  // M [slots, d]
  torch::nn::Linear queryProj{nullptr}, keyProj{nullptr}, valueProj{nullptr};  // W_f, W_in, W_out
};
TORCH_MODULE(SharedMemory);

// Self-attentive pooling (eqs. 2-3, Lin et al. 2017):
//   A = softmax over the valid locals of (W_SA2 tanh(W_SA1 Z_l^T)),   z_global = A Z_l,
// W_SA1 [d, d] and W_SA2 [1, d], no biases (a bias in W_SA2 cancels in the softmax).
class SelfAttentivePoolingImpl : public torch::nn::Module {
 public:
  explicit SelfAttentivePoolingImpl(int64_t dim);
  // locals [B, n, d], valid bool [B, n] (undefined: all valid; every row needs one valid local)
  // -> z_global [B, d]; the weights A [B, n] (0 on invalid locals) on request.
  at::Tensor forward(const at::Tensor& locals, const at::Tensor& valid, at::Tensor* weights = nullptr);
  torch::nn::Linear sa1{nullptr}, sa2{nullptr};
};
TORCH_MODULE(SelfAttentivePooling);

// Token-level sentence shuffling of a report view (the text augmentation of eq. 4's second view):
// tokens [B, T] = BOS, words, EOS, PAD (0 = BOS = EOS = PAD); a sentence ends after any id in
// `sentenceEnds` (or at the last word). With probability p a row's sentences are put in a random
// order (rows with one sentence stay as they are). Draws from `gen`; returns a new tensor.
at::Tensor shuffleSentenceTokens(const at::Tensor& tokens, const std::vector<int64_t>& sentenceEnds, double p, at::Generator gen);

}  // namespace medrat
}  // namespace radkit
