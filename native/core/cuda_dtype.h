// The one dtype code of radkit's CUDA kernels, shared by the raw-pointer launchers (each op's
// kernels.h, cuda.cu) and their ATen glue (cuda.cc, through cuda_glue.h). Plain C++.
#pragma once

namespace radkit {
namespace cuda {

// Element type of a tensor handed to a kernel. Accumulation is in double for F64, float otherwise.
enum class CudaDtype : int { F32 = 0, F64 = 1, F16 = 2, BF16 = 3 };

}  // namespace cuda
}  // namespace radkit
