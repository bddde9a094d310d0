// N-API binding of ops.maxSimilarity: reads the arguments, runs the op's argument checks
// (max_similarity.cc), then the autograd-aware op.
#include "../../binding/registry.h"
#include "../../binding/tensor.h"
#include "max_similarity.h"

namespace radkit {
namespace {

const char* kFn = "ops.maxSimilarity";

// An optional mask argument: undefined when absent; its dtype and shape are checked by the op's checks.
at::Tensor maskArg(Napi::Value v, const char* name, const char* dims) {
  if (v.IsUndefined() || v.IsNull()) return at::Tensor();
  if (!NativeTensor::IsInstance(v)) argError("ERR_INVALID_ARG", name, " must be a bool Tensor ", dims, ", got ", describeJs(v));
  NativeTensor* nt = Napi::ObjectWrap<NativeTensor>::Unwrap(v.As<Napi::Object>());
  if (nt->isDisposed()) fail(ErrorKind::Disposed, "ERR_DISPOSED", name, " was disposed; it can no longer be used");
  return nt->tensor(kFn);
}

Napi::Value MaxSimilarity(const Napi::CallbackInfo& info) {
  return guarded(info, kFn, [&]() -> Napi::Value {
    const at::Tensor& image = tensorArg(info, 0, kFn, "image");
    const at::Tensor& text = tensorArg(info, 1, kFn, "text");
    Napi::Object o = optionsArg(info, 2, kFn);
    at::Tensor imageMask = maskArg(o.Get("imageMask"), "options.imageMask", "[Bi, N]");
    at::Tensor textMask = maskArg(o.Get("textMask"), "options.textMask", "[Bt, K]");
    const bool returnArgmax = boolArg(o.Get("returnArgmax"), kFn, "options.returnArgmax", false);
    ops::checkMaxSimilarityArgs(image, text, imageMask, textMask, kFn);
    ops::MaxSimilarityResult r = ops::max_similarity(image, text, imageMask, textMask);
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("imageToText", NativeTensor::Wrap(env, r.imageToText));
    out.Set("textToImage", NativeTensor::Wrap(env, r.textToImage));
    if (returnArgmax) {
      out.Set("imageToTextArgmax", NativeTensor::Wrap(env, r.imageToTextArgmax));
      out.Set("textToImageArgmax", NativeTensor::Wrap(env, r.textToImageArgmax));
    }
    return out;
  });
}

OpRegistrar reg("maxSimilarity", [](Napi::Env env, Napi::Object exports) {
  exports.Set("maxSimilarity", Napi::Function::New(env, MaxSimilarity, "maxSimilarity"));
});

}  // namespace
}  // namespace radkit
