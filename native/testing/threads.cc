// testing.parallelThreads(): how many distinct threads one at::parallel_for in radkit's own code runs
// on under the current setNumThreads; testing.parallelThreadsAsync() the same on a libuv worker
// thread (the threads async calls run on); testing.openblasThreads(): OpenBLAS's pool size (-1
// without OpenBLAS). It is 1 whatever the setting when the addon is built without
// -fopenmp (the loop's OpenMP pragma is in a LibTorch header), which the test suite guards against.
// Not part of the public API.
#include <ATen/Parallel.h>

#include <mutex>
#include <set>
#include <thread>

#include "../binding/async.h"
#include "../binding/errors.h"
#include "../binding/registry.h"
#include "../binding/threads.h"

namespace radkit {
namespace {

int countParallelThreads() {
  std::set<std::thread::id> ids;
  std::mutex mu;
  at::parallel_for(0, 1024, 1, [&](int64_t, int64_t) {
    std::lock_guard<std::mutex> lock(mu);
    ids.insert(std::this_thread::get_id());
  });
  return static_cast<int>(ids.size());
}

Napi::Value ParallelThreads(const Napi::CallbackInfo& info) {
  return guarded(info, "testing.parallelThreads", [&]() -> Napi::Value { return Napi::Number::New(info.Env(), countParallelThreads()); });
}

Napi::Value ParallelThreadsAsync(const Napi::CallbackInfo& info) {
  return guarded(info, "testing.parallelThreadsAsync", [&]() -> Napi::Value {
    return PromiseWorker<int>::Start(info.Env(), "testing.parallelThreadsAsync", []() { return countParallelThreads(); },
                                     [](Napi::Env env, int& n) -> Napi::Value { return Napi::Number::New(env, n); });
  });
}

OpRegistrar reg("testing:threads", [](Napi::Env env, Napi::Object exports) {
  Napi::Object t = testingExports(env, exports);
  t.Set("parallelThreads", Napi::Function::New(env, ParallelThreads, "parallelThreads"));
  t.Set("parallelThreadsAsync", Napi::Function::New(env, ParallelThreadsAsync, "parallelThreadsAsync"));
  t.Set("openblasThreads", Napi::Function::New(env, [](const Napi::CallbackInfo& i) -> Napi::Value { return Napi::Number::New(i.Env(), openblasThreads()); }, "openblasThreads"));
});

}  // namespace
}  // namespace radkit
