// N-API surface of the causal language models (native/nn/causal_lm.h; lib/nn/causal-lm.ts wraps it):
//   causalLMCreate(config, { dtype?, device?, seed? }) -> handle          (initialised weights)
//   causalLMLoad(config, files[], { dtype?, device? }) -> Promise<handle>  (safetensors shards, worker thread)
//   causalLMInfo(h) / causalLMDispose(h)
//   causalLMLogits(h, ids, { attentionMask?, inputsEmbeds? }) -> float32 [B,T,V]   (no gradient)
//   causalLMLoss(h, ids, { attentionMask?, inputsEmbeds?, lossMask? }) -> 0-dim tensor with autograd
//   causalLMEmbed(h, ids) -> [B,T,D]
//   causalLMGenerate(h, prompt, options) -> Promise<{ tokens, scores, finished, steps }>
//   causalLMAddLora(h, options) -> module names; causalLMMergeLora(h); causalLMLoadAdapter(h, file)
//   causalLMWeights(h, 'all' | 'adapter') -> { name: copy }
//   causalLMSave(h, file, 'model' | 'adapter') -> Promise<void>        (atomic safetensors)
//   causalLMResizeVocab(h, n)
//   causalLMSetupOptimizer(h, { lr, weightDecay?, beta1?, beta2?, eps? }); causalLMTrainStep(h, ids, options) -> Promise<{ loss, gradNorm }>
// A model serves one worker call (load, generate, train step, save) at a time; every other call on
// it waits for that to finish (ERR_BUSY otherwise), so JS never races the worker. Every argument is
// checked on the JS thread before anything changes.
#include <ATen/ATen.h>
#include <napi.h>
#include <torch/types.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <set>

#include "../core/safetensors.h"
#include "../nn/causal_lm.h"
#include "../nn/decoding.h"
#include "async.h"
#include "errors.h"
#include "generate_options.h"
#include "registry.h"
#include "tensor.h"

