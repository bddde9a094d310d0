// Test bindings of MedRAT's pieces (exports.testing.medrat; not public API): the shared memory of
// eq. 1 and the self-attentive pooling of eqs. 2-3, each built from a seed in the input's dtype and
// returned with its weights so a test can recompute it in float64; token-level sentence shuffling.
#include <ATen/CPUGeneratorImpl.h>

#include "../binding/errors.h"
#include "../binding/registry.h"
#include "../binding/tensor.h"
#include "../models/medrat.h"

namespace radkit {
namespace {

Napi::Value wrap(Napi::Env env, const at::Tensor& t) { return NativeTensor::Wrap(env, t); }

uint64_t seedArg(Napi::Value v, const char* fn) { return static_cast<uint64_t>(intArg(v, fn, "seed", 0, (int64_t{1} << 53))); }

Napi::Object weightsOf(Napi::Env env, torch::nn::Module& m) {
  Napi::Object w = Napi::Object::New(env);
  for (auto& p : m.named_parameters(true)) w.Set(p.key(), wrap(env, p.value().detach().clone()));
  return w;
}

// sharedMemory(f [B, L, d], { slots, topK, temperature, seed }) -> { output, indices, weights }
Napi::Value SharedMemoryForward(const Napi::CallbackInfo& info) {
  const char* fn = "testing.medrat.sharedMemory";
  return guarded(info, fn, [&]() -> Napi::Value {
    const at::Tensor& f = tensorArg(info, 0, fn, "f");
    Napi::Object o = optionsArg(info, 1, fn);
    at::manual_seed(seedArg(o.Get("seed"), fn));
    medrat::SharedMemory m(intArg(o.Get("slots"), fn, "slots", 1, 1 << 16), f.size(-1), intArg(o.Get("topK"), fn, "topK", 1, 1 << 16),
                           numberArg(o.Get("temperature"), fn, "temperature"));
    m->to(f.scalar_type());
    at::Tensor indices;
    at::Tensor out = m->forward(f, &indices);
    Napi::Object r = Napi::Object::New(info.Env());
    r.Set("output", wrap(info.Env(), out));
    r.Set("indices", wrap(info.Env(), indices));
    r.Set("weights", weightsOf(info.Env(), *m));
    return r;
  });
}

// pooling(locals [B, n, d], valid bool [B, n] | undefined, { seed }) -> { output, attention, weights }
Napi::Value PoolingForward(const Napi::CallbackInfo& info) {
  const char* fn = "testing.medrat.pooling";
  return guarded(info, fn, [&]() -> Napi::Value {
    const at::Tensor& z = tensorArg(info, 0, fn, "locals");
    at::Tensor valid = info[1].IsUndefined() ? at::Tensor() : tensorArg(info, 1, fn, "valid");
    Napi::Object o = optionsArg(info, 2, fn);
    at::manual_seed(seedArg(o.Get("seed"), fn));
    medrat::SelfAttentivePooling m(z.size(-1));
    m->to(z.scalar_type());
    at::Tensor a;
    at::Tensor out = m->forward(z, valid, &a);
    Napi::Object r = Napi::Object::New(info.Env());
    r.Set("output", wrap(info.Env(), out));
    r.Set("attention", wrap(info.Env(), a));
    r.Set("weights", weightsOf(info.Env(), *m));
    return r;
  });
}

// shuffleSentences(tokens [B, T] int64, ends [E] int64, p, seed) -> tokens
Napi::Value ShuffleSentences(const Napi::CallbackInfo& info) {
  const char* fn = "testing.medrat.shuffleSentences";
  return guarded(info, fn, [&]() -> Napi::Value {
    const at::Tensor& tokens = tensorArg(info, 0, fn, "tokens");
    at::Tensor ends = tensorArg(info, 1, fn, "ends").to(at::kLong).contiguous();
    std::vector<int64_t> e(ends.data_ptr<int64_t>(), ends.data_ptr<int64_t>() + ends.numel());
    const double p = numberArg(info[2], fn, "p");
    return wrap(info.Env(), medrat::shuffleSentenceTokens(tokens, e, p, at::detail::createCPUGenerator(seedArg(info[3], fn))));
  });
}

OpRegistrar reg("testing:medrat", [](Napi::Env env, Napi::Object exports) {
  Napi::Object t = Napi::Object::New(env);
  t.Set("sharedMemory", Napi::Function::New(env, SharedMemoryForward, "sharedMemory"));
  t.Set("pooling", Napi::Function::New(env, PoolingForward, "pooling"));
  t.Set("shuffleSentences", Napi::Function::New(env, ShuffleSentences, "shuffleSentences"));
  testingExports(env, exports).Set("medrat", t);
});

}  // namespace
}  // namespace radkit
