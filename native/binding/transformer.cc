// N-API surface of the transformer models and search (lib/nn/transformer.ts wraps it):
//   transformerCreate(config) -> handle
//   transformerGenerate(handle, source, options, onToken?) -> Promise<result>   (native worker thread)
//   transformerLogProbs(handle, source, target|null, options) -> NativeTensor [B,T,V]
//   transformerStateDict(handle) / transformerLoadStateDict(handle, dict) / transformerInfo / transformerDispose
// Everything is validated on the JS thread before any work starts.
#include <ATen/ATen.h>
#include <napi.h>

#include <atomic>
#include <cmath>
#include <future>
#include <memory>

#include "../nn/decoding.h"
#include "../nn/transformer.h"
#include "async.h"
#include "errors.h"
#include "generate_options.h"
#include "registry.h"
#include "tensor.h"

namespace radkit {
namespace {

using nn::TransformerConfig;

const napi_type_tag kModelTag = {0x7261646b69742d74ULL, 0x72616e73666f726dULL};  // "radkit-transform"
constexpr int64_t kMaxSafe = 9007199254740991LL;

struct ModelHolder {
  TransformerConfig config;
  nn::EncoderDecoder encdec{nullptr};
  nn::DecoderOnly deconly{nullptr};
  at::ScalarType dtype = at::kFloat;
  at::Device device{at::kCPU};
  bool disposed = false;
  std::atomic<int> active{0};  // generate calls in flight
  torch::nn::Module& module() { return encdec ? static_cast<torch::nn::Module&>(*encdec) : static_cast<torch::nn::Module&>(*deconly); }
  bool encoderDecoder() const { return static_cast<bool>(encdec); }
};
using Handle = std::shared_ptr<ModelHolder>;

std::shared_ptr<ModelHolder> holderArg(const Napi::CallbackInfo& info, const char* fn) {
  Napi::Value v = info.Length() > 0 ? info[0] : info.Env().Undefined();
  if (!v.IsExternal() || !v.As<Napi::External<Handle>>().CheckTypeTag(&kModelTag))
    argError("ERR_INVALID_ARG", "model must be a transformer handle from transformerCreate, got ", describeJs(v));
  Handle h = *v.As<Napi::External<Handle>>().Data();
  if (h->disposed) fail(ErrorKind::Disposed, "ERR_DISPOSED", "the model was disposed; it can no longer be used");
  return h;
}

TransformerConfig parseConfig(const Napi::Object& o) {
  TransformerConfig c;
  c.kind = optString(o, "kind", "config.kind", "encoder-decoder", {"encoder-decoder", "decoder-only"});
  if (!has(o, "vocabSize")) argError("ERR_INVALID_ARG", "config.vocabSize is required (an integer >= 2)");
  c.vocabSize = optInt(o, "vocabSize", "config.vocabSize", 0, 2, 10000000);
  c.dModel = optInt(o, "dModel", "config.dModel", 512, 1, 65536);
  c.numHeads = optInt(o, "numHeads", "config.numHeads", 8, 1, 4096);
  if (c.dModel % c.numHeads) argError("ERR_INVALID_ARG", "config.dModel (", c.dModel, ") must be divisible by config.numHeads (", c.numHeads, ")");
  c.dFF = optInt(o, "dFF", "config.dFF", 512, 1, 1 << 20);
  c.encoderLayers = optInt(o, "encoderLayers", "config.encoderLayers", 3, 0, 256);
  c.decoderLayers = optInt(o, "decoderLayers", "config.decoderLayers", 3, 1, 256);
  c.dropout = optNumber(o, "dropout", "config.dropout", 0.1);
  if (c.dropout < 0 || c.dropout >= 1) argError("ERR_INVALID_ARG", "config.dropout must be in [0, 1), got ", c.dropout);
  c.preNorm = optString(o, "norm", "config.norm", "pre", {"pre", "post"}) == "pre";
  c.positions = optString(o, "positions", "config.positions", "sinusoidal", {"sinusoidal", "learned"});
  c.maxPositions = optInt(o, "maxPositions", "config.maxPositions", 512, 1, 1 << 20);
  c.sourceVocabSize = optInt(o, "sourceVocabSize", "config.sourceVocabSize", 0, 0, 10000000);
  c.sourceDim = optInt(o, "sourceDim", "config.sourceDim", 0, 0, 1 << 20);
  if (c.sourceVocabSize > 0 && c.sourceDim > 0) argError("ERR_INVALID_ARG", "config.sourceDim applies to feature sources only; it cannot be combined with config.sourceVocabSize");
  c.sourcePositions = has(o, "sourcePositions") ? boolArg(o.Get("sourcePositions"), "", "config.sourcePositions", false) : c.sourceVocabSize > 0;
  c.padId = optInt(o, "padId", "config.padId", 0, 0, c.vocabSize - 1);
  c.bosId = optInt(o, "bosId", "config.bosId", std::min<int64_t>(1, c.vocabSize - 1), 0, c.vocabSize - 1);
  c.eosId = optInt(o, "eosId", "config.eosId", std::min<int64_t>(2, c.vocabSize - 1), 0, c.vocabSize - 1);
  c.seed = static_cast<uint64_t>(optInt(o, "seed", "config.seed", 0, 0, kMaxSafe));
  c.initGain = optNumber(o, "initGain", "config.initGain", 1.0);
  if (c.initGain <= 0) argError("ERR_INVALID_ARG", "config.initGain must be > 0, got ", c.initGain);
  if (c.kind == "decoder-only" && (c.sourceVocabSize > 0 || c.sourceDim > 0))
    argError("ERR_INVALID_ARG", "config.sourceVocabSize/sourceDim do not apply to a decoder-only model");
  return c;
}

Napi::Object configObject(Napi::Env env, const ModelHolder& h) {
  const TransformerConfig& c = h.config;
  Napi::Object o = Napi::Object::New(env);
  o.Set("kind", c.kind);
  o.Set("vocabSize", static_cast<double>(c.vocabSize));
  o.Set("dModel", static_cast<double>(c.dModel));
  o.Set("numHeads", static_cast<double>(c.numHeads));
  o.Set("dFF", static_cast<double>(c.dFF));
  o.Set("encoderLayers", static_cast<double>(c.kind == "decoder-only" ? 0 : c.encoderLayers));
  o.Set("decoderLayers", static_cast<double>(c.decoderLayers));
  o.Set("dropout", c.dropout);
  o.Set("norm", c.preNorm ? "pre" : "post");
  o.Set("positions", c.positions);
  o.Set("maxPositions", static_cast<double>(c.maxPositions));
  o.Set("sourceVocabSize", static_cast<double>(c.sourceVocabSize));
  o.Set("sourceDim", static_cast<double>(c.sourceVocabSize > 0 ? 0 : (c.sourceDim > 0 ? c.sourceDim : c.dModel)));
  o.Set("sourcePositions", c.sourcePositions);
  o.Set("padId", static_cast<double>(c.padId));
  o.Set("bosId", static_cast<double>(c.bosId));
  o.Set("eosId", static_cast<double>(c.eosId));
  o.Set("seed", static_cast<double>(c.seed));
  o.Set("initGain", c.initGain);
  o.Set("dtype", dtypeName(h.dtype));
  o.Set("device", deviceName(h.device));
  return o;
}

Napi::Value Create(const Napi::CallbackInfo& info) {
  const char* fn = "nn.createTransformer";
  return guarded(info, fn, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject() || info[0].IsArray()) argError("ERR_INVALID_ARG", "config must be an object, got ", describeJs(info[0]));
    Napi::Object o = info[0].As<Napi::Object>();
    auto h = std::make_shared<ModelHolder>();
    h->config = parseConfig(o);
    h->dtype = dtypeArg(o.Get("dtype"), fn, "config.dtype", at::kFloat);
    if (h->dtype != at::kFloat && h->dtype != at::kDouble && h->dtype != at::kHalf && h->dtype != at::kBFloat16)
      argError("ERR_DTYPE", "config.dtype must be float32, float64, float16 or bfloat16, got ", dtypeName(h->dtype));
    h->device = deviceArg(o.Get("device"), fn, "config.device");
    if ((h->dtype == at::kHalf || h->dtype == at::kBFloat16) && h->device.is_cpu())
      argError("ERR_DTYPE", "config.dtype ", dtypeName(h->dtype), " is supported on CUDA only");
    {
      at::NoGradGuard noGrad;
      if (h->config.kind == "decoder-only") {
        h->deconly = nn::DecoderOnly(h->config);
      } else {
        h->encdec = nn::EncoderDecoder(h->config);
      }
      nn::initParameters(h->module(), h->config.seed, h->config.initGain);
      h->module().to(h->device, h->dtype);
      h->module().eval();  // generation never applies dropout
      for (auto& p : h->module().parameters()) p.set_requires_grad(false);
    }
    Napi::External<Handle> ext = Napi::External<Handle>::New(info.Env(), new Handle(h), [](Napi::Env, Handle* p) { delete p; });
    ext.TypeTag(&kModelTag);
    return ext;
  });
}

