// Test bindings of the VQ quantiser (exports.testing.vq; not public API): the straight-through
// quantiser and the EMA codebook update with dead-code restart (nn/vq.h), on whatever dtype the
// test gives (float64 against references written in the test).
#include <ATen/CPUGeneratorImpl.h>

#include "../binding/errors.h"
#include "../binding/registry.h"
#include "../binding/tensor.h"
#include "../nn/vq.h"

namespace radkit {
namespace {

Napi::Value wrap(Napi::Env env, const at::Tensor& t) { return NativeTensor::Wrap(env, t); }

// quantize(z [N, D], codebook [K, D]) -> { zq, codes, codebookLoss, commitLoss } (autograd kept)
Napi::Value Quantize(const Napi::CallbackInfo& info) {
  const char* fn = "testing.vq.quantize";
  return guarded(info, fn, [&]() -> Napi::Value {
    nn::Quantized q = nn::quantize(tensorArg(info, 0, fn, "z"), tensorArg(info, 1, fn, "codebook"));
    Napi::Object r = Napi::Object::New(info.Env());
    r.Set("zq", wrap(info.Env(), q.zq));
    r.Set("codes", wrap(info.Env(), q.codes));
    r.Set("codebookLoss", wrap(info.Env(), q.codebookLoss));
    r.Set("commitLoss", wrap(info.Env(), q.commitLoss));
    return r;
  });
}

// emaUpdate(clusterSize, embedAvg, codebook, z, codes, { decay, eps, deadThreshold, seed }) ->
// { clusterSize, embedAvg, codebook, restarted } (updated copies; the inputs stay as they were)
Napi::Value EmaUpdate(const Napi::CallbackInfo& info) {
  const char* fn = "testing.vq.emaUpdate";
  return guarded(info, fn, [&]() -> Napi::Value {
    at::Tensor cs = tensorArg(info, 0, fn, "clusterSize").clone(), ea = tensorArg(info, 1, fn, "embedAvg").clone(), cb = tensorArg(info, 2, fn, "codebook").clone();
    const at::Tensor& z = tensorArg(info, 3, fn, "z");
    const at::Tensor& codes = tensorArg(info, 4, fn, "codes");
    Napi::Object o = optionsArg(info, 5, fn);
    at::Generator gen = at::detail::createCPUGenerator(static_cast<uint64_t>(intArg(o.Get("seed"), fn, "seed", 0, int64_t{1} << 53)));
    int64_t restarted = nn::emaUpdate(cs, ea, cb, z, codes, numberArg(o.Get("decay"), fn, "decay"), numberArg(o.Get("eps"), fn, "eps"), numberArg(o.Get("deadThreshold"), fn, "deadThreshold"), gen);
    Napi::Object r = Napi::Object::New(info.Env());
    r.Set("clusterSize", wrap(info.Env(), cs));
    r.Set("embedAvg", wrap(info.Env(), ea));
    r.Set("codebook", wrap(info.Env(), cb));
    r.Set("restarted", Napi::Number::New(info.Env(), static_cast<double>(restarted)));
    return r;
  });
}

OpRegistrar reg("testing:vq", [](Napi::Env env, Napi::Object exports) {
  Napi::Object t = Napi::Object::New(env);
  t.Set("quantize", Napi::Function::New(env, Quantize, "quantize"));
  t.Set("emaUpdate", Napi::Function::New(env, EmaUpdate, "emaUpdate"));
  testingExports(env, exports).Set("vq", t);
});

}  // namespace
}  // namespace radkit
