// Error model of the addon: every failure leaves native code as a RadkitFailure and reaches JS as an
// instance of one of the Error subclasses registered from lib/errors.ts, with `code` and `fn` set.
#pragma once
#include <napi.h>

#include "../core/errors.h"

namespace radkit {

// Makes the JS error object for a failure in function `fn` (uses the registered classes).
Napi::Value makeJsError(Napi::Env env, const RadkitFailure& failure, const char* fn);

// Runs `body`, turning any C++ exception into a thrown JS error naming `fn`.
template <typename Body>
Napi::Value guarded(const Napi::CallbackInfo& info, const char* fn, Body&& body) {
  Napi::Env env = info.Env();
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    RadkitFailure failure = translateCurrentException();
    throw Napi::Error(env, makeJsError(env, failure, fn));
  }
}

// Stores the JS error classes: setErrorClasses({ argument, disposed, outOfMemory, native }).
void setErrorClasses(const Napi::CallbackInfo& info);

}  // namespace radkit
