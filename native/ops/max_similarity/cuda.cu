// CUDA kernels of maxSimilarity (raw pointers; compiles with nvcc alone). The similarity block S of a
// few images comes from cuBLAS (ATen matmul in the glue, sized to O(Bi * Bt * (N + K)) elements);
// these kernels do the masked maxima with lowest-index ties and the arg-max-routed backward.
//   rowMax: one warp per (image, patch, text), the lanes splitting the text's words.
//   colMax: 8 threads per (image, text, word), each scanning every 8th patch (coalesced), combined
//   in shared memory. Ties keep the lowest index in both.
//   backward: gathers without atomics (grad_image from imageToText, grad_text from textToImage) and
//   scatters with atomicAdd for the other halves.
#include "../../core/cuda_kernels.cuh"
#include "kernels.h"

namespace radkit {
namespace cuda {
namespace {

template <typename A>
__device__ __forceinline__ A negInf();
template <>
__device__ __forceinline__ float negInf<float>() { return -__int_as_float(0x7f800000); }
template <>
__device__ __forceinline__ double negInf<double>() { return -__longlong_as_double(0x7ff0000000000000LL); }

// (value, index) of the better of two candidates: a real one (index >= 0) over none, then the larger
// value, then the lower index (the CPU kernel's first-maximum rule).
template <typename A>
__device__ __forceinline__ void better(A& v, long long& i, A ov, long long oi) {
  if (oi >= 0 && (i < 0 || ov > v || (ov == v && oi < i))) {
    v = ov;
    i = oi;
  }
}

template <typename A>
__device__ __forceinline__ void warpBetter(A& v, long long& i) {
  for (int o = 16; o > 0; o >>= 1) {
    const A ov = __shfl_xor_sync(0xffffffffu, v, o);
    const long long oi = __shfl_xor_sync(0xffffffffu, i, o);
    better(v, i, ov, oi);
  }
}

// One warp per (image, patch, text): the lanes read the text's K scores coalesced, then reduce.
// Consecutive warps take consecutive texts, i.e. consecutive stretches of the same S row.
template <typename A>
__global__ void rowMaxKernel(const A* __restrict__ S, const bool* __restrict__ tmask, long long Ib, long long N,
                             long long Bt, long long K, A* __restrict__ val, long long* __restrict__ idx) {
  const int lane = threadIdx.x & 31;
  const long long warps = (long long)gridDim.x * blockDim.x / 32;
  for (long long w = (blockIdx.x * (long long)blockDim.x + threadIdx.x) / 32; w < Ib * N * Bt; w += warps) {
    const long long j = w % Bt, n = (w / Bt) % N, il = w / (Bt * N);
    const A* row = S + (il * N + n) * Bt * K + j * K;
    A best = negInf<A>();
    long long arg = -1;
    for (long long k = lane; k < K; k += 32)
      if (!tmask || tmask[j * K + k]) better(best, arg, row[k], k);
    warpBetter(best, arg);
    if (lane == 0) {
      const long long e = (il * Bt + j) * N + n;
      val[e] = best;
      idx[e] = arg;
    }
  }
}

// Blocks of 32 columns x 8 slices of the patches: each thread scans every 8th patch of its column
// (coalesced across the warp), then the 8 partial maxima are combined in shared memory.
constexpr int kColSlices = 8;
template <typename A>
__global__ void colMaxKernel(const A* __restrict__ S, const bool* __restrict__ imask, long long Ib, long long N,
                             long long Bt, long long K, A* __restrict__ val, long long* __restrict__ idx) {
  __shared__ A sv[kColSlices][32];
  __shared__ long long si[kColSlices][32];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const long long e = blockIdx.x * 32LL + tx;  // il * Bt * K + col
  const bool live = e < Ib * Bt * K;
  A best = negInf<A>();
  long long arg = -1;
  if (live) {
    const long long col = e % (Bt * K), il = e / (Bt * K);
    for (long long n = ty; n < N; n += kColSlices)
      if (!imask || imask[il * N + n]) better(best, arg, S[(il * N + n) * Bt * K + col], n);
  }
  sv[ty][tx] = best;
  si[ty][tx] = arg;
  __syncthreads();
  if (ty == 0 && live) {
    for (int t = 1; t < kColSlices; ++t) better(best, arg, sv[t][tx], si[t][tx]);
    val[e] = best;
    idx[e] = arg;
  }
}

// gi[i, n, d] += sum_j c1[i, j] * txt[j, argN2K[i, j, n], d]
template <typename A, typename T>
__global__ void gatherImage(const A* c1, const T* txt, const long long* argN2K, long long Bi, long long N, long long Bt,
                            long long K, long long D, A* gi) {
  RADKIT_GRID_STRIDE(e, Bi * N * D) {
    const long long d = e % D, n = (e / D) % N, i = e / (D * N);
    A s = A(0);
    for (long long j = 0; j < Bt; ++j) {
      const long long a = argN2K[(i * Bt + j) * N + n];
      const A c = c1[i * Bt + j];
      if (a >= 0 && c != A(0)) s += c * toAcc(txt[(j * K + a) * D + d]);
    }
    gi[e] += s;
  }
}

// gt[j, k, d] += sum_i c2[i, j] * img[i, argK2N[i, j, k], d]
template <typename A, typename T>
__global__ void gatherText(const A* c2, const T* img, const long long* argK2N, long long Bi, long long N, long long Bt,
                           long long K, long long D, A* gt) {
  RADKIT_GRID_STRIDE(e, Bt * K * D) {
    const long long d = e % D, k = (e / D) % K, j = e / (D * K);
    A s = A(0);
    for (long long i = 0; i < Bi; ++i) {
      const long long b = argK2N[(i * Bt + j) * K + k];
      const A c = c2[i * Bt + j];
      if (b >= 0 && c != A(0)) s += c * toAcc(img[(i * N + b) * D + d]);
    }
    gt[e] += s;
  }
}

// gi[i, argK2N[i, j, k], d] += c2[i, j] * txt[j, k, d]
template <typename A, typename T>
__global__ void scatterImage(const A* c2, const T* txt, const long long* argK2N, long long Bi, long long N, long long Bt,
                             long long K, long long D, A* gi) {
  RADKIT_GRID_STRIDE(e, Bi * Bt * K * D) {
    const long long d = e % D, ijk = e / D, k = ijk % K, ij = ijk / K, j = ij % Bt, i = ij / Bt;
    const long long b = argK2N[ijk];
    const A c = c2[ij];
    if (b >= 0 && c != A(0)) atomicAdd(gi + (i * N + b) * D + d, c * toAcc(txt[(j * K + k) * D + d]));
  }
}

// gt[j, argN2K[i, j, n], d] += c1[i, j] * img[i, n, d]
template <typename A, typename T>
__global__ void scatterText(const A* c1, const T* img, const long long* argN2K, long long Bi, long long N, long long Bt,
                            long long K, long long D, A* gt) {
  RADKIT_GRID_STRIDE(e, Bi * Bt * N * D) {
    const long long d = e % D, ijn = e / D, n = ijn % N, ij = ijn / N, j = ij % Bt, i = ij / Bt;
    const long long a = argN2K[ijn];
    const A c = c1[ij];
    if (a >= 0 && c != A(0)) atomicAdd(gt + (j * K + a) * D + d, c * toAcc(img[(i * N + n) * D + d]));
  }
}

template <typename A, typename T>
void backwardTyped(const void* c1, const void* c2, const void* img, const void* txt, const long long* argN2K,
                   const long long* argK2N, long long Bi, long long N, long long Bt, long long K, long long D, void* gi,
                   void* gt, cudaStream_t s) {
  const int th = 256;
  if (gi) {
    gatherImage<A, T><<<gridFor(Bi * N * D, th), th, 0, s>>>((const A*)c1, (const T*)txt, argN2K, Bi, N, Bt, K, D, (A*)gi);
    scatterImage<A, T><<<gridFor(Bi * Bt * K * D, th), th, 0, s>>>((const A*)c2, (const T*)txt, argK2N, Bi, N, Bt, K, D,
                                                                  (A*)gi);
  }
  if (gt) {
    gatherText<A, T><<<gridFor(Bt * K * D, th), th, 0, s>>>((const A*)c2, (const T*)img, argK2N, Bi, N, Bt, K, D, (A*)gt);
    scatterText<A, T><<<gridFor(Bi * Bt * N * D, th), th, 0, s>>>((const A*)c1, (const T*)img, argN2K, Bi, N, Bt, K, D,
                                                                 (A*)gt);
  }
}

}  // namespace

int maxSimilarityRowMaxLaunch(CudaDtype acc, const void* S, const bool* tmask, long long Ib, long long N, long long Bt,
                              long long K, void* rowVal, long long* rowIdx, void* stream) {
  const long long total = Ib * Bt * N;
  if (total == 0) return 0;
  cudaStream_t s = (cudaStream_t)stream;
  const unsigned grid = gridFor(total * 32, 256);
  if (acc == CudaDtype::F64)
    rowMaxKernel<double><<<grid, 256, 0, s>>>((const double*)S, tmask, Ib, N, Bt, K, (double*)rowVal, rowIdx);
  else
    rowMaxKernel<float><<<grid, 256, 0, s>>>((const float*)S, tmask, Ib, N, Bt, K, (float*)rowVal, rowIdx);
  return (int)cudaGetLastError();
}

int maxSimilarityColMaxLaunch(CudaDtype acc, const void* S, const bool* imask, long long Ib, long long N, long long Bt,
                              long long K, void* colVal, long long* colIdx, void* stream) {
  const long long total = Ib * Bt * K;
  if (total == 0) return 0;
  cudaStream_t s = (cudaStream_t)stream;
  const dim3 block(32, kColSlices);
  const unsigned grid = (unsigned)((total + 31) / 32);
  if (acc == CudaDtype::F64)
    colMaxKernel<double><<<grid, block, 0, s>>>((const double*)S, imask, Ib, N, Bt, K, (double*)colVal, colIdx);
  else
    colMaxKernel<float><<<grid, block, 0, s>>>((const float*)S, imask, Ib, N, Bt, K, (float*)colVal, colIdx);
  return (int)cudaGetLastError();
}

int maxSimilarityBackwardLaunch(CudaDtype in, const void* c1, const void* c2, const void* img, const void* txt,
                                const long long* argN2K, const long long* argK2N, long long Bi, long long N, long long Bt,
                                long long K, long long D, void* gi, void* gt, void* stream) {
  if (Bi * Bt * D == 0) return 0;
  return byDtype(in, [&](auto tag) {
    using T = decltype(tag);
    backwardTyped<typename Acc<T>::type, T>(c1, c2, img, txt, argN2K, argK2N, Bi, N, Bt, K, D, gi, gt, (cudaStream_t)stream);
  });
}

}  // namespace cuda
}  // namespace radkit
