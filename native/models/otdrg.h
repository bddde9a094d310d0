// OTDRG (seed 002): pieces shared by its three systems (ircp visual pre-training, diseasenet
// disease-state predictor, otdrg alignment + LoRA fine-tuning of a causal LM): the ResNet encoder
// built from the same configuration keys (so `encoder.*` weights move between the stages with
// --init), patch features of every view, the disease predictor's head, and the OT term.
// Compute code only (no N-API).
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/modules/linear.h>

#include <string>

#include "../nn/resnet.h"
#include "../ops/sinkhorn/sinkhorn.h"
#include "system.h"

namespace radkit {
namespace otdrg {

// ResNet from resnetWidths (5: stem + 4 stages), resnetBlocks (4) and resnetBlock, grey input.
nn::ResNet buildEncoder(const Config& c, const std::string& system);

// images [B, V, 1, H, W] -> patch features of every view [B, V * h * w, C].
at::Tensor patchFeatures(nn::ResNet& encoder, const at::Tensor& images, const std::string& system);

// The disease predictor: a linear head on each patch feature, pooled over the patches to 14 x 4
// logits [B, 14, 4] (states 0 absent, 1 positive, 2 negative, 3 uncertain; eq. 9's one-hot order).
// lseR = 0: the mean (the head on the mean patch feature, as before the key existed); lseR > 0:
// log-sum-exp pooling (1/r) log mean_p exp(r z_p) (Wang et al. 2017, ChestX-ray8), between the mean
// (r -> 0) and the max (r -> inf), so that a finding on one patch of 16 is not averaged away.
at::Tensor stateLogits(torch::nn::Linear& classifier, const at::Tensor& patches, double lseR);

// The head on every patch alone [B, Np, 14, 4]: what stateLogits pools (a class activation map).
at::Tensor patchStateLogits(torch::nn::Linear& classifier, const at::Tensor& patches);

// config.stateLseR, checked (finite, >= 0; 0 when missing).
double parseStateLseR(const Config& c, const std::string& system);

// Batch label states [B, 14] in 0..3, checked (ERR_INVALID_ARG naming the system).
void checkStates(const at::Tensor& labels, int64_t rows, const std::string& system);

// How the cost is scaled before Sinkhorn (epsilon is relative to the cost scale):
//  - DetachedMean ('mean'): C / mean(C) per study, the mean a constant for the gradient. Shrinking
//    every distance lowers <T*, C> / m, so the projections can lower L_OT by moving the patches and
//    labels towards one point, which flattens the cost along the labels (measured in bench/RESULTS.md).
//  - Ratio ('ratio'): C / mean(C) with the gradient through the mean: L_OT = <T*, C> / mean(C) does
//    not change when both projections are scaled, so only contrast (the plan's pairs nearer than the
//    average pair) lowers it. The forward values (cost, plan, distance) equal DetachedMean's.
//  - Raw ('raw'): C as it is.
enum class CostScale { DetachedMean, Ratio, Raw };
CostScale parseCostScale(const std::string& s, const std::string& system);

// The OT term (eqs. 6-8, Algorithm 1): C = ||x_i - y_j|| (ops::euclideanCost), scaled as `scale`
// says, then entropic OT with uniform marginals by ops::sinkhorn (epsilon, t iterations).
//   x [B, M, D], y [B, N, D]; distance [B] = <T*, C> (differentiable), plan [B, M, N].
struct Transport {
  at::Tensor distance, plan, cost;
};
Transport transport(const at::Tensor& x, const at::Tensor& y, double epsilon, int64_t iterations, CostScale scale);

}  // namespace otdrg
}  // namespace radkit
