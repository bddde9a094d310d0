#include "errors.h"

#include <c10/util/Exception.h>

#include <new>

namespace radkit {
namespace {

// LibTorch messages may carry an "Exception raised from ..." trailer with a backtrace.
std::string firstParagraph(std::string msg) {
  for (const char* marker : {"\nException raised from", "Exception raised from "}) {
    auto pos = msg.find(marker);
    if (pos != std::string::npos) msg = msg.substr(0, pos);
  }
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg;
}

}  // namespace

RadkitFailure translateCurrentException() {
  try {
    throw;
  } catch (const RadkitFailure& f) {
    return f;
  } catch (const c10::OutOfMemoryError& e) {
    return RadkitFailure(ErrorKind::OutOfMemory, "ERR_OUT_OF_MEMORY", firstParagraph(e.what_without_backtrace()));
  } catch (const c10::Error& e) {
    std::string msg = firstParagraph(e.what_without_backtrace());
    if (msg.find("not enough memory") != std::string::npos || msg.find("out of memory") != std::string::npos)
      return RadkitFailure(ErrorKind::OutOfMemory, "ERR_OUT_OF_MEMORY", msg);
    return RadkitFailure(ErrorKind::Native, "ERR_TORCH", msg);
  } catch (const std::bad_alloc&) {
    return RadkitFailure(ErrorKind::OutOfMemory, "ERR_OUT_OF_MEMORY", "memory allocation failed");
  } catch (const std::exception& e) {
    return RadkitFailure(ErrorKind::Native, "ERR_NATIVE", firstParagraph(e.what()));
  } catch (...) {
    return RadkitFailure(ErrorKind::Native, "ERR_NATIVE", "unknown native exception");
  }
}

}  // namespace radkit
