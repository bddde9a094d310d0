#include "otdrg.h"

#include <cmath>

#include "../core/errors.h"
#include "resnet_config.h"

namespace radkit {
namespace otdrg {

nn::ResNet buildEncoder(const Config& c, const std::string& system) {
  return readResNetSpec(c, {16, 24, 32, 64, 96}, {1, 1, 1, 1}, system + ": ").build();
}

at::Tensor patchFeatures(nn::ResNet& encoder, const at::Tensor& images, const std::string& system) {
  if (!images.defined() || images.dim() != 5 || images.size(2) != 1) argError("ERR_SHAPE", system, " needs batch.images [B, V, 1, H, W]");
  const int64_t B = images.size(0), V = images.size(1);
  at::Tensor f = encoder->forward(images.flatten(0, 1).contiguous());  // [B*V, C, h, w]
  f = f.flatten(2).transpose(1, 2);                                     // [B*V, hw, C]
  return f.reshape({B, V * f.size(1), f.size(2)});
}

at::Tensor stateLogits(torch::nn::Linear& classifier, const at::Tensor& patches, double lseR) {
  if (lseR == 0) return classifier->forward(patches.mean(1)).view({patches.size(0), kObservations, 4});
  const double logCount = std::log(static_cast<double>(patches.size(1)));
  return (at::logsumexp(patchStateLogits(classifier, patches) * lseR, 1) - logCount) / lseR;
}

at::Tensor patchStateLogits(torch::nn::Linear& classifier, const at::Tensor& patches) {
  return classifier->forward(patches).view({patches.size(0), patches.size(1), kObservations, 4});
}

double parseStateLseR(const Config& c, const std::string& system) {
  const double r = c.num("stateLseR", 0.0);
  if (!(r >= 0) || !std::isfinite(r)) argError("ERR_INVALID_ARG", system, ": config.stateLseR must be a finite number >= 0 (0 = mean pooling), got ", r);
  return r;
}

void checkStates(const at::Tensor& labels, int64_t rows, const std::string& system) {
  if (!labels.defined()) argError("ERR_INVALID_ARG", system, " needs batch.labels (CheXpert label states [B, 14])");
  if (labels.dim() != 2 || labels.size(0) != rows || labels.size(1) != kObservations)
    argError("ERR_SHAPE", system, ": batch.labels must be [", rows, ", 14], got ", labels.sizes());
}

CostScale parseCostScale(const std::string& s, const std::string& system) {
  if (s == "mean") return CostScale::DetachedMean;
  if (s == "ratio") return CostScale::Ratio;
  if (s == "raw") return CostScale::Raw;
  argError("ERR_INVALID_ARG", system, ": config.costScale must be 'mean', 'ratio' or 'raw', got '", s, "'");
}

Transport transport(const at::Tensor& x, const at::Tensor& y, double epsilon, int64_t iterations, CostScale scale) {
  Transport t;
  at::Tensor c = ops::euclideanCost(x.to(at::kFloat), y.to(at::kFloat));  // [B, M, N]
  if (scale == CostScale::DetachedMean) c = c / c.mean({1, 2}, true).detach().clamp_min(1e-12);
  if (scale == CostScale::Ratio) c = c / c.mean({1, 2}, true).clamp_min(1e-12);
  ops::SinkhornOptions so;
  so.epsilon = epsilon;
  so.maxIterations = iterations;
  ops::SinkhornResult r = ops::sinkhorn(c, at::Tensor(), at::Tensor(), so);
  t.distance = r.distance;
  t.plan = r.plan;
  t.cost = c;
  return t;
}

}  // namespace otdrg
}  // namespace radkit
