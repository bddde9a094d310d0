// CUDA kernels of adaptivePatchSample (raw pointers; compiles with nvcc alone).
//   forward:   one thread per output element (b, p, c, v, u).
//   boxes:     one block per box; threads stride over (c, point) and the block reduces the four box
//              partial derivatives (d/dcx, d/dcy, d/dw, d/dh) in shared memory: no atomics.
//   features:  one thread per (b, p, c, point) scattering its four weighted corners with atomicAdd
//              into a float/double accumulator.
#include "../../core/cuda_kernels.cuh"
#include "kernels.h"

namespace radkit {
namespace cuda {
namespace {

template <typename T, typename A>
__device__ __forceinline__ apsample::Point<A> pointAt(const T* boxes, long long bp, int u, int v, int m, long long H,
                                                      long long W) {
  A ix, iy;
  apsample::pointCoords<A>(toAcc(boxes[bp * 4 + 0]), toAcc(boxes[bp * 4 + 1]), toAcc(boxes[bp * 4 + 2]),
                           toAcc(boxes[bp * 4 + 3]), u, v, m, &ix, &iy);
  return apsample::makePoint<A>(ix, iy, H, W);
}

template <typename T>
__global__ void forwardKernel(const T* __restrict__ feat, const T* __restrict__ boxes, T* __restrict__ out, long long B,
                              long long C, long long H, long long W, long long P, int m) {
  using A = typename Acc<T>::type;
  const long long mm = (long long)m * m;
  const long long total = B * P * C * mm;
  RADKIT_GRID_STRIDE(e, total) {
    const long long k = e % mm;
    const long long c = (e / mm) % C;
    const long long bp = e / (mm * C);
    const long long b = bp / P;
    apsample::Point<A> pt = pointAt<T, A>(boxes, bp, int(k % m), int(k / m), m, H, W);
    const T* plane = feat + (b * C + c) * H * W;
    A s = A(0);
    for (int q = 0; q < 4; ++q)
      if (pt.idx[q] >= 0) s += pt.w[q] * toAcc(plane[pt.idx[q]]);
    out[e] = fromAcc<T>(s);
  }
}

template <typename T>
__global__ void boxKernel(const T* __restrict__ gout, const T* __restrict__ feat, const T* __restrict__ boxes,
                          T* __restrict__ gboxes, long long B, long long C, long long H, long long W, long long P, int m) {
  using A = typename Acc<T>::type;
  extern __shared__ unsigned char smem[];
  A* red = reinterpret_cast<A*>(smem);  // [4][blockDim.x]
  const long long bp = blockIdx.x;
  const long long b = bp / P;
  const long long mm = (long long)m * m;
  A s[4] = {A(0), A(0), A(0), A(0)};
  for (long long e = threadIdx.x; e < C * mm; e += blockDim.x) {
    const long long k = e % mm, c = e / mm;
    const int u = int(k % m), v = int(k / m);
    apsample::Point<A> pt = pointAt<T, A>(boxes, bp, u, v, m, H, W);
    if (!pt.any) continue;
    const T* plane = feat + (b * C + c) * H * W;
    A f[4];
    for (int q = 0; q < 4; ++q) f[q] = pt.idx[q] >= 0 ? toAcc(plane[pt.idx[q]]) : A(0);
    const A g = toAcc(gout[(bp * C + c) * mm + k]);
    const A gx = g * ((A(1) - pt.ty) * (f[1] - f[0]) + pt.ty * (f[3] - f[2]));
    const A gy = g * ((A(1) - pt.tx) * (f[2] - f[0]) + pt.tx * (f[3] - f[1]));
    s[0] += gx;
    s[1] += gy;
    s[2] += gx * apsample::sizeCoef<A>(u, m);
    s[3] += gy * apsample::sizeCoef<A>(v, m);
  }
  for (int q = 0; q < 4; ++q) red[q * blockDim.x + threadIdx.x] = s[q];
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride)
      for (int q = 0; q < 4; ++q) red[q * blockDim.x + threadIdx.x] += red[q * blockDim.x + threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x < 4) {
    const A r = red[threadIdx.x * blockDim.x];
    gboxes[bp * 4 + threadIdx.x] = fromAcc<T>(r);
  }
}

template <typename T>
__global__ void featureKernel(const T* __restrict__ gout, const T* __restrict__ boxes,
                              typename Acc<T>::type* __restrict__ gfeat, long long B, long long C, long long H,
                              long long W, long long P, int m) {
  using A = typename Acc<T>::type;
  const long long mm = (long long)m * m;
  const long long total = B * P * C * mm;
  RADKIT_GRID_STRIDE(e, total) {
    const long long k = e % mm;
    const long long c = (e / mm) % C;
    const long long bp = e / (mm * C);
    const long long b = bp / P;
    apsample::Point<A> pt = pointAt<T, A>(boxes, bp, int(k % m), int(k / m), m, H, W);
    if (!pt.any) continue;
    const A g = toAcc(gout[e]);
    A* plane = gfeat + (b * C + c) * H * W;
    for (int q = 0; q < 4; ++q)
      if (pt.idx[q] >= 0) atomicAdd(plane + pt.idx[q], pt.w[q] * g);
  }
}

}  // namespace

int adaptivePatchForwardLaunch(CudaDtype dtype, const void* feat, const void* boxes, void* out, long long B, long long C,
                               long long H, long long W, long long P, int m, void* stream) {
  const long long total = B * P * C * (long long)m * m;
  if (total == 0) return 0;
  return byDtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    forwardKernel<T><<<gridFor(total, 256), 256, 0, (cudaStream_t)stream>>>(
        (const T*)feat, (const T*)boxes, (T*)out, B, C, H, W, P, m);
  });
}

int adaptivePatchBoxGradLaunch(CudaDtype dtype, const void* gout, const void* feat, const void* boxes, void* gboxes,
                               long long B, long long C, long long H, long long W, long long P, int m, void* stream) {
  if (B * P == 0) return 0;
  return byDtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    using A = typename Acc<T>::type;
    const int threads = 128;
    boxKernel<T><<<(unsigned)(B * P), threads, 4 * threads * sizeof(A), (cudaStream_t)stream>>>(
        (const T*)gout, (const T*)feat, (const T*)boxes, (T*)gboxes, B, C, H, W, P, m);
  });
}

int adaptivePatchFeatureGradLaunch(CudaDtype dtype, const void* gout, const void* boxes, void* gfeat, long long B,
                                   long long C, long long H, long long W, long long P, int m, void* stream) {
  const long long total = B * P * C * (long long)m * m;
  if (total == 0) return 0;
  return byDtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    using A = typename Acc<T>::type;
    featureKernel<T><<<gridFor(total, 256), 256, 0, (cudaStream_t)stream>>>((const T*)gout, (const T*)boxes, (A*)gfeat, B, C,
                                                                            H, W, P, m);
  });
}

}  // namespace cuda
}  // namespace radkit
