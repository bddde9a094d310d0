// The JS handle of a c10d process group (native/distributed/process_group.h), for other bindings
// (the model handle's setDistributed).
#pragma once
#include <napi.h>

#include <memory>

#include "../distributed/process_group.h"

namespace radkit {

// The process group behind a ProcessGroup handle; ERR_INVALID_ARG naming `name` for anything else,
// ERR_DISTRIBUTED for a closed group.
std::shared_ptr<dist::ProcessGroup> processGroupArg(Napi::Value v, const char* fn, const char* name);

}  // namespace radkit