// ---- sources
struct Source {
  at::Tensor tensor, mask;
};

Source sourceArg(const Napi::CallbackInfo& info, size_t i, const Napi::Object& options, const ModelHolder& h, const char* fn) {
  const TransformerConfig& c = h.config;
  const bool tokens = !h.encoderDecoder() || c.sourceVocabSize > 0;
  const char* name = h.encoderDecoder() ? "source" : "prompt";
  at::Tensor s = tensorArg(info, i, fn, name);
  if (s.device() != h.device) argError("ERR_DEVICE", name, " must be on the model's device ", deviceName(h.device), ", got ", deviceName(s.device()));
  if (tokens) {
    if (s.scalar_type() != at::kLong && s.scalar_type() != at::kInt)
      argError("ERR_DTYPE", name, " must hold token ids (int64 or int32), got ", dtypeName(s.scalar_type()));
    if (s.dim() != 2 || s.size(0) < 1 || s.size(1) < 1) argError("ERR_SHAPE", name, " must be [batch, length] with both >= 1, got ", shapeString(s.sizes()));
    const int64_t vocab = h.encoderDecoder() ? c.sourceVocabSize : c.vocabSize;
    const int64_t lo = s.min().item<int64_t>(), hi = s.max().item<int64_t>();
    if (lo < 0 || hi >= vocab) argError("ERR_INVALID_ARG", name, " token ids must be in [0, ", vocab - 1, "], got values in [", lo, ", ", hi, "]");
    s = s.to(at::kLong);
  } else {
    const int64_t dim = c.sourceDim > 0 ? c.sourceDim : c.dModel;
    if (!at::isFloatingType(s.scalar_type())) argError("ERR_DTYPE", "source must be a floating-point feature tensor, got ", dtypeName(s.scalar_type()));
    if (s.dim() != 3 || s.size(0) < 1 || s.size(1) < 1 || s.size(2) != dim)
      argError("ERR_SHAPE", "source must be [batch, length, ", dim, "] features, got ", shapeString(s.sizes()));
    if (!at::isfinite(s).all().item<bool>()) argError("ERR_NOT_FINITE", "source must be finite (it holds NaN or Inf)");
    s = s.to(h.dtype);
  }
  if (c.sourcePositions || !h.encoderDecoder())
    if (s.size(1) > c.maxPositions) argError("ERR_SHAPE", name, " length ", s.size(1), " exceeds config.maxPositions (", c.maxPositions, ")");
  at::Tensor mask;
  if (has(options, "sourceMask")) {
    Napi::Value mv = options.Get("sourceMask");
    if (!NativeTensor::IsInstance(mv)) argError("ERR_INVALID_ARG", "options.sourceMask must be a Tensor, got ", describeJs(mv));
    NativeTensor* nt = Napi::ObjectWrap<NativeTensor>::Unwrap(mv.As<Napi::Object>());
    if (nt->isDisposed()) fail(ErrorKind::Disposed, "ERR_DISPOSED", "options.sourceMask was disposed; it can no longer be used");
    mask = nt->tensor(fn);
    if (mask.dim() != 2 || mask.size(0) != s.size(0) || mask.size(1) != s.size(1))
      argError("ERR_SHAPE", "options.sourceMask must be [", s.size(0), ", ", s.size(1), "] like ", name, ", got ", shapeString(mask.sizes()));
    if (at::isFloatingType(mask.scalar_type()) || at::isComplexType(mask.scalar_type()))
      argError("ERR_DTYPE", "options.sourceMask must be bool, uint8 or an integer type (nonzero = valid), got ", dtypeName(mask.scalar_type()));
    mask = mask.ne(0).to(h.device);
  } else if (tokens) {
    mask = s.ne(c.padId);
  } else {
    mask = at::ones({s.size(0), s.size(1)}, at::TensorOptions().dtype(at::kBool).device(h.device));
  }
  if (!mask.any(1).all().item<bool>()) argError("ERR_INVALID_ARG", "every ", name, " row needs at least one valid (unmasked) position");
  if (!h.encoderDecoder() && !mask.select(1, mask.size(1) - 1).all().item<bool>())
    argError("ERR_INVALID_ARG", "prompts must be left-padded: the last position of every prompt row must be valid");
  return {s, mask};
}

