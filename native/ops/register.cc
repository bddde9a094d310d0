// Registers the TypeScript-facing bindings of every op folder (native/ops/<op>/binding.cc).
#include "../binding/bindings.h"

namespace radkit {
void registerOps(Napi::Env env, Napi::Object exports) {
  (void)env;
  (void)exports;
}
}  // namespace radkit
