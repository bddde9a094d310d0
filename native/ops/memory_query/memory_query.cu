// CUDA kernels of memoryQuery.
// Forward, around cuBLAS: the glue (cuda.cc) computes the raw dot products of one memory chunk for
// all rows at once ([H, B*L, Sc] in the accumulation type; Sc sized so a chunk holds 16M scores,
// never [B, L, S]); mergeChunkKernel scales and masks them and merges them into each row's
// running top-k (one warp per (row, head): candidates above the current k-th score found with a
// ballot and inserted in index order, so ties go to the lower index as on the CPU); finishKernel
// turns the k scores into weights and sums the selected value rows directly (no gathered copy).
// Streaming the memory through one block per 32 rows instead left most SMs idle at large S and ran
// the dot products on CUDA cores at a fraction of cuBLAS's rate (10x slower than matmul + topk).
// Backward: one warp per (row, head) recomputes the selected scores, differentiates the weighting
// and similarity, writes the query gradient, and scatters key/value gradients with atomicAdd into
// fp32 (fp64 for double) accumulators; a last pass applies the cosine normalisation to keys.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "kernels.h"

namespace radkit {
namespace cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float toAcc(float x) { return x; }
__device__ __forceinline__ double toAcc(double x) { return x; }
__device__ __forceinline__ float toAcc(__half x) { return __half2float(x); }
__device__ __forceinline__ float toAcc(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T, typename A> __device__ __forceinline__ T store(A x);
template <> __device__ __forceinline__ float store<float, float>(float x) { return x; }
template <> __device__ __forceinline__ double store<double, double>(double x) { return x; }
template <> __device__ __forceinline__ __half store<__half, float>(float x) { return __float2half(x); }
template <> __device__ __forceinline__ __nv_bfloat16 store<__nv_bfloat16, float>(float x) { return __float2bfloat16(x); }

__device__ __forceinline__ float dexp(float x) { return expf(x); }
__device__ __forceinline__ double dexp(double x) { return exp(x); }

template <typename A>
__device__ __forceinline__ A warpSum(A v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <typename A>
__global__ void __launch_bounds__(kThreads) mergeChunkKernel(const A* __restrict__ scores, int64_t s0, int64_t sc, const bool* __restrict__ mask,
                                                            const A* __restrict__ alpha, const A* __restrict__ beta, A* __restrict__ topv,
                                                            int64_t* __restrict__ topi, int* __restrict__ count, int* __restrict__ nonFinite,
                                                            MemoryQueryDims d) {
  const int lane = threadIdx.x & 31;
  const int64_t w = ((int64_t)blockIdx.x * kThreads + threadIdx.x) / 32;  // the scores' row: h * B*L + r
  const int64_t BL = d.B * d.L;
  if (w >= BL * d.H) return;  // warp-uniform
  const int64_t h = w / BL, r = w % BL, k = d.k;
  const int64_t o = r * d.H + h;
  const A* row = scores + w * sc;
  const bool* mrow = mask ? mask + (r / d.L) * d.S : nullptr;
  A* tv = topv + o * k;
  int64_t* ti = topi + o * k;
  int cnt = count[o];
  A thr = cnt == k ? tv[k - 1] : A(-INFINITY);
  // k <= 32: lane t holds the t-th best entry, so an insertion is one ballot and one shuffle;
  // larger k keeps the list in memory and inserts from lane 0.
  const bool inLanes = k <= 32;
  A myv = inLanes && lane < cnt ? tv[lane] : A(-INFINITY);
  int64_t myi = inLanes && lane < cnt ? ti[lane] : -1;
  const A a = alpha[o];
  int bad = 0;
  // kUnroll loads in flight per lane before the (rare, after the first k) insertions: one warp per
  // row would otherwise wait on one load at a time.
  constexpr int kUnroll = 8;
  for (int64_t c0 = 0; c0 < sc; c0 += 32 * kUnroll) {
    A vs[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t c = c0 + u * 32 + lane;
      A v = -INFINITY;
      if (c < sc) {
        v = row[c] * a * beta[(s0 + c) * d.H + h];
        if (!isfinite(v)) {
          bad = 1;
          v = -INFINITY;
        }
        if (mrow && !mrow[s0 + c]) v = -INFINITY;
      }
      vs[u] = v;
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const A v = vs[u];
      unsigned m = __ballot_sync(0xffffffffu, v > thr);
      while (m) {
        const int src = __ffs(m) - 1;
        m &= m - 1;
        const A vv = __shfl_sync(0xffffffffu, v, src);
        if (!(vv > thr)) continue;  // uniform
        const int64_t id = s0 + c0 + u * 32 + src;
        if (inLanes) {
          // The entries >= vv lead the descending list, so their count is vv's slot (after equal
          // scores: the lower index stays first); the lanes behind it move down by one.
          const int pos = __popc(__ballot_sync(0xffffffffu, lane < cnt && myv >= vv));
          const A upv = __shfl_up_sync(0xffffffffu, myv, 1);
          const int64_t upi = __shfl_up_sync(0xffffffffu, myi, 1);
          if (lane > pos) myv = upv, myi = upi;
          if (lane == pos) myv = vv, myi = id;
          if (cnt < k) ++cnt;
          if (cnt == k) thr = __shfl_sync(0xffffffffu, myv, (int)k - 1);
        } else {
          if (lane == 0) {
            int64_t pos = cnt < k ? cnt : k - 1;
            while (pos > 0 && tv[pos - 1] < vv) {
              tv[pos] = tv[pos - 1];
              ti[pos] = ti[pos - 1];
              --pos;
            }
            tv[pos] = vv;
            ti[pos] = id;
            if (cnt < k) ++cnt;
            if (cnt == k) thr = tv[k - 1];
          }
          thr = __shfl_sync(0xffffffffu, thr, 0);
          cnt = __shfl_sync(0xffffffffu, cnt, 0);
        }
      }
    }
  }
  if (inLanes && lane < cnt) {
    tv[lane] = myv;
    ti[lane] = myi;
  }
  if (lane == 0) count[o] = cnt;
  if (__any_sync(0xffffffffu, bad) && lane == 0) atomicOr(nonFinite, 1);
}

// Weights from the k selected scores, then response = sum_t w_t values[i_t]; one warp per (row, head).
template <typename T, typename A>
__global__ void __launch_bounds__(kThreads) finishKernel(const T* __restrict__ values, A* __restrict__ topv, int64_t* __restrict__ topi,
                                                        const int* __restrict__ count, T* __restrict__ weights, T* __restrict__ response,
                                                        MemoryQueryDims d) {
  const int lane = threadIdx.x & 31;
  const int64_t o = ((int64_t)blockIdx.x * kThreads + threadIdx.x) / 32;
  if (o >= d.B * d.L * d.H) return;  // warp-uniform
  const int64_t k = d.k, dvh = d.Dv / d.H, r = o / d.H, h = o % d.H;
  A* tv = topv + o * k;
  int64_t* ti = topi + o * k;
  const int c = count[o];
  if (lane == 0 && c > 0) {
    if (d.weighting == 0) {
      A sum = 0;
      for (int t = 0; t < c; ++t) sum += dexp(tv[t] - tv[0]);
      const A top = tv[0];
      for (int t = 0; t < c; ++t) tv[t] = dexp(tv[t] - top) / sum;
    } else {
      const A m = fmin(A(0), tv[c - 1]);
      A sum = 0;
      for (int t = 0; t < c; ++t) sum += tv[t] - m + A(1e-6);
      for (int t = 0; t < c; ++t) tv[t] = (tv[t] - m + A(1e-6)) / sum;
    }
  }
  __syncwarp();
  for (int64_t t = lane; t < k; t += 32) {
    if (t < c) {
      weights[o * k + t] = store<T, A>(tv[t]);
    } else {
      weights[o * k + t] = store<T, A>(A(0));
      ti[t] = -1;
    }
  }
  T* out = response + r * d.Dv + h * dvh;
  for (int64_t j = lane; j < dvh; j += 32) {
    A acc = 0;
    for (int t = 0; t < c; ++t) acc += tv[t] * toAcc(values[ti[t] * d.Dv + h * dvh + j]);
    out[j] = store<T, A>(acc);
  }
}

template <typename T, typename A>
__global__ void __launch_bounds__(kThreads) backwardRowsKernel(const T* __restrict__ gR, const T* __restrict__ gW, const T* __restrict__ q,
                                                              const T* __restrict__ keys, const T* __restrict__ values,
                                                              const int64_t* __restrict__ idx, const T* __restrict__ weights,
                                                              const A* __restrict__ alpha, const A* __restrict__ beta, T* __restrict__ gq,
                                                              A* __restrict__ gk, A* __restrict__ gv, A* __restrict__ scratch,
                                                              MemoryQueryDims d) {
  const int lane = threadIdx.x & 31;
  const int64_t o = ((int64_t)blockIdx.x * kThreads + threadIdx.x) / 32;
  const int64_t RH = d.B * d.L * d.H;
  if (o >= RH) return;  // warp-uniform
  const int64_t k = d.k, dh = d.D / d.H, dvh = d.Dv / d.H, h = o % d.H, r = o / d.H;
  const T* qrow = q + r * d.D + h * dh;
  const int64_t* ti = idx + o * k;
  const T* w = weights + o * k;
  A* s = scratch + o * k;           // scores, then d scores
  A* dw = scratch + RH * k + o * k; // d weights, then key coefficients
  T* gqrow = gq + r * d.D + h * dh;
  int c = 0;
  while (c < k && ti[c] >= 0) ++c;
  const A a = alpha[o];
  for (int t = 0; t < c; ++t) {
    const int64_t j = ti[t];
    A dot = 0;
    for (int64_t x = lane; x < dh; x += 32) dot += toAcc(qrow[x]) * toAcc(keys[j * d.D + h * dh + x]);
    dot = warpSum(dot);
    A g = 0;
    if (gR)
      for (int64_t x = lane; x < dvh; x += 32) g += toAcc(gR[r * d.Dv + h * dvh + x]) * toAcc(values[j * d.Dv + h * dvh + x]);
    g = warpSum(g);
    if (lane == 0) {
      s[t] = dot * a * beta[j * d.H + h];
      dw[t] = g + (gW ? toAcc(gW[o * k + t]) : A(0));
    }
  }
  __syncwarp();
  if (lane == 0 && c > 0) {
    A wdw = 0;
    for (int t = 0; t < c; ++t) wdw += toAcc(w[t]) * dw[t];
    if (d.weighting == 0) {
      for (int t = 0; t < c; ++t) s[t] = toAcc(w[t]) * (dw[t] - wdw);
    } else {
      const bool shifted = s[c - 1] < 0;
      const A m = fmin(A(0), s[c - 1]);
      A U = 0;
      for (int t = 0; t < c; ++t) U += s[t] - m + A(1e-6);
      A sumdu = 0;
      for (int t = 0; t < c; ++t) {
        s[t] = (dw[t] - wdw) / U;
        sumdu += s[t];
      }
      if (shifted) s[c - 1] -= sumdu;
    }
    for (int t = 0; t < c; ++t) dw[t] = s[t] * a * beta[ti[t] * d.H + h];
  }
  __syncwarp();
  // Query gradient: a * sum_t ds_t beta_t k_t, projected for cosine.
  A proj = 0, qn = 0;
  for (int64_t x = lane; x < dh; x += 32) {
    A acc = 0;
    for (int t = 0; t < c; ++t) acc += s[t] * beta[ti[t] * d.H + h] * toAcc(keys[ti[t] * d.D + h * dh + x]);
    acc *= a;
    const A qx = toAcc(qrow[x]);
    proj += a * qx * acc;
    qn += qx * qx;
  }
  proj = warpSum(proj);
  qn = warpSum(qn);
  const bool project = d.cosine && sqrt(qn) > A(1e-12);
  for (int64_t x = lane; x < dh; x += 32) {
    A acc = 0;
    for (int t = 0; t < c; ++t) acc += s[t] * beta[ti[t] * d.H + h] * toAcc(keys[ti[t] * d.D + h * dh + x]);
    acc *= a;
    if (project) acc -= a * toAcc(qrow[x]) * proj;
    gqrow[x] = store<T, A>(acc);
  }
  // Key and value gradients (atomic accumulation).
  for (int t = 0; t < c; ++t) {
    const int64_t j = ti[t];
    const A ck = dw[t];
    for (int64_t x = lane; x < dh; x += 32) atomicAdd(&gk[j * d.D + h * dh + x], ck * toAcc(qrow[x]));
    if (gR) {
      const A wt = toAcc(w[t]);
      for (int64_t x = lane; x < dvh; x += 32) atomicAdd(&gv[j * d.Dv + h * dvh + x], wt * toAcc(gR[r * d.Dv + h * dvh + x]));
    }
  }
}

// Cosine: dk = dk_raw - khat (khat . dk_raw) where |k| > eps; one warp per (memory row, head).
template <typename T, typename A>
__global__ void __launch_bounds__(kThreads) cosineKeysKernel(const T* __restrict__ keys, const A* __restrict__ beta, A* __restrict__ gk,
                                                            MemoryQueryDims d) {
  const int lane = threadIdx.x & 31;
  const int64_t p = ((int64_t)blockIdx.x * kThreads + threadIdx.x) / 32;
  if (p >= d.S * d.H) return;
  const int64_t dh = d.D / d.H, s = p / d.H, h = p % d.H;
  const T* krow = keys + s * d.D + h * dh;
  A* g = gk + s * d.D + h * dh;
  const A bt = beta[p];
  A kn = 0, proj = 0;
  for (int64_t x = lane; x < dh; x += 32) {
    const A kx = toAcc(krow[x]);
    kn += kx * kx;
    proj += bt * kx * g[x];
  }
  kn = warpSum(kn);
  proj = warpSum(proj);
  if (!(sqrt(kn) > A(1e-12))) return;
  for (int64_t x = lane; x < dh; x += 32) g[x] -= bt * toAcc(krow[x]) * proj;
}

unsigned warpBlocks(int64_t warps) { return (unsigned)((warps * 32 + kThreads - 1) / kThreads); }

template <typename T, typename A>
int finishTyped(const void* values, void* topv, int64_t* indices, const int* count, void* weights, void* response, const MemoryQueryDims& d,
                cudaStream_t stream) {
  finishKernel<T, A><<<warpBlocks(d.B * d.L * d.H), kThreads, 0, stream>>>((const T*)values, (A*)topv, indices, count, (T*)weights,
                                                                          (T*)response, d);
  return (int)cudaGetLastError();
}

template <typename T, typename A>
int backwardTyped(const void* gR, const void* gW, const void* query, const void* keys, const void* values, const int64_t* indices,
                  const void* weights, const void* alpha, const void* beta, void* gQuery, void* gK, void* gV, void* scratch,
                  const MemoryQueryDims& d, cudaStream_t stream) {
  const int64_t RH = d.B * d.L * d.H;
  if (RH > 0) {
    const unsigned blocks = (unsigned)((RH * 32 + kThreads - 1) / kThreads);
    backwardRowsKernel<T, A><<<blocks, kThreads, 0, stream>>>((const T*)gR, (const T*)gW, (const T*)query, (const T*)keys, (const T*)values,
                                                              indices, (const T*)weights, (const A*)alpha, (const A*)beta, (T*)gQuery, (A*)gK,
                                                              (A*)gV, (A*)scratch, d);
  }
  if (d.cosine) {
    const unsigned blocks = (unsigned)((d.S * d.H * 32 + kThreads - 1) / kThreads);
    cosineKeysKernel<T, A><<<blocks, kThreads, 0, stream>>>((const T*)keys, (const A*)beta, (A*)gK, d);
  }
  return (int)cudaGetLastError();
}

}  // namespace

int memoryQueryMergeChunkLaunch(bool f64, const void* scores, int64_t s0, int64_t sc, const bool* mask, const void* alpha, const void* beta,
                                void* topv, int64_t* indices, int* count, int* nonFinite, const MemoryQueryDims& d, void* stream) {
  const int64_t rows = d.B * d.L * d.H;
  if (rows == 0 || sc == 0) return 0;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (f64)
    mergeChunkKernel<double><<<warpBlocks(rows), kThreads, 0, s>>>((const double*)scores, s0, sc, mask, (const double*)alpha, (const double*)beta,
                                                                   (double*)topv, indices, count, nonFinite, d);
  else
    mergeChunkKernel<float><<<warpBlocks(rows), kThreads, 0, s>>>((const float*)scores, s0, sc, mask, (const float*)alpha, (const float*)beta,
                                                                  (float*)topv, indices, count, nonFinite, d);
  return (int)cudaGetLastError();
}

int memoryQueryFinishLaunch(MemoryQueryDtype dtype, const void* values, void* topv, int64_t* indices, const int* count, void* weights,
                            void* response, const MemoryQueryDims& d, void* stream) {
  if (d.B * d.L * d.H == 0) return 0;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case MemoryQueryDtype::F32: return finishTyped<float, float>(values, topv, indices, count, weights, response, d, s);
    case MemoryQueryDtype::F64: return finishTyped<double, double>(values, topv, indices, count, weights, response, d, s);
    case MemoryQueryDtype::F16: return finishTyped<__half, float>(values, topv, indices, count, weights, response, d, s);
    case MemoryQueryDtype::BF16: return finishTyped<__nv_bfloat16, float>(values, topv, indices, count, weights, response, d, s);
  }
  return (int)cudaErrorInvalidValue;
}

int memoryQueryBackwardLaunch(MemoryQueryDtype dtype, const void* gResponse, const void* gWeights, const void* query, const void* keys,
                              const void* values, const int64_t* indices, const void* weights, const void* alpha, const void* beta,
                              void* gQuery, void* gKeysAcc, void* gValuesAcc, void* scratch, const MemoryQueryDims& d, void* stream) {
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case MemoryQueryDtype::F32:
      return backwardTyped<float, float>(gResponse, gWeights, query, keys, values, indices, weights, alpha, beta, gQuery, gKeysAcc, gValuesAcc, scratch, d, s);
    case MemoryQueryDtype::F64:
      return backwardTyped<double, double>(gResponse, gWeights, query, keys, values, indices, weights, alpha, beta, gQuery, gKeysAcc, gValuesAcc, scratch, d, s);
    case MemoryQueryDtype::F16:
      return backwardTyped<__half, float>(gResponse, gWeights, query, keys, values, indices, weights, alpha, beta, gQuery, gKeysAcc, gValuesAcc, scratch, d, s);
    case MemoryQueryDtype::BF16:
      return backwardTyped<__nv_bfloat16, float>(gResponse, gWeights, query, keys, values, indices, weights, alpha, beta, gQuery, gKeysAcc, gValuesAcc,
                                                 scratch, d, s);
  }
  return (int)cudaErrorInvalidValue;
}

}  // namespace cuda
}  // namespace radkit
