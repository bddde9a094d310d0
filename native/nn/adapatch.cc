#include "adapatch.h"

#include <torch/nn/init.h>

#include <cmath>

#include "../ops/adaptive_patch/adaptive_patch.h"

namespace radkit {
namespace nn {

AdaPatchImpl::AdaPatchImpl(AdaPatchOptions o) : options(o) {
  TORCH_CHECK(o.inChannels() > 0 && o.outDim() > 0, "AdaPatch: inChannels and outDim must be positive");
  TORCH_CHECK(o.stride() > 0 && o.points() > 0, "AdaPatch: stride and points must be positive");
  TORCH_CHECK(maxSize() > static_cast<double>(o.stride()),
              "AdaPatch: maxSize must exceed stride so the fixed patch is reachable, got maxSize ", maxSize(),
              " and stride ", o.stride());
  const int64_t hidden = o.hidden() > 0 ? o.hidden() : o.outDim();
  const int64_t s = o.stride(), m = o.points();
  fc = register_module("fc", torch::nn::Linear(o.inChannels() * s * s, hidden));
  f1 = register_module("f1", torch::nn::Linear(hidden, 1));
  f2 = register_module("f2", torch::nn::Linear(hidden, 1));
  f3 = register_module("f3", torch::nn::Linear(hidden, 1));
  f4 = register_module("f4", torch::nn::Linear(hidden, 1));
  f5 = register_module("f5", torch::nn::Linear(o.inChannels() * m * m, o.outDim()));
  reset_parameters();
}

double AdaPatchImpl::maxSize() const {
  return options.maxSize() > 0 ? options.maxSize() : 2.0 * static_cast<double>(options.stride());
}

void AdaPatchImpl::reset_parameters() {
  torch::NoGradGuard guard;
  const double sizeBias = std::atanh(static_cast<double>(options.stride()) / maxSize());
  for (auto* head : {&f1, &f2, &f3, &f4}) (*head)->weight.zero_();
  f1->bias.zero_();
  f2->bias.zero_();
  f3->bias.fill_(sizeBias);
  f4->bias.fill_(sizeBias);
}

at::Tensor gridBoxes(int64_t gridH, int64_t gridW, double side, const at::TensorOptions& opts) {
  at::Tensor r = at::arange(gridH, opts).mul(side).add(side / 2);  // centre y of each grid row
  at::Tensor c = at::arange(gridW, opts).mul(side).add(side / 2);  // centre x of each grid column
  at::Tensor cy = r.view({gridH, 1}).expand({gridH, gridW}).reshape({-1});
  at::Tensor cx = c.view({1, gridW}).expand({gridH, gridW}).reshape({-1});
  at::Tensor s = at::full({gridH * gridW}, side, opts);
  return at::stack({cx, cy, s, s}, 1);
}

at::Tensor AdaPatchImpl::fixedBoxes(int64_t gridH, int64_t gridW, const at::TensorOptions& opts) const {
  return gridBoxes(gridH, gridW, static_cast<double>(options.stride()), opts);
}

AdaPatchOutput AdaPatchImpl::forward(const at::Tensor& features) {
  TORCH_CHECK(features.dim() == 4 && features.size(1) == options.inChannels(), "AdaPatch: features must be [B, ",
              options.inChannels(), ", H, W], got ", features.sizes());
  const int64_t B = features.size(0), C = features.size(1), s = options.stride(), m = options.points();
  const int64_t gh = features.size(2) / s, gw = features.size(3) / s, P = gh * gw;
  TORCH_CHECK(gh > 0 && gw > 0, "AdaPatch: features smaller than one patch of side ", s);
  // Fixed patches flattened as (C, s, s), like a stride-s patch embedding.
  at::Tensor patches = features.narrow(2, 0, gh * s)
                           .narrow(3, 0, gw * s)
                           .reshape({B, C, gh, s, gw, s})
                           .permute({0, 2, 4, 1, 3, 5})
                           .reshape({B, P, C * s * s});
  at::Tensor h = torch::relu(fc->forward(patches));
  const double stride = static_cast<double>(s);
  at::Tensor dx = torch::tanh(f1->forward(h)).squeeze(-1) * stride;
  at::Tensor dy = torch::tanh(f2->forward(h)).squeeze(-1) * stride;
  at::Tensor sw = torch::relu(torch::tanh(f3->forward(h))).squeeze(-1) * maxSize();
  at::Tensor sh = torch::relu(torch::tanh(f4->forward(h))).squeeze(-1) * maxSize();
  at::Tensor fixed = fixedBoxes(gh, gw, features.options()).unsqueeze(0);  // [1, P, 4]
  at::Tensor boxes = at::stack({fixed.select(2, 0) + dx, fixed.select(2, 1) + dy, sw, sh}, 2);
  at::Tensor samples = ops::adaptive_patch_sample(features, boxes, m);  // [B, P, C, m, m]
  AdaPatchOutput out;
  out.tokens = f5->forward(samples.reshape({B, P, C * m * m}));
  out.boxes = boxes;
  out.gridH = gh;
  out.gridW = gw;
  return out;
}

}  // namespace nn
}  // namespace radkit
