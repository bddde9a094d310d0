// Host-side helpers of the ATen glue of the CUDA kernels (native/ops/<op>/cuda.cc, compiled only when
// LibTorch has CUDA): the CudaDtype of a tensor, the accumulation dtype, launch-error reporting and
// the scratch budget of the ops that stream a score matrix through cuBLAS.
#pragma once
#include <ATen/ATen.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "checks.h"
#include "cuda_dtype.h"
#include "errors.h"

namespace radkit {

// Scratch size of the CUDA ops that stream a large score matrix through cuBLAS in blocks
// (maxSimilarity's similarity blocks, memoryQuery's memory chunks): 16M elements, 64 MiB in
// float32. A fixed floor keeps each GEMM large enough to fill the GPU (one image per block left
// an H100 mostly idle) while the peak stays bounded whatever the batch or memory size.
constexpr int64_t kCudaScratchElements = int64_t(1) << 24;

// float32 / float64 / float16 / bfloat16 -> their CudaDtype (ERR_DTYPE for anything else).
inline cuda::CudaDtype cudaDtypeOf(at::ScalarType t, const char* op) {
  switch (t) {
    case at::kFloat: return cuda::CudaDtype::F32;
    case at::kDouble: return cuda::CudaDtype::F64;
    case at::kHalf: return cuda::CudaDtype::F16;
    case at::kBFloat16: return cuda::CudaDtype::BF16;
    default: argError("ERR_DTYPE", op, ": the CUDA kernels take float32, float64, float16 or bfloat16, got ", dtypeName(t));
  }
}

// The accumulation dtype of the kernels: float64 for float64, float32 otherwise.
inline at::ScalarType cudaAccType(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

// A launcher's result (a cudaError_t as an int): anything but 0 fails with ERR_CUDA naming the op and the launch.
inline void checkCudaLaunch(int err, const char* op, const char* what) {
  if (err != 0)
    fail(ErrorKind::Native, "ERR_CUDA", op, ": CUDA kernel launch failed in ", what, ": ",
         cudaGetErrorString(static_cast<cudaError_t>(err)), " (cudaError ", err, ")");
}

}  // namespace radkit
