// exports.testing.maxSimilarityReference / maxSimilarityRaw: the composite LibTorch reference of
// ops.maxSimilarity (einsum then masked max) and the raw kernel without autograd, used by the tests
// and by bench/maxSimilarity.ts. Not public API.
#include <ATen/ATen.h>

#include <limits>

#include "../binding/registry.h"
#include "../binding/tensor.h"
#include "../ops/max_similarity/max_similarity.h"

namespace radkit {
namespace {

ops::MaxSimilarityResult msReference(const at::Tensor& image, const at::Tensor& text, const at::Tensor& imageMask,
                                     const at::Tensor& textMask) {
  const int64_t Bi = image.size(0), N = image.size(1), Bt = text.size(0), K = text.size(1);
  auto bopt = image.options().dtype(at::kBool);
  at::Tensor im = imageMask.defined() ? imageMask : at::ones({Bi, N}, bopt);
  at::Tensor tm = textMask.defined() ? textMask : at::ones({Bt, K}, bopt);
  at::Tensor sim = at::einsum("ind,jkd->ijnk", {image, text});  // [Bi, Bt, N, K]
  const double ninf = -std::numeric_limits<double>::infinity();
  at::Tensor s1 = sim.masked_fill(tm.logical_not().view({1, Bt, 1, K}), ninf);
  auto [m1, a1] = s1.max(3);  // [Bi, Bt, N]
  at::Tensor s2 = sim.masked_fill(im.logical_not().view({Bi, 1, N, 1}), ninf);
  auto [m2, a2] = s2.max(2);  // [Bi, Bt, K]
  at::Tensor ni = im.sum(1).to(image.scalar_type()).view({Bi, 1}), kj = tm.sum(1).to(image.scalar_type()).view({1, Bt});
  at::Tensor rowReal = im.view({Bi, 1, N}).expand({Bi, Bt, N}), colReal = tm.view({1, Bt, K}).expand({Bi, Bt, K});
  at::Tensor valid = (ni > 0) & (kj > 0);
  ops::MaxSimilarityResult r;
  r.imageToText = at::where(valid, at::where(rowReal, m1, at::zeros_like(m1)).sum(2) / ni.clamp_min(1), at::zeros({}, image.options()));
  r.textToImage = at::where(valid, at::where(colReal, m2, at::zeros_like(m2)).sum(2) / kj.clamp_min(1), at::zeros({}, image.options()));
  r.imageToTextArgmax = at::where(rowReal & valid.unsqueeze(2), a1, at::full_like(a1, -1));
  r.textToImageArgmax = at::where(colReal & valid.unsqueeze(2), a2, at::full_like(a2, -1));
  return r;
}

Napi::Object resultObject(Napi::Env env, const ops::MaxSimilarityResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("imageToText", NativeTensor::Wrap(env, r.imageToText));
  o.Set("textToImage", NativeTensor::Wrap(env, r.textToImage));
  o.Set("imageToTextArgmax", NativeTensor::Wrap(env, r.imageToTextArgmax));
  o.Set("textToImageArgmax", NativeTensor::Wrap(env, r.textToImageArgmax));
  return o;
}

at::Tensor optTensor(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (i >= info.Length() || info[i].IsUndefined() || info[i].IsNull()) return at::Tensor();
  return tensorArg(info, i, fn, name);
}

Napi::Value MsReference(const Napi::CallbackInfo& info) {
  const char* fn = "testing.maxSimilarityReference";
  return guarded(info, fn, [&]() -> Napi::Value {
    return resultObject(info.Env(), msReference(tensorArg(info, 0, fn, "image"), tensorArg(info, 1, fn, "text"),
                                                optTensor(info, 2, fn, "imageMask"), optTensor(info, 3, fn, "textMask")));
  });
}

// The raw (no autograd) maxSimilarity forward, for benchmarks of the kernel alone.
Napi::Value MsRaw(const Napi::CallbackInfo& info) {
  const char* fn = "testing.maxSimilarityRaw";
  return guarded(info, fn, [&]() -> Napi::Value {
    return resultObject(info.Env(), ops::max_similarity_forward(tensorArg(info, 0, fn, "image"), tensorArg(info, 1, fn, "text"),
                                                                optTensor(info, 2, fn, "imageMask"),
                                                                optTensor(info, 3, fn, "textMask")));
  });
}

OpRegistrar reg("testing:max_similarity", [](Napi::Env env, Napi::Object exports) {
  Napi::Object t = testingExports(env, exports);
  t.Set("maxSimilarityReference", Napi::Function::New(env, MsReference));
  t.Set("maxSimilarityRaw", Napi::Function::New(env, MsRaw));
});

}  // namespace
}  // namespace radkit
