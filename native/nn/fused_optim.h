// Multi-tensor training utilities for the CPU step, in one parallel pass each over all parameters
// instead of several LibTorch ops per tensor (each a dispatch, a temporary and a trip through memory):
//  - globalGradNorm / clipGradNorm: the global L2 norm of the gradients read in their own dtype
//    (float32 squares summed in float32 lanes per chunk of at most 4096 elements, chunks summed in
//    float64; no float64 copies of the gradients), and LibTorch's clipping rule
//    (torch::nn::utils::clip_grad_norm_: scale by maxNorm / (norm + 1e-6) when that is below 1).
//  - FusedAdam / FusedAdamW: LibTorch's Adam and AdamW (same options, same per-parameter state
//    AdamParamState / AdamWParamState, so checkpoints and parameter groups work unchanged) with the
//    update of each element done in one pass: weight decay, both moments, bias corrections and the
//    parameter update, with the operation order of LibTorch's step. Parameters that are not dense
//    contiguous CPU float32/float64 tensors, or amsgrad, take LibTorch's own step.
// The trainer uses LibTorch's Adam/AdamW unless RADKIT_FUSED_ADAM=1: these loops are compiled for
// baseline x86-64 and were measured slower than LibTorch's vectorised kernels (bench/RESULTS.md).
// RADKIT_STEP_BASELINE=1 in the environment restores the earlier path (LibTorch's per-tensor Adam,
// float64 copies of the gradients for the norm), for before/after benchmarks (bench/vsPython.ts).
#pragma once
#include <ATen/ATen.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>

#include <vector>

namespace radkit {
namespace nn {

// The L2 norm of all defined gradients of `params` (0 when none).
double globalGradNorm(const std::vector<at::Tensor>& params);
// Returns the norm before clipping; scales the gradients when maxNorm > 0 and the norm is finite and above it.
double clipGradNorm(const std::vector<at::Tensor>& params, double maxNorm);

class FusedAdam : public torch::optim::Adam {
 public:
  using torch::optim::Adam::Adam;
  at::Tensor step(LossClosure closure = nullptr) override;
};

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  at::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace nn
}  // namespace radkit
