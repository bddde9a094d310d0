// N-API bindings of native/nn/losses (exports.losses; lib/nn/losses.ts wraps them as radkit.nn.losses):
//   symmetricInfoNCE(a, b, { temperature, normalize? })
//   noisyPositiveInfoNCE(anchors, noise, { temperature, normalize? })
//   supervisedContrastive(features, labels, instances | undefined, { temperature, normalize? })
//   focalLoss(logits, targets, alpha | undefined, { gamma? })
//   maskedCrossEntropy(logits, targets, mask, { labelSmoothing? })
// Each returns a 0-dim tensor; the defaults of the options are those of nn/losses.h.
#include "../nn/losses.h"
#include "errors.h"
#include "registry.h"
#include "tensor.h"

namespace radkit {
namespace {

namespace L = nn::losses;

at::Tensor optionalTensorAt(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (i >= info.Length() || info[i].IsUndefined() || info[i].IsNull()) return at::Tensor();
  return tensorArg(info, i, fn, name);
}

double numberOr(Napi::Object o, const char* key, const char* fn, const char* name, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() || v.IsNull() ? fallback : numberArg(v, fn, name);
}

Napi::Value SymmetricInfoNCE(const Napi::CallbackInfo& info) {
  const char* fn = "nn.losses.symmetricInfoNCE";
  return guarded(info, fn, [&]() -> Napi::Value {
    const at::Tensor& a = tensorArg(info, 0, fn, "a");
    const at::Tensor& b = tensorArg(info, 1, fn, "b");
    Napi::Object o = optionsArg(info, 2, fn);
    L::InfoNCEOptions opts;
    opts.temperature = numberArg(o.Get("temperature"), fn, "options.temperature");
    opts.normalize = boolArg(o.Get("normalize"), fn, "options.normalize", opts.normalize);
    return NativeTensor::Wrap(info.Env(), L::symmetricInfoNCE(a, b, opts));
  });
}

Napi::Value NoisyPositiveInfoNCE(const Napi::CallbackInfo& info) {
  const char* fn = "nn.losses.noisyPositiveInfoNCE";
  return guarded(info, fn, [&]() -> Napi::Value {
    const at::Tensor& a = tensorArg(info, 0, fn, "anchors");
    const at::Tensor& n = tensorArg(info, 1, fn, "noise");
    Napi::Object o = optionsArg(info, 2, fn);
    L::InfoNCEOptions opts;
    opts.temperature = numberArg(o.Get("temperature"), fn, "options.temperature");
    opts.normalize = boolArg(o.Get("normalize"), fn, "options.normalize", opts.normalize);
    return NativeTensor::Wrap(info.Env(), L::noisyPositiveInfoNCE(a, n, opts));
  });
}

Napi::Value SupervisedContrastive(const Napi::CallbackInfo& info) {
  const char* fn = "nn.losses.supervisedContrastive";
  return guarded(info, fn, [&]() -> Napi::Value {
    const at::Tensor& features = tensorArg(info, 0, fn, "features");
    const at::Tensor& labels = tensorArg(info, 1, fn, "labels");
    Napi::Object o = optionsArg(info, 3, fn);
    L::SupConOptions opts;
    opts.instances = optionalTensorAt(info, 2, fn, "options.instances");
    opts.temperature = numberArg(o.Get("temperature"), fn, "options.temperature");
    opts.normalize = boolArg(o.Get("normalize"), fn, "options.normalize", opts.normalize);
    return NativeTensor::Wrap(info.Env(), L::supervisedContrastive(features, labels, opts));
  });
}

Napi::Value FocalLoss(const Napi::CallbackInfo& info) {
  const char* fn = "nn.losses.focalLoss";
  return guarded(info, fn, [&]() -> Napi::Value {
    const at::Tensor& logits = tensorArg(info, 0, fn, "logits");
    const at::Tensor& targets = tensorArg(info, 1, fn, "targets");
    Napi::Object o = optionsArg(info, 3, fn);
    L::FocalOptions opts;
    opts.alpha = optionalTensorAt(info, 2, fn, "options.alpha");
    opts.gamma = numberOr(o, "gamma", fn, "options.gamma", opts.gamma);
    return NativeTensor::Wrap(info.Env(), L::focalLoss(logits, targets, opts));
  });
}

Napi::Value MaskedCrossEntropy(const Napi::CallbackInfo& info) {
  const char* fn = "nn.losses.maskedCrossEntropy";
  return guarded(info, fn, [&]() -> Napi::Value {
    const at::Tensor& logits = tensorArg(info, 0, fn, "logits");
    const at::Tensor& targets = tensorArg(info, 1, fn, "targets");
    const at::Tensor& mask = tensorArg(info, 2, fn, "mask");
    Napi::Object o = optionsArg(info, 3, fn);
    L::MaskedCEOptions opts;
    opts.labelSmoothing = numberOr(o, "labelSmoothing", fn, "options.labelSmoothing", opts.labelSmoothing);
    return NativeTensor::Wrap(info.Env(), L::maskedCrossEntropy(logits, targets, mask, opts));
  });
}

OpRegistrar reg("nn:losses", [](Napi::Env env, Napi::Object exports) {
  Napi::Object losses = Napi::Object::New(env);
  losses.Set("symmetricInfoNCE", Napi::Function::New(env, SymmetricInfoNCE, "symmetricInfoNCE"));
  losses.Set("supervisedContrastive", Napi::Function::New(env, SupervisedContrastive, "supervisedContrastive"));
  losses.Set("noisyPositiveInfoNCE", Napi::Function::New(env, NoisyPositiveInfoNCE, "noisyPositiveInfoNCE"));
  losses.Set("focalLoss", Napi::Function::New(env, FocalLoss, "focalLoss"));
  losses.Set("maskedCrossEntropy", Napi::Function::New(env, MaskedCrossEntropy, "maskedCrossEntropy"));
  exports.Set("losses", losses);
});

}  // namespace
}  // namespace radkit
