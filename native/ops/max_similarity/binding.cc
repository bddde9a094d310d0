// N-API binding of ops.maxSimilarity.
#include "../../binding/registry.h"
#include "../../binding/tensor.h"
#include "max_similarity.h"

namespace radkit {
namespace {

const char* kFn = "ops.maxSimilarity";

bool opDtype(const at::Tensor& t) {
  auto s = t.scalar_type();
  if (s == at::kFloat || s == at::kDouble) return true;
  return t.is_cuda() && (s == at::kHalf || s == at::kBFloat16);
}

at::Tensor maskArg(Napi::Value v, const char* name, const at::Tensor& ref, const char* refName, const char* dims) {
  if (v.IsUndefined() || v.IsNull()) return at::Tensor();
  if (!NativeTensor::IsInstance(v)) argError("ERR_INVALID_ARG", name, " must be a bool Tensor ", dims, ", got ", describeJs(v));
  NativeTensor* nt = Napi::ObjectWrap<NativeTensor>::Unwrap(v.As<Napi::Object>());
  if (nt->isDisposed()) fail(ErrorKind::Disposed, "ERR_DISPOSED", name, " was disposed; it can no longer be used");
  const at::Tensor& m = nt->tensor(kFn);
  if (m.scalar_type() != at::kBool) argError("ERR_DTYPE", name, " must be a bool tensor, got ", dtypeName(m.scalar_type()));
  if (m.dim() != 2 || m.size(0) != ref.size(0) || m.size(1) != ref.size(1))
    argError("ERR_SHAPE", name, " must have shape ", dims, " = [", ref.size(0), ", ", ref.size(1), "] to match ", refName,
             ", got ", shapeString(m.sizes()));
  if (m.device() != ref.device())
    argError("ERR_DEVICE", name, " must be on the device of ", refName, " (", deviceName(ref.device()), "), got ",
             deviceName(m.device()));
  return m;
}

Napi::Value MaxSimilarity(const Napi::CallbackInfo& info) {
  return guarded(info, kFn, [&]() -> Napi::Value {
    const at::Tensor& image = tensorArg(info, 0, kFn, "image");
    const at::Tensor& text = tensorArg(info, 1, kFn, "text");
    Napi::Object o = optionsArg(info, 2, kFn);
    if (image.dim() != 3) argError("ERR_SHAPE", "image must have rank 3 [Bi, N, D], got shape ", shapeString(image.sizes()));
    if (text.dim() != 3) argError("ERR_SHAPE", "text must have rank 3 [Bt, K, D], got shape ", shapeString(text.sizes()));
    if (!opDtype(image))
      argError("ERR_DTYPE", "image must be float32 or float64 (CUDA also float16/bfloat16), got ",
               dtypeName(image.scalar_type()), " on ", deviceName(image.device()));
    if (text.device() != image.device())
      argError("ERR_DEVICE", "text must be on the device of image (", deviceName(image.device()), "), got ",
               deviceName(text.device()));
    if (text.scalar_type() != image.scalar_type())
      argError("ERR_DTYPE", "text must have the dtype of image (", dtypeName(image.scalar_type()), "), got ",
               dtypeName(text.scalar_type()));
    if (text.size(2) != image.size(2))
      argError("ERR_SHAPE", "text must have the embedding size D of image (", image.size(2), "), got shape ",
               shapeString(text.sizes()));
    at::Tensor imageMask = maskArg(o.Get("imageMask"), "options.imageMask", image, "image", "[Bi, N]");
    at::Tensor textMask = maskArg(o.Get("textMask"), "options.textMask", text, "text", "[Bt, K]");
    const bool returnArgmax = boolArg(o.Get("returnArgmax"), kFn, "options.returnArgmax", false);
    checkAllocation({image.size(0), text.size(0), image.size(1) + text.size(1)}, at::kLong, kFn);
    if (image.numel() > 0 && !at::isfinite(image).all().item<bool>())
      argError("ERR_NOT_FINITE", "image must be finite (padded positions may hold finite garbage), got a non-finite value");
    if (text.numel() > 0 && !at::isfinite(text).all().item<bool>())
      argError("ERR_NOT_FINITE", "text must be finite (padded positions may hold finite garbage), got a non-finite value");
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
