// Raw-pointer CUDA launchers of maxSimilarity (plain C++, no ATen: cuda.cu compiles with nvcc alone).
// acc: F32 or F64, the type of S, the maxima and the gradient accumulators (F64 for float64 inputs).
// in:  the type of image/text in the backward (the accumulators are then Acc<in>: double or float).
// Every launcher returns the cudaError_t of its launches as an int (0 = success).
#pragma once

#include "../../core/cuda_dtype.h"

namespace radkit {
namespace cuda {

// S [Ib, N, Bt*K] row-major similarity block. tmask [Bt, K] / imask [Ib, N] may be null (all real).
// rowVal/rowIdx [Ib, Bt, N]: max over real k (-inf / -1 when text j has none).
int maxSimilarityRowMaxLaunch(CudaDtype acc, const void* S, const bool* tmask, long long Ib, long long N, long long Bt,
                              long long K, void* rowVal, long long* rowIdx, void* stream);
// colVal/colIdx [Ib, Bt, K]: max over real n (-inf / -1 when image i has none).
int maxSimilarityColMaxLaunch(CudaDtype acc, const void* S, const bool* imask, long long Ib, long long N, long long Bt,
                              long long K, void* colVal, long long* colIdx, void* stream);
// Gradients (accumulators gi [Bi, N, D], gt [Bt, K, D] of the accumulation type, zero-initialised; either
// may be null). c1, c2 [Bi, Bt] of the accumulation type; argN2K [Bi, Bt, N], argK2N [Bi, Bt, K] with -1
// at padded positions.
int maxSimilarityBackwardLaunch(CudaDtype in, const void* c1, const void* c2, const void* img, const void* txt,
                                const long long* argN2K, const long long* argK2N, long long Bi, long long N, long long Bt,
                                long long K, long long D, void* gi, void* gt, void* stream);

}  // namespace cuda
}  // namespace radkit
