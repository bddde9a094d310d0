// Raw-pointer CUDA launchers for sinkhorn (no LibTorch headers: cuda.cu compiles with plain
// nvcc). Returns a cudaError_t value (0 = success).
#pragma once
#include <cstdint>

#include "../../core/cuda_dtype.h"

namespace radkit {
namespace cuda {

// One block per problem. cost/plan in `dtype`, contiguous [B, M, N]; a, b, distance and err in the
// accumulation type (double for F64, float otherwise), contiguous [B, M], [B, N], [B], [B].
int sinkhornLaunch(CudaDtype dtype, const void* cost, const void* a, const void* b, void* plan, void* distance,
                   int64_t* iterations, void* err, int64_t B, int64_t M, int64_t N, double epsilon, int64_t maxIterations,
                   double tolerance, void* stream);

}  // namespace cuda
}  // namespace radkit
