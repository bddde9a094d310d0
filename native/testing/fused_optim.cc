// testing.fusedAdamSteps(kind, param, grads[], { lr, beta1, beta2, eps, weightDecay, amsgrad }) and
// testing.fusedClip(grads[], maxNorm): nn::FusedAdam / FusedAdamW and nn::clipGradNorm next to
// LibTorch's own torch::optim::Adam / AdamW and torch::nn::utils::clip_grad_norm_ on copies of the
// same inputs, so the test suite can compare them (float64). Not part of the public API.
#include <torch/types.h>

#include <vector>

#include <torch/nn/utils/clip_grad.h>

#include "../binding/errors.h"
#include "../binding/registry.h"
#include "../binding/tensor.h"
#include "../nn/fused_optim.h"

namespace radkit {
namespace {

std::vector<at::Tensor> tensorList(Napi::Value v, const char* fn, const char* name) {
  if (!v.IsArray()) argError("ERR_INVALID_ARG", fn, ": ", name, " must be an array of tensors");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value t = a.Get(i);
    if (!NativeTensor::IsInstance(t)) argError("ERR_INVALID_ARG", fn, ": ", name, "[", i, "] must be a Tensor");
    out.push_back(Napi::ObjectWrap<NativeTensor>::Unwrap(t.As<Napi::Object>())->tensor(fn));
  }
  return out;
}

template <typename Fused, typename Reference, typename Options>
std::pair<at::Tensor, at::Tensor> adamBoth(const at::Tensor& start, const std::vector<at::Tensor>& grads, const Options& opts) {
  at::Tensor a = start.detach().clone().requires_grad_(true), b = start.detach().clone().requires_grad_(true);
  Fused fused(std::vector<at::Tensor>{a}, opts);
  Reference reference(std::vector<at::Tensor>{b}, opts);
  for (const at::Tensor& g : grads) {
    a.mutable_grad() = g.to(a.scalar_type()).clone();
    b.mutable_grad() = g.to(b.scalar_type()).clone();
    fused.step();
    reference.step();
  }
  return {a.detach().clone(), b.detach().clone()};
}

Napi::Value FusedAdamSteps(const Napi::CallbackInfo& info) {
  const char* fn = "testing.fusedAdamSteps";
  return guarded(info, fn, [&]() -> Napi::Value {
    if (!info[0].IsString()) argError("ERR_INVALID_ARG", "kind must be 'adam' or 'adamw'");
    const std::string kind = info[0].As<Napi::String>().Utf8Value();
    at::Tensor p = tensorArg(info, 1, fn, "param");
    std::vector<at::Tensor> grads = tensorList(info[2], fn, "grads");
    Napi::Object o = optionsArg(info, 3, fn);
    auto num = [&](const char* k, double d) { return o.Has(k) ? numberArg(o.Get(k), fn, k) : d; };
    std::pair<at::Tensor, at::Tensor> r;
    if (kind == "adam") {
      torch::optim::AdamOptions opts(num("lr", 1e-3));
      opts.betas({num("beta1", 0.9), num("beta2", 0.999)}).eps(num("eps", 1e-8)).weight_decay(num("weightDecay", 0)).amsgrad(num("amsgrad", 0) != 0);
      r = adamBoth<nn::FusedAdam, torch::optim::Adam>(p, grads, opts);
    } else if (kind == "adamw") {
      torch::optim::AdamWOptions opts(num("lr", 1e-3));
      opts.betas({num("beta1", 0.9), num("beta2", 0.999)}).eps(num("eps", 1e-8)).weight_decay(num("weightDecay", 1e-2)).amsgrad(num("amsgrad", 0) != 0);
      r = adamBoth<nn::FusedAdamW, torch::optim::AdamW>(p, grads, opts);
    } else {
      argError("ERR_INVALID_ARG", "kind must be 'adam' or 'adamw', got '", kind, "'");
    }
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("fused", NativeTensor::Wrap(info.Env(), r.first));
    out.Set("reference", NativeTensor::Wrap(info.Env(), r.second));
    return out;
  });
}

Napi::Value FusedClip(const Napi::CallbackInfo& info) {
  const char* fn = "testing.fusedClip";
  return guarded(info, fn, [&]() -> Napi::Value {
    std::vector<at::Tensor> grads = tensorList(info[0], fn, "grads");
    const double maxNorm = numberArg(info[1], fn, "maxNorm");
    auto params = [&]() {
      std::vector<at::Tensor> ps;
      for (const at::Tensor& g : grads) {
        at::Tensor p = at::zeros_like(g).requires_grad_(true);
        p.mutable_grad() = g.clone();
        ps.push_back(p);
      }
      return ps;
    };
    std::vector<at::Tensor> a = params(), b = params();
    const double fusedNorm = nn::clipGradNorm(a, maxNorm);
    const double referenceNorm = torch::nn::utils::clip_grad_norm_(b, maxNorm);
    Napi::Env env = info.Env();
    Napi::Array fa = Napi::Array::New(env), ra = Napi::Array::New(env);
    for (size_t i = 0; i < a.size(); ++i) {
      fa.Set(static_cast<uint32_t>(i), NativeTensor::Wrap(env, a[i].grad().clone()));
      ra.Set(static_cast<uint32_t>(i), NativeTensor::Wrap(env, b[i].grad().clone()));
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("fusedNorm", fusedNorm);
    out.Set("referenceNorm", referenceNorm);
    out.Set("fused", fa);
    out.Set("reference", ra);
    return out;
  });
}

OpRegistrar reg("testing:fusedOptim", [](Napi::Env env, Napi::Object exports) {
  Napi::Object t = testingExports(env, exports);
  t.Set("fusedAdamSteps", Napi::Function::New(env, FusedAdamSteps, "fusedAdamSteps"));
  t.Set("fusedClip", Napi::Function::New(env, FusedClip, "fusedClip"));
});

}  // namespace
}  // namespace radkit
