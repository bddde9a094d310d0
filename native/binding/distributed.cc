// N-API for data-parallel training: createProcessGroup (c10d rendezvous off the JS thread) and the
// handle's collectives, each awaited on a worker thread so the event loop stays free.
#include "distributed.h"

#include <memory>

#include "async.h"
#include "errors.h"
#include "registry.h"
#include "tensor.h"

namespace radkit {
namespace {

class NativeProcessGroup : public Napi::ObjectWrap<NativeProcessGroup> {
 public:
  static Napi::FunctionReference* ctor;

  static void Define(Napi::Env env, Napi::Object exports) {
    Napi::Function fn = DefineClass(env, "NativeProcessGroup",
                                    {
                                        InstanceMethod("rank", &NativeProcessGroup::Rank),
                                        InstanceMethod("worldSize", &NativeProcessGroup::WorldSize),
                                        InstanceMethod("exchange", &NativeProcessGroup::Exchange),
                                        InstanceMethod("barrier", &NativeProcessGroup::Barrier),
                                        InstanceMethod("allReduce", &NativeProcessGroup::AllReduce),
                                        InstanceMethod("allGather", &NativeProcessGroup::AllGather),
                                        InstanceMethod("broadcast", &NativeProcessGroup::Broadcast),
                                        InstanceMethod("close", &NativeProcessGroup::Close),
                                    });
    ctor = new Napi::FunctionReference(Napi::Persistent(fn));
    exports.Set("NativeProcessGroup", fn);
    exports.Set("createProcessGroup", Napi::Function::New(env, Create, "createProcessGroup"));
    exports.Set("distributedCapabilities", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
      dist::Capabilities c = dist::capabilities();
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("gloo", c.gloo);
      o.Set("nccl", c.nccl);
      o.Set("note", c.note);
      return o;
    }, "distributedCapabilities"));
  }

  explicit NativeProcessGroup(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeProcessGroup>(info) {}

  std::shared_ptr<dist::ProcessGroup> group(const char* fn) {
    if (!pg_ || pg_->closed()) fail(ErrorKind::Native, "ERR_DISTRIBUTED", "the process group is closed");
    return pg_;
  }

  std::shared_ptr<dist::ProcessGroup> pg_;

 private:
  // createProcessGroup({ rank, worldSize, masterAddr, masterPort, backend?, initTimeout?, timeout?, bucketMegabytes? })
  static Napi::Value Create(const Napi::CallbackInfo& info) {
    const char* fn = "createProcessGroup";
    return guarded(info, fn, [&]() -> Napi::Value {
      Napi::Object o = optionsArg(info, 0, fn);
      dist::GroupOptions g;
      g.rank = intArg(o.Get("rank"), fn, "options.rank", 0, 65535);
      g.worldSize = intArg(o.Get("worldSize"), fn, "options.worldSize", 1, 65536);
      if (!o.Get("masterAddr").IsString()) argError("ERR_INVALID_ARG", "options.masterAddr must be a host name or address, got ", describeJs(o.Get("masterAddr")));
      g.masterAddr = o.Get("masterAddr").As<Napi::String>().Utf8Value();
      g.masterPort = intArg(o.Get("masterPort"), fn, "options.masterPort", 1, 65535);
      if (o.Has("backend") && !o.Get("backend").IsUndefined()) {
        if (!o.Get("backend").IsString()) argError("ERR_INVALID_ARG", "options.backend must be 'gloo' or 'nccl', got ", describeJs(o.Get("backend")));
        g.backend = o.Get("backend").As<Napi::String>().Utf8Value();
      }
      auto seconds = [&](const char* key, double fallback) {
        Napi::Value v = o.Get(key);
        if (v.IsUndefined()) return fallback;
        double s = numberArg(v, fn, (std::string("options.") + key).c_str());
        if (!(s > 0 && s <= 86400)) argError("ERR_INVALID_ARG", "options.", key, " must be in (0, 86400] seconds, got ", s);
        return s;
      };
      g.initTimeoutSeconds = seconds("initTimeout", g.initTimeoutSeconds);
      g.timeoutSeconds = seconds("timeout", g.timeoutSeconds);
      g.bucketMegabytes = seconds("bucketMegabytes", g.bucketMegabytes);
      if (g.rank >= g.worldSize) argError("ERR_INVALID_ARG", "options.rank must be in [0, worldSize - 1] = [0, ", g.worldSize - 1, "], got ", g.rank);
      if (g.backend != "gloo" && g.backend != "nccl") argError("ERR_INVALID_ARG", "options.backend must be 'gloo' (CPU) or 'nccl' (CUDA), got '", g.backend, "'");
      return PromiseWorker<std::shared_ptr<dist::ProcessGroup>>::Start(
          info.Env(), fn, [g]() { return std::make_shared<dist::ProcessGroup>(g); },
          [](Napi::Env env, std::shared_ptr<dist::ProcessGroup>& pg) -> Napi::Value {
            Napi::Object obj = ctor->New({});
            Unwrap(obj)->pg_ = pg;
            return obj;
          });
    });
  }

  Napi::Value Rank(const Napi::CallbackInfo& info) {
    return guarded(info, "ProcessGroup.rank", [&]() -> Napi::Value { return Napi::Number::New(info.Env(), static_cast<double>(group("ProcessGroup.rank")->rank())); });
  }
  Napi::Value WorldSize(const Napi::CallbackInfo& info) {
    return guarded(info, "ProcessGroup.worldSize", [&]() -> Napi::Value { return Napi::Number::New(info.Env(), static_cast<double>(group("ProcessGroup.worldSize")->worldSize())); });
  }

  // exchange(key, value) -> Promise<string[]>: every rank's value in rank order.
  Napi::Value Exchange(const Napi::CallbackInfo& info) {
    const char* fn = "ProcessGroup.exchange";
    return guarded(info, fn, [&]() -> Napi::Value {
      auto pg = group(fn);
      if (!info[0].IsString() || !info[1].IsString()) argError("ERR_INVALID_ARG", "exchange(key, value) takes two strings");
      std::string key = info[0].As<Napi::String>().Utf8Value(), value = info[1].As<Napi::String>().Utf8Value();
      return PromiseWorker<std::vector<std::string>>::Start(
          info.Env(), fn, [pg, key, value]() { return pg->exchange(key, value); },
          [](Napi::Env env, std::vector<std::string>& v) -> Napi::Value {
            Napi::Array a = Napi::Array::New(env, v.size());
            for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::String::New(env, v[i]));
            return a;
          });
    });
  }

