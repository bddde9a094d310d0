// Each binding module registers its functions on the addon's exports.
#pragma once
#include <napi.h>

namespace radkit {
void registerFactories(Napi::Env env, Napi::Object exports);
void registerRuntime(Napi::Env env, Napi::Object exports);
void registerOps(Napi::Env env, Napi::Object exports);
}  // namespace radkit
