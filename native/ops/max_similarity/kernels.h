// Raw-pointer CUDA launchers of maxSimilarity (plain CUDA C++, no ATen: see cuda.cu).
// acc: 0 = float, 1 = double (the type of S, the maxima and the gradient accumulators).
// in:  0 float32, 1 float64, 2 float16, 3 bfloat16 (the type of image/text in the backward).
// Every launcher returns the cudaError_t of its launches as an int (0 = success).
#pragma once

namespace radkit {
namespace maxsim_cuda {

// S [Ib, N, Bt*K] row-major similarity block. tmask [Bt, K] / imask [Ib, N] may be null (all real).
// rowVal/rowIdx [Ib, Bt, N]: max over real k (-inf / -1 when text j has none).
int rowMax(int acc, const void* S, const bool* tmask, long long Ib, long long N, long long Bt, long long K, void* rowVal,
           long long* rowIdx, void* stream);
// colVal/colIdx [Ib, Bt, K]: max over real n (-inf / -1 when image i has none).
int colMax(int acc, const void* S, const bool* imask, long long Ib, long long N, long long Bt, long long K, void* colVal,
           long long* colIdx, void* stream);
// Gradients (accumulators gi [Bi, N, D], gt [Bt, K, D] of type acc, zero-initialised; either may be null).
// c1, c2 [Bi, Bt] of type acc; argN2K [Bi, Bt, N], argK2N [Bi, Bt, K] with -1 at padded positions.
int backward(int acc, int in, const void* c1, const void* c2, const void* img, const void* txt, const long long* argN2K,
             const long long* argK2N, long long Bi, long long N, long long Bt, long long K, long long D, void* gi,
             void* gt, void* stream);

}  // namespace maxsim_cuda
}  // namespace radkit
