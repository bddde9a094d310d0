// NativeModel: the JS handle of one System (native/models/system.h) with its optimizer.
// Training steps, evaluation, generation and checkpoint I/O run on worker threads (PromiseWorker);
// a model serves one such call at a time (ERR_BUSY otherwise), so JS cannot race the worker.
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/serialize/archive.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <set>

#include "../models/placement.h"
#include "../models/system.h"
#include "../core/cpu_simd.h"
#include "../nn/frozen_norms.h"
#include "../nn/fused_optim.h"
#include "../nn/lamb.h"
#include "async.h"
#include "generate_options.h"
#include "bindings.h"
#include "distributed.h"
#include "registry.h"
#include "step_profile.h"
#include "tensor.h"

namespace radkit {
namespace {

Config configArg(Napi::Value v, const char* fn) {
  Config c;
  if (v.IsUndefined() || v.IsNull()) return c;
  if (!v.IsObject() || v.IsArray()) argError("ERR_INVALID_ARG", "config must be an object, got ", describeJs(v));
  Napi::Object o = v.As<Napi::Object>();
  Napi::Array keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
    Napi::Value x = o.Get(k);
    if (x.IsNumber()) c.numbers[k] = numberArg(x, fn, ("config." + k).c_str());
    else if (x.IsBoolean()) c.numbers[k] = x.As<Napi::Boolean>().Value() ? 1.0 : 0.0;
    else if (x.IsString()) c.strings[k] = x.As<Napi::String>().Utf8Value();
    else if (x.IsArray()) {
      Napi::Array a = x.As<Napi::Array>();
      std::vector<double> vals;
      for (uint32_t j = 0; j < a.Length(); ++j) vals.push_back(numberArg(a.Get(j), fn, ("config." + k + "[]").c_str()));
      c.arrays[k] = vals;
    } else if (!x.IsUndefined() && !x.IsNull()) {
      argError("ERR_INVALID_ARG", "config.", k, " must be a number, boolean, string or number array, got ", describeJs(x));
    }
  }
  return c;
}

Batch batchArg(Napi::Value v, const char* fn) {
  if (!v.IsObject() || v.IsArray()) argError("ERR_INVALID_ARG", "batch must be an object { images?, tokens?, labels?, extras?, paired? }, got ", describeJs(v));
  Napi::Object o = v.As<Napi::Object>();
  auto tensorField = [&](Napi::Value x, const std::string& name) -> at::Tensor {
    if (x.IsUndefined() || x.IsNull()) return {};
    if (!NativeTensor::IsInstance(x)) argError("ERR_INVALID_ARG", "batch.", name, " must be a Tensor, got ", describeJs(x));
    return Napi::ObjectWrap<NativeTensor>::Unwrap(x.As<Napi::Object>())->tensor(fn);
  };
  Batch b;
  b.images = tensorField(o.Get("images"), "images");
  b.tokens = tensorField(o.Get("tokens"), "tokens");
  b.labels = tensorField(o.Get("labels"), "labels");
  b.paired = boolArg(o.Get("paired"), fn, "batch.paired", true);
  Napi::Value ex = o.Get("extras");
  if (!ex.IsUndefined() && !ex.IsNull()) {
    if (!ex.IsObject() || ex.IsArray()) argError("ERR_INVALID_ARG", "batch.extras must be an object { name: Tensor }, got ", describeJs(ex));
    Napi::Object eo = ex.As<Napi::Object>();
    Napi::Array keys = eo.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
      at::Tensor t = tensorField(eo.Get(k), "extras." + k);
      if (t.defined()) b.extras[k] = t;
    }
  }
  if (b.images.defined() && (b.images.dim() != 5 || !(at::isFloatingType(b.images.scalar_type()) || b.images.scalar_type() == at::kByte)))
    argError("ERR_SHAPE", "batch.images must be a floating-point or uint8 [B, V, 1, H, W] tensor, got ", dtypeName(b.images.scalar_type()), " ", shapeString(b.images.sizes()));
  if (b.tokens.defined() && (b.tokens.dim() != 2 || b.tokens.scalar_type() != at::kLong))
    argError("ERR_SHAPE", "batch.tokens must be an int64 [B, T] tensor, got ", dtypeName(b.tokens.scalar_type()), " ", shapeString(b.tokens.sizes()));
  if (b.labels.defined()) {
    if (b.labels.dim() != 2 || b.labels.size(1) != kObservations || b.labels.scalar_type() != at::kLong)
      argError("ERR_SHAPE", "batch.labels must be an int64 [B, 14] tensor, got ", dtypeName(b.labels.scalar_type()), " ", shapeString(b.labels.sizes()));
    if (b.labels.numel() && (b.labels.min().item<int64_t>() < kAbsent || b.labels.max().item<int64_t>() > kUncertain))
      argError("ERR_INVALID_ARG", "batch.labels holds label states 0 absent, 1 positive, 2 negative, 3 uncertain; got values in [",
               b.labels.min().item<int64_t>(), ", ", b.labels.max().item<int64_t>(), "]");
  }
  const int64_t Bi = b.images.defined() ? b.images.size(0) : -1, Bt = b.tokens.defined() ? b.tokens.size(0) : -1;
  if (b.paired && Bi >= 0 && Bt >= 0 && Bi != Bt)
    argError("ERR_SHAPE", "batch fields disagree on the batch size: images ", Bi, " vs tokens ", Bt, " (set paired: false for unpaired image and report sets)");
  const int64_t Bl = Bt >= 0 ? Bt : Bi;
  if (b.labels.defined() && Bl >= 0 && b.labels.size(0) != Bl)
    argError("ERR_SHAPE", "batch.labels has ", b.labels.size(0), " rows but the batch has ", Bl, Bt >= 0 ? " reports" : " images");
  return b;
}

// What every system needs of a batch, checked before any state changes (then the system's own
// checkBatch): at least one row, images of the parameters' dtype (or uint8 grey levels, widened on
// the model's device) on the CPU or the model's device, holding finite values. The worker moves the
// batch to the model's device (batchTo).
void checkBatchFor(const System& sys, const Batch& b, const char* purpose) {
  for (const at::Tensor* t : {&b.images, &b.tokens, &b.labels})
    if (t->defined() && t->size(0) == 0) argError("ERR_SHAPE", "the batch is empty (0 studies); ", purpose, " needs at least one");
  if (b.images.defined()) {
    auto params = sys.parameters();
    if (!params.empty()) {
      const at::Tensor& p = params.front();
      if (b.images.scalar_type() != p.scalar_type() && b.images.scalar_type() != at::kByte)
        argError("ERR_DTYPE", "batch.images is ", dtypeName(b.images.scalar_type()), " but this ", sys.kind(), " model computes in ", dtypeName(p.scalar_type()),
                 ": convert the images first (Tensor.to('", dtypeName(p.scalar_type()), "'))");
      if (b.images.device() != p.device() && !b.images.is_cpu())
        argError("ERR_DEVICE", "batch.images is on ", deviceName(b.images.device()), " but the model is on ", deviceName(p.device()), " (give CPU tensors or the model's device)");
    }
    if (b.images.numel() && at::isFloatingType(b.images.scalar_type()) && !at::isfinite(b.images).all().item<bool>()) {
      at::Tensor badRows = at::isfinite(b.images).logical_not().flatten(1).any(1).nonzero().flatten();
      argError("ERR_NOT_FINITE", "batch.images holds non-finite values (NaN or infinity) in ", badRows.numel(), " of ", b.images.size(0), " studies (first: row ",
               badRows[0].item<int64_t>(), "); nothing was changed");
    }
  }
  sys.checkBatch(b);
}