namespace radkit {
namespace {

const napi_type_tag kCausalTag = {0x7261646b69742d63ULL, 0x617573616c2d6c6dULL};  // "radkit-causal-lm"
constexpr int64_t kMaxSafe = 9007199254740991LL;
const std::string kAdapterPrefix = "base_model.model.";

struct Holder {
  nn::CausalLM model{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::atomic<bool> busy{false};
  bool disposed = false;
};
using Handle = std::shared_ptr<Holder>;

Handle holderArg(const Napi::CallbackInfo& info, bool allowBusy = false) {
  Napi::Value v = info.Length() > 0 ? info[0] : info.Env().Undefined();
  if (!v.IsExternal() || !v.As<Napi::External<Handle>>().CheckTypeTag(&kCausalTag))
    argError("ERR_INVALID_ARG", "model must be a causal LM handle, got ", describeJs(v));
  Handle h = *v.As<Napi::External<Handle>>().Data();
  if (h->disposed) fail(ErrorKind::Disposed, "ERR_DISPOSED", "the model was disposed; it can no longer be used");
  if (!allowBusy && h->busy) fail(ErrorKind::Argument, "ERR_BUSY", "the model is running a generate, train step or save; await it first");
  return h;
}

// Marks the model busy for a worker call; released when the returned token dies.
std::shared_ptr<void> claim(const Handle& h) {
  bool expected = false;
  if (!h->busy.compare_exchange_strong(expected, true))
    fail(ErrorKind::Argument, "ERR_BUSY", "the model is running a generate, train step or save; await it first");
  return std::shared_ptr<void>(nullptr, [h](void*) { h->busy = false; });
}

Napi::Value wrapHandle(Napi::Env env, Handle h) {
  Napi::External<Handle> ext = Napi::External<Handle>::New(env, new Handle(std::move(h)), [](Napi::Env, Handle* p) { delete p; });
  ext.TypeTag(&kCausalTag);
  return ext;
}

nn::CausalLMConfig parseConfig(const Napi::Value& v) {
  if (!v.IsObject() || v.IsArray()) argError("ERR_INVALID_ARG", "config must be an object, got ", describeJs(v));
  Napi::Object o = v.As<Napi::Object>();
  nn::CausalLMConfig c;
  c.arch = optString(o, "arch", "config.arch", "llama", {"llama", "gpt_neox"});
  auto req = [&](const char* key, int64_t min, int64_t max) {
    if (!has(o, key)) argError("ERR_INVALID_ARG", "config.", key, " is required");
    return optInt(o, key, (std::string("config.") + key).c_str(), 0, min, max);
  };
  c.vocabSize = req("vocabSize", 2, 100000000);
  c.hiddenSize = req("hiddenSize", 1, 1 << 20);
  c.numLayers = req("numLayers", 1, 4096);
  c.numHeads = req("numHeads", 1, 4096);
  c.numKvHeads = optInt(o, "numKvHeads", "config.numKvHeads", c.numHeads, 1, 4096);
  c.headDim = optInt(o, "headDim", "config.headDim", c.hiddenSize / c.numHeads, 1, 1 << 16);
  c.intermediateSize = req("intermediateSize", 1, 1 << 24);
  c.maxPositions = optInt(o, "maxPositions", "config.maxPositions", 2048, 1, 1 << 24);
  c.ropeTheta = optNumber(o, "ropeTheta", "config.ropeTheta", 10000.0);
  c.rotaryDim = optInt(o, "rotaryDim", "config.rotaryDim", c.headDim, 0, 1 << 16);
  c.normEps = optNumber(o, "normEps", "config.normEps", c.arch == "llama" ? 1e-6 : 1e-5);
  c.tieEmbeddings = has(o, "tieEmbeddings") && boolArg(o.Get("tieEmbeddings"), "", "config.tieEmbeddings", false);
  c.parallelResidual = !has(o, "parallelResidual") || boolArg(o.Get("parallelResidual"), "", "config.parallelResidual", true);
  c.attentionBias = has(o, "attentionBias") ? boolArg(o.Get("attentionBias"), "", "config.attentionBias", false) : c.arch == "gpt_neox";
  c.mlpBias = has(o, "mlpBias") ? boolArg(o.Get("mlpBias"), "", "config.mlpBias", false) : c.arch == "gpt_neox";
  c.activation = optString(o, "activation", "config.activation", c.arch == "llama" ? "silu" : "gelu", {"silu", "gelu", "gelu_tanh", "relu"});
  c.bosId = optInt(o, "bosId", "config.bosId", -1, -1, c.vocabSize - 1);
  c.eosId = optInt(o, "eosId", "config.eosId", -1, -1, c.vocabSize - 1);
  c.padId = optInt(o, "padId", "config.padId", -1, -1, c.vocabSize - 1);
  nn::validateConfig(c);
  return c;
}

Napi::Object configObject(Napi::Env env, const nn::CausalLMConfig& c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("arch", c.arch);
  o.Set("vocabSize", static_cast<double>(c.vocabSize));
  o.Set("hiddenSize", static_cast<double>(c.hiddenSize));
  o.Set("numLayers", static_cast<double>(c.numLayers));
  o.Set("numHeads", static_cast<double>(c.numHeads));
  o.Set("numKvHeads", static_cast<double>(c.numKvHeads));
  o.Set("headDim", static_cast<double>(c.headDim));
  o.Set("intermediateSize", static_cast<double>(c.intermediateSize));
  o.Set("maxPositions", static_cast<double>(c.maxPositions));
  o.Set("ropeTheta", c.ropeTheta);
  o.Set("rotaryDim", static_cast<double>(c.rotaryDim));
  o.Set("normEps", c.normEps);
  o.Set("tieEmbeddings", c.tieEmbeddings);
  o.Set("parallelResidual", c.parallelResidual);
  o.Set("attentionBias", c.attentionBias);
  o.Set("mlpBias", c.mlpBias);
  o.Set("activation", c.activation);
  o.Set("bosId", static_cast<double>(c.bosId));
  o.Set("eosId", static_cast<double>(c.eosId));
  o.Set("padId", static_cast<double>(c.padId));
  return o;
}

struct Placement {
  at::ScalarType dtype = at::kFloat;
  at::Device device{at::kCPU};
};

Placement placementArg(const Napi::Object& o, const char* fn) {
  Placement p;
  p.dtype = dtypeArg(o.Get("dtype"), fn, "options.dtype", at::kFloat);
  if (p.dtype != at::kFloat && p.dtype != at::kDouble && p.dtype != at::kHalf && p.dtype != at::kBFloat16)
    argError("ERR_DTYPE", "options.dtype must be float32, float64, float16 or bfloat16, got ", dtypeName(p.dtype));
  p.device = deviceArg(o.Get("device"), fn, "options.device");
  return p;
}

at::TensorOptions optionsOf(const Placement& p) { return at::TensorOptions().dtype(p.dtype).device(p.device); }

void checkModelSize(const nn::CausalLMConfig& c, const Placement& p, const char* fn) {
  const int64_t emb = c.vocabSize * c.hiddenSize;
  const int64_t layer = c.hiddenSize * c.headDim * (2 * c.numHeads + 2 * c.numKvHeads) + 3 * c.hiddenSize * c.intermediateSize;
  checkAllocation({emb * (c.tieEmbeddings ? 1 : 2) + c.numLayers * layer}, p.dtype, fn);
}

Napi::Value Create(const Napi::CallbackInfo& info) {
  const char* fn = "nn.createCausalLM";
  return guarded(info, fn, [&]() -> Napi::Value {
    nn::CausalLMConfig c = parseConfig(info.Length() > 0 ? info[0] : info.Env().Undefined());
    Napi::Object o = optionsArg(info, 1, fn);
    Placement p = placementArg(o, fn);
    const uint64_t seed = static_cast<uint64_t>(optInt(o, "seed", "options.seed", 0, 0, kMaxSafe));
    checkModelSize(c, p, fn);
    auto h = std::make_shared<Holder>();
    h->model = nn::createCausalLM(c, optionsOf(p), seed);
    h->model->eval();
    return wrapHandle(info.Env(), h);
  });
}

Napi::Value Load(const Napi::CallbackInfo& info) {
  const char* fn = "nn.loadCausalLM";
  return guarded(info, fn, [&]() -> Napi::Value {
    nn::CausalLMConfig c = parseConfig(info.Length() > 0 ? info[0] : info.Env().Undefined());
    if (info.Length() < 2 || !info[1].IsArray() || info[1].As<Napi::Array>().Length() == 0)
      argError("ERR_INVALID_ARG", "files must be a non-empty array of safetensors paths, got ", describeJs(info.Length() > 1 ? info[1] : info.Env().Undefined()));
    std::vector<std::string> files;
    Napi::Array a = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      if (!a.Get(i).IsString()) argError("ERR_INVALID_ARG", "files[", i, "] must be a path string");
      files.push_back(a.Get(i).As<Napi::String>().Utf8Value());
    }
    Placement p = placementArg(optionsArg(info, 2, fn), fn);
    checkModelSize(c, p, fn);
    return PromiseWorker<Handle>::Start(
        info.Env(), fn,
        [c, files, p]() {
          std::vector<std::shared_ptr<SafetensorsFile>> opened;
          for (auto& f : files) opened.push_back(SafetensorsFile::open(f));  // every header validated before any tensor
          auto h = std::make_shared<Holder>();
          h->model = nn::CausalLM(c, optionsOf(p));
          h->model->loadFrom(opened);
          h->model->eval();
          return h;
        },
        [](Napi::Env env, Handle& h) -> Napi::Value { return wrapHandle(env, h); });
  });
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  const char* fn = "CausalLM.info";
  return guarded(info, fn, [&]() -> Napi::Value {
    Handle h = holderArg(info, true);
    auto& m = *h->model;
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    int64_t count = 0, trainable = 0;
    for (auto& [name, t] : m.namedWeights()) {
      count += t.numel();
      if (t.requires_grad()) trainable += t.numel();
    }
    o.Set("config", configObject(env, m.config));
    o.Set("dtype", dtypeName(m.dtype));
    o.Set("device", deviceName(m.device));
    o.Set("parameterCount", static_cast<double>(count));
    o.Set("trainableCount", static_cast<double>(trainable));
    if (m.hasLora()) {
      const auto& l = m.loraOptions();
      Napi::Object lo = Napi::Object::New(env);
      lo.Set("rank", static_cast<double>(l.rank));
      lo.Set("alpha", l.alpha);
      lo.Set("dropout", l.dropout);
      Napi::Array t = Napi::Array::New(env), tm = Napi::Array::New(env);
      for (size_t i = 0; i < l.targets.size(); ++i) t.Set(static_cast<uint32_t>(i), l.targets[i]);
      for (size_t i = 0; i < l.trainModules.size(); ++i) tm.Set(static_cast<uint32_t>(i), l.trainModules[i]);
      lo.Set("targets", t);
      lo.Set("trainModules", tm);
      o.Set("lora", lo);
    } else {
      o.Set("lora", env.Null());
    }
    return o;
  });
}

// ---- inputs
struct Inputs {
  at::Tensor ids, mask, prefix, lossMask;
};

at::Tensor optionalTensor(const Napi::Object& o, const char* key, const char* fn) {
  if (!has(o, key)) return {};
  Napi::Value v = o.Get(key);
  if (!NativeTensor::IsInstance(v)) argError("ERR_INVALID_ARG", "options.", key, " must be a Tensor, got ", describeJs(v));
  NativeTensor* nt = Napi::ObjectWrap<NativeTensor>::Unwrap(v.As<Napi::Object>());
  if (nt->isDisposed()) fail(ErrorKind::Disposed, "ERR_DISPOSED", "options.", key, " was disposed; it can no longer be used");
  return nt->tensor(fn);
}

at::Tensor idsArg(const Napi::CallbackInfo& info, size_t i, const nn::CausalLMImpl& m, const char* fn, const char* name) {
  at::Tensor ids = tensorArg(info, i, fn, name);
  if (ids.scalar_type() != at::kLong && ids.scalar_type() != at::kInt) argError("ERR_DTYPE", name, " must hold token ids (int64 or int32), got ", dtypeName(ids.scalar_type()));
  if (ids.dim() != 2 || ids.size(0) < 1 || ids.size(1) < 1) argError("ERR_SHAPE", name, " must be [batch, length] with both >= 1, got ", shapeString(ids.sizes()));
  if (ids.device() != m.device) argError("ERR_DEVICE", name, " must be on the model's device ", deviceName(m.device), ", got ", deviceName(ids.device()));
  const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
  if (lo < 0 || hi >= m.config.vocabSize)
    argError("ERR_INVALID_ARG", name, " token ids must be in [0, ", m.config.vocabSize - 1, "], got values in [", lo, ", ", hi, "]");
  return ids.to(at::kLong);
}

at::Tensor maskLike(const at::Tensor& t, const at::Tensor& ids, const nn::CausalLMImpl& m, const char* name) {
  if (!t.defined()) return t;
  if (t.sizes() != ids.sizes()) argError("ERR_SHAPE", name, " must be ", shapeString(ids.sizes()), " like the ids, got ", shapeString(t.sizes()));
  if (at::isFloatingType(t.scalar_type()) || at::isComplexType(t.scalar_type()))
    argError("ERR_DTYPE", name, " must be bool, uint8 or an integer type (nonzero = on), got ", dtypeName(t.scalar_type()));
  if (t.device() != m.device) argError("ERR_DEVICE", name, " must be on the model's device ", deviceName(m.device), ", got ", deviceName(t.device()));
  return t.ne(0);
}

Inputs inputsArg(const Napi::CallbackInfo& info, size_t idsAt, const Napi::Object& o, const nn::CausalLMImpl& m, const char* fn, const char* idsName,
                 bool leftPadded) {
  Inputs in;
  in.ids = idsArg(info, idsAt, m, fn, idsName);
  in.mask = maskLike(optionalTensor(o, "attentionMask", fn), in.ids, m, "options.attentionMask");
  if (in.mask.defined()) {
    if (!in.mask.any(1).all().item<bool>()) argError("ERR_INVALID_ARG", "every row of options.attentionMask needs at least one valid position");
    if (leftPadded && !in.mask.select(1, in.mask.size(1) - 1).all().item<bool>())
      argError("ERR_INVALID_ARG", "prompts must be left-padded: the last position of every row of options.attentionMask must be valid");
    if (in.mask.all().item<bool>()) in.mask = at::Tensor();
  }
  in.prefix = optionalTensor(o, "inputsEmbeds", fn);
  if (in.prefix.defined()) {
    const at::Tensor& p = in.prefix;
    if (!at::isFloatingType(p.scalar_type())) argError("ERR_DTYPE", "options.inputsEmbeds must be floating-point, got ", dtypeName(p.scalar_type()));
    if (p.dim() != 3 || p.size(0) != in.ids.size(0) || p.size(1) < 1 || p.size(2) != m.config.hiddenSize)
      argError("ERR_SHAPE", "options.inputsEmbeds must be [", in.ids.size(0), ", prefix length >= 1, ", m.config.hiddenSize, "], got ", shapeString(p.sizes()));
    if (p.device() != m.device) argError("ERR_DEVICE", "options.inputsEmbeds must be on the model's device ", deviceName(m.device), ", got ", deviceName(p.device()));
    if (!at::isfinite(p.detach()).all().item<bool>()) argError("ERR_NOT_FINITE", "options.inputsEmbeds holds NaN or Inf");
  }
  const int64_t total = in.ids.size(1) + (in.prefix.defined() ? in.prefix.size(1) : 0);
  if (total > m.config.maxPositions) argError("ERR_SHAPE", "the sequence (", total, " positions with the prefix) exceeds config.maxPositions (", m.config.maxPositions, ")");
  return in;
}

// ids (argument 1) with options.attentionMask / inputsEmbeds / lossMask (default: every token).
Inputs lossInputsArg(const Napi::CallbackInfo& info, const Napi::Object& o, const nn::CausalLMImpl& m, const char* fn) {
  Inputs in = inputsArg(info, 1, o, m, fn, "ids", false);
  in.lossMask = maskLike(optionalTensor(o, "lossMask", fn), in.ids, m, "options.lossMask");
  if (!in.lossMask.defined()) in.lossMask = at::ones(in.ids.sizes(), in.ids.options().dtype(at::kBool));
  return in;
}

Napi::Value Logits(const Napi::CallbackInfo& info) {
  const char* fn = "CausalLM.logits";
  return guarded(info, fn, [&]() -> Napi::Value {
    Handle h = holderArg(info);
    Inputs in = inputsArg(info, 1, optionsArg(info, 2, fn), *h->model, fn, "ids", false);
    at::NoGradGuard g;
    at::Tensor l = h->model->logits(in.ids, in.mask, in.prefix);
    if (in.prefix.defined()) l = l.narrow(1, in.prefix.size(1), in.ids.size(1)).contiguous();
    return NativeTensor::Wrap(info.Env(), l);
  });
}

Napi::Value Loss(const Napi::CallbackInfo& info) {
  const char* fn = "CausalLM.loss";
  return guarded(info, fn, [&]() -> Napi::Value {
    Handle h = holderArg(info);
    Inputs in = lossInputsArg(info, optionsArg(info, 2, fn), *h->model, fn);
    return NativeTensor::Wrap(info.Env(), h->model->loss(in.ids, in.mask, in.prefix, in.lossMask));
  });
}

Napi::Value Embed(const Napi::CallbackInfo& info) {
  const char* fn = "CausalLM.embed";
  return guarded(info, fn, [&]() -> Napi::Value {
    Handle h = holderArg(info);
    at::Tensor ids = idsArg(info, 1, *h->model, fn, "ids");
    return NativeTensor::Wrap(info.Env(), h->model->embed(ids));
  });
}

Napi::Value Generate(const Napi::CallbackInfo& info) {
  const char* fn = "CausalLM.generate";
  return guarded(info, fn, [&]() -> Napi::Value {
    Handle h = holderArg(info);
    Napi::Object o = optionsArg(info, 2, fn);
    auto& m = *h->model;
    Inputs in = inputsArg(info, 1, o, m, fn, "prompt", true);
    const int64_t used = in.ids.size(1) + (in.prefix.defined() ? in.prefix.size(1) : 0);
    const int64_t room = m.config.maxPositions - used + 1;
    if (room < 1) argError("ERR_SHAPE", "the prompt (", used, " positions) leaves no room within config.maxPositions (", m.config.maxPositions, ")");
    nn::SearchOptions search = parseSearchOptions(o, SearchLimits{room, m.config.vocabSize, m.config.eosId, std::max<int64_t>(m.config.padId, 0), false});
    if (search.eosId < 0) search.eosId = -1;
    const std::string cache = optString(o, "cache", "options.cache", "full", {"full", "none"});
    Napi::Array keys = o.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
      if (!isSearchOption(k) && k != "attentionMask" && k != "inputsEmbeds" && k != "cache")
        argError("ERR_INVALID_ARG", "unknown generate option '", k, "'");
    }
    auto token = claim(h);
    nn::CausalLM model = h->model;
    const nn::CacheMode mode = cache == "full" ? nn::CacheMode::Full : nn::CacheMode::None;
    return PromiseWorker<nn::SearchResult>::Start(
        info.Env(), fn,
        [token, model, in, search, mode]() {
          at::NoGradGuard g;
          nn::CausalLMStepper stepper(model, in.ids, in.mask, in.prefix, mode);
          nn::SearchResult r = nn::search(stepper, search);
          for (auto& row : r.tokens)
            if (!row.empty() && search.stops(row.back())) row.pop_back();
          return r;
        },
        [](Napi::Env env, nn::SearchResult& r) -> Napi::Value { return searchResultToJs(env, r); });
  });
}

std::vector<std::string> stringList(const Napi::Object& o, const char* key, const char* name) {
  std::vector<std::string> out;
  if (!has(o, key)) return out;
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) argError("ERR_INVALID_ARG", name, " must be an array of module names, got ", describeJs(v));
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    if (!a.Get(i).IsString()) argError("ERR_INVALID_ARG", name, "[", i, "] must be a string, got ", describeJs(a.Get(i)));
    out.push_back(a.Get(i).As<Napi::String>().Utf8Value());
  }
  return out;
}

