// Device dispatch, argument checks and the autograd function of adaptivePatchSample.
#include <torch/csrc/autograd/custom_function.h>

#include "adaptive_patch.h"

#include "../../core/autocast.h"
#include "../../core/checks.h"

namespace radkit {
namespace ops {
namespace {

void checkArgs(const at::Tensor& features, const at::Tensor& boxes, int64_t points) {
  TORCH_CHECK(features.dim() == 4, "features must be [B, C, H, W], got ", features.sizes());
  TORCH_CHECK(boxes.dim() == 3 && boxes.size(2) == 4, "boxes must be [B, P, 4], got ", boxes.sizes());
  TORCH_CHECK(boxes.size(0) == features.size(0), "boxes batch ", boxes.size(0), " != features batch ", features.size(0));
  TORCH_CHECK(at::isFloatingType(features.scalar_type()), "features must be floating point");
  TORCH_CHECK(boxes.scalar_type() == features.scalar_type(), "boxes dtype must match features");
  TORCH_CHECK(boxes.device() == features.device(), "boxes and features must be on the same device");
  TORCH_CHECK(points >= 1, "points must be >= 1, got ", points);
  if (features.device().is_cpu())
    TORCH_CHECK(features.scalar_type() == at::kFloat || features.scalar_type() == at::kDouble,
                "on the CPU features must be float32 or float64");
}

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

struct AdaptivePatchFunction : public torch::autograd::Function<AdaptivePatchFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& features, const at::Tensor& boxes, int64_t points) {
    ctx->save_for_backward({features, boxes});
    ctx->saved_data["points"] = points;
    return adaptive_patch_sample_forward(features, boxes, points);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const int64_t points = ctx->saved_data["points"].toInt();
    auto [gf, gb] = adaptive_patch_sample_backward(grads[0], saved[0], saved[1], points, ctx->needs_input_grad(0),
                                                   ctx->needs_input_grad(1));
    return {gf, gb, at::Tensor()};
  }
};

}  // namespace

void checkAdaptivePatchSampleArgs(const at::Tensor& features, const at::Tensor& boxes, int64_t points, const char* fn) {
  if (features.dim() != 4)
    argError("ERR_SHAPE", "features must have rank 4 [B, C, H, W], got shape ", shapeString(features.sizes()));
  if (!isOpDtype(features))
    argError("ERR_DTYPE", "features must be float32 or float64 (CUDA also float16/bfloat16), got ",
             dtypeName(features.scalar_type()), " on ", deviceName(features.device()));
  if (boxes.dim() != 3 || boxes.size(2) != 4)
    argError("ERR_SHAPE", "boxes must have shape [B, P, 4] (cx, cy, w, h), got ", shapeString(boxes.sizes()));
  if (boxes.size(0) != features.size(0))
    argError("ERR_SHAPE", "boxes must have the batch size of features (", features.size(0), "), got shape ",
             shapeString(boxes.sizes()));
  checkSameDevice(boxes, "boxes", features, "features");
  checkSameDtype(boxes, "boxes", features, "features");
  const int64_t outElements = features.size(0) * boxes.size(1) * features.size(1) * points * points;
  checkAllocation({outElements}, features.scalar_type(), fn);
  if (boxes.numel() > 0 && !at::isfinite(boxes).all().item<bool>())
    argError("ERR_NOT_FINITE", "boxes must be finite (no NaN or infinity), got a non-finite value");
}

at::Tensor adaptive_patch_sample_forward(const at::Tensor& features, const at::Tensor& boxes, int64_t points) {
  checkArgs(features, boxes, points);
#ifdef RADKIT_WITH_CUDA
  if (features.is_cuda()) return detail::adaptive_patch_forward_cuda(features, boxes, points);
#endif
  TORCH_CHECK(features.device().is_cpu(), "adaptivePatchSample: unsupported device ", features.device());
  return detail::adaptive_patch_forward_cpu(features, boxes, points);
}

std::tuple<at::Tensor, at::Tensor> adaptive_patch_sample_backward(const at::Tensor& grad_out, const at::Tensor& features,
                                                                  const at::Tensor& boxes, int64_t points,
                                                                  bool need_features, bool need_boxes) {
  checkArgs(features, boxes, points);
  TORCH_CHECK(grad_out.sizes() == at::IntArrayRef({features.size(0), boxes.size(1), features.size(1), points, points}),
              "grad_out has the wrong shape ", grad_out.sizes());
  at::Tensor g = grad_out.to(features.scalar_type());
#ifdef RADKIT_WITH_CUDA
  if (features.is_cuda())
    return detail::adaptive_patch_backward_cuda(g, features, boxes, points, need_features, need_boxes);
#endif
  TORCH_CHECK(features.device().is_cpu(), "adaptivePatchSample: unsupported device ", features.device());
  return detail::adaptive_patch_backward_cpu(g, features, boxes, points, need_features, need_boxes);
}

at::Tensor adaptive_patch_sample(const at::Tensor& features, const at::Tensor& boxes, int64_t points) {
  const std::vector<at::Tensor> in = autocastOpInputs({features, boxes});  // one dtype under autocast
  return AdaptivePatchFunction::apply(in[0], in[1], points);
}

}  // namespace ops
}  // namespace radkit
