// Training losses shared by the systems (compute code only: ATen composites, differentiable by
// autograd, no N-API). Each returns a 0-dim tensor. Float inputs are float32 or float64 (float16 and
// bfloat16 are computed, and returned, in float32). Argument errors throw radkit::RadkitFailure
// (core/errors.h, core/checks.h) with ERR_SHAPE / ERR_DTYPE / ERR_DEVICE / ERR_INVALID_ARG.
#pragma once
#include <ATen/ATen.h>

namespace radkit {
namespace nn {
namespace losses {

struct InfoNCEOptions {
  double temperature = 0;  // required, > 0
  bool normalize = true;   // L2-normalise the rows first (cosine similarities)
};

// Symmetric InfoNCE (CLIP; MPMA eq. 9) of a [B, D] and b [B, D], row i of a paired with row i of b:
//   S = a b^T / temperature,   L = 1/2 [ CE(S rows, diag) + CE(S columns, diag) ]
//   CE(S rows, diag) = -(1/B) sum_i log( exp(S_ii) / sum_j exp(S_ij) ).
at::Tensor symmetricInfoNCE(const at::Tensor& a, const at::Tensor& b, const InfoNCEOptions& o);

// Eq. 2 of OTDRG (seed 002, IRCP): InfoNCE of each anchor against its noisy copy, in-batch
// negatives. anchors [B, D], noise [B, D] (the caller draws it: N(0, sigma^2 I), sigma = 0.1 in the
// paper), keys k_j = a_j + noise_j:
//   L = -(1/B) sum_i log( exp(sim(a_i, k_i)/t) / sum_j exp(sim(a_i, k_j)/t) )
// sim is the cosine with normalize (default; the paper's "e.g. Euclid" is left open), the dot
// product without. The noise is an input so the loss is a deterministic function (testable).
at::Tensor noisyPositiveInfoNCE(const at::Tensor& anchors, const at::Tensor& noise, const InfoNCEOptions& o);

struct SupConOptions {
  double temperature = 0;  // required, > 0 (MedRAT decision: 0.07)
  bool normalize = true;   // see supervisedContrastive
  at::Tensor instances;    // optional int [N]: rows with one id are views (augmentations) of one item
};

// Multi-positive supervised contrastive loss, MedRAT (seed 001) eq. 4 as printed:
//   L = (1/N') sum_{i : |P(i)| > 0} -(1/|P(i)|) sum_{p in P(i)} log( exp(z_i.z_p/t) / sum_{j != i} exp(z_i.z_j/t) )
// features [N, D]; labels either int [N] class ids (positives: same class) or multi-hot [N, C] with
// 0/1 entries of any dtype (positives: share at least one label, eq. 4's "at least one pathology";
// an all-zero row shares nothing). P(i) also holds every other row of i's instance id (the other
// augmentation), and never i itself. Choices where eq. 4 is silent:
//  - the denominator runs over all j != i, positives included (eq. 4 as printed; SupCon's L_out);
//  - rows with no positive are left out, and N' counts the rows that have one (eq. 4 would divide by
//    |P(i)| = 0); no such row at all gives 0 with a zero gradient;
//  - normalize (default true) puts z on the unit sphere as SupCon [19] does; eq. 4 prints raw dot
//    products z_i.z_p, which normalize = false gives.
at::Tensor supervisedContrastive(const at::Tensor& features, const at::Tensor& labels, const SupConOptions& o);

struct FocalOptions {
  double gamma = 2.0;  // >= 0; 0 gives cross-entropy (OTDRG decision: 2)
  at::Tensor alpha;    // optional [K] per-class weights (alpha_t = alpha[target]), >= 0
};

// Focal loss over softmax groups, OTDRG (seed 002) eq. 10:
//   L = (1/N) sum_n alpha_{t_n} (1 - exp(-l_n))^gamma l_n,   l_n = -log softmax(logits_n)[t_n]
// logits [..., K], targets int [...] in [0, K). n runs over every group: OTDRG's 56-way vector is read
// as 14 four-way softmaxes (logits [B, 14, 4], targets [B, 14] of states 0..3) and eq. 10's 1/N is
// the mean over all B x 14 groups, each focally weighted on its own (Lin et al.). Eq. 10 taken
// literally (l summed over the 14 one-hot groups before the focal factor) would weight a sample by
// its total loss, which is almost always 1 - exp(-l) ~ 1, i.e. no focusing. No groups: 0.
at::Tensor focalLoss(const at::Tensor& logits, const at::Tensor& targets, const FocalOptions& o);

struct MaskedCEOptions {
  double labelSmoothing = 0;  // in [0, 1]: target (1 - e) one-hot + e / V uniform, as PyTorch
};

// Token cross-entropy averaged over the masked positions:
//   L = sum_{b,t} m_bt [ (1 - e) (-log p_bt[y_bt]) + e mean_v(-log p_bt[v]) ] / max(1, sum m_bt)
// logits [..., V] (e.g. [B, T, V]), targets int [...], mask [...] bool or 0/1 of any dtype. Targets
// under mask 0 are never read (padding ids of any value are fine); an all-zero mask gives 0 with a
// zero gradient.
at::Tensor maskedCrossEntropy(const at::Tensor& logits, const at::Tensor& targets, const at::Tensor& mask,
                              const MaskedCEOptions& o);

}  // namespace losses
}  // namespace nn
}  // namespace radkit
