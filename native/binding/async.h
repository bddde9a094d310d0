// Runs heavy native work on a libuv worker thread and settles a Promise on the JS thread.
// The caller's grad mode is captured on the JS thread and re-established inside the worker,
// because LibTorch keeps it thread-local; so is the OpenMP team size, brought to setNumThreads'.
#pragma once
#include <c10/core/GradMode.h>
#include <napi.h>

#include <functional>
#include <memory>
#include <optional>

#include "errors.h"
#include "threads.h"

namespace radkit {

template <typename Result>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<Result()>;
  using Convert = std::function<Napi::Value(Napi::Env, Result&)>;

  static Napi::Promise Start(Napi::Env env, const char* fn, Work work, Convert convert) {
    auto* w = new PromiseWorker(env, fn, std::move(work), std::move(convert));
    Napi::Promise p = w->deferred_.Promise();
    w->Queue();
    return p;
  }

 protected:
  void Execute() override {
    try {
      applyProcessThreads();  // setNumThreads since this pool thread last ran work (threads.h)
      c10::AutoGradMode mode(gradEnabled_);
      result_.emplace(work_());
    } catch (...) {
      failure_ = std::make_unique<RadkitFailure>(translateCurrentException());
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (failure_) {
      deferred_.Reject(makeJsError(env, *failure_, fn_));
      return;
    }
    try {
      deferred_.Resolve(convert_(env, *result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (...) {
      deferred_.Reject(makeJsError(env, translateCurrentException(), fn_));
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  PromiseWorker(Napi::Env env, const char* fn, Work work, Convert convert)
      : Napi::AsyncWorker(env, fn),
        deferred_(Napi::Promise::Deferred::New(env)),
        fn_(fn),
        work_(std::move(work)),
        convert_(std::move(convert)),
        gradEnabled_(c10::GradMode::is_enabled()) {}

  Napi::Promise::Deferred deferred_;
  const char* fn_;
  Work work_;
  Convert convert_;
  bool gradEnabled_;
  std::optional<Result> result_;
  std::unique_ptr<RadkitFailure> failure_;
};

}  // namespace radkit
