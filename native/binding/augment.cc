// N-API binding of native/nn/augment (lib/data/augment.ts wraps it):
//   augmentImages(images [N, C, H, W] float, seeds int64 [N], config) -> Promise<tensor>
//   augmentImagesInto(data Float32Array, shape, seeds, config) -> Promise<void> (in place)
// config holds every field of nn::AugmentConfig (lib/data/augment.ts fills the defaults).
#include <climits>
#include <memory>

#include "../nn/augment.h"
#include "async.h"
#include "errors.h"
#include "registry.h"
#include "tensor.h"

namespace radkit {
namespace {

// Reads (images, seeds, config) as augmentImages and its testing twin take them.
struct AugmentArgs {
  at::Tensor images;
  std::vector<uint64_t> seeds;
  nn::AugmentConfig config;
};

// seeds (int64 tensor at `i`) and config (object at `i + 1`).
AugmentArgs seedsAndConfig(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  const at::Tensor& seedT = tensorArg(info, i, fn, "seeds");
  if (seedT.dim() != 1 || seedT.scalar_type() != at::kLong || !seedT.device().is_cpu()) argError("ERR_INVALID_ARG", fn, ": seeds must be a 1-D int64 CPU tensor");
  at::Tensor s = seedT.contiguous();
  std::vector<uint64_t> seeds(s.numel());
  const int64_t* sp = s.data_ptr<int64_t>();
  for (int64_t k = 0; k < s.numel(); k++) seeds[k] = static_cast<uint64_t>(sp[k]);
  Napi::Object o = optionsArg(info, i + 1, fn);
  nn::AugmentConfig c;
  auto num = [&](const char* key, double& field) { field = numberArg(o.Get(key), fn, key); };
  num("cropP", c.cropP);
  num("cropScaleMin", c.cropScaleMin);
  num("cropScaleMax", c.cropScaleMax);
  num("cropRatioMin", c.cropRatioMin);
  num("cropRatioMax", c.cropRatioMax);
  num("affineP", c.affineP);
  num("degrees", c.degrees);
  num("translate", c.translate);
  num("scaleMin", c.scaleMin);
  num("scaleMax", c.scaleMax);
  num("blurP", c.blurP);
  num("sigmaMin", c.sigmaMin);
  num("sigmaMax", c.sigmaMax);
  num("brightness", c.brightness);
  num("contrast", c.contrast);
  num("hflip", c.hflip);
  nn::checkAugmentConfig(c);
  return {at::Tensor(), seeds, c};
}

AugmentArgs augmentArgs(const Napi::CallbackInfo& info, const char* fn) {
  AugmentArgs a = seedsAndConfig(info, 1, fn);
  a.images = tensorArg(info, 0, fn, "images");  // shares storage; keeps it alive if JS disposes
  return a;
}

Napi::Value AugmentImages(const Napi::CallbackInfo& info) {
  const char* fn = "augmentImages";
  return guarded(info, fn, [&]() -> Napi::Value {
    AugmentArgs a = augmentArgs(info, fn);
    return PromiseWorker<at::Tensor>::Start(
        info.Env(), fn, [a]() { return nn::augmentImages(a.images, a.seeds, a.config); },
        [](Napi::Env env, at::Tensor& r) -> Napi::Value { return NativeTensor::Wrap(env, std::move(r)); });
  });
}

// augmentImagesInto(data Float32Array, shape [N, C, H, W], seeds, config) -> Promise<void>: the
// same, writing the result back into `data` (the loader's batch buffer), so no new JS memory is
// touched. The typed array is held until the promise settles; JS must not use it meanwhile.
Napi::Value AugmentImagesInto(const Napi::CallbackInfo& info) {
  const char* fn = "augmentImagesInto";
  return guarded(info, fn, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      argError("ERR_INVALID_ARG", fn, ": data must be a Float32Array");
    Napi::Float32Array data = info[0].As<Napi::Float32Array>();
    if (info.Length() < 2 || !info[1].IsArray()) argError("ERR_INVALID_ARG", fn, ": shape must be [N, C, H, W]");
    Napi::Array sh = info[1].As<Napi::Array>();
    if (sh.Length() != 4) argError("ERR_SHAPE", fn, ": shape must be [N, C, H, W], got ", sh.Length(), " dimensions");
    std::vector<int64_t> shape(4);
    int64_t n = 1;
    for (uint32_t k = 0; k < 4; k++) n *= shape[k] = intArg(sh.Get(k), fn, "shape", 0, INT32_MAX);
    if (n != static_cast<int64_t>(data.ElementLength())) argError("ERR_SHAPE", fn, ": shape holds ", n, " values, data ", data.ElementLength());
    AugmentArgs a = seedsAndConfig(info, 2, fn);
    float* ptr = data.Data();
    auto keep = std::make_shared<Napi::Reference<Napi::Float32Array>>(Napi::Persistent(data));
    return PromiseWorker<bool>::Start(
        info.Env(), fn,
        [ptr, shape, a]() {
          at::Tensor view = at::from_blob(ptr, shape, at::TensorOptions().dtype(at::kFloat));
          view.copy_(nn::augmentImages(view.clone(), a.seeds, a.config));
          return true;
        },
        [keep](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
  });
}

// testing.augmentImagesReference: the same, synchronously, through the ATen definition (CPU loops' reference).
Napi::Value AugmentImagesReference(const Napi::CallbackInfo& info) {
  const char* fn = "testing.augmentImagesReference";
  return guarded(info, fn, [&]() -> Napi::Value {
    AugmentArgs a = augmentArgs(info, fn);
    return NativeTensor::Wrap(info.Env(), nn::augmentImages(a.images, a.seeds, a.config, /*reference=*/true));
  });
}

OpRegistrar reg("nn:augment", [](Napi::Env env, Napi::Object exports) {
  exports.Set("augmentImages", Napi::Function::New(env, AugmentImages, "augmentImages"));
  exports.Set("augmentImagesInto", Napi::Function::New(env, AugmentImagesInto, "augmentImagesInto"));
  testingExports(env, exports).Set("augmentImagesReference", Napi::Function::New(env, AugmentImagesReference, "augmentImagesReference"));
});

}  // namespace
}  // namespace radkit
