// Raw-pointer CUDA launchers for memoryQuery (no LibTorch headers: cuda.cu compiles with
// plain nvcc). All tensors contiguous: query [B*L, D], keys [S, D], values [S, Dv]; per (row, head)
// outputs [B*L*H, k]. "acc" buffers are double for F64 and float otherwise (acc: F32 or F64, their
// CudaDtype). Return cudaError_t.
#pragma once
#include <cstdint>

#include "../../core/cuda_dtype.h"

namespace radkit {
namespace cuda {

struct MemoryQueryDims {
  int64_t B, L, D, S, Dv, H, k;
  int weighting;  // 0 softmax, 1 normalized
  int cosine;     // 1: cosine similarity (backward projects the normalisation)
};

// Per-row state of the chunk merge, zero-filled / -inf-filled by the caller: gate [B*L*H] (acc,
// -inf), candV (acc) and candI [B*L*H*cap] (cap candidates per row), ncand [B*L*H] (int, 0).
struct MemoryQueryMergeScratch {
  void* gate;
  void* candV;
  int64_t* candI;
  int* ncand;
  int cap;
};

// Forward, per memory chunk [s0, s0 + sc): scores = the raw dot products [H, B*L, sc] (acc), as cuBLAS
// gives them; score = alpha * beta * scores with alpha [B*L*H], beta [S*H] (acc); mask: bool [B, S]
// or null. Merges them into the running top-k: topv (acc) and indices [B*L*H*k], count [B*L*H] (int,
// zero-filled before the first chunk). nonFinite: device int set to 1 when a score is not finite.
int memoryQueryMergeChunkLaunch(CudaDtype acc, const void* scores, int64_t s0, int64_t sc, const bool* mask, const void* alpha, const void* beta,
                                void* topv, int64_t* indices, int* count, const MemoryQueryMergeScratch& m, int* nonFinite,
                                const MemoryQueryDims& d, void* stream);

// After the last chunk: weights [B*L*H, k] and response [B*L, Dv] in dtype; unused slots get index -1.
int memoryQueryFinishLaunch(CudaDtype dtype, const void* values, void* topv, int64_t* indices, const int* count, void* weights,
                            void* response, const MemoryQueryDims& d, void* stream);

// gResponse [B*L, Dv] and gWeights [B*L*H, k] in dtype (either may be null). gQuery in dtype;
// gKeysAcc [S, D] and gValuesAcc [S, Dv] in acc, zero-filled by the caller (atomic accumulation).
// scratch: acc [2 * B*L*H*k].
int memoryQueryBackwardLaunch(CudaDtype dtype, const void* gResponse, const void* gWeights, const void* query, const void* keys,
                              const void* values, const int64_t* indices, const void* weights, const void* alpha, const void* beta,
                              void* gQuery, void* gKeysAcc, void* gValuesAcc, void* scratch, const MemoryQueryDims& d, void* stream);

}  // namespace cuda
}  // namespace radkit
