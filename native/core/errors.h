// Errors of radkit's compute code, free of N-API: ops, layers and systems throw a RadkitFailure
// (kind + stable code + message); only native/binding turns it into a JS error (binding/errors.h).
#pragma once
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

}  // namespace radkit