Napi::Value AddLora(const Napi::CallbackInfo& info) {
  const char* fn = "CausalLM.addLora";
  return guarded(info, fn, [&]() -> Napi::Value {
    Handle h = holderArg(info);
    Napi::Object o = optionsArg(info, 1, fn);
    nn::LoraOptions l;
    l.rank = optInt(o, "rank", "options.rank", 8, 1, 1 << 16);
    l.alpha = optNumber(o, "alpha", "options.alpha", 2.0 * static_cast<double>(l.rank));
    l.dropout = optNumber(o, "dropout", "options.dropout", 0.0);
    l.targets = stringList(o, "targets", "options.targets");
    if (!has(o, "targets")) l.targets = h->model->config.arch == "gpt_neox" ? std::vector<std::string>{"query_key_value"} : std::vector<std::string>{"q_proj", "v_proj"};
    l.trainModules = stringList(o, "trainModules", "options.trainModules");
    l.seed = static_cast<uint64_t>(optInt(o, "seed", "options.seed", 0, 0, kMaxSafe));
    std::vector<std::string> names = h->model->addLora(l);
    h->optimizer.reset();
    Napi::Array out = Napi::Array::New(info.Env(), names.size());
    for (size_t i = 0; i < names.size(); ++i) out.Set(static_cast<uint32_t>(i), names[i]);
    return out;
  });
}