struct GenerateJob {
  nn::SearchOptions search;
  nn::CacheMode cache = nn::CacheMode::Full;
};

GenerateJob parseGenerateOptions(const Napi::Object& o, const ModelHolder& h, int64_t promptLength) {
  const TransformerConfig& c = h.config;
  const int64_t maxAllowed = h.encoderDecoder() ? c.maxPositions : c.maxPositions - promptLength + 1;
  if (maxAllowed < 1) argError("ERR_SHAPE", "the prompt (", promptLength, " tokens) leaves no room within config.maxPositions (", c.maxPositions, ")");
  GenerateJob j;
  j.search = parseSearchOptions(o, SearchLimits{maxAllowed, c.vocabSize, c.eosId, c.padId, h.encoderDecoder()});
  std::string cache = optString(o, "cache", "options.cache", "full", {"full", "cross", "none"});
  j.cache = cache == "full" ? nn::CacheMode::Full : cache == "cross" ? nn::CacheMode::CrossOnly : nn::CacheMode::None;
  return j;
}

struct StreamState {
  std::atomic<bool> stop{false};
};

Napi::Value Generate(const Napi::CallbackInfo& info) {
  const char* fn = "nn.generate";
  return guarded(info, fn, [&]() -> Napi::Value {
    Handle h = holderArg(info, fn);
    Napi::Object options = optionsArg(info, 2, fn);
    Source src = sourceArg(info, 1, options, *h, fn);
    GenerateJob job = parseGenerateOptions(options, *h, h->encoderDecoder() ? 0 : src.tensor.size(1));
    Napi::Value cb = info.Length() > 3 ? info[3] : info.Env().Undefined();
    if (!cb.IsUndefined() && !cb.IsNull() && !cb.IsFunction()) argError("ERR_INVALID_ARG", "onToken must be a function, got ", describeJs(cb));
    std::shared_ptr<Napi::ThreadSafeFunction> tsfn;
    auto state = std::make_shared<StreamState>();
    if (cb.IsFunction()) tsfn = std::make_shared<Napi::ThreadSafeFunction>(Napi::ThreadSafeFunction::New(info.Env(), cb.As<Napi::Function>(), "radkit.generate.onToken", 0, 1));
    nn::EncoderDecoder encdec = h->encdec;
    nn::DecoderOnly deconly = h->deconly;
    h->active++;
    return PromiseWorker<nn::SearchResult>::Start(
        info.Env(), fn,
        [h, encdec, deconly, src, job, tsfn, state]() {
          struct Done {
            Handle h;
            std::shared_ptr<Napi::ThreadSafeFunction> tsfn;
            ~Done() {
              h->active--;
              if (tsfn) tsfn->Release();
            }
          } done{h, tsfn};
          at::NoGradGuard noGrad;
          std::unique_ptr<nn::StepModel> model;
          if (encdec)
            model = std::make_unique<nn::EncoderDecoderStepper>(encdec, src.tensor, src.mask, job.cache);
          else
            model = std::make_unique<nn::DecoderOnlyStepper>(deconly, src.tensor, src.mask, job.cache);
          nn::StepCallback onStep;
          if (tsfn) {
            // Each step waits until the JS callback ran (one event-loop turn): stopping is exact
            // (`return false` at step t means no step t+1) and a slow consumer slows the search
            // instead of queueing events without bound. The JS thread never waits on the worker.
            onStep = [tsfn, state](const nn::StepEvent& ev) {
              struct Call {
                nn::StepEvent event;
                std::promise<bool> go;
              };
              auto* call = new Call{ev, {}};
              std::future<bool> go = call->go.get_future();
              napi_status st = tsfn->NonBlockingCall(call, [state](Napi::Env env, Napi::Function jsCb, Call* c) {
                std::unique_ptr<Call> owned(c);
                if (env == nullptr) {  // the environment is shutting down
                  c->go.set_value(false);
                  return;
                }
                const nn::StepEvent* e = &c->event;
                Napi::Object o = Napi::Object::New(env);
                o.Set("step", static_cast<double>(e->step));
                Napi::Array toks = Napi::Array::New(env, e->tokens.size());
                Napi::Array fin = Napi::Array::New(env, e->finished.size());
                for (size_t i = 0; i < e->tokens.size(); ++i) toks.Set(static_cast<uint32_t>(i), static_cast<double>(e->tokens[i]));
                for (size_t i = 0; i < e->finished.size(); ++i) fin.Set(static_cast<uint32_t>(i), e->finished[i] != 0);
                o.Set("tokens", toks);
                o.Set("finished", fin);
                try {
                  Napi::Value r = jsCb.Call({o});
                  if (r.IsBoolean() && !r.As<Napi::Boolean>().Value()) state->stop = true;
                } catch (...) {
                  state->stop = true;  // lib/ catches the callback's own errors; never let one escape here
                }
                c->go.set_value(!state->stop.load());
              });
              if (st != napi_ok) {
                delete call;
                return false;
              }
              return go.get();
            };
          }
          return nn::search(*model, job.search, onStep);
        },
        [](Napi::Env env, nn::SearchResult& r) -> Napi::Value { return searchResultToJs(env, r); });
  });
}

