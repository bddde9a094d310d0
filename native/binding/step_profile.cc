// See step_profile.h.
#include "step_profile.h"

#include <cstdlib>
#include <mutex>

#include "registry.h"

namespace radkit {
namespace {
std::mutex gMu;
std::map<std::string, double> gPhases;
}  // namespace

bool stepProfiling() {
  static const bool on = std::getenv("RADKIT_PROFILE_STEPS") != nullptr;
  return on;
}

void addStepPhase(const char* phase, double seconds) {
  std::lock_guard<std::mutex> g(gMu);
  gPhases[phase] += seconds;
}

std::map<std::string, double> takeStepPhases() {
  std::lock_guard<std::mutex> g(gMu);
  std::map<std::string, double> out;
  out.swap(gPhases);
  return out;
}

namespace {
OpRegistrar reg("testing:stepPhases", [](Napi::Env env, Napi::Object exports) {
  testingExports(env, exports).Set("stepPhases", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    Napi::Object o = Napi::Object::New(info.Env());
    for (auto& [k, v] : takeStepPhases()) o.Set(k, v);
    return o;
  }, "stepPhases"));
});
}  // namespace

}  // namespace radkit
