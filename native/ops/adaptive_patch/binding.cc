// N-API binding of ops.adaptivePatchSample: argument checks that name the op, the argument, what was
// expected and what was given, then the autograd-aware op.
#include "../../binding/registry.h"
#include "../../binding/tensor.h"
#include "adaptive_patch.h"

namespace radkit {
namespace {

const char* kFn = "ops.adaptivePatchSample";

bool opDtype(const at::Tensor& t) {
  auto s = t.scalar_type();
  if (s == at::kFloat || s == at::kDouble) return true;
  return t.is_cuda() && (s == at::kHalf || s == at::kBFloat16);
}

Napi::Value AdaptivePatchSample(const Napi::CallbackInfo& info) {
  return guarded(info, kFn, [&]() -> Napi::Value {
    const at::Tensor& features = tensorArg(info, 0, kFn, "features");
    const at::Tensor& boxes = tensorArg(info, 1, kFn, "boxes");
    Napi::Object o = optionsArg(info, 2, kFn);
    Napi::Value pv = o.Get("points");
    if (pv.IsUndefined()) argError("ERR_INVALID_ARG", "options.points (m, the sample grid side) is required, got undefined");
    const int64_t points = intArg(pv, kFn, "options.points", 1, 64);
    if (features.dim() != 4)
      argError("ERR_SHAPE", "features must have rank 4 [B, C, H, W], got shape ", shapeString(features.sizes()));
    if (!opDtype(features))
      argError("ERR_DTYPE", "features must be float32 or float64 (CUDA also float16/bfloat16), got ",
               dtypeName(features.scalar_type()), " on ", deviceName(features.device()));
    if (boxes.dim() != 3 || boxes.size(2) != 4)
      argError("ERR_SHAPE", "boxes must have shape [B, P, 4] (cx, cy, w, h), got ", shapeString(boxes.sizes()));
    if (boxes.size(0) != features.size(0))
      argError("ERR_SHAPE", "boxes must have the batch size of features (", features.size(0), "), got shape ",
               shapeString(boxes.sizes()));
    if (boxes.device() != features.device())
      argError("ERR_DEVICE", "boxes must be on the device of features (", deviceName(features.device()), "), got ",
               deviceName(boxes.device()));
    if (boxes.scalar_type() != features.scalar_type())
      argError("ERR_DTYPE", "boxes must have the dtype of features (", dtypeName(features.scalar_type()), "), got ",
               dtypeName(boxes.scalar_type()));
    const int64_t outBytes = features.size(0) * boxes.size(1) * features.size(1) * points * points;
    checkAllocation({outBytes}, features.scalar_type(), kFn);
    if (boxes.numel() > 0 && !at::isfinite(boxes).all().item<bool>())
      argError("ERR_NOT_FINITE", "boxes must be finite (no NaN or infinity), got a non-finite value");
    return NativeTensor::Wrap(info.Env(), ops::adaptive_patch_sample(features, boxes, points));
  });
}

OpRegistrar reg("adaptivePatchSample", [](Napi::Env env, Napi::Object exports) {
  exports.Set("adaptivePatchSample", Napi::Function::New(env, AdaptivePatchSample, "adaptivePatchSample"));
});

}  // namespace
}  // namespace radkit
