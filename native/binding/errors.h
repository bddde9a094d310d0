// Error model of the addon: every failure leaves native code as a RadkitFailure and reaches JS as an
// instance of one of the Error subclasses registered from lib/errors.ts, with `code` and `fn` set.
#pragma once
#include <napi.h>

#include <sstream>
#include <stdexcept>
#include <string>

namespace radkit {

enum class ErrorKind { Argument = 0, Disposed = 1, OutOfMemory = 2, Native = 3 };

struct RadkitFailure : std::runtime_error {
  RadkitFailure(ErrorKind kind, std::string code, const std::string& message)
      : std::runtime_error(message), kind(kind), code(std::move(code)) {}
  ErrorKind kind;
  std::string code;
};

// Builds a message from any streamable parts: fail(ErrorKind::Argument, "ERR_SHAPE", "expected ", 3).
template <typename... Parts>
[[noreturn]] void fail(ErrorKind kind, const char* code, const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw RadkitFailure(kind, code, os.str());
}

template <typename... Parts>
[[noreturn]] void argError(const char* code, const Parts&... parts) {
  fail(ErrorKind::Argument, code, parts...);
}

// Translates any in-flight C++ exception into a RadkitFailure (strips LibTorch backtraces).
RadkitFailure translateCurrentException();

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
