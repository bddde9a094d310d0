// CUDA kernels of memoryQuery.
// Forward, around cuBLAS: the glue (cuda.cc) computes the raw dot products of one memory chunk for
// all rows at once ([H, B*L, Sc] in the accumulation type; Sc sized so a chunk holds 16M scores,
// never [B, L, S]); mergeChunkKernel scales and masks them and merges them into each row's
// running top-k in two passes: a fully parallel filter appends the scores above each row's current
// k-th score to a short candidate list, then one warp per (row, head) inserts them (ties go to the
// lower index, as on the CPU); a row whose list is not yet full, or whose candidates overflow,
// scans its whole chunk row instead (so the first chunk is scanned, later ones mostly filtered); finishKernel
// turns the k scores into weights and sums the selected value rows directly (no gathered copy).
// Streaming the memory through one block per 32 rows instead left most SMs idle at large S and ran
// the dot products on CUDA cores at a fraction of cuBLAS's rate (10x slower than matmul + topk).
// Backward: one warp per (row, head) recomputes the selected scores, differentiates the weighting
// and similarity, writes the query gradient, and scatters key/value gradients with atomicAdd into
// fp32 (fp64 for double) accumulators; a last pass applies the cosine normalisation to keys.
#include <cmath>
#include <cstdint>

#include "../../core/cuda_kernels.cuh"
#include "kernels.h"

namespace radkit {
namespace cuda {
namespace {

constexpr int kThreads = 256;

// (v, i) ranks before (w, j): the larger score, then the lower index (the CPU kernel's order).
template <typename A>
__device__ __forceinline__ bool ranksBefore(A v, int64_t i, A w, int64_t j) {
  return v > w || (v == w && i < j);
}

// One row's running top-k, seen by the whole warp (every member is called warp-uniformly). For
// k <= 32 lane t holds the t-th entry, so an insertion is one ballot and a shuffle; larger k keeps
// the list in memory and inserts from lane 0.
template <typename A>
struct RowTopK {
  A* tv;
  int64_t* ti;
  int64_t k;
  int lane, cnt;
  bool inLanes;
  A myv, kthV;
  int64_t myi, kthI;