Napi::Value LogProbs(const Napi::CallbackInfo& info) {
  const char* fn = "nn.logProbs";
  return guarded(info, fn, [&]() -> Napi::Value {
    Handle h = holderArg(info, fn);
    Napi::Object options = optionsArg(info, 3, fn);
    Source src = sourceArg(info, 1, options, *h, fn);
    at::NoGradGuard noGrad;
    at::Tensor logits;
    if (h->encoderDecoder()) {
      at::Tensor target = tensorArg(info, 2, fn, "target");
      if (target.scalar_type() != at::kLong && target.scalar_type() != at::kInt)
        argError("ERR_DTYPE", "target must hold token ids (int64 or int32), got ", dtypeName(target.scalar_type()));
      if (target.dim() != 2 || target.size(0) != src.tensor.size(0) || target.size(1) < 1)
        argError("ERR_SHAPE", "target must be [", src.tensor.size(0), ", length >= 1], got ", shapeString(target.sizes()));
      if (target.size(1) > h->config.maxPositions)
        argError("ERR_SHAPE", "target length ", target.size(1), " exceeds config.maxPositions (", h->config.maxPositions, ")");
      if (target.device() != h->device) argError("ERR_DEVICE", "target must be on the model's device ", deviceName(h->device), ", got ", deviceName(target.device()));
      const int64_t lo = target.min().item<int64_t>(), hi = target.max().item<int64_t>();
      if (lo < 0 || hi >= h->config.vocabSize)
        argError("ERR_INVALID_ARG", "target token ids must be in [0, ", h->config.vocabSize - 1, "], got values in [", lo, ", ", hi, "]");
      logits = h->encdec->forward(src.tensor, src.mask, target.to(at::kLong));
    } else {
      if (info.Length() > 2 && !info[2].IsUndefined() && !info[2].IsNull())
        argError("ERR_INVALID_ARG", "a decoder-only model takes no target (the prompt is the input), got ", describeJs(info[2]));
      logits = h->deconly->forward(src.tensor, src.mask);
    }
    return NativeTensor::Wrap(info.Env(), at::log_softmax(logits, -1));
  });
}

