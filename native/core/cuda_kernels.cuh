// Device-side helpers shared by every CUDA kernel file (native/ops/<op>/cuda.cu): plain CUDA C++,
// no ATen, so each .cu compiles with nvcc alone (nvcc -std=c++17 -Inative -c native/ops/<op>/cuda.cu).
//   Acc<T>, toAcc, fromAcc   the accumulation type of an element type and the conversions to and from it
//   dexp, dlog               exp and log for float and double accumulators
//   warpSum, warpMax         reductions over the 32 lanes of a warp (every lane gets the result)
//   RADKIT_GRID_STRIDE       a grid-stride loop over [0, total)
//   gridFor, warpGrid        launch geometry; byDtype: the element type of a CudaDtype
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "cuda_dtype.h"

namespace radkit {
namespace cuda {

// ---- element and accumulation types: double accumulates in double, everything else in float.
template <typename T>
struct Acc {
  using type = float;
};
template <>
struct Acc<double> {
  using type = double;
};

__device__ __forceinline__ float toAcc(float x) { return x; }
__device__ __forceinline__ double toAcc(double x) { return x; }
__device__ __forceinline__ float toAcc(__half x) { return __half2float(x); }
__device__ __forceinline__ float toAcc(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T fromAcc(typename Acc<T>::type x);
template <>
__device__ __forceinline__ float fromAcc<float>(float x) { return x; }
template <>
__device__ __forceinline__ double fromAcc<double>(double x) { return x; }
template <>
__device__ __forceinline__ __half fromAcc<__half>(float x) { return __float2half(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 fromAcc<__nv_bfloat16>(float x) { return __float2bfloat16(x); }

__device__ __forceinline__ float dexp(float x) { return expf(x); }
__device__ __forceinline__ double dexp(double x) { return exp(x); }
__device__ __forceinline__ float dlog(float x) { return logf(x); }
__device__ __forceinline__ double dlog(double x) { return log(x); }

// ---- warp reductions (all 32 lanes take part; fixed butterfly order, so results are reproducible).
template <typename A>
__device__ __forceinline__ A warpSum(A v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <typename A>
__device__ __forceinline__ A warpMax(A v) {
  for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// ---- launch geometry
// for (long long e = <this thread>; e < total; e += <all threads>): one element per thread and turn.
#define RADKIT_GRID_STRIDE(e, total) \
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < (total); e += (long long)gridDim.x * blockDim.x)

// Blocks of `threads` threads for one thread per element of `total` (at least 1, at most 65535 * 32;
// grid-stride loops cover the rest).
inline unsigned gridFor(long long total, int threads) {
  long long blocks = (total + threads - 1) / threads;
  if (blocks > 65535LL * 32) blocks = 65535LL * 32;
  return (unsigned)(blocks < 1 ? 1 : blocks);
}

// Blocks of `threads` threads for one warp per item of `warps`.
inline unsigned warpGrid(long long warps, int threads) { return (unsigned)((warps * 32 + threads - 1) / threads); }

// Calls f(T()) with T the element type of `dtype` (float, double, __half, __nv_bfloat16), then returns
// the launch's cudaError_t as an int (0 = success; cudaErrorInvalidValue for an unknown code).
template <typename F>
int byDtype(CudaDtype dtype, F&& f) {
  switch (dtype) {
    case CudaDtype::F32: f(float()); break;
    case CudaDtype::F64: f(double()); break;
    case CudaDtype::F16: f(__half()); break;
    case CudaDtype::BF16: f(__nv_bfloat16()); break;
    default: return (int)cudaErrorInvalidValue;
  }
  return (int)cudaGetLastError();
}

}  // namespace cuda
}  // namespace radkit