Napi::Value MergeLora(const Napi::CallbackInfo& info) {
  const char* fn = "CausalLM.mergeLora";
  return guarded(info, fn, [&]() -> Napi::Value {
    Handle h = holderArg(info);
    if (!h->model->hasLora()) argError("ERR_INVALID_ARG", "the model has no LoRA adapters to merge");
    h->model->mergeLora();
    h->optimizer.reset();
    return info.Env().Undefined();
  });
}

Napi::Value LoadAdapter(const Napi::CallbackInfo& info) {
  const char* fn = "CausalLM.loadAdapter";
  return guarded(info, fn, [&]() -> Napi::Value {
    Handle h = holderArg(info);
    if (info.Length() < 2 || !info[1].IsString()) argError("ERR_INVALID_ARG", "file must be a path string");
    auto f = SafetensorsFile::open(info[1].As<Napi::String>().Utf8Value());
    auto& m = *h->model;
    if (!m.hasLora()) argError("ERR_INVALID_ARG", "add the adapters (addLora with the adapter's config) before loading their weights");
    std::map<std::string, at::Tensor> wanted;
    for (auto& [name, p] : m.adapterWeights()) wanted[name] = p;
    std::map<std::string, const SafetensorsEntry*> found;
    std::set<std::string> seen;
    std::vector<std::string> problems;
    for (const auto& e : f->entries()) {
      std::string name = e.name.rfind(kAdapterPrefix, 0) == 0 ? e.name.substr(kAdapterPrefix.size()) : e.name;
      auto it = wanted.find(name);
      if (it != wanted.end() && !seen.insert(name).second) problems.push_back("tensor " + name + " appears twice");
      else if (it == wanted.end()) problems.push_back("unexpected tensor " + e.name);
      else if (it->second.sizes() != at::IntArrayRef(e.shape))
        problems.push_back(e.name + ": file " + shapeString(e.shape) + ", model " + shapeString(it->second.sizes()));
      else if (!at::isFloatingType(e.dtype)) problems.push_back(e.name + ": dtype " + e.dtypeCode + " is not floating-point");
      else found[name] = &e;
    }
    for (auto& [name, p] : wanted)
      if (!seen.count(name)) problems.push_back("missing tensor " + name);
    if (!problems.empty()) {
      std::string all;
      for (size_t i = 0; i < problems.size() && i < 20; ++i) all += "\n  " + problems[i];
      if (problems.size() > 20) all += "\n  ... and " + std::to_string(problems.size() - 20) + " more";
      argError("ERR_INVALID_ARG", f->path(), " does not fit the model's adapters:", all);
    }
    at::NoGradGuard g;
    for (auto& [name, e] : found) f->copyInto(*e, wanted[name]);
    return info.Env().Undefined();
  });
}