Napi::Value StateDict(const Napi::CallbackInfo& info) {
  const char* fn = "nn.stateDict";
  return guarded(info, fn, [&]() -> Napi::Value {
    Handle h = holderArg(info, fn);
    Napi::Object o = Napi::Object::New(info.Env());
    for (auto& item : h->module().named_parameters(true)) o.Set(item.key(), NativeTensor::Wrap(info.Env(), item.value().detach().clone()));
    return o;
  });
}

Napi::Value LoadStateDict(const Napi::CallbackInfo& info) {
  const char* fn = "nn.loadStateDict";
  return guarded(info, fn, [&]() -> Napi::Value {
    Handle h = holderArg(info, fn);
    if (info.Length() < 2 || !info[1].IsObject() || info[1].IsArray()) argError("ERR_INVALID_ARG", "weights must be an object of name -> Tensor, got ", describeJs(info[1]));
    Napi::Object dict = info[1].As<Napi::Object>();
    const bool strict = boolArg(info.Length() > 2 ? info[2] : info.Env().Undefined(), fn, "strict", true);
    if (h->active.load() > 0) argError("ERR_INVALID_ARG", "cannot load weights while ", h->active.load(), " generate call(s) on this model run");
    auto params = h->module().named_parameters(true);
    Napi::Array keys = dict.GetPropertyNames();
    std::vector<std::pair<at::Tensor, at::Tensor>> copies;
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
      at::Tensor* p = params.find(key);
      if (!p) argError("ERR_INVALID_ARG", "weights['", key, "'] is not a parameter of this model");
      Napi::Value v = dict.Get(key);
      if (!NativeTensor::IsInstance(v)) argError("ERR_INVALID_ARG", "weights['", key, "'] must be a Tensor, got ", describeJs(v));
      NativeTensor* nt = Napi::ObjectWrap<NativeTensor>::Unwrap(v.As<Napi::Object>());
      if (nt->isDisposed()) fail(ErrorKind::Disposed, "ERR_DISPOSED", "weights['", key, "'] was disposed");
      const at::Tensor& t = nt->tensor(fn);
      if (t.sizes() != p->sizes()) argError("ERR_SHAPE", "weights['", key, "'] must be ", shapeString(p->sizes()), ", got ", shapeString(t.sizes()));
      if (!at::isFloatingType(t.scalar_type())) argError("ERR_DTYPE", "weights['", key, "'] must be floating-point, got ", dtypeName(t.scalar_type()));
      if (!at::isfinite(t).all().item<bool>()) argError("ERR_NOT_FINITE", "weights['", key, "'] holds NaN or Inf");
      copies.emplace_back(*p, t);
    }
    if (strict && copies.size() != params.size()) {
      for (auto& item : params)
        if (!dict.Has(item.key())) argError("ERR_INVALID_ARG", "weights lacks '", item.key(), "' (pass strict = false to load a subset)");
    }
    at::NoGradGuard noGrad;
    for (auto& c : copies) c.first.copy_(c.second);
    return info.Env().Undefined();
  });
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  const char* fn = "nn.info";
  return guarded(info, fn, [&]() -> Napi::Value {
    Handle h = holderArg(info, fn);
    Napi::Object o = Napi::Object::New(info.Env());
    int64_t count = 0;
    Napi::Array names = Napi::Array::New(info.Env());
    uint32_t i = 0;
    for (auto& item : h->module().named_parameters(true)) {
      count += item.value().numel();
      names.Set(i++, item.key());
    }
    o.Set("config", configObject(info.Env(), *h));
    o.Set("parameterCount", static_cast<double>(count));
    o.Set("parameterNames", names);
    return o;
  });
}

