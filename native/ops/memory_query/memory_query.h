// Top-k memory / prototype querying (contract: design/ops.md section 4; seeds 001 eq. 1,
// 003 eqs. 8-13): fused similarity + streaming top-k over memory tiles + weighting + weighted sum,
// for C++ model code (XProNet's cross-modal prototype querying, the shared memory of seed 001).
//
//   radkit::ops::MemoryQueryOptions o;  o.k = 15;  o.heads = 8;
//   o.similarity = radkit::ops::Similarity::ScaledDot;
//   auto r = radkit::ops::memoryQuery(query, keys, values, mask, o);   // r.response is differentiable
//
// query [B, L, D], keys [S, D], values [S, Dv], mask bool [B, S] (true = eligible; undefined =
// all). With heads = H, D and Dv are split into H equal slices and head h queries keys[:, h-th
// D slice] and sums values[:, h-th Dv slice]; indices/weights are then [B, L, H, k] (H = 1: [B, L, k]).
// Scores: dot = q.k; scaled-dot = q.k / sqrt(D / H); cosine = q.k / (max(|q|, 1e-12) max(|k|, 1e-12)).
// Weights over the selected (highest-score, ties to the lowest index) entries:
//   softmax:    exp(s_t) / sum exp(s)
//   normalized: u_t / sum u with u_t = s_t - m + 1e-6, m = min(0, smallest selected score)
//               (XProNet eq. 11, shifted so every term is positive).
// Missing slots (fewer than k eligible) have index -1 and weight 0; a row with nothing eligible
// has a zero response. Peak extra memory is O(B * L * k) plus a fixed-size score tile; no
// [B, L, S] score tensor and no [B, L, k, Dv] gathered copy is ever made.
#pragma once
#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

namespace radkit {
namespace ops {

enum class Similarity : int64_t { Dot = 0, ScaledDot = 1, Cosine = 2 };
enum class Weighting : int64_t { Softmax = 0, Normalized = 1 };

struct MemoryQueryOptions {
  int64_t k = 1;
  Similarity similarity = Similarity::Dot;
  Weighting weighting = Weighting::Softmax;
  int64_t heads = 1;
};

struct MemoryQueryResult {
  at::Tensor response;  // [B, L, Dv], differentiable w.r.t. query, keys, values
  at::Tensor indices;   // int64 [B, L, k] or [B, L, H, k]
  at::Tensor weights;   // [B, L, k] or [B, L, H, k], differentiable
};

// Validates (radkit::RadkitFailure with ERR_* codes), then runs the kernel; records an autograd
// graph when query, keys or values require gradients.
MemoryQueryResult memoryQuery(const at::Tensor& query, const at::Tensor& keys, const at::Tensor& values,
                              const at::Tensor& mask, const MemoryQueryOptions& options);

void checkMemoryQueryArgs(const at::Tensor& query, const at::Tensor& keys, const at::Tensor& values, const at::Tensor& mask,
                          const MemoryQueryOptions& options, const char* fn);

// Scores larger than this in magnitude (or NaN) make the call fail with ERR_NOT_FINITE.
namespace detail {
MemoryQueryResult memoryQueryForwardCpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                                        const MemoryQueryOptions& o);
std::array<at::Tensor, 3> memoryQueryBackwardCpu(const at::Tensor& gResponse, const at::Tensor& gWeights, const at::Tensor& q,
                                                 const at::Tensor& k, const at::Tensor& v, const at::Tensor& indices,
                                                 const at::Tensor& weights, const MemoryQueryOptions& o);
#ifdef RADKIT_WITH_CUDA
MemoryQueryResult memoryQueryForwardCuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                                         const MemoryQueryOptions& o);
std::array<at::Tensor, 3> memoryQueryBackwardCuda(const at::Tensor& gResponse, const at::Tensor& gWeights, const at::Tensor& q,
                                                  const at::Tensor& k, const at::Tensor& v, const at::Tensor& indices,
                                                  const at::Tensor& weights, const MemoryQueryOptions& o);
#endif
MemoryQueryResult memoryQueryForward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                                     const MemoryQueryOptions& o);
}  // namespace detail

struct MemoryQueryFunction : public torch::autograd::Function<MemoryQueryFunction> {
  // Returns {response, indices, weights}; indices are non-differentiable.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& query,
                                                const at::Tensor& keys, const at::Tensor& values,
                                                const at::Tensor& mask,  // empty (numel 0) = no mask
                                                int64_t k, int64_t similarity, int64_t weighting, int64_t heads);
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads);
};

}  // namespace ops
}  // namespace radkit
