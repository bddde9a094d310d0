// Test bindings of MPMA's pieces (exports.testing.mpma; not public API): the MAE masking utility,
// MLM masking, the Gaussian ramp, the MA-CMF module (built from a seed, returning its output and its
// weights so a test can recompute it in float64), and the GLA similarities and losses.
#include <ATen/CPUGeneratorImpl.h>

#include "../binding/errors.h"
#include "../binding/registry.h"
#include "../binding/tensor.h"
#include "../models/mpma.h"

namespace radkit {
namespace {

Napi::Value wrap(Napi::Env env, const at::Tensor& t) { return NativeTensor::Wrap(env, t); }

uint64_t seedArg(Napi::Value v, const char* fn) { return static_cast<uint64_t>(intArg(v, fn, "seed", 0, (int64_t{1} << 53))); }

Napi::Value RandomMasking(const Napi::CallbackInfo& info) {
  const char* fn = "testing.mpma.randomMasking";
  return guarded(info, fn, [&]() -> Napi::Value {
    const int64_t batch = intArg(info[0], fn, "batch", 0, 1 << 20), patches = intArg(info[1], fn, "patches", 0, 1 << 20);
    const double ratio = numberArg(info[2], fn, "ratio");
    at::Generator gen = at::detail::createCPUGenerator(seedArg(info[3], fn));
    nn::MaskSplit s = nn::randomMasking(batch, patches, ratio, gen);
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("keep", wrap(info.Env(), s.keep));
    o.Set("restore", wrap(info.Env(), s.restore));
    o.Set("mask", wrap(info.Env(), s.mask));
    return o;
  });
}

Napi::Value Patchify(const Napi::CallbackInfo& info) {
  const char* fn = "testing.mpma.patchify";
  return guarded(info, fn, [&]() -> Napi::Value {
    return wrap(info.Env(), nn::patchify(tensorArg(info, 0, fn, "images"), intArg(info[1], fn, "patch", 1, 4096)));
  });
}

Napi::Value MaskTokens(const Napi::CallbackInfo& info) {
  const char* fn = "testing.mpma.maskTokens";
  return guarded(info, fn, [&]() -> Napi::Value {
    const at::Tensor& tokens = tensorArg(info, 0, fn, "tokens");
    const at::Tensor& maskable = tensorArg(info, 1, fn, "maskable");
    Napi::Object o = optionsArg(info, 2, fn);
    at::Generator gen = at::detail::createCPUGenerator(seedArg(o.Get("seed"), fn));
    mpma::MlmMasked m = mpma::maskTokens(tokens, maskable, numberArg(o.Get("ratio"), fn, "ratio"), intArg(o.Get("maskId"), fn, "maskId", 0, 1 << 30),
                                         intArg(o.Get("randomLow"), fn, "randomLow", 0, 1 << 30), intArg(o.Get("randomHigh"), fn, "randomHigh", 0, 1 << 30), gen);
    Napi::Object r = Napi::Object::New(info.Env());
    r.Set("input", wrap(info.Env(), m.input));
    r.Set("chosen", wrap(info.Env(), m.chosen));
    return r;
  });
}

Napi::Value GaussianRamp(const Napi::CallbackInfo& info) {
  const char* fn = "testing.mpma.gaussianRamp";
  return guarded(info, fn, [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), mpma::gaussianRamp(intArg(info[0], fn, "step", -1, 1 << 30), intArg(info[1], fn, "rampSteps", -1, 1 << 30)));
  });
}

// maCmf(v, text, valid, { heads, slots, residual, seed }) -> { output, weights: { name: tensor } }
// The module is built in float64 from the seed; output = [C_v; C_Et] of eqs. 3-4.
Napi::Value MaCmfForward(const Napi::CallbackInfo& info) {
  const char* fn = "testing.mpma.maCmf";
  return guarded(info, fn, [&]() -> Napi::Value {
    const at::Tensor& v = tensorArg(info, 0, fn, "v");
    const at::Tensor& text = tensorArg(info, 1, fn, "text");
    const at::Tensor& valid = tensorArg(info, 2, fn, "valid");
    Napi::Object o = optionsArg(info, 3, fn);
    at::manual_seed(seedArg(o.Get("seed"), fn));
    mpma::MaCmf m(v.size(2), intArg(o.Get("heads"), fn, "heads", 1, 64), intArg(o.Get("slots"), fn, "slots", 0, 4096),
                  boolArg(o.Get("residual"), fn, "residual", true), 0.0);
    m->to(v.scalar_type());
    m->eval();
    Napi::Object r = Napi::Object::New(info.Env());
    r.Set("output", wrap(info.Env(), m->forward(v, text, valid)));
    Napi::Object w = Napi::Object::New(info.Env());
    for (auto& p : m->named_parameters(true)) w.Set(p.key(), wrap(info.Env(), p.value().detach().clone()));
    r.Set("weights", w);
    return r;
  });
}

Napi::Value GlobalSimilarity(const Napi::CallbackInfo& info) {
  const char* fn = "testing.mpma.globalSimilarity";
  return guarded(info, fn, [&]() -> Napi::Value {
    std::string mode = info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : "mean";
    return wrap(info.Env(), mpma::globalSimilarity(tensorArg(info, 0, fn, "vm"), tensorArg(info, 1, fn, "tm"), tensorArg(info, 2, fn, "words"), mode));
  });
}

Napi::Value LocalSimilarity(const Napi::CallbackInfo& info) {
  const char* fn = "testing.mpma.localSimilarity";
  return guarded(info, fn, [&]() -> Napi::Value {
    Napi::Object o = optionsArg(info, 3, fn);
    return wrap(info.Env(), mpma::localSimilarity(tensorArg(info, 0, fn, "v"), tensorArg(info, 1, fn, "tm"), tensorArg(info, 2, fn, "words"),
                                                  numberArg(o.Get("tau2"), fn, "tau2"), boolArg(o.Get("cosine"), fn, "cosine", true),
                                                  boolArg(o.Get("normalizeLocal"), fn, "normalizeLocal", true)));
  });
}

Napi::Value InfoNCE(const Napi::CallbackInfo& info) {
  const char* fn = "testing.mpma.infoNCE";
  return guarded(info, fn, [&]() -> Napi::Value {
    const at::Tensor& s = tensorArg(info, 0, fn, "similarity");
    return wrap(info.Env(), mpma::symmetricInfoNCEFromSimilarity(s, at::full({}, numberArg(info[1], fn, "tau"), s.options())));
  });
}

OpRegistrar reg("testing:mpma", [](Napi::Env env, Napi::Object exports) {
  Napi::Object t = Napi::Object::New(env);
  t.Set("randomMasking", Napi::Function::New(env, RandomMasking, "randomMasking"));
  t.Set("patchify", Napi::Function::New(env, Patchify, "patchify"));
  t.Set("maskTokens", Napi::Function::New(env, MaskTokens, "maskTokens"));
  t.Set("gaussianRamp", Napi::Function::New(env, GaussianRamp, "gaussianRamp"));
  t.Set("maCmf", Napi::Function::New(env, MaCmfForward, "maCmf"));
  t.Set("globalSimilarity", Napi::Function::New(env, GlobalSimilarity, "globalSimilarity"));
  t.Set("localSimilarity", Napi::Function::New(env, LocalSimilarity, "localSimilarity"));
  t.Set("infoNCE", Napi::Function::New(env, InfoNCE, "infoNCE"));
  testingExports(env, exports).Set("mpma", t);
});

}  // namespace
}  // namespace radkit
