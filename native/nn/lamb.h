// LAMB (You et al., "Large Batch Optimization for Deep Learning", 2019), the optimiser AdaMatch uses
// (seed 000 section 8: beta 0.9 / 0.999, eps 1e-4). Per parameter tensor:
//   m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2,  mh = m / (1 - b1^t),  vh = v / (1 - b2^t)
//   r = mh / (sqrt(vh) + eps) + weight_decay * p
//   p -= lr * trust * r,    trust = ||p|| / ||r||  (1 when either norm is 0)
// It is an Adam subclass on purpose: same options (lr, betas, eps, weight_decay) and the same
// per-parameter state (step, exp_avg, exp_avg_sq), so Adam's checkpoint save/load, parameter groups
// and learning-rate updates work unchanged.
#pragma once
#include <torch/optim/adam.h>

namespace radkit {
namespace nn {

class Lamb : public torch::optim::Adam {
 public:
  using torch::optim::Adam::Adam;
  at::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace nn
}  // namespace radkit