std::vector<std::pair<std::string, at::Tensor>> selectWeights(nn::CausalLMImpl& m, const std::string& which) {
  return which == "adapter" ? m.adapterWeights() : m.namedWeights();
}

std::string whichArg(const Napi::CallbackInfo& info, size_t i, const char* a, const char* b) {
  Napi::Value v = i < info.Length() ? info[i] : info.Env().Undefined();
  std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s != a && s != b) argError("ERR_INVALID_ARG", "which must be '", a, "' or '", b, "', got ", describeJs(v));
  return s;
}

Napi::Value Weights(const Napi::CallbackInfo& info) {
  const char* fn = "CausalLM.weights";
  return guarded(info, fn, [&]() -> Napi::Value {
    Handle h = holderArg(info);
    std::string which = whichArg(info, 1, "all", "adapter");
    Napi::Object o = Napi::Object::New(info.Env());
    for (auto& [name, t] : selectWeights(*h->model, which)) o.Set(name, NativeTensor::Wrap(info.Env(), t.detach().clone()));
    return o;
  });
}

Napi::Value Save(const Napi::CallbackInfo& info) {
  const char* fn = "CausalLM.save";
  return guarded(info, fn, [&]() -> Napi::Value {
    Handle h = holderArg(info);
    if (info.Length() < 2 || !info[1].IsString()) argError("ERR_INVALID_ARG", "file must be a path string");
    std::string file = info[1].As<Napi::String>().Utf8Value();
    std::string which = whichArg(info, 2, "model", "adapter");
    auto& m = *h->model;
    if (which == "model" && m.hasLora()) argError("ERR_INVALID_ARG", "the model carries LoRA adapters: merge them first (mergeLora) or save only the adapters (saveLora)");
    if (which == "adapter" && !m.hasLora()) argError("ERR_INVALID_ARG", "the model has no LoRA adapters to save");
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (auto& [name, t] : selectWeights(m, which)) tensors.emplace_back(which == "adapter" ? kAdapterPrefix + name : name, t.detach());
    std::map<std::string, std::string> meta{{"format", "pt"}};
    auto token = claim(h);
    return PromiseWorker<bool>::Start(
        info.Env(), fn,
        [token, file, tensors, meta]() {
          writeSafetensors(file, tensors, meta);
          return true;
        },
        [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
  });
}

Napi::Value ResizeVocab(const Napi::CallbackInfo& info) {
  const char* fn = "CausalLM.resizeVocab";
  return guarded(info, fn, [&]() -> Napi::Value {
    Handle h = holderArg(info);
    const int64_t n = intArg(info.Length() > 1 ? info[1] : info.Env().Undefined(), fn, "size", 2, 100000000);
    h->model->resizeVocab(n);
    h->optimizer.reset();
    return info.Env().Undefined();
  });
}

Napi::Value SetupOptimizer(const Napi::CallbackInfo& info) {
  const char* fn = "CausalLM.setupOptimizer";
  return guarded(info, fn, [&]() -> Napi::Value {
    Handle h = holderArg(info);
    Napi::Object o = optionsArg(info, 1, fn);
    if (!has(o, "lr")) argError("ERR_INVALID_ARG", "options.lr is required");
    const double lr = optNumber(o, "lr", "options.lr", 1e-4), wd = optNumber(o, "weightDecay", "options.weightDecay", 0.0);
    const double b1 = optNumber(o, "beta1", "options.beta1", 0.9), b2 = optNumber(o, "beta2", "options.beta2", 0.999), eps = optNumber(o, "eps", "options.eps", 1e-8);
    if (!(lr > 0)) argError("ERR_INVALID_ARG", "options.lr must be > 0, got ", lr);
    if (!(wd >= 0)) argError("ERR_INVALID_ARG", "options.weightDecay must be >= 0, got ", wd);
    if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) argError("ERR_INVALID_ARG", "options.beta1 and options.beta2 must be in [0, 1)");
    if (!(eps > 0)) argError("ERR_INVALID_ARG", "options.eps must be > 0, got ", eps);
    std::vector<at::Tensor> params = h->model->trainableParameters();
    if (params.empty()) argError("ERR_INVALID_ARG", "the model has no trainable parameters");
    h->optimizer = std::make_unique<torch::optim::AdamW>(params, torch::optim::AdamWOptions(lr).betas({b1, b2}).eps(eps).weight_decay(wd));
    Napi::Object out = Napi::Object::New(info.Env());
    int64_t n = 0;
    for (auto& p : params) n += p.numel();
    out.Set("parameters", static_cast<double>(n));
    return out;
  });
}

struct StepResult {
  double loss = 0, gradNorm = 0;
};

Napi::Value TrainStep(const Napi::CallbackInfo& info) {
  const char* fn = "CausalLM.trainStep";
  return guarded(info, fn, [&]() -> Napi::Value {
    Handle h = holderArg(info);
    if (!h->optimizer) argError("ERR_INVALID_ARG", "call setupOptimizer first (adding or merging adapters and resizing the vocabulary reset it)");
    Napi::Object o = optionsArg(info, 2, fn);
    Inputs in = lossInputsArg(info, o, *h->model, fn);
    const double clip = optNumber(o, "clipNorm", "options.clipNorm", 0.0);
    if (!(clip >= 0)) argError("ERR_INVALID_ARG", "options.clipNorm must be >= 0, got ", clip);
    if (in.prefix.defined()) in.prefix = in.prefix.detach();
    auto token = claim(h);
    return PromiseWorker<StepResult>::Start(
        info.Env(), fn,
        [token, h, in, clip]() {
          at::AutoGradMode grad(true);
          auto& m = *h->model;
          m.train();
          struct Eval {
            nn::CausalLMImpl& m;
            ~Eval() { m.eval(); }
          } restore{m};
          h->optimizer->zero_grad();
          at::Tensor loss = m.loss(in.ids, in.mask, in.prefix, in.lossMask);
          const double value = loss.item<double>();
          if (!std::isfinite(value)) argError("ERR_NOT_FINITE", "the loss is ", value, "; the step was not applied");
          loss.backward();
          std::vector<at::Tensor> params = m.trainableParameters();
          const double norm = torch::nn::utils::clip_grad_norm_(params, clip > 0 ? clip : std::numeric_limits<double>::infinity());
          h->optimizer->step();
          return StepResult{value, norm};
        },
        [](Napi::Env env, StepResult& r) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("loss", r.loss);
          out.Set("gradNorm", r.gradNorm);
          return out;
        });
  });
}

