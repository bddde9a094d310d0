// AdaPatch (seed 000 section 3.1, eqs. 1-4; ops.md section 1): adaptive patch extraction for a PVT-like
// stage. For every fixed s x s patch ("token") of the input feature map it predicts a centre offset
// and a box size, samples an m x m grid of bilinear points inside the box (ops::adaptive_patch_sample)
// and projects the flattened samples to the token embedding with f5.
//
//   h      = relu(fc(flatten(fixed patch)))                     [B, P, hidden]
//   delta  = tanh(f1(h), f2(h)) * stride                        offset in patch strides (eq. 1)
//   s      = relu(tanh(f3(h), f4(h))) * maxSize                 box side, fraction of maxSize (eq. 2)
//   box    = (fixed centre + delta, s)  as (cx, cy, w, h)       eqs. 3-4
//   tokens = f5(flatten(adaptive_patch_sample(features, box, m)))  [B, P, outDim]
//
// Initialisation: f1..f4 have zero weights; f1, f2 zero bias (no shift) and f3, f4 bias
// atanh(stride / maxSize), so at step 0 every box equals its fixed patch (centre, side = stride).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace radkit {
namespace nn {

// The boxes (cx, cy, w, h) [gridH * gridW, 4] of a row-major grid of side x side patches.
at::Tensor gridBoxes(int64_t gridH, int64_t gridW, double side, const at::TensorOptions& options);

struct AdaPatchOptions {
  AdaPatchOptions(int64_t inChannels, int64_t outDim) : inChannels_(inChannels), outDim_(outDim) {}
  TORCH_ARG(int64_t, inChannels);
  TORCH_ARG(int64_t, outDim);
  TORCH_ARG(int64_t, stride) = 2;   // fixed patch side s, in feature-map pixels
  TORCH_ARG(int64_t, points) = 3;   // m: the m x m sample grid
  TORCH_ARG(double, maxSize) = 0;   // largest box side in pixels; 0 means 2 * stride
  TORCH_ARG(int64_t, hidden) = 0;   // width of the shared layer before f1..f4; 0 means outDim
};

struct AdaPatchOutput {
  at::Tensor tokens;  // [B, P, outDim], P = (H / stride) * (W / stride), row-major over the patch grid
  at::Tensor boxes;   // [B, P, 4] (cx, cy, w, h) in feature-map pixels
  int64_t gridH = 0, gridW = 0;
};

class AdaPatchImpl : public torch::nn::Module {
 public:
  explicit AdaPatchImpl(AdaPatchOptions options);
  // features [B, C, H, W] with C == inChannels; H and W are cut down to multiples of stride.
  AdaPatchOutput forward(const at::Tensor& features);
  // The fixed patches [P, 4] of a gridH x gridW patch grid (the boxes at step 0).
  at::Tensor fixedBoxes(int64_t gridH, int64_t gridW, const at::TensorOptions& options) const;
  void reset_parameters();
  double maxSize() const;

  AdaPatchOptions options;
  torch::nn::Linear fc{nullptr}, f1{nullptr}, f2{nullptr}, f3{nullptr}, f4{nullptr}, f5{nullptr};
};
TORCH_MODULE(AdaPatch);

}  // namespace nn
}  // namespace radkit