Napi::Value Dispose(const Napi::CallbackInfo& info) {
  const char* fn = "nn.dispose";
  return guarded(info, fn, [&]() -> Napi::Value {
    Napi::Value v = info.Length() > 0 ? info[0] : info.Env().Undefined();
    if (!v.IsExternal() || !v.As<Napi::External<Handle>>().CheckTypeTag(&kModelTag))
      argError("ERR_INVALID_ARG", "model must be a transformer handle from transformerCreate, got ", describeJs(v));
    Handle h = *v.As<Napi::External<Handle>>().Data();
    h->disposed = true;  // running generate calls keep their own references to the modules
    h->encdec = nullptr;
    h->deconly = nullptr;
    return info.Env().Undefined();
  });
}

static OpRegistrar reg("transformer", [](Napi::Env env, Napi::Object exports) {
  exports.Set("transformerCreate", Napi::Function::New(env, Create, "transformerCreate"));
  exports.Set("transformerGenerate", Napi::Function::New(env, Generate, "transformerGenerate"));
  exports.Set("transformerLogProbs", Napi::Function::New(env, LogProbs, "transformerLogProbs"));
  exports.Set("transformerStateDict", Napi::Function::New(env, StateDict, "transformerStateDict"));
  exports.Set("transformerLoadStateDict", Napi::Function::New(env, LoadStateDict, "transformerLoadStateDict"));
  exports.Set("transformerInfo", Napi::Function::New(env, Info, "transformerInfo"));
  exports.Set("transformerDispose", Napi::Function::New(env, Dispose, "transformerDispose"));
});

}  // namespace
}  // namespace radkit