Napi::Value Dispose(const Napi::CallbackInfo& info) {
  const char* fn = "CausalLM.dispose";
  return guarded(info, fn, [&]() -> Napi::Value {
    Napi::Value v = info.Length() > 0 ? info[0] : info.Env().Undefined();
    if (!v.IsExternal() || !v.As<Napi::External<Handle>>().CheckTypeTag(&kCausalTag))
      argError("ERR_INVALID_ARG", "model must be a causal LM handle, got ", describeJs(v));
    Handle h = *v.As<Napi::External<Handle>>().Data();
    if (h->busy) fail(ErrorKind::Argument, "ERR_BUSY", "the model is running a generate, train step or save; await it before disposing");
    h->disposed = true;
    h->optimizer.reset();
    h->model = nullptr;
    return info.Env().Undefined();
  });
}

OpRegistrar reg("causal_lm", [](Napi::Env env, Napi::Object exports) {
  exports.Set("causalLMCreate", Napi::Function::New(env, Create, "causalLMCreate"));
  exports.Set("causalLMLoad", Napi::Function::New(env, Load, "causalLMLoad"));
  exports.Set("causalLMInfo", Napi::Function::New(env, Info, "causalLMInfo"));
  exports.Set("causalLMLogits", Napi::Function::New(env, Logits, "causalLMLogits"));
  exports.Set("causalLMLoss", Napi::Function::New(env, Loss, "causalLMLoss"));
  exports.Set("causalLMEmbed", Napi::Function::New(env, Embed, "causalLMEmbed"));
  exports.Set("causalLMGenerate", Napi::Function::New(env, Generate, "causalLMGenerate"));
  exports.Set("causalLMAddLora", Napi::Function::New(env, AddLora, "causalLMAddLora"));
  exports.Set("causalLMMergeLora", Napi::Function::New(env, MergeLora, "causalLMMergeLora"));
  exports.Set("causalLMLoadAdapter", Napi::Function::New(env, LoadAdapter, "causalLMLoadAdapter"));
  exports.Set("causalLMWeights", Napi::Function::New(env, Weights, "causalLMWeights"));
  exports.Set("causalLMSave", Napi::Function::New(env, Save, "causalLMSave"));
  exports.Set("causalLMResizeVocab", Napi::Function::New(env, ResizeVocab, "causalLMResizeVocab"));
  exports.Set("causalLMSetupOptimizer", Napi::Function::New(env, SetupOptimizer, "causalLMSetupOptimizer"));
  exports.Set("causalLMTrainStep", Napi::Function::New(env, TrainStep, "causalLMTrainStep"));
  exports.Set("causalLMDispose", Napi::Function::New(env, Dispose, "causalLMDispose"));
});

}  // namespace
}  // namespace radkit
