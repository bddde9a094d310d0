// testing.parallelThreads(): how many distinct threads one at::parallel_for in radkit's own code runs
// on under the current setNumThreads. It is 1 whatever the setting when the addon is built without
// -fopenmp (the loop's OpenMP pragma is in a LibTorch header), which the test suite guards against.
// Not part of the public API.
#include <ATen/Parallel.h>

#include <mutex>
#include <set>
#include <thread>

#include "../binding/errors.h"
#include "../binding/registry.h"

namespace radkit {
namespace {

Napi::Value ParallelThreads(const Napi::CallbackInfo& info) {
  return guarded(info, "testing.parallelThreads", [&]() -> Napi::Value {
    std::set<std::thread::id> ids;
    std::mutex mu;
    at::parallel_for(0, 1024, 1, [&](int64_t, int64_t) {
      std::lock_guard<std::mutex> lock(mu);
      ids.insert(std::this_thread::get_id());
    });
    return Napi::Number::New(info.Env(), static_cast<double>(ids.size()));
  });
}

OpRegistrar reg("testing:threads", [](Napi::Env env, Napi::Object exports) {
  testingExports(env, exports).Set("parallelThreads", Napi::Function::New(env, ParallelThreads, "parallelThreads"));
});

}  // namespace
}  // namespace radkit
