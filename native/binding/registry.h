// Self-registration of op bindings: each native/ops/<op>/binding.cc adds its functions with
//   static radkit::OpRegistrar reg("sinkhorn", [](Napi::Env env, Napi::Object exports) { ... });
// so adding an op touches no shared file.
#pragma once
#include <napi.h>

#include <functional>
#include <string>
#include <vector>

namespace radkit {

using RegisterFn = std::function<void(Napi::Env, Napi::Object)>;

struct OpRegistration {
  std::string name;
  RegisterFn fn;
};

std::vector<OpRegistration>& opRegistry();

struct OpRegistrar {
  OpRegistrar(const char* name, RegisterFn fn) { opRegistry().push_back({name, std::move(fn)}); }
};

// exports.testing (test and benchmark helpers, not public API), created by whichever registrar runs first.
inline Napi::Object testingExports(Napi::Env env, Napi::Object exports) {
  Napi::Value existing = exports.Get("testing");
  if (existing.IsObject()) return existing.As<Napi::Object>();
  Napi::Object t = Napi::Object::New(env);
  exports.Set("testing", t);
  return t;
}

}  // namespace radkit