// Every parameter and buffer of a module as Module::save writes them (own tensors, then the
// children's archives), read without touching the module: what a load would copy, and what does
// not fit.
struct LoadPlan {
  std::vector<std::pair<at::Tensor, at::Tensor>> copies;  // destination, source
  std::vector<std::string> missing, misfit, unexpected;
};

void planLoad(torch::nn::Module& m, torch::serialize::InputArchive& a, const std::string& prefix, LoadPlan& plan) {
  std::set<std::string> known{"training"};
  auto one = [&](const std::string& key, const at::Tensor& dst, bool buffer) {
    known.insert(key);
    at::Tensor src;
    if (!a.try_read(key, src, buffer)) {
      plan.missing.push_back(prefix + key);
    } else if (src.sizes() != dst.sizes() || src.scalar_type() != dst.scalar_type()) {
      plan.misfit.push_back(prefix + key + " " + dtypeName(src.scalar_type()) + " " + shapeString(src.sizes()) + " (the model's is " + dtypeName(dst.scalar_type()) + " " +
                            shapeString(dst.sizes()) + ")");
    } else {
      plan.copies.emplace_back(dst, src);
    }
  };
  for (auto& p : m.named_parameters(false)) one(p.key(), p.value(), false);
  for (auto& b : m.named_buffers(false)) one(b.key(), b.value(), true);
  for (auto& c : m.named_children()) {
    if (!c.value()->is_serializable()) continue;
    known.insert(c.key());
    torch::serialize::InputArchive child;
    if (!a.try_read(c.key(), child)) {
      plan.missing.push_back(prefix + c.key() + ".*");
      continue;
    }
    planLoad(*c.value(), child, prefix + c.key() + ".", plan);
  }
  for (const std::string& k : a.keys())
    if (!known.count(k)) plan.unexpected.push_back(prefix + k);
}

std::string listSome(const std::vector<std::string>& names, size_t most = 4) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < most; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > most) out += ", ... (" + std::to_string(names.size()) + " in all)";
  return out;
}

// LibTorch's message without its backtrace, first line only.
std::string firstLine(const std::exception& e) {
  std::string m = e.what();
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) m = c->what_without_backtrace();
  auto nl = m.find('\n');
  return nl == std::string::npos ? m : m.substr(0, nl);
}

// The random generators the training state carries (CPU, and each CUDA device's when there is CUDA).
std::vector<std::pair<std::string, at::Generator>> defaultGenerators() {
  std::vector<std::pair<std::string, at::Generator>> out{{"radkit_rng_cpu", at::detail::getDefaultCPUGenerator()}};
  if (at::hasCUDA())
    for (int64_t i = 0; i < at::detail::getCUDAHooks().getNumGPUs(); ++i)
      out.emplace_back("radkit_rng_cuda" + std::to_string(i), at::globalContext().defaultGenerator(c10::Device(at::kCUDA, static_cast<c10::DeviceIndex>(i))));
  return out;
}

at::Tensor generatorState(at::Generator& g) {
  std::lock_guard<std::mutex> lock(g.mutex());
  return g.get_state();
}

void setGeneratorState(at::Generator& g, const at::Tensor& state) {
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(state);
}

// Global L2 norm of all gradients; scales them down to maxNorm when above it. Returns the norm before
// clipping. One multi-tensor pass in the gradients' own dtype (nn/fused_optim.h).
double clipGradNorm(const std::vector<at::Tensor>& params, double maxNorm) { return nn::clipGradNorm(params, maxNorm); }

// A data-parallel step (setDistributed): gradients averaged over the ranks (bucketed all-reduce after
// the backward pass), the loss reported as the global batch's; a non-finite loss on any rank fails
// the step on every rank alike.
void averageOverRanks(dist::ProcessGroup& pg, const std::vector<at::Tensor>& params, double& loss, LossParts& parts) {
  std::vector<double> sums{loss};
  parts["allReduceSeconds"] = pg.averageGradients(params, sums);
  loss = sums[0] / static_cast<double>(pg.worldSize());
  if (!std::isfinite(loss))
    fail(ErrorKind::Native, "ERR_NOT_FINITE", "training loss is ", loss, " on some rank; the step was not applied and the model is as it was (lower the learning rate or clip gradients)");
}

