// CUDA kernel of sinkhorn: one problem per block. When -C/eps fits in shared memory (with the
// potentials), the whole problem stays on chip for all iterations; otherwise the cost is re-read
// from global memory (L2) each pass. Log-domain updates as the CPU kernel (cpu.cc):
// rows by warps (shuffle reductions), columns by thread partitions; fixed reduction orders, so a
// problem's result is reproducible run to run. float16/bfloat16 accumulate in fp32.
#include <cmath>
#include <cstdint>

#include "../../core/cuda_kernels.cuh"
#include "kernels.h"

namespace radkit {
namespace cuda {
namespace {

constexpr int kThreads = 256;

// Deterministic block sum (fixed tree); every thread gets the result.
template <typename A>
__device__ A blockSum(A v, A* red) {
  red[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
    __syncthreads();
  }
  A r = red[0];
  __syncthreads();
  return r;
}

// -C_ij / eps, from shared memory or recomputed from global memory.
template <typename T, typename A, bool OnChip>
struct ScaledCost {
  const A* cs;
  const T* cost;
  int N;
  A negInvEps;
  __device__ __forceinline__ A operator()(int i, int j) const {
    if (OnChip) return cs[i * N + j];
    return toAcc(cost[i * N + j]) * negInvEps;
  }
};

// out_c = lbase_c - LSE_r(vec_r + K(r, c)) over an R x C index space, where K(r, c) is either
// K(i, j) (columns: r = i) or K(j, i) (rows). Rows are done by warps when `byWarp`, columns by
// thread partitions otherwise.
template <typename A, typename KF>
__device__ void lseRows(KF K, const A* vecCol, const A* lbase, int M, int N, A* out) {
  // out_i = lbase_i - LSE_j(vecCol_j + K(i, j)), one warp per row.
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  for (int i = warp; i < M; i += nw) {
    A mx = -INFINITY;
    for (int j = lane; j < N; j += 32) mx = fmax(mx, vecCol[j] + K(i, j));
    mx = warpMax(mx);
    A s = 0;
    for (int j = lane; j < N; j += 32) s += dexp(vecCol[j] + K(i, j) - mx);
    s = warpSum(s);
    if (lane == 0) out[i] = lbase[i] - mx - dlog(s);
  }
}

template <typename A, typename KF>
__device__ void lseCols(KF K, const A* vecRow, const A* lbase, int M, int N, A* out, A* pm, A* ps) {
  // out_j = lbase_j - LSE_i(vecRow_i + K(i, j)); P partitions of the rows per column.
  for (int j0 = 0; j0 < N; j0 += blockDim.x) {
    const int cols = min(N - j0, (int)blockDim.x);
    const int P = blockDim.x / cols;
    const int jj = threadIdx.x % cols, p = threadIdx.x / cols, j = j0 + jj;
    const bool active = p < P;
    A mx = -INFINITY;
    if (active)
      for (int i = p; i < M; i += P) mx = fmax(mx, vecRow[i] + K(i, j));
    if (active) pm[p * cols + jj] = mx;
    __syncthreads();
    A cm = -INFINITY;
    if (active)
      for (int q = 0; q < P; ++q) cm = fmax(cm, pm[q * cols + jj]);
    A s = 0;
    if (active)
      for (int i = p; i < M; i += P) s += dexp(vecRow[i] + K(i, j) - cm);
    if (active) ps[p * cols + jj] = s;
    __syncthreads();
    if (active && p == 0) {
      A t = 0;
      for (int q = 0; q < P; ++q) t += ps[q * cols + jj];
      out[j] = lbase[j] - cm - dlog(t);
    }
    __syncthreads();
  }
}

template <typename T, typename A, bool OnChip>
__global__ void __launch_bounds__(kThreads) sinkhornKernel(const T* __restrict__ cost, const A* __restrict__ a, const A* __restrict__ b,
                                                          T* __restrict__ plan, A* __restrict__ distance, int64_t* __restrict__ iters,
                                                          A* __restrict__ err, int M, int N, A negInvEps, int64_t maxIter, double tol) {
  extern __shared__ __align__(16) unsigned char smemRaw[];
  A* sm = reinterpret_cast<A*>(smemRaw);
  A* F = sm;                 // [M]
  A* Fn = F + M;             // [M]
  A* G = Fn + M;             // [N]
  A* la = G + N;             // [M]
  A* lb = la + M;            // [N]
  A* red = lb + N;           // [blockDim]
  A* pm = red + blockDim.x;  // [blockDim]
  A* ps = pm + blockDim.x;   // [blockDim]
  A* cs = ps + blockDim.x;   // [M * N] when on chip
  const int64_t p = blockIdx.x;
  const T* C = cost + p * (int64_t)M * N;
  const A* ap = a + p * M;
  const A* bp = b + p * N;
  for (int i = threadIdx.x; i < M; i += blockDim.x) {
    F[i] = 0;
    la[i] = dlog(ap[i]);
  }
  for (int j = threadIdx.x; j < N; j += blockDim.x) {
    G[j] = 0;
    lb[j] = dlog(bp[j]);
  }
  if (OnChip)
    for (int e = threadIdx.x; e < M * N; e += blockDim.x) cs[e] = toAcc(C[e]) * negInvEps;
  __syncthreads();
  ScaledCost<T, A, OnChip> K{cs, C, N, negInvEps};
  int64_t it = 0;
  for (; it < maxIter; ++it) {
    lseRows<A>(K, G, la, M, N, Fn);
    __syncthreads();
    if (it > 0 && tol > 0) {
      A e = 0;
      for (int i = threadIdx.x; i < M; i += blockDim.x)
        if (ap[i] > 0) e += ap[i] * fabs(expm1(F[i] - Fn[i]));
      e = blockSum<A>(e, red);
      if ((double)e < tol) break;  // uniform: every thread holds the same sum
    }
    for (int i = threadIdx.x; i < M; i += blockDim.x) F[i] = Fn[i];
    __syncthreads();
    lseCols<A>(K, F, lb, M, N, G, pm, ps);
    __syncthreads();
  }
  // Plan, distance, row error (warps), column error (threads per column).
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  A dist = 0, rowErr = 0;
  T* P = plan + p * (int64_t)M * N;
  for (int i = warp; i < M; i += nw) {
    A rs = 0;
    for (int j = lane; j < N; j += 32) {
      const A v = dexp(F[i] + G[j] + K(i, j));
      P[i * N + j] = fromAcc<T>(v);
      rs += v;
      dist += v * toAcc(C[i * N + j]);
    }
    rs = warpSum(rs);
    if (lane == 0) rowErr += fabs(rs - ap[i]);
  }
  A colErr = 0;
  for (int j = threadIdx.x; j < N; j += blockDim.x) {
    A cs2 = 0;
    for (int i = 0; i < M; ++i) cs2 += dexp(F[i] + G[j] + K(i, j));
    colErr += fabs(cs2 - bp[j]);
  }
  dist = blockSum<A>(dist, red);
  const A e = blockSum<A>(rowErr + colErr, red);
  if (threadIdx.x == 0) {
    distance[p] = dist;
    err[p] = e;
    iters[p] = it;
  }
}

template <typename T, typename A>
void launchTyped(const void* cost, const void* a, const void* b, void* plan, void* distance, int64_t* iters, void* err, int64_t B, int64_t M,
                 int64_t N, double eps, int64_t maxIter, double tol, cudaStream_t stream) {
  int dev = 0, optin = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  const size_t base = sizeof(A) * (3 * M + 2 * N + 3 * kThreads + 0) + 16;
  const size_t onChip = base + sizeof(A) * M * N;
  const A nie = static_cast<A>(-1.0 / eps);
  if (onChip <= static_cast<size_t>(optin)) {
    auto kern = sinkhornKernel<T, A, true>;
    cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)onChip);
    kern<<<(unsigned)B, kThreads, onChip, stream>>>((const T*)cost, (const A*)a, (const A*)b, (T*)plan, (A*)distance, iters, (A*)err, (int)M,
                                                     (int)N, nie, maxIter, tol);
  } else {
    auto kern = sinkhornKernel<T, A, false>;
    cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)base);
    kern<<<(unsigned)B, kThreads, base, stream>>>((const T*)cost, (const A*)a, (const A*)b, (T*)plan, (A*)distance, iters, (A*)err, (int)M,
                                                   (int)N, nie, maxIter, tol);
  }
}

}  // namespace

int sinkhornLaunch(CudaDtype dtype, const void* cost, const void* a, const void* b, void* plan, void* distance, int64_t* iterations,
                   void* err, int64_t B, int64_t M, int64_t N, double epsilon, int64_t maxIterations, double tolerance, void* stream) {
  if (B == 0) return 0;
  return byDtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    launchTyped<T, typename Acc<T>::type>(cost, a, b, plan, distance, iterations, err, B, M, N, epsilon, maxIterations, tolerance,
                                          static_cast<cudaStream_t>(stream));
  });
}

}  // namespace cuda
}  // namespace radkit
