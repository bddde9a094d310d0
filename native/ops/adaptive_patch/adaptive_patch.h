// adaptivePatchSample (ops.md section 1; seed 000 eqs. 1-4): bilinear sampling of an m x m grid of
// cell centres inside each box, exactly grid_sample(bilinear, zeros, align_corners=False).
//
//   features [B, C, H, W]   boxes [B, P, 4] = (cx, cy, w, h) in feature-map pixels, where pixel
//   (i, j) covers [j, j+1) x [i, i+1)   ->   out [B, P, C, m, m], out[b, p, c, v, u] sampled at
//   x_u = cx - w/2 + (u + 0.5) w / m,  y_v = cy - h/2 + (v + 0.5) h / m.
//
// Model code calls adaptive_patch_sample (autograd-aware: gradients for features and boxes).
// The raw forward/backward are exposed for tests and benchmarks.
#pragma once
#include <ATen/ATen.h>

#include <tuple>

namespace radkit {
namespace ops {

// Autograd-aware entry point used by model code (AdaPatch) and the TypeScript binding.
at::Tensor adaptive_patch_sample(const at::Tensor& features, const at::Tensor& boxes, int64_t points);

// The checks of the TypeScript binding, as RadkitFailures with ERR_SHAPE / ERR_DTYPE / ERR_DEVICE /
// ERR_NOT_FINITE / ERR_OUT_OF_MEMORY codes (`fn` names the caller); the op itself only TORCH_CHECKs.
void checkAdaptivePatchSampleArgs(const at::Tensor& features, const at::Tensor& boxes, int64_t points, const char* fn);

// Raw kernels (no autograd). Shapes/devices/dtypes are checked with TORCH_CHECK.
at::Tensor adaptive_patch_sample_forward(const at::Tensor& features, const at::Tensor& boxes, int64_t points);
// Returns (grad_features [B, C, H, W] or undefined, grad_boxes [B, P, 4] or undefined).
std::tuple<at::Tensor, at::Tensor> adaptive_patch_sample_backward(const at::Tensor& grad_out, const at::Tensor& features,
                                                                  const at::Tensor& boxes, int64_t points,
                                                                  bool need_features, bool need_boxes);

namespace detail {
at::Tensor adaptive_patch_forward_cpu(const at::Tensor& features, const at::Tensor& boxes, int64_t points);
std::tuple<at::Tensor, at::Tensor> adaptive_patch_backward_cpu(const at::Tensor& grad_out, const at::Tensor& features,
                                                               const at::Tensor& boxes, int64_t points,
                                                               bool need_features, bool need_boxes);
#ifdef RADKIT_WITH_CUDA
at::Tensor adaptive_patch_forward_cuda(const at::Tensor& features, const at::Tensor& boxes, int64_t points);
std::tuple<at::Tensor, at::Tensor> adaptive_patch_backward_cuda(const at::Tensor& grad_out, const at::Tensor& features,
                                                                const at::Tensor& boxes, int64_t points,
                                                                bool need_features, bool need_boxes);
#endif
}  // namespace detail

}  // namespace ops
}  // namespace radkit
