// Entropic optimal transport (Sinkhorn-Knopp in the log domain) and the Euclidean cost matrix,
// for C++ model code (contract: design/ops.md section 3; seed 002 eqs. 6-8, Algorithm 1).
//
//   auto r = radkit::ops::sinkhorn(cost, a, b, {0.1, 100});   // r.distance is differentiable
//   auto c = radkit::ops::euclideanCost(x, y);                // [B, M, N], differentiable
//
// Both functions validate their arguments (radkit::RadkitFailure with ERR_* codes) and record
// autograd graphs when an input requires gradients.
#pragma once
#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

namespace radkit {
namespace ops {

struct SinkhornOptions {
  double epsilon = 0.1;         // entropic regularisation, > 0
  int64_t maxIterations = 100;  // >= 1; one iteration = one update of each potential
  double tolerance = 0;         // stop a problem once its L1 marginal error < tolerance (0: never early)
};

struct SinkhornResult {
  at::Tensor plan;           // [B, M, N]
  at::Tensor distance;       // [B] = <plan, cost>; gradient w.r.t. cost is the plan (envelope theorem)
  at::Tensor iterations;     // int64 [B]: iterations each problem ran
  at::Tensor marginalError;  // [B]: |plan 1 - a|_1 + |plan^T 1 - b|_1 of the returned plan
};

// cost [B, M, N]; a [B, M], b [B, N] marginals (undefined: uniform). Autograd-aware in `distance`.
SinkhornResult sinkhorn(const at::Tensor& cost, const at::Tensor& a = at::Tensor(), const at::Tensor& b = at::Tensor(),
                        const SinkhornOptions& options = SinkhornOptions());

// x [B, M, D], y [B, N, D] -> [B, M, N] plain Euclidean distances. Autograd-aware (the gradient
// at a zero distance is taken as 0).
at::Tensor euclideanCost(const at::Tensor& x, const at::Tensor& y);

// Argument checks shared by the C++ API and the N-API binding (`fn` names the caller in messages).
// Returns the marginals to use (uniform where `a`/`b` are undefined).
std::pair<at::Tensor, at::Tensor> checkSinkhornArgs(const at::Tensor& cost, const at::Tensor& a, const at::Tensor& b,
                                                     const SinkhornOptions& options, const char* fn);
void checkEuclideanCostArgs(const at::Tensor& x, const at::Tensor& y, const char* fn);

namespace detail {
// Raw forward kernels (no checks, no autograd); a, b defined, same dtype/device as cost.
SinkhornResult sinkhornCpu(const at::Tensor& cost, const at::Tensor& a, const at::Tensor& b, const SinkhornOptions& o);
#ifdef RADKIT_WITH_CUDA
SinkhornResult sinkhornCuda(const at::Tensor& cost, const at::Tensor& a, const at::Tensor& b, const SinkhornOptions& o);
#endif
SinkhornResult sinkhornForward(const at::Tensor& cost, const at::Tensor& a, const at::Tensor& b, const SinkhornOptions& o);
}  // namespace detail

// distance is differentiable w.r.t. cost (grad = plan * grad_distance); plan, iterations and
// marginalError are returned as non-differentiable outputs.
struct SinkhornFunction : public torch::autograd::Function<SinkhornFunction> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& cost,
                                                const at::Tensor& a, const at::Tensor& b, double epsilon,
                                                int64_t maxIterations, double tolerance);
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads);
};

struct EuclideanCostFunction : public torch::autograd::Function<EuclideanCostFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& y);
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads);
};

}  // namespace ops
}  // namespace radkit
