#include "onednn_gemm.h"

#include <dlfcn.h>

namespace radkit {
namespace ops {

namespace {
OnednnGemmU8S8S32 lookUp() {
  if (void* f = dlsym(RTLD_DEFAULT, "dnnl_gemm_u8s8s32")) return reinterpret_cast<OnednnGemmU8S8S32>(f);
  // Node loads addons (and so LibTorch's dependencies) with RTLD_LOCAL: ask for the library by name,
  // without loading it if it is not there already.
  for (const char* name : {"libdnnl.so.3", "libdnnl.so.2"}) {
    if (void* lib = dlopen(name, RTLD_NOW | RTLD_NOLOAD)) {
      void* f = dlsym(lib, "dnnl_gemm_u8s8s32");
      dlclose(lib);  // only drops the reference taken above; LibTorch keeps it loaded
      if (f) return reinterpret_cast<OnednnGemmU8S8S32>(f);
    }
  }
  return nullptr;
}
}  // namespace

OnednnGemmU8S8S32 onednnGemmU8S8S32() {
  static const OnednnGemmU8S8S32 fn = lookUp();
  return fn;
}

}  // namespace ops
}  // namespace radkit
