// Entry point of the radkit native module: the raw contract is typings/native.d.ts.
#include <napi.h>

#include "bindings.h"
#include "tensor.h"

namespace radkit {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeTensor", NativeTensor::Define(env));
  registerFactories(env, exports);
  registerRuntime(env, exports);
  registerOps(env, exports);
  return exports;
}

}  // namespace radkit

static Napi::Object InitRadkit(Napi::Env env, Napi::Object exports) { return radkit::Init(env, exports); }

NODE_API_MODULE(radkit_native, InitRadkit)
