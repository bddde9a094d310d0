// MPMA (seed 004): pieces shared by the three MPMA systems (mpma pre-training, mpma-rg report
// generation, mpma-probe linear probe) and the tests: the ViT read from the configuration, the
// Gaussian ramp of lambda_GLA, BERT-style MLM masking, the MA-CMF module (eqs. 2-4) and the GLA
// losses (eqs. 6-9). Compute code only (no N-API).
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/normalization.h>

#include <string>
#include <vector>

#include "../nn/transformer.h"
#include "../nn/vit.h"
#include "system.h"

namespace radkit {
namespace mpma {

// The ViT every MPMA kind builds from the same keys (imageSize, patch, vitDim, vitLayers, vitHeads,
// vitIntermediate, vitActivation, vitPreLayerNorm), so `image.*` weights move between the kinds.
nn::VitConfig vitConfig(const Config& c);

// lambda_GLA(t) = exp(-5 (1 - t/T)^2) for t < T, then 1 (seed 004 section IV-C); T <= 0 gives 1.
double gaussianRamp(int64_t step, int64_t rampSteps);

// BERT-style masking of report tokens (seed 004 section III-B, rate 50%): in each row exactly
// round(ratio * n) of its n maskable tokens (at least one when n > 0) are chosen uniformly; each
// chosen token becomes maskId with probability 0.8, a uniform random id in [randomLow, randomHigh)
// with 0.1, and stays itself with 0.1. maskable [B, T] bool (false: special tokens and padding).
//   input [B, T] int64: the corrupted tokens; chosen [B, T] bool: the positions the loss predicts.
struct MlmMasked {
  at::Tensor input, chosen;
};
MlmMasked maskTokens(const at::Tensor& tokens, const at::Tensor& maskable, double ratio, int64_t maskId, int64_t randomLow,
                     int64_t randomHigh, at::Generator& gen);

// Memory-augmented cross-modal fusion (eqs. 2-4):
//   C_v  = MCA(v,  [E_t; M_Et], [E_t; M_Et])     C_Et = MCA(E_t, [v; M_v], [v; M_v])
// MCA is nn::MultiHeadAttention (per-head softmax(Q W^Q (K W^K)^T / sqrt(d)) V W^V, then W^O); the
// learnable memories M_Et, M_v [slots, D] extend the keys and values (slots 0: the paper's "CMF"
// without memory). Decision (the equations have no residual): with `residual` each branch is a
// pre-norm residual sublayer, C_v = v + MCA(LN(v), LN([E_t; M_Et])), so the decoder still sees the
// (masked) words themselves; residual = false is the equations as printed.
class MaCmfImpl : public torch::nn::Module {
 public:
  MaCmfImpl(int64_t dim, int64_t heads, int64_t slots, bool residual, double dropout);
  // v [B, Np, D], text [B, T, D], textValid [B, T] bool (keys that exist) -> C = [C_v; C_Et] [B, Np + T, D].
  at::Tensor forward(const at::Tensor& v, const at::Tensor& text, const at::Tensor& textValid);
  int64_t slots;
  bool residual;
  nn::MultiHeadAttention imageQuery{nullptr}, textQuery{nullptr};
  torch::nn::LayerNorm imageNorm{nullptr}, textNorm{nullptr};
  at::Tensor memoryText, memoryImage;  // M_Et, M_v
};
TORCH_MODULE(MaCmf);

// GLA (eqs. 6-9). v [B, Np, D] patch features, vm [B, M, D] = W_v v, tm [B, T, D] = t W_t^T (T <= M),
// words [B, T] bool (real words; padding and special tokens false).

// The global similarity matrix of eq. 6, [Bi, Bt] cosines. mode "mean" (decision): cosine of the
// mean of vm's M rows and the mean of tm over real words; "frobenius": the Frobenius cosine of
// vm[:, :T] and tm with padded rows of tm zeroed.
at::Tensor globalSimilarity(const at::Tensor& vm, const at::Tensor& tm, const at::Tensor& words, const std::string& mode);

// Word-to-patch attention of eq. 7 for every image a and report b: alpha[a, b, i, j] =
// softmax_i(s[a, b, i, j] / tau2), s = v_a tm_b^T; cosine = true (decision) uses cosines for s,
// false the raw dot products as printed. [Bi, Bt, Np, T].
at::Tensor wordPatchAttention(const at::Tensor& v, const at::Tensor& tm, double tau2, bool cosine);

// H of eq. 8 for every pair [Bi, Bt]: g_j = sum_i alpha_ij v_i, H = log sum_{real j} exp(g_j . t_j),
// with g_j and t_j (= tm_j) L2-normalised first (decision; normalizeLocal = false: raw dot products).
at::Tensor localSimilarity(const at::Tensor& v, const at::Tensor& tm, const at::Tensor& words, double tau2, bool cosine, bool normalizeLocal);

// Symmetric InfoNCE over a square similarity matrix S [B, B] (row i paired with column i):
// 1/2 [CE(S / tau, rows) + CE(S^T / tau, rows)]. tau a 0-dim tensor (may be learned).
at::Tensor symmetricInfoNCEFromSimilarity(const at::Tensor& s, const at::Tensor& tau);

// Ids of the MPMA word masks: real words are tokens whose id is not in `specialIds`.
at::Tensor wordMask(const at::Tensor& tokens, const std::vector<int64_t>& specialIds);

// Keys the report decoder may attend to: with radkit's Tokenizer (BOS = EOS = PAD = 0, sharedSpecial)
// BOS, the words and the EOS after them; otherwise every token that is not padId.
at::Tensor validPositions(const at::Tensor& tokens, int64_t padId, bool sharedSpecial);

}  // namespace mpma
}  // namespace radkit
