#include "onednn_gemm.h"

#include <dlfcn.h>

#include <initializer_list>

namespace radkit {
namespace {
void* lookUp(const char* symbol) {
  if (void* f = dlsym(RTLD_DEFAULT, symbol)) return f;
  // Node loads addons (and so LibTorch's dependencies) with RTLD_LOCAL: ask for the library by name,
  // without loading it if it is not there already.
  for (const char* name : {"libdnnl.so.3", "libdnnl.so.2"}) {
    if (void* lib = dlopen(name, RTLD_NOW | RTLD_NOLOAD)) {
      void* f = dlsym(lib, symbol);
      dlclose(lib);  // only drops the reference taken above; LibTorch keeps it loaded
      if (f) return f;
    }
  }
  return nullptr;
}
}  // namespace

OnednnGemmU8S8S32 onednnGemmU8S8S32() {
  static const auto fn = reinterpret_cast<OnednnGemmU8S8S32>(lookUp("dnnl_gemm_u8s8s32"));
  return fn;
}

OnednnSgemm onednnSgemm() {
  static const auto fn = reinterpret_cast<OnednnSgemm>(lookUp("dnnl_sgemm"));
  return fn;
}

}  // namespace radkit
