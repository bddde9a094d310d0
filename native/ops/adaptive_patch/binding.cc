// N-API binding of ops.adaptivePatchSample: reads the arguments, runs the op's argument checks
// (adaptive_patch.cc: they name the argument, what was expected and what was given), then the
// autograd-aware op.
#include "../../binding/registry.h"
#include "../../binding/tensor.h"
#include "adaptive_patch.h"

namespace radkit {
namespace {

const char* kFn = "ops.adaptivePatchSample";

Napi::Value AdaptivePatchSample(const Napi::CallbackInfo& info) {
  return guarded(info, kFn, [&]() -> Napi::Value {
    const at::Tensor& features = tensorArg(info, 0, kFn, "features");
    const at::Tensor& boxes = tensorArg(info, 1, kFn, "boxes");
    Napi::Object o = optionsArg(info, 2, kFn);
    Napi::Value pv = o.Get("points");
    if (pv.IsUndefined()) argError("ERR_INVALID_ARG", "options.points (m, the sample grid side) is required, got undefined");
    const int64_t points = intArg(pv, kFn, "options.points", 1, 64);
    ops::checkAdaptivePatchSampleArgs(features, boxes, points, kFn);
    return NativeTensor::Wrap(info.Env(), ops::adaptive_patch_sample(features, boxes, points));
  });
}

OpRegistrar reg("adaptivePatchSample", [](Napi::Env env, Napi::Object exports) {
  exports.Set("adaptivePatchSample", Napi::Function::New(env, AdaptivePatchSample, "adaptivePatchSample"));
});

}  // namespace
}  // namespace radkit
