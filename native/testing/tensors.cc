// exports.testing helpers on tensors for the tests and benchmarks: backwardMany (one autograd pass
// over several outputs), nonContiguous / isContiguous (layout probes). Not public API.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <vector>

#include "../binding/registry.h"
#include "../binding/tensor.h"

namespace radkit {
namespace {

// backwardMany([outputs], [gradOutputs]): one autograd pass over several outputs.
Napi::Value BackwardMany(const Napi::CallbackInfo& info) {
  const char* fn = "testing.backwardMany";
  return guarded(info, fn, [&]() -> Napi::Value {
    if (!info[0].IsArray() || !info[1].IsArray()) argError("ERR_INVALID_ARG", "expected two arrays of tensors");
    Napi::Array a = info[0].As<Napi::Array>(), b = info[1].As<Napi::Array>();
    if (a.Length() != b.Length()) argError("ERR_INVALID_ARG", "outputs and gradOutputs differ in length");
    std::vector<at::Tensor> outs, grads;
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Value x = a.Get(i), y = b.Get(i);
      if (!NativeTensor::IsInstance(x) || !NativeTensor::IsInstance(y)) argError("ERR_INVALID_ARG", "expected tensors");
      outs.push_back(Napi::ObjectWrap<NativeTensor>::Unwrap(x.As<Napi::Object>())->tensor(fn));
      grads.push_back(Napi::ObjectWrap<NativeTensor>::Unwrap(y.As<Napi::Object>())->tensor(fn));
    }
    torch::autograd::backward(outs, grads);
    return info.Env().Undefined();
  });
}

// nonContiguous(t): the same values in a transposed-storage layout (swaps the last two dims of the
// storage; a permuted view for rank 1 is impossible, so rank >= 2).
Napi::Value NonContiguous(const Napi::CallbackInfo& info) {
  const char* fn = "testing.nonContiguous";
  return guarded(info, fn, [&]() -> Napi::Value {
    const at::Tensor& t = tensorArg(info, 0, fn, "t");
    if (t.dim() < 2) argError("ERR_SHAPE", "needs rank >= 2");
    at::Tensor r = t.detach().transpose(0, t.dim() - 1).contiguous().transpose(0, t.dim() - 1);
    if (t.requires_grad()) r.requires_grad_(true);
    return NativeTensor::Wrap(info.Env(), r);
  });
}

Napi::Value IsContiguous(const Napi::CallbackInfo& info) {
  return guarded(info, "testing.isContiguous", [&]() -> Napi::Value {
    return Napi::Boolean::New(info.Env(), tensorArg(info, 0, "testing.isContiguous", "t").is_contiguous());
  });
}

OpRegistrar reg("testing:tensors", [](Napi::Env env, Napi::Object exports) {
  Napi::Object t = testingExports(env, exports);
  t.Set("backwardMany", Napi::Function::New(env, BackwardMany));
  t.Set("nonContiguous", Napi::Function::New(env, NonContiguous));
  t.Set("isContiguous", Napi::Function::New(env, IsContiguous));
});

}  // namespace
}  // namespace radkit
