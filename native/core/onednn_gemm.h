// oneDNN's GEMMs (dnnl_sgemm, dnnl_gemm_u8s8s32), found at run time in the oneDNN library that
// LibTorch has already loaded. They run on the OpenMP threads that the kernels' own loops use, so a
// kernel alternating GEMMs and parallel loops does not make two thread pools spin against each
// other (OpenBLAS keeps its own). Debian's LibTorch links the shared libdnnl; the Python torch wheels link oneDNN
// statically with hidden symbols, so there (and without oneDNN) it is absent and callers fall back.
#pragma once

#include <cstdint>

namespace radkit {

// Row-major C[M, N] = alpha * (op(A) - ao) * (op(B) - bo) + beta * C + co (oneDNN's C API; returns
// 0 on success). A: uint8, B: int8, C: int32 with exact integer accumulation on VNNI hardware.
using OnednnGemmU8S8S32 = int (*)(char transa, char transb, char offsetc, int64_t M, int64_t N, int64_t K, float alpha, const uint8_t* A,
                                  int64_t lda, uint8_t ao, const int8_t* B, int64_t ldb, int8_t bo, float beta, int32_t* C, int64_t ldc,
                                  const int32_t* co);

// Row-major float32 C[M, N] = alpha * op(A) * op(B) + beta * C (returns 0 on success).
using OnednnSgemm = int (*)(char transa, char transb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                            const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// The functions, or null when no loaded oneDNN exports them. Looked up once.
OnednnGemmU8S8S32 onednnGemmU8S8S32();
OnednnSgemm onednnSgemm();

}  // namespace radkit