  __device__ RowTopK(A* tv_, int64_t* ti_, int64_t k_, int cnt_, int lane_) : tv(tv_), ti(ti_), k(k_), lane(lane_), cnt(cnt_) {
    inLanes = k <= 32;
    myv = inLanes && lane < cnt ? tv[lane] : A(-INFINITY);
    myi = inLanes && lane < cnt ? ti[lane] : -1;
    kthV = cnt == k ? tv[k - 1] : A(-INFINITY);
    kthI = cnt == k ? ti[k - 1] : -1;
  }
  __device__ bool admits(A v, int64_t id) const { return cnt < k ? v > A(-INFINITY) : ranksBefore(v, id, kthV, kthI); }
  __device__ void insert(A vv, int64_t id) {
    if (inLanes) {
      const int pos = __popc(__ballot_sync(0xffffffffu, lane < cnt && ranksBefore(myv, myi, vv, id)));
      const A upv = __shfl_up_sync(0xffffffffu, myv, 1);
      const int64_t upi = __shfl_up_sync(0xffffffffu, myi, 1);
      if (lane > pos) myv = upv, myi = upi;
      if (lane == pos) myv = vv, myi = id;
      if (cnt < k) ++cnt;
      if (cnt == k) {
        kthV = __shfl_sync(0xffffffffu, myv, (int)k - 1);
        kthI = __shfl_sync(0xffffffffu, myi, (int)k - 1);
      }
      return;
    }
    if (lane == 0) {
      int64_t pos = cnt < k ? cnt : k - 1;
      while (pos > 0 && ranksBefore(vv, id, tv[pos - 1], ti[pos - 1])) {
        tv[pos] = tv[pos - 1];
        ti[pos] = ti[pos - 1];
        --pos;
      }
      tv[pos] = vv;
      ti[pos] = id;
      if (cnt < k) ++cnt;
      if (cnt == k) kthV = tv[k - 1], kthI = ti[k - 1];
    }
    cnt = __shfl_sync(0xffffffffu, cnt, 0);
    kthV = __shfl_sync(0xffffffffu, kthV, 0);
    kthI = __shfl_sync(0xffffffffu, kthI, 0);
  }
  // Offers one value per lane; the admitted ones are inserted in lane order.
  __device__ void offer(A v, int64_t id) {
    unsigned m = __ballot_sync(0xffffffffu, admits(v, id));
    while (m) {
      const int src = __ffs(m) - 1;
      m &= m - 1;
      const A vv = __shfl_sync(0xffffffffu, v, src);
      const int64_t ii = __shfl_sync(0xffffffffu, id, src);
      if (admits(vv, ii)) insert(vv, ii);  // uniform
    }
  }
  __device__ void save() {
    if (inLanes && lane < cnt) tv[lane] = myv, ti[lane] = myi;
  }
};

// The scaled, masked score of column c of a chunk row (-inf when masked or not finite).
template <typename A>
__device__ __forceinline__ A chunkScore(const A* row, int64_t c, int64_t s0, const bool* mrow, A a, const A* beta, int64_t H, int64_t h,
                                        int& bad) {
  A v = row[c] * a * beta[(s0 + c) * H + h];
  if (!isfinite(v)) {
    bad = 1;
    v = -INFINITY;
  }
  if (mrow && !mrow[s0 + c]) v = -INFINITY;
  return v;
}

// Pass 1 over a chunk, fully parallel: the scores above a row's gate (its k-th score before the
// chunk) are appended to the row's candidate list. Rows whose list is not yet full are skipped
// (their merge scans the chunk), and so is a list that overflows (cap entries).
template <typename A>
__global__ void __launch_bounds__(kThreads) filterChunkKernel(const A* __restrict__ scores, int64_t s0, int64_t sc, const bool* __restrict__ mask,
                                                             const A* __restrict__ alpha, const A* __restrict__ beta, const A* __restrict__ gate,
                                                             A* __restrict__ candV, int64_t* __restrict__ candI, int* __restrict__ ncand, int cap,
                                                             int* __restrict__ nonFinite, MemoryQueryDims d) {
  const int64_t BL = d.B * d.L;
  for (int64_t w = blockIdx.y; w < BL * d.H; w += gridDim.y) {
    const int64_t h = w / BL, r = w % BL, o = r * d.H + h;
    const A g = gate[o];
    if (g == A(-INFINITY)) continue;  // block-uniform
    const int64_t c = (int64_t)blockIdx.x * kThreads + threadIdx.x;
    if (c >= sc) continue;
    int bad = 0;
    const A v = chunkScore(scores + w * sc, c, s0, mask ? mask + (r / d.L) * d.S : nullptr, alpha[o], beta, d.H, h, bad);
    if (bad) atomicOr(nonFinite, 1);
    if (v > g) {
      const int slot = atomicAdd(&ncand[o], 1);
      if (slot < cap) candV[o * cap + slot] = v, candI[o * cap + slot] = s0 + c;
    }
  }
}

// Pass 2, one warp per (row, head): inserts the row's candidates (any order: the ranking breaks
// ties by index), or scans the whole chunk row when the list was not full or the candidates
// overflowed. Then it sets the gate for the next chunk.
template <typename A>
__global__ void __launch_bounds__(kThreads) mergeChunkKernel(const A* __restrict__ scores, int64_t s0, int64_t sc, const bool* __restrict__ mask,
                                                            const A* __restrict__ alpha, const A* __restrict__ beta, A* __restrict__ topv,
                                                            int64_t* __restrict__ topi, int* __restrict__ count, A* __restrict__ gate,
                                                            const A* __restrict__ candV, const int64_t* __restrict__ candI,
                                                            int* __restrict__ ncand, int cap, int* __restrict__ nonFinite, MemoryQueryDims d) {
  const int lane = threadIdx.x & 31;
  const int64_t w = ((int64_t)blockIdx.x * kThreads + threadIdx.x) / 32;  // the scores' row: h * B*L + r
  const int64_t BL = d.B * d.L;
  if (w >= BL * d.H) return;  // warp-uniform
  const int64_t h = w / BL, r = w % BL, k = d.k;
  const int64_t o = r * d.H + h;
  RowTopK<A> list(topv + o * k, topi + o * k, k, count[o], lane);
  const int n = ncand[o];
  if (gate[o] != A(-INFINITY) && n <= cap) {
    for (int t0 = 0; t0 < n; t0 += 32) {
      const int t = t0 + lane;
      list.offer(t < n ? candV[o * cap + t] : A(-INFINITY), t < n ? candI[o * cap + t] : -1);
    }
  } else {
    const A* row = scores + w * sc;
    const bool* mrow = mask ? mask + (r / d.L) * d.S : nullptr;
    const A a = alpha[o];
    int bad = 0;
    // kUnroll loads in flight per lane before the insertions: one warp per row would otherwise
    // wait on one load at a time.
    constexpr int kUnroll = 8;
    for (int64_t c0 = 0; c0 < sc; c0 += 32 * kUnroll) {
      A vs[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t c = c0 + u * 32 + lane;
        vs[u] = c < sc ? chunkScore(row, c, s0, mrow, a, beta, d.H, h, bad) : A(-INFINITY);
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) list.offer(vs[u], s0 + c0 + u * 32 + lane);
    }
    if (__any_sync(0xffffffffu, bad) && lane == 0) atomicOr(nonFinite, 1);
  }
  list.save();
  if (lane == 0) {
    count[o] = list.cnt;
    ncand[o] = 0;
    gate[o] = list.cnt == k ? list.kthV : A(-INFINITY);
  }
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
      weights[o * k + t] = fromAcc<T>(tv[t]);
    } else {
      weights[o * k + t] = fromAcc<T>(A(0));
      ti[t] = -1;
    }
  }
  T* out = response + r * d.Dv + h * dvh;
  for (int64_t j = lane; j < dvh; j += 32) {
    A acc = 0;
    for (int t = 0; t < c; ++t) acc += tv[t] * toAcc(values[ti[t] * d.Dv + h * dvh + j]);
    out[j] = fromAcc<T>(acc);
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
    gqrow[x] = fromAcc<T>(acc);
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

template <typename T, typename A>
void finishTyped(const void* values, void* topv, int64_t* indices, const int* count, void* weights, void* response, const MemoryQueryDims& d,
                 cudaStream_t stream) {
  finishKernel<T, A><<<warpGrid(d.B * d.L * d.H, kThreads), kThreads, 0, stream>>>((const T*)values, (A*)topv, indices, count, (T*)weights,
                                                                                  (T*)response, d);
}

template <typename T, typename A>
void backwardTyped(const void* gR, const void* gW, const void* query, const void* keys, const void* values, const int64_t* indices,
                   const void* weights, const void* alpha, const void* beta, void* gQuery, void* gK, void* gV, void* scratch,
                   const MemoryQueryDims& d, cudaStream_t stream) {
  const int64_t RH = d.B * d.L * d.H;
  if (RH > 0) {
    backwardRowsKernel<T, A><<<warpGrid(RH, kThreads), kThreads, 0, stream>>>((const T*)gR, (const T*)gW, (const T*)query, (const T*)keys, (const T*)values,
                                                              indices, (const T*)weights, (const A*)alpha, (const A*)beta, (T*)gQuery, (A*)gK,
                                                              (A*)gV, (A*)scratch, d);
  }
  if (d.cosine) cosineKeysKernel<T, A><<<warpGrid(d.S * d.H, kThreads), kThreads, 0, stream>>>((const T*)keys, (const A*)beta, (A*)gK, d);
}

template <typename A>
void mergeChunkTyped(const A* scores, int64_t s0, int64_t sc, const bool* mask, const A* alpha, const A* beta, A* topv, int64_t* indices,
                     int* count, const MemoryQueryMergeScratch& m, int* nonFinite, const MemoryQueryDims& d, cudaStream_t s) {
  const int64_t rows = d.B * d.L * d.H;
  if (s0 > 0) {  // before the first chunk every gate is -inf: nothing to filter
    const dim3 grid((unsigned)((sc + kThreads - 1) / kThreads), (unsigned)(rows < 65535 ? rows : 65535));
    filterChunkKernel<A><<<grid, kThreads, 0, s>>>(scores, s0, sc, mask, alpha, beta, (const A*)m.gate, (A*)m.candV, m.candI, m.ncand, m.cap,
                                                    nonFinite, d);
  }
  mergeChunkKernel<A><<<warpGrid(rows, kThreads), kThreads, 0, s>>>(scores, s0, sc, mask, alpha, beta, topv, indices, count, (A*)m.gate,
                                                                    (const A*)m.candV, m.candI, m.ncand, m.cap, nonFinite, d);
}

}  // namespace

int memoryQueryMergeChunkLaunch(CudaDtype acc, const void* scores, int64_t s0, int64_t sc, const bool* mask, const void* alpha, const void* beta,
                                void* topv, int64_t* indices, int* count, const MemoryQueryMergeScratch& m, int* nonFinite,
                                const MemoryQueryDims& d, void* stream) {
  if (d.B * d.L * d.H == 0 || sc == 0) return 0;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (acc == CudaDtype::F64)
    mergeChunkTyped<double>((const double*)scores, s0, sc, mask, (const double*)alpha, (const double*)beta, (double*)topv, indices, count, m,
                            nonFinite, d, s);
  else
    mergeChunkTyped<float>((const float*)scores, s0, sc, mask, (const float*)alpha, (const float*)beta, (float*)topv, indices, count, m,
                           nonFinite, d, s);
  return (int)cudaGetLastError();
}

int memoryQueryFinishLaunch(CudaDtype dtype, const void* values, void* topv, int64_t* indices, const int* count, void* weights,
                            void* response, const MemoryQueryDims& d, void* stream) {
  if (d.B * d.L * d.H == 0) return 0;
  return byDtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    finishTyped<T, typename Acc<T>::type>(values, topv, indices, count, weights, response, d, static_cast<cudaStream_t>(stream));
  });
}

int memoryQueryBackwardLaunch(CudaDtype dtype, const void* gResponse, const void* gWeights, const void* query, const void* keys,
                              const void* values, const int64_t* indices, const void* weights, const void* alpha, const void* beta,
                              void* gQuery, void* gKeysAcc, void* gValuesAcc, void* scratch, const MemoryQueryDims& d, void* stream) {
  return byDtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    backwardTyped<T, typename Acc<T>::type>(gResponse, gWeights, query, keys, values, indices, weights, alpha, beta, gQuery, gKeysAcc,
                                            gValuesAcc, scratch, d, static_cast<cudaStream_t>(stream));
  });
}

}  // namespace cuda
}  // namespace radkit
