// N-API binding of native/nn/augment (lib/data/augment.ts wraps it):
//   augmentImages(images [N, C, H, W] float, seeds int64 [N], config) -> Promise<tensor>
// config holds every field of nn::AugmentConfig (lib/data/augment.ts fills the defaults).
#include "../nn/augment.h"
#include "async.h"
#include "errors.h"
#include "registry.h"
#include "tensor.h"

namespace radkit {
namespace {

Napi::Value AugmentImages(const Napi::CallbackInfo& info) {
  const char* fn = "augmentImages";
  return guarded(info, fn, [&]() -> Napi::Value {
    at::Tensor images = tensorArg(info, 0, fn, "images");  // shares storage; keeps it alive if JS disposes
    const at::Tensor& seedT = tensorArg(info, 1, fn, "seeds");
    if (seedT.dim() != 1 || seedT.scalar_type() != at::kLong || !seedT.device().is_cpu()) argError("ERR_INVALID_ARG", fn, ": seeds must be a 1-D int64 CPU tensor");
    at::Tensor s = seedT.contiguous();
    std::vector<uint64_t> seeds(s.numel());
    const int64_t* sp = s.data_ptr<int64_t>();
    for (int64_t i = 0; i < s.numel(); i++) seeds[i] = static_cast<uint64_t>(sp[i]);
    Napi::Object o = optionsArg(info, 2, fn);
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
    return PromiseWorker<at::Tensor>::Start(
        info.Env(), fn, [images, seeds, c]() { return nn::augmentImages(images, seeds, c); },
        [](Napi::Env env, at::Tensor& r) -> Napi::Value { return NativeTensor::Wrap(env, std::move(r)); });
  });
}

OpRegistrar reg("nn:augment", [](Napi::Env env, Napi::Object exports) {
  exports.Set("augmentImages", Napi::Function::New(env, AugmentImages, "augmentImages"));
});

}  // namespace
}  // namespace radkit
