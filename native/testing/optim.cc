// testing.lambSteps(param, grads[], { lr, beta1, beta2, eps, weightDecay }): runs nn::Lamb on a copy of
// `param`, one step per gradient, and returns the updated copy, so the test suite can check the
// optimiser against an independent float64 implementation. Not part of the public API.
#include "../binding/errors.h"
#include "../binding/registry.h"
#include "../binding/tensor.h"
#include "../nn/lamb.h"

namespace radkit {
namespace {

Napi::Value LambSteps(const Napi::CallbackInfo& info) {
  const char* fn = "testing.lambSteps";
  return guarded(info, fn, [&]() -> Napi::Value {
    at::Tensor p = tensorArg(info, 0, fn, "param").detach().clone().requires_grad_(true);
    if (!info[1].IsArray()) argError("ERR_INVALID_ARG", "grads must be an array of tensors");
    Napi::Array grads = info[1].As<Napi::Array>();
    Napi::Object o = optionsArg(info, 2, fn);
    auto num = [&](const char* k, double d) { return o.Has(k) ? numberArg(o.Get(k), fn, k) : d; };
    torch::optim::AdamOptions opts(num("lr", 1e-3));
    opts.betas({num("beta1", 0.9), num("beta2", 0.999)}).eps(num("eps", 1e-6)).weight_decay(num("weightDecay", 0));
    nn::Lamb lamb(std::vector<at::Tensor>{p}, opts);
    for (uint32_t i = 0; i < grads.Length(); ++i) {
      Napi::Value g = grads.Get(i);
      if (!NativeTensor::IsInstance(g)) argError("ERR_INVALID_ARG", "grads[", i, "] must be a Tensor");
      p.mutable_grad() = Napi::ObjectWrap<NativeTensor>::Unwrap(g.As<Napi::Object>())->tensor(fn).to(p.scalar_type()).clone();
      lamb.step();
    }
    return NativeTensor::Wrap(info.Env(), p.detach().clone());
  });
}

OpRegistrar reg("testing:optim", [](Napi::Env env, Napi::Object exports) {
  testingExports(env, exports).Set("lambSteps", Napi::Function::New(env, LambSteps, "lambSteps"));
});

}  // namespace
}  // namespace radkit