  Napi::Value Barrier(const Napi::CallbackInfo& info) {
    const char* fn = "ProcessGroup.barrier";
    return guarded(info, fn, [&]() -> Napi::Value {
      auto pg = group(fn);
      return PromiseWorker<bool>::Start(
          info.Env(), fn, [pg]() { pg->barrier(); return true; }, [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
    });
  }

  // allReduce(t) -> Promise<Tensor>: the sum over ranks (a new tensor).
  Napi::Value AllReduce(const Napi::CallbackInfo& info) {
    const char* fn = "ProcessGroup.allReduce";
    return guarded(info, fn, [&]() -> Napi::Value {
      auto pg = group(fn);
      at::Tensor t = tensorArg(info, 0, fn, "tensor").detach().contiguous().clone();
      return PromiseWorker<at::Tensor>::Start(
          info.Env(), fn, [pg, t]() { std::vector<at::Tensor> v{t}; pg->allReduceSum(v); return v[0]; },
          [](Napi::Env env, at::Tensor& r) -> Napi::Value { return NativeTensor::Wrap(env, r); });
    });
  }

  // allGather(t) -> Promise<Tensor>: every rank's rows in rank order (same shape on every rank).
  Napi::Value AllGather(const Napi::CallbackInfo& info) {
    const char* fn = "ProcessGroup.allGather";
    return guarded(info, fn, [&]() -> Napi::Value {
      auto pg = group(fn);
      at::Tensor t = tensorArg(info, 0, fn, "tensor").detach().contiguous();
      if (t.dim() < 1) argError("ERR_SHAPE", "allGather needs a tensor with rows, got a scalar");
      return PromiseWorker<at::Tensor>::Start(
          info.Env(), fn, [pg, t]() { return at::cat(pg->allGather(t), 0); },
          [](Napi::Env env, at::Tensor& r) -> Napi::Value { return NativeTensor::Wrap(env, r); });
    });
  }

  // broadcast(t, root) -> Promise<Tensor>: root's values (a new tensor on every rank).
  Napi::Value Broadcast(const Napi::CallbackInfo& info) {
    const char* fn = "ProcessGroup.broadcast";
    return guarded(info, fn, [&]() -> Napi::Value {
      auto pg = group(fn);
      at::Tensor t = tensorArg(info, 0, fn, "tensor").detach().contiguous().clone();
      const int64_t root = intArg(info[1], fn, "root", 0, pg->worldSize() - 1);
      return PromiseWorker<at::Tensor>::Start(
          info.Env(), fn, [pg, t, root]() { std::vector<at::Tensor> v{t}; pg->broadcast(v, root); return v[0]; },
          [](Napi::Env env, at::Tensor& r) -> Napi::Value { return NativeTensor::Wrap(env, r); });
    });
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    return guarded(info, "ProcessGroup.close", [&]() -> Napi::Value {
      if (pg_) pg_->close();
      pg_.reset();
      return info.Env().Undefined();
    });
  }
};

Napi::FunctionReference* NativeProcessGroup::ctor = nullptr;

OpRegistrar reg("distributed", [](Napi::Env env, Napi::Object exports) { NativeProcessGroup::Define(env, exports); });

}  // namespace

std::shared_ptr<dist::ProcessGroup> processGroupArg(Napi::Value v, const char* fn, const char* name) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(NativeProcessGroup::ctor->Value()))
    argError("ERR_INVALID_ARG", name, " must be a process group (radkit.distributed.initProcessGroup), got ", describeJs(v));
  return Napi::ObjectWrap<NativeProcessGroup>::Unwrap(v.As<Napi::Object>())->group(fn);
}

}  // namespace radkit
