// Runs the self-registered binding modules (registry.h): op bindings, models, the transformer
// handle, testing helpers.
#include "bindings.h"
#include "registry.h"

namespace radkit {

std::vector<OpRegistration>& opRegistry() {
  static std::vector<OpRegistration> registry;
  return registry;
}

void registerOps(Napi::Env env, Napi::Object exports) {
  Napi::Array names = Napi::Array::New(env);
  uint32_t i = 0;
  for (auto& op : opRegistry()) {
    op.fn(env, exports);
    names.Set(i++, op.name);
  }
  exports.Set("compiledOps", names);
}

}  // namespace radkit