Napi::Object partsToJs(Napi::Env env, const LossParts& parts) {
  Napi::Object o = Napi::Object::New(env);
  for (auto& [k, v] : parts) o.Set(k, Napi::Number::New(env, v));
  return o;
}

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::FunctionReference* ctor;

  static void Define(Napi::Env env, Napi::Object exports) {
    Napi::Function fn = DefineClass(env, "NativeModel",
                                    {
                                        InstanceMethod("kind", &NativeModel::Kind),
                                        InstanceMethod("parameterCount", &NativeModel::ParameterCount),
                                        InstanceMethod("setupOptimizer", &NativeModel::SetupOptimizer),
                                        InstanceMethod("setLearningRates", &NativeModel::SetLearningRates),
                                        InstanceMethod("trainStep", &NativeModel::TrainStep),
                                        InstanceMethod("evalLoss", &NativeModel::EvalLoss),
                                        InstanceMethod("initializeFromData", &NativeModel::InitializeFromData),
                                        InstanceMethod("generate", &NativeModel::Generate),
                                        InstanceMethod("encode", &NativeModel::Encode),
                                        InstanceMethod("save", &NativeModel::Save),
                                        InstanceMethod("load", &NativeModel::Load),
                                        InstanceMethod("loadNamedTensors", &NativeModel::LoadNamedTensors),
                                        InstanceMethod("namedTensors", &NativeModel::NamedTensors),
                                        InstanceMethod("tensorShapes", &NativeModel::TensorShapes),
                                        InstanceMethod("freeze", &NativeModel::Freeze),
                                        InstanceMethod("setDistributed", &NativeModel::SetDistributed),
                                        InstanceMethod("to", &NativeModel::To),
                                        InstanceMethod("device", &NativeModel::DeviceOf),
                                        InstanceMethod("dtype", &NativeModel::DtypeOf),
                                        InstanceMethod("dispose", &NativeModel::Dispose),
                                        InstanceMethod("isDisposed", &NativeModel::IsDisposed),
                                    });
    ctor = new Napi::FunctionReference(Napi::Persistent(fn));
    exports.Set("NativeModel", fn);
    exports.Set("createModel", Napi::Function::New(env, Create, "createModel"));
    exports.Set("modelKinds", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
      Napi::Array a = Napi::Array::New(info.Env());
      uint32_t i = 0;
      for (auto& [k, f] : systemRegistry()) a.Set(i++, k);
      return a;
    }, "modelKinds"));
  }

  explicit NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {}

 private:
  static Napi::Value Create(const Napi::CallbackInfo& info) {
    const char* fn = "createModel";
    return guarded(info, fn, [&]() -> Napi::Value {
      if (!info[0].IsString()) argError("ERR_INVALID_ARG", "kind must be a string, got ", describeJs(info[0]));
      std::string kind = info[0].As<Napi::String>().Utf8Value();
      auto it = systemRegistry().find(kind);
      if (it == systemRegistry().end()) {
        std::string known;
        for (auto& [k, f] : systemRegistry()) known += (known.empty() ? "" : ", ") + k;
        argError("ERR_INVALID_ARG", "unknown model kind '", kind, "' (this build has: ", known.empty() ? "none" : known, ")");
      }
      Config config = configArg(info[1], fn);
      Napi::Object obj = ctor->New({});
      NativeModel* self = Unwrap(obj);
      auto system = it->second(config);
      // Every key was read in the constructor (Config::read); one never read is unknown to the system.
      if (auto unknown = config.unread(); !unknown.empty()) {
        std::string names, known;
        for (auto& k : unknown) names += (names.empty() ? "'" : ", '") + k + "'";
        for (auto& k : config.read) known += (known.empty() ? "" : ", ") + k;
        argError("ERR_INVALID_ARG", kind, " does not know the config key", unknown.size() > 1 ? "s " : " ", names, " (it reads: ", known, ")");
      }
      self->system_ = std::move(system);
      return obj;
    });
  }

  System& system(const char* fn) {
    if (!system_) fail(ErrorKind::Disposed, "ERR_DISPOSED", "model was disposed; it can no longer be used");
    return *system_;
  }

  // Claims the model for one worker call; released when the returned guard's call settles.
  std::shared_ptr<void> claim(const char* fn) {
    system(fn);
    bool expected = false;
    if (!busy_.compare_exchange_strong(expected, true))
      fail(ErrorKind::Argument, "ERR_BUSY", "the model is already running a training step, evaluation, generation or I/O; await it first");
    return std::shared_ptr<void>(nullptr, [this](void*) { busy_ = false; });
  }

  Napi::Value Kind(const Napi::CallbackInfo& info) {
    return guarded(info, "Model.kind", [&]() -> Napi::Value { return Napi::String::New(info.Env(), system("Model.kind").kind()); });
  }

  Napi::Value ParameterCount(const Napi::CallbackInfo& info) {
    return guarded(info, "Model.parameterCount", [&]() -> Napi::Value {
      int64_t n = 0;
      for (auto& p : system("Model.parameterCount").parameters()) n += p.numel();
      return Napi::Number::New(info.Env(), static_cast<double>(n));
    });
  }

  // setupOptimizer({ kind: 'adam'|'adamw'|'lamb', lr, visualLr?, weightDecay?, beta1?, beta2?, eps? })
  Napi::Value SetupOptimizer(const Napi::CallbackInfo& info) {
    const char* fn = "Model.setupOptimizer";
    return guarded(info, fn, [&]() -> Napi::Value {
      System& sys = system(fn);
      if (busy_) fail(ErrorKind::Argument, "ERR_BUSY", "the model is busy; await its running call first");
      Config c = configArg(info[0], fn);
      std::string kind = c.str("kind", "adam");
      if (kind != "adam" && kind != "adamw" && kind != "lamb")
        argError("ERR_INVALID_ARG", "optimizer kind must be 'adam', 'adamw' or 'lamb', got '", kind, "'");
      if (!c.numbers.count("lr")) argError("ERR_INVALID_ARG", "options.lr is required (the trainer's recipe sets it)");
      double lr = c.num("lr", 0), visualLr = c.num("visualLr", lr);
      if (!(lr > 0) || !(visualLr > 0)) argError("ERR_INVALID_ARG", "learning rates must be > 0, got lr ", lr, " and visualLr ", visualLr);
      double wd = c.num("weightDecay", kind == "adamw" ? 0.01 : 0.0);
      double b1 = c.num("beta1", 0.9), b2 = c.num("beta2", 0.999), eps = c.num("eps", 1e-8);
      // Group 0: the visual extractor (own learning rate), group 1: everything else.
      std::vector<at::Tensor> visual, rest;
      std::string prefix = sys.visualPrefix();
      for (auto& kv : sys.named_parameters()) {
        if (!kv.value().requires_grad()) continue;
        (!prefix.empty() && kv.key().rfind(prefix, 0) == 0 ? visual : rest).push_back(kv.value());
      }
      std::vector<torch::optim::OptimizerParamGroup> groups;
      if (kind == "adam" || kind == "lamb") {  // LAMB shares Adam's options and state (nn/lamb.h)
        auto mk = [&](double l) { return std::make_unique<torch::optim::AdamOptions>(torch::optim::AdamOptions(l).betas({b1, b2}).eps(eps).weight_decay(wd)); };
        groups.emplace_back(visual, mk(visualLr));
        groups.emplace_back(rest, mk(lr));
      } else {
        auto mk = [&](double l) { return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(l).betas({b1, b2}).eps(eps).weight_decay(wd)); };
        groups.emplace_back(visual, mk(visualLr));
        groups.emplace_back(rest, mk(lr));
      }
      optimizer_ = makeOptimizer(kind, std::move(groups));
      optimizerKind_ = kind;
      Napi::Object r = Napi::Object::New(info.Env());
      r.Set("visualParameters", Napi::Number::New(info.Env(), static_cast<double>(visual.size())));
      r.Set("otherParameters", Napi::Number::New(info.Env(), static_cast<double>(rest.size())));
      return r;
    });
  }

  static std::unique_ptr<torch::optim::Optimizer> makeOptimizer(const std::string& kind, std::vector<torch::optim::OptimizerParamGroup> groups) {
    const double lr = groups.back().options().get_lr();
    if (kind == "lamb") return std::make_unique<nn::Lamb>(std::move(groups), torch::optim::AdamOptions(lr));
    // radkit's one-pass FusedAdam where its float32 loop has AVX2 (paper preset, one core: 18-27 ms
    // per optimizer step against LibTorch's 46-58), else LibTorch's Adam (the baseline x86-64 loop
    // measured slower). RADKIT_FUSED_ADAM=1 / =0 forces one or the other.
    static const bool fused = [] {
      const char* e = std::getenv("RADKIT_FUSED_ADAM");
      return e ? std::string(e) != "0" : cpuHasAvx2Fma();
    }();
    if (kind == "adam")
      return fused ? std::make_unique<nn::FusedAdam>(std::move(groups), torch::optim::AdamOptions(lr))
                   : std::make_unique<torch::optim::Adam>(std::move(groups), torch::optim::AdamOptions(lr));
    return fused ? std::make_unique<nn::FusedAdamW>(std::move(groups), torch::optim::AdamWOptions(lr))
                 : std::make_unique<torch::optim::AdamW>(std::move(groups), torch::optim::AdamWOptions(lr));
  }

  // A fresh optimizer of the same kind over the same parameter groups and options (no state).
  static std::unique_ptr<torch::optim::Optimizer> twinOptimizer(const std::string& kind, torch::optim::Optimizer& opt) {
    std::vector<torch::optim::OptimizerParamGroup> groups;
    for (auto& g : opt.param_groups()) groups.emplace_back(g.params(), g.options().clone());
    return makeOptimizer(kind, std::move(groups));
  }

  static void setGroupLr(torch::optim::OptimizerParamGroup& g, double lr) {
    auto& o = g.options();
    if (auto* a = dynamic_cast<torch::optim::AdamOptions*>(&o)) a->lr(lr);
    else if (auto* w = dynamic_cast<torch::optim::AdamWOptions*>(&o)) w->lr(lr);
  }

  Napi::Value SetLearningRates(const Napi::CallbackInfo& info) {
    const char* fn = "Model.setLearningRates";
    return guarded(info, fn, [&]() -> Napi::Value {
      system(fn);
      if (!optimizer_) argError("ERR_INVALID_ARG", "call setupOptimizer first");
      double lr = numberArg(info[0], fn, "lr"), visualLr = numberArg(info[1], fn, "visualLr");
      if (lr < 0 || visualLr < 0) argError("ERR_INVALID_ARG", "learning rates must be >= 0");
      setGroupLr(optimizer_->param_groups()[0], visualLr);
      setGroupLr(optimizer_->param_groups()[1], lr);
      return info.Env().Undefined();
    });
  }

  struct StepOut {
    double loss = 0, gradNorm = 0;
    LossParts parts;
    bool skipped = false;   // float16: the gradients overflowed, the step was skipped and the loss scale lowered
    double lossScale = 0;   // float16: the loss scale after this step (0 otherwise)
  };

  // trainStep(batch, { clipNorm?, step?, totalSteps?, precision? }) -> Promise<{ loss, gradNorm, parts, skipped?, lossScale? }>
  // The batch moves to the model's device in the worker (batchTo). precision 'bfloat16' / 'float16'
  // runs the forward pass under autocast with float32 master weights and optimizer state; float16
  // (CUDA only) scales the loss dynamically (LossScaler) and skips steps whose gradients overflow.
  Napi::Value TrainStep(const Napi::CallbackInfo& info) {
    const char* fn = "Model.trainStep";
    return guarded(info, fn, [&]() -> Napi::Value {
      if (!optimizer_) argError("ERR_INVALID_ARG", "call setupOptimizer before trainStep");
      Batch batch = batchArg(info[0], fn);
      checkBatchFor(system(fn), batch, "a training step");
      Config opts = configArg(info[1], fn);
      double clip = opts.num("clipNorm", 0.0);
      if (!(clip >= 0 && std::isfinite(clip))) argError("ERR_INVALID_ARG", "options.clipNorm must be a finite number >= 0 (0 = off), got ", clip);
      // The run's position for loss schedules (System::setTrainingProgress); absent = not reported.
      const int64_t step = opts.integer("step", -1), totalSteps = opts.integer("totalSteps", -1);
      if (step >= 0 && !(totalSteps > step)) argError("ERR_INVALID_ARG", "options.totalSteps must be > options.step (", step, "), got ", totalSteps);
      Precision precision = Precision::Float32;
      const std::string precisionText = opts.str("precision", "float32");
      if (!parsePrecision(precisionText, &precision)) argError("ERR_INVALID_ARG", "options.precision must be 'float32', 'bfloat16' or 'float16', got '", precisionText, "'");
      const at::Device device = deviceOf(*system_);
      const at::ScalarType dtype = floatDtypeOf(*system_);
      checkPrecision(precision, device, dtype, system_->kind());
      auto hold = claim(fn);
      auto sys = system_;
      torch::optim::Optimizer* opt = optimizer_.get();
      LossScaler* scaler = &scaler_;
      auto dist = distributed_;
      auto frozen = frozenPrefixes_;
      return PromiseWorker<StepOut>::Start(
          info.Env(), fn,
          [sys, opt, batch, clip, step, totalSteps, precision, device, dtype, scaler, hold, dist, frozen]() {
            // A step that fails leaves the model as it was: the forward pass updates buffers
            // (batch-norm running statistics) and draws random numbers (dropout) before the loss
            // or the gradients can be judged, so both are kept and put back on failure. Parameters
            // and optimizer state change only in opt->step(), after every check.
            StepPhaseTimer phases;  // RADKIT_PROFILE_STEPS (step_profile.h)
            const bool wasTraining = sys->is_training();
            std::vector<std::pair<at::Tensor, at::Tensor>> buffers;
            {
              at::NoGradGuard ng;
              for (auto& b : sys->buffers()) buffers.emplace_back(b, b.clone());
            }
            auto generators = defaultGenerators();
            std::vector<at::Tensor> rng;
            for (auto& [name, g] : generators) rng.push_back(generatorState(g));
            phases.mark("snapshot");
            auto restore = [&]() {
              at::NoGradGuard ng;
              for (auto& [b, copy] : buffers) b.copy_(copy);
              for (size_t i = 0; i < generators.size(); ++i) setGeneratorState(generators[i].second, rng[i]);
              opt->zero_grad();
              sys->train(wasTraining);
            };
            try {
              c10::AutoGradMode grad(true);
              nn::DistributedScope distributedScope(dist.get());  // cross-sample terms see the global batch
              sys->train(true);
              nn::evalFrozenBatchNorms(*sys, frozen);  // frozen parts keep their statistics
              if (step >= 0) sys->setTrainingProgress(step, totalSteps);
              opt->zero_grad();
              StepOut out;
              const Batch onDevice = batchTo(batch, device, dtype);
              at::Tensor loss;
              {
                AutocastScope autocast(device, precision);
                loss = sys->loss(onDevice, out.parts);
              }
              out.loss = loss.item<double>();
              phases.mark("forward");
              if (!dist && !std::isfinite(out.loss))
                fail(ErrorKind::Native, "ERR_NOT_FINITE", "training loss is ", out.loss, "; the step was not applied and the model is as it was (lower the learning rate or clip gradients)");
              const bool scaled = precision == Precision::Float16;
              (scaled ? loss.to(at::kFloat) * scaler->scale : loss).backward();
              phases.mark("backward");
              std::vector<at::Tensor> params;
              for (auto& g : opt->param_groups())
                for (auto& p : g.params()) params.push_back(p);
              if (dist) averageOverRanks(*dist, params, out.loss, out.parts);
              if (scaled) {
                const bool finite = scaler->unscale(params);
                if (!finite) {
                  // An overflow of the scaled float16 gradients: skip the step, lower the scale.
                  restore();
                  scaler->update(true);
                  out.skipped = true;
                  out.lossScale = scaler->scale;
                  out.gradNorm = std::numeric_limits<double>::quiet_NaN();
                  return out;
                }
              }
              out.gradNorm = clipGradNorm(params, clip);
              phases.mark("clip");
              if (!std::isfinite(out.gradNorm))
                fail(ErrorKind::Native, "ERR_NOT_FINITE", "the gradients are not finite (norm ", out.gradNorm, "); the step was not applied and the model is as it was");
              opt->step();
              phases.mark("optimizer");
              if (scaled) {
                scaler->update(false);
                out.lossScale = scaler->scale;
              }
              return out;
            } catch (...) {
              restore();
              RadkitFailure f = translateCurrentException();
              std::string message = f.what();
              if (f.kind == ErrorKind::OutOfMemory) {
                // The step's sizes, so the caller knows what did not fit (and the cache goes back to
                // the driver, so a smaller batch can use it).
                releaseCachedDeviceMemory(device);
                message = "out of memory in a training step of this " + sys->kind() + " model on " + deviceName(device) + " at precision " + precisionName(precision) + " (batch: " +
                          describeBatch(batch) + "): " + message +
                          "; the step was not applied and the model is as it was: use a smaller batch, image size or precision";
              }
              if (message.find("the model is as it was") == std::string::npos) message += " (the step was not applied; the model is as it was)";
              throw RadkitFailure(f.kind, f.code, message);
            }
          },
          [](Napi::Env env, StepOut& o) -> Napi::Value {
            Napi::Object r = Napi::Object::New(env);
            r.Set("loss", o.loss);
            r.Set("gradNorm", o.gradNorm);
            r.Set("parts", partsToJs(env, o.parts));
            if (o.skipped) r.Set("skipped", true);
            if (o.lossScale > 0) r.Set("lossScale", o.lossScale);
            return r;
          });
    });
  }

  Napi::Value EvalLoss(const Napi::CallbackInfo& info) {
    const char* fn = "Model.evalLoss";
    return guarded(info, fn, [&]() -> Napi::Value {
      Batch batch = batchArg(info[0], fn);
      checkBatchFor(system(fn), batch, "evalLoss");
      auto hold = claim(fn);
      auto sys = system_;
      return PromiseWorker<StepOut>::Start(
          info.Env(), fn,
          [sys, batch, hold]() {
            c10::AutoGradMode grad(false);
            sys->train(false);
            StepOut out;
            out.loss = sys->loss(batchTo(batch, deviceOf(*sys), floatDtypeOf(*sys)), out.parts).item<double>();
            return out;
          },
          [](Napi::Env env, StepOut& o) -> Napi::Value {
            Napi::Object r = Napi::Object::New(env);
            r.Set("loss", o.loss);
            r.Set("parts", partsToJs(env, o.parts));
            return r;
          });
    });
  }

  Napi::Value InitializeFromData(const Napi::CallbackInfo& info) {
    const char* fn = "Model.initializeFromData";
    return guarded(info, fn, [&]() -> Napi::Value {
      if (!info[0].IsArray()) argError("ERR_INVALID_ARG", "batches must be an array, got ", describeJs(info[0]));
      Napi::Array arr = info[0].As<Napi::Array>();
      std::vector<Batch> batches;
      for (uint32_t i = 0; i < arr.Length(); ++i) {
        batches.push_back(batchArg(arr.Get(i), fn));
        checkBatchFor(system(fn), batches.back(), "initializeFromData");
      }
      auto hold = claim(fn);
      auto sys = system_;
      return PromiseWorker<bool>::Start(
          info.Env(), fn,
          [sys, batches, hold]() {
            c10::AutoGradMode grad(false);
            sys->train(false);
            std::vector<Batch> onDevice;
            for (const Batch& b : batches) onDevice.push_back(batchTo(b, deviceOf(*sys), floatDtypeOf(*sys)));
            sys->initializeFromData(onDevice);
            return true;
          },
          [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
    });
  }

  Napi::Value Generate(const Napi::CallbackInfo& info) {
    const char* fn = "Model.generate";
    return guarded(info, fn, [&]() -> Napi::Value {
      GenerateRequest req;
      req.batch = batchArg(info[0], fn);
      if (!req.batch.images.defined() && req.batch.extras.empty()) argError("ERR_INVALID_ARG", "batch.images (or the extras a system generates from) is required for generation");
      checkBatchFor(system(fn), req.batch, "generation");
      Napi::Object o = optionsArg(info, 1, fn);
      Napi::Array keys = o.GetPropertyNames();
      for (uint32_t i = 0; i < keys.Length(); ++i) {
        std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
        if (k != "systemOptions" && !isSearchOption(k))
          argError("ERR_INVALID_ARG", "unknown generation option '", k, "' (switches of one system go in options.systemOptions)");
      }
      // Systems decode with their own vocabulary and end token; these bounds only stop runaway requests.
      req.search = parseSearchOptions(o, SearchLimits{4096, std::numeric_limits<int32_t>::max(), 0, 0, false});
      req.systemOptions = configArg(o.Get("systemOptions"), fn);
      auto hold = claim(fn);
      auto sys = system_;
      return PromiseWorker<Generated>::Start(
          info.Env(), fn,
          [sys, req, hold]() {
            c10::AutoGradMode grad(false);
            sys->train(false);
            GenerateRequest onDevice = req;
            onDevice.batch = batchTo(req.batch, deviceOf(*sys), floatDtypeOf(*sys));
            Generated g = sys->generate(onDevice);
            for (auto& [k, t] : g.extras) t = t.to(at::kCPU);  // explanations are read in JS
            return g;
          },
          [](Napi::Env env, Generated& g) -> Napi::Value {
            Napi::Object r = Napi::Object::New(env);
            Napi::Array tokens = Napi::Array::New(env, g.tokens.size());
            for (size_t i = 0; i < g.tokens.size(); ++i) {
              Napi::Array row = Napi::Array::New(env, g.tokens[i].size());
              for (size_t j = 0; j < g.tokens[i].size(); ++j) row.Set(static_cast<uint32_t>(j), Napi::Number::New(env, static_cast<double>(g.tokens[i][j])));
              tokens.Set(static_cast<uint32_t>(i), row);
            }
            Napi::Array scores = Napi::Array::New(env, g.scores.size());
            for (size_t i = 0; i < g.scores.size(); ++i) scores.Set(static_cast<uint32_t>(i), Napi::Number::New(env, g.scores[i]));
            r.Set("tokens", tokens);
            r.Set("scores", scores);
            Napi::Object extras = Napi::Object::New(env);
            for (auto& [k, t] : g.extras) extras.Set(k, NativeTensor::Wrap(env, t));
            r.Set("extras", extras);
            return r;
          });
    });
  }

  // encode(batch) -> Promise<{ name: Tensor }>: the system's embeddings and explanations (no gradients).
  Napi::Value Encode(const Napi::CallbackInfo& info) {
    const char* fn = "Model.encode";
    return guarded(info, fn, [&]() -> Napi::Value {
      Batch batch = batchArg(info[0], fn);
      checkBatchFor(system(fn), batch, "encode");
      auto hold = claim(fn);
      auto sys = system_;
      using Out = std::map<std::string, at::Tensor>;
      return PromiseWorker<Out>::Start(
          info.Env(), fn,
          [sys, batch, hold]() {
            c10::AutoGradMode grad(false);
            sys->train(false);
            auto out = sys->encode(batchTo(batch, deviceOf(*sys), floatDtypeOf(*sys)));
            for (auto& [k, t] : out) t = t.to(at::kCPU);  // embeddings go on to CPU-side retrieval and pictures
            return out;
          },
          [](Napi::Env env, Out& o) -> Napi::Value {
            Napi::Object r = Napi::Object::New(env);
            for (auto& [k, t] : o) r.Set(k, NativeTensor::Wrap(env, t));
            return r;
          });
    });
  }

  // save(weightsPath, optimizerPath?) / load(weightsPath, optimizerPath?): LibTorch archives.
  // The optimizer archive is the training state: the optimizer's moments and LibTorch's random
  // generators (CPU, and CUDA when present) at save time, so a run resumed from it draws the same
  // numbers as one that was never interrupted. load() reads and checks everything first (every
  // tensor by name, shape and dtype; the optimizer state on a twin optimizer) and changes nothing
  // when something does not fit: an ERR_CHECKPOINT naming the file and what is wrong.
  Napi::Value Save(const Napi::CallbackInfo& info) { return io(info, true); }
  Napi::Value Load(const Napi::CallbackInfo& info) { return io(info, false); }

  Napi::Value io(const Napi::CallbackInfo& info, bool saving) {
    const char* fn = saving ? "Model.save" : "Model.load";
    return guarded(info, fn, [&]() -> Napi::Value {
      if (!info[0].IsString()) argError("ERR_INVALID_ARG", "weightsPath must be a string, got ", describeJs(info[0]));
      std::string weights = info[0].As<Napi::String>().Utf8Value();
      std::string optim;
      if (info.Length() > 1 && info[1].IsString()) optim = info[1].As<Napi::String>().Utf8Value();
      if (!optim.empty() && !optimizer_) argError("ERR_INVALID_ARG", "optimizer state path given but the model has no optimizer (call setupOptimizer first)");
      auto hold = claim(fn);
      auto sys = system_;
      torch::optim::Optimizer* opt = optimizer_.get();
      std::string optKind = optimizerKind_;
      return PromiseWorker<bool>::Start(
          info.Env(), fn,
          [sys, opt, optKind, weights, optim, saving, hold]() {
            if (saving) {
              // CPU copies whatever the device: a checkpoint loads on any machine (and device).
              torch::serialize::OutputArchive a;
              saveOnCpu(*sys, a);
              a.save_to(weights);
              if (!optim.empty()) {
                torch::serialize::OutputArchive o;
                std::unique_ptr<torch::optim::Optimizer> cpuTwin;
                torch::optim::Optimizer* source = opt;
                if (!deviceOf(*sys).is_cpu()) {
                  cpuTwin = twinOptimizer(optKind, *opt);
                  for (auto& [key, state] : opt->state()) cpuTwin->state()[key] = state->clone();
                  optimizerStateTo(*cpuTwin, at::Device(at::kCPU));
                  source = cpuTwin.get();
                }
                source->save(o);
                for (auto& [name, g] : defaultGenerators()) o.write(name, generatorState(g));
                o.save_to(optim);
              }
              return true;
            }
            auto unreadable = [](const std::string& file, const std::exception& e) {
              fail(ErrorKind::Native, "ERR_CHECKPOINT", file, " is not a readable LibTorch archive (", firstLine(e), "); the model was not changed");
            };
            torch::serialize::InputArchive a;
            try {
              a.load_from(weights);
            } catch (const std::exception& e) {
              unreadable(weights, e);
            }
            LoadPlan plan;
            planLoad(*sys, a, "", plan);
            if (!plan.missing.empty() || !plan.misfit.empty() || !plan.unexpected.empty()) {
              std::string what;
              if (!plan.missing.empty()) what += "\n  missing: " + listSome(plan.missing);
              if (!plan.misfit.empty()) what += "\n  another shape or dtype: " + listSome(plan.misfit);
              if (!plan.unexpected.empty()) what += "\n  not in this model: " + listSome(plan.unexpected);
              fail(ErrorKind::Native, "ERR_CHECKPOINT", weights, " does not hold the weights of this ", sys->kind(), " model (another model kind or configuration?); the model was not changed:",
                   what, "\nBuild the model from the checkpoint's own checkpoint.json (radkit.loadCheckpoint).");
            }
            std::unique_ptr<torch::optim::Optimizer> twin;
            std::vector<std::pair<at::Generator, at::Tensor>> rng;
            if (!optim.empty()) {
              torch::serialize::InputArchive o;
              try {
                o.load_from(optim);
              } catch (const std::exception& e) {
                unreadable(optim, e);
              }
              twin = twinOptimizer(optKind, *opt);
              try {
                twin->load(o);
              } catch (const std::exception& e) {
                fail(ErrorKind::Native, "ERR_CHECKPOINT", optim, " does not hold the optimizer state of this model and optimizer (", firstLine(e), "); the model was not changed");
              }
              // The moments must have their parameters' shapes (LibTorch matches them by position only).
              for (auto& g : twin->param_groups())
                for (auto& p : g.params()) {
                  auto it = twin->state().find(c10::guts::to_string(p.unsafeGetTensorImpl()));
                  if (it == twin->state().end()) continue;
                  at::Tensor m;
                  if (auto* s = dynamic_cast<torch::optim::AdamParamState*>(it->second.get())) m = s->exp_avg();
                  else if (auto* w = dynamic_cast<torch::optim::AdamWParamState*>(it->second.get())) m = w->exp_avg();
                  if (m.defined() && m.sizes() != p.sizes())
                    fail(ErrorKind::Native, "ERR_CHECKPOINT", optim, " holds optimizer moments of shape ", shapeString(m.sizes()), " for a parameter of shape ", shapeString(p.sizes()),
                         " (another configuration?); the model was not changed");
                }
              for (auto& [name, g] : defaultGenerators()) {
                at::Tensor state;
                if (o.try_read(name, state)) rng.emplace_back(g, state);
              }
              // Checkpoints hold CPU tensors: the moments go where the parameters are.
              optimizerStateTo(*twin, deviceOf(*sys));
            }
            // Everything fits: copy.
            {
              at::NoGradGuard ng;
              for (auto& [dst, src] : plan.copies) dst.copy_(src);
            }
            if (twin) {
              std::swap(opt->state(), twin->state());
              for (size_t i = 0; i < opt->param_groups().size(); ++i) opt->param_groups()[i].set_options(twin->param_groups()[i].options().clone());
            }
            for (auto& [g, state] : rng) setGeneratorState(g, state);
            return true;
          },
          [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
    });
  }

  // loadNamedTensors(prefix, { name: Tensor }, { skipMismatched?, convertDtype? }) copies tensors into the
  // parameters and buffers named prefix + name (user-supplied weights, e.g. ImageNet ResNet from
  // safetensors; another run's weights for staged training). A 3-channel first convolution loaded
  // into a 1-channel (grey) one is summed over its input channels. A shape that does not fit is an
  // ERR_SHAPE and nothing is written, or with skipMismatched that tensor is left out and reported.
  // A dtype that would change values (narrowing, integers <-> floats) is an ERR_DTYPE the same way
  // unless convertDtype; widening floats (float16 -> float32) is exact and always done.
  // Returns { loaded, missing (model names without a tensor), unexpected (tensors without a slot),
  // skipped ([{ name, reason }]) }.
  Napi::Value LoadNamedTensors(const Napi::CallbackInfo& info) {
    const char* fn = "Model.loadNamedTensors";
    return guarded(info, fn, [&]() -> Napi::Value {
      System& sys = system(fn);
      if (busy_) fail(ErrorKind::Argument, "ERR_BUSY", "the model is busy; await its running call first");
      if (!info[0].IsString()) argError("ERR_INVALID_ARG", "prefix must be a string, got ", describeJs(info[0]));
      if (!info[1].IsObject() || info[1].IsArray()) argError("ERR_INVALID_ARG", "tensors must be an object { name: Tensor }, got ", describeJs(info[1]));
      Napi::Object options = optionsArg(info, 2, fn);
      const bool skipMismatched = boolArg(options.Get("skipMismatched"), fn, "options.skipMismatched", false);
      const bool convertDtype = boolArg(options.Get("convertDtype"), fn, "options.convertDtype", false);
      std::string prefix = info[0].As<Napi::String>().Utf8Value();
      Napi::Object given = info[1].As<Napi::Object>();
      std::map<std::string, at::Tensor> slots;
      for (auto& kv : sys.named_parameters()) slots[kv.key()] = kv.value();
      for (auto& kv : sys.named_buffers()) slots[kv.key()] = kv.value();
      // Validate everything first: nothing is written when one tensor does not fit.
      std::vector<std::pair<at::Tensor, at::Tensor>> plan;
      Napi::Array names = given.GetPropertyNames();
      Napi::Array unexpected = Napi::Array::New(info.Env());
      Napi::Array skipped = Napi::Array::New(info.Env());
      std::set<std::string> used;
      for (uint32_t i = 0; i < names.Length(); ++i) {
        std::string name = names.Get(i).As<Napi::String>().Utf8Value();
        Napi::Value v = given.Get(name);
        if (!NativeTensor::IsInstance(v)) argError("ERR_INVALID_ARG", "tensors['", name, "'] must be a Tensor, got ", describeJs(v));
        at::Tensor src = Napi::ObjectWrap<NativeTensor>::Unwrap(v.As<Napi::Object>())->tensor(fn);
        auto it = slots.find(prefix + name);
        if (it == slots.end()) {
          unexpected.Set(unexpected.Length(), name);
          continue;
        }
        at::Tensor dst = it->second;
        if (src.dim() == 4 && dst.dim() == 4 && src.size(1) == 3 && dst.size(1) == 1 && src.size(0) == dst.size(0)) src = src.sum(1, true);
        if (src.sizes() != dst.sizes()) {
          std::string reason = "shape " + shapeString(src.sizes()) + " does not fit " + shapeString(dst.sizes());
          if (!skipMismatched) argError("ERR_SHAPE", "tensor '", name, "' has shape ", shapeString(src.sizes()), " but ", prefix + name, " is ", shapeString(dst.sizes()));
          Napi::Object sk = Napi::Object::New(info.Env());
          sk.Set("name", name);
          sk.Set("reason", reason);
          skipped.Set(skipped.Length(), sk);
          continue;
        }
        // Dtypes: widening floats (float16/bfloat16 -> float32, float32 -> float64) is exact and
        // done; anything else (narrowing, integers <-> floats) only when the caller asks.
        const auto sd = src.scalar_type(), dd = dst.scalar_type();
        const bool widening = at::isFloatingType(sd) && at::isFloatingType(dd) && c10::elementSize(sd) < c10::elementSize(dd);
        if (sd != dd && !widening && !convertDtype) {
          std::string reason = "dtype " + dtypeName(sd) + " is not " + dtypeName(dd) + " (converting would change values; pass convertDtype: true to convert)";
          if (!skipMismatched)
            argError("ERR_DTYPE", "tensor '", name, "' is ", dtypeName(sd), " but ", prefix + name, " is ", dtypeName(dd),
                     ": converting would change values; convert it first, or pass { convertDtype: true }");
          Napi::Object sk = Napi::Object::New(info.Env());
          sk.Set("name", name);
          sk.Set("reason", reason);
          skipped.Set(skipped.Length(), sk);
          continue;
        }
        plan.emplace_back(dst, src);
        used.insert(prefix + name);
      }
      {
        at::NoGradGuard ng;
        for (auto& [dst, src] : plan) dst.copy_(src.to(dst.device(), dst.scalar_type()));
      }
      Napi::Array missing = Napi::Array::New(info.Env());
      for (auto& [name, t] : slots)
        if (name.rfind(prefix, 0) == 0 && !used.count(name)) missing.Set(missing.Length(), name.substr(prefix.size()));
      Napi::Object r = Napi::Object::New(info.Env());
      r.Set("loaded", Napi::Number::New(info.Env(), static_cast<double>(plan.size())));
      r.Set("missing", missing);
      r.Set("unexpected", unexpected);
      r.Set("skipped", skipped);
      return r;
    });
  }

  // namedTensors() -> { name: Tensor }: every parameter and buffer (detached copies), e.g. to seed
  // another model of a later training stage.
  Napi::Value NamedTensors(const Napi::CallbackInfo& info) {
    const char* fn = "Model.namedTensors";
    return guarded(info, fn, [&]() -> Napi::Value {
      System& sys = system(fn);
      if (busy_) fail(ErrorKind::Argument, "ERR_BUSY", "the model is busy; await its running call first");
      Napi::Object r = Napi::Object::New(info.Env());
      at::NoGradGuard ng;
      for (auto& kv : sys.named_parameters()) r.Set(kv.key(), NativeTensor::Wrap(info.Env(), kv.value().detach().clone()));
      for (auto& kv : sys.named_buffers()) r.Set(kv.key(), NativeTensor::Wrap(info.Env(), kv.value().detach().clone()));
      return r;
    });
  }

  // tensorShapes() -> { name: number[] }: the shape of every parameter and buffer (no copies).
  Napi::Value TensorShapes(const Napi::CallbackInfo& info) {
    const char* fn = "Model.tensorShapes";
    return guarded(info, fn, [&]() -> Napi::Value {
      System& sys = system(fn);
      Napi::Env env = info.Env();
      Napi::Object r = Napi::Object::New(env);
      auto put = [&](const std::string& name, const at::Tensor& t) {
        Napi::Array shape = Napi::Array::New(env, static_cast<size_t>(t.dim()));
        for (int64_t d = 0; d < t.dim(); ++d) shape.Set(static_cast<uint32_t>(d), Napi::Number::New(env, static_cast<double>(t.size(d))));
        r.Set(name, shape);
      };
      for (auto& kv : sys.named_parameters()) put(kv.key(), kv.value());
      for (auto& kv : sys.named_buffers()) put(kv.key(), kv.value());
      return r;
    });
  }

  // freeze(prefixes[]) stops gradients of every parameter whose name starts with one of the
  // prefixes; call before setupOptimizer (frozen parameters join no optimizer group). Batch-norm
  // layers under the prefixes stay in evaluation mode in training steps (running statistics kept
  // and used). Returns the frozen names. A prefix that matches nothing is an error naming it.
  // setDistributed(group | null): data-parallel training over a process group. Rank 0's parameters
  // and buffers are broadcast to every rank now (blocks until every rank calls it, at most the
  // group's timeout); each trainStep then averages gradients over the ranks and runs the system's
  // loss with the group current (nn/distributed.h), so cross-sample terms see the global batch.
  // null: one process again. Returns { terms }: what the system's cross-sample terms see.
  Napi::Value SetDistributed(const Napi::CallbackInfo& info) {
    const char* fn = "Model.setDistributed";
    return guarded(info, fn, [&]() -> Napi::Value {
      System& sys = system(fn);
      if (busy_) fail(ErrorKind::Argument, "ERR_BUSY", "the model is busy; await its running call first");
      if (info[0].IsNull() || info[0].IsUndefined()) {
        distributed_.reset();
        return info.Env().Undefined();
      }
      auto pg = processGroupArg(info[0], fn, "group");
      std::vector<at::Tensor> state;
      for (auto& p : sys.parameters()) state.push_back(p);
      for (auto& b : sys.buffers()) state.push_back(b);
      pg->broadcastTensors(state, 0);
      distributed_ = pg;
      Napi::Object r = Napi::Object::New(info.Env());
      r.Set("terms", sys.distributedTerms());
      return r;
    });
  }

  Napi::Value Freeze(const Napi::CallbackInfo& info) {
    const char* fn = "Model.freeze";
    return guarded(info, fn, [&]() -> Napi::Value {
      System& sys = system(fn);
      if (busy_) fail(ErrorKind::Argument, "ERR_BUSY", "the model is busy; await its running call first");
      if (optimizer_) argError("ERR_INVALID_ARG", "freeze() must come before setupOptimizer()");
      if (!info[0].IsArray()) argError("ERR_INVALID_ARG", "prefixes must be an array of strings, got ", describeJs(info[0]));
      Napi::Array a = info[0].As<Napi::Array>();
      std::vector<std::string> prefixes;
      for (uint32_t i = 0; i < a.Length(); ++i) {
        if (!a.Get(i).IsString()) argError("ERR_INVALID_ARG", "prefixes[", i, "] must be a string, got ", describeJs(a.Get(i)));
        prefixes.push_back(a.Get(i).As<Napi::String>().Utf8Value());
      }
      auto params = sys.named_parameters();
      std::vector<at::Tensor> chosen;
      Napi::Array names = Napi::Array::New(info.Env());
      for (auto& p : prefixes) {
        bool any = false;
        for (auto& kv : params)
          if (kv.key().rfind(p, 0) == 0) any = true;
        if (!any) argError("ERR_INVALID_ARG", "no parameter of this ", sys.kind(), " model starts with '", p, "'");
      }
      for (auto& kv : params)
        for (auto& p : prefixes)
          if (kv.key().rfind(p, 0) == 0) {
            chosen.push_back(kv.value());
            names.Set(names.Length(), kv.key());
            break;
          }
      for (auto& t : chosen) t.set_requires_grad(false);
      frozenPrefixes_.insert(frozenPrefixes_.end(), prefixes.begin(), prefixes.end());
      return names;
    });
  }

  // to(device, dtype?) moves the parameters, buffers and optimizer state to `device` ('cpu',
  // 'cuda', 'cuda:N'), converting their floating tensors to `dtype` when given. The device is
  // checked first (ERR_DEVICE naming it and why it cannot be used); a move that fails half-way (out
  // of memory) moves everything back.
  Napi::Value To(const Napi::CallbackInfo& info) {
    const char* fn = "Model.to";
    return guarded(info, fn, [&]() -> Napi::Value {
      System& sys = system(fn);
      if (busy_) fail(ErrorKind::Argument, "ERR_BUSY", "the model is busy; await its running call first");
      const at::Device device = deviceArg(info[0], fn, "device");
      std::optional<at::ScalarType> dtype;
      if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) {
        at::ScalarType t = dtypeArg(info[1], fn, "dtype", at::kFloat);
        if (!at::isFloatingType(t)) argError("ERR_DTYPE", "dtype must be a floating dtype (float32, float64, bfloat16, float16), got ", dtypeName(t));
        dtype = t;
      }
      const at::Device fromDevice = deviceOf(sys);
      const at::ScalarType fromDtype = floatDtypeOf(sys);
      auto apply = [&](at::Device d, std::optional<at::ScalarType> t) {
        // Module::to leaves gradients where they were (another device or dtype than their
        // parameter, which the next backward or optimizer step would trip over); each step starts
        // from zero gradients anyway, so they are dropped.
        for (auto& p : sys.parameters())
          if (p.grad().defined()) p.mutable_grad() = at::Tensor();
        if (t) sys.to(d, *t);
        else sys.to(d);
        if (optimizer_) optimizerStateTo(*optimizer_, d, t);
      };
      try {
        apply(device, dtype);
      } catch (...) {
        RadkitFailure f = translateCurrentException();
        try {
          apply(fromDevice, dtype ? std::optional<at::ScalarType>(fromDtype) : std::nullopt);
        } catch (...) {
        }
        releaseCachedDeviceMemory(device);
        throw RadkitFailure(f.kind, f.code, std::string("moving this ") + sys.kind() + " model to " + deviceName(device) + " failed: " + f.what() + "; it stays on " + deviceName(fromDevice));
      }
      return info.Env().Undefined();
    });
  }

  Napi::Value DeviceOf(const Napi::CallbackInfo& info) {
    return guarded(info, "Model.device", [&]() -> Napi::Value { return Napi::String::New(info.Env(), deviceName(deviceOf(system("Model.device")))); });
  }

  Napi::Value DtypeOf(const Napi::CallbackInfo& info) {
    return guarded(info, "Model.dtype", [&]() -> Napi::Value { return Napi::String::New(info.Env(), dtypeName(floatDtypeOf(system("Model.dtype")))); });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    return guarded(info, "Model.dispose", [&]() -> Napi::Value {
      if (busy_) fail(ErrorKind::Argument, "ERR_BUSY", "the model is running a call; await it before dispose()");
      optimizer_.reset();
      system_.reset();
      return info.Env().Undefined();
    });
  }

  Napi::Value IsDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !system_); }

  std::shared_ptr<System> system_;
  std::vector<std::string> frozenPrefixes_;  // freeze(): their batch norms stay in evaluation mode in training
  std::shared_ptr<dist::ProcessGroup> distributed_;  // data-parallel training (setDistributed); null in one process
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::string optimizerKind_;
  LossScaler scaler_;  // float16 training's dynamic loss scale
  std::atomic<bool> busy_{false};
};

Napi::FunctionReference* NativeModel::ctor = nullptr;

OpRegistrar reg("models", [](Napi::Env env, Napi::Object exports) { NativeModel::Define(env, exports); });

}  // namespace
}  // namespace radkit
