// Plain C++ shared by the kernels of adaptivePatchSample (no ATen: cuda.cu compiles with nvcc alone):
// the sample-point geometry of the CPU and CUDA kernels, and the raw-pointer CUDA launchers.
#pragma once
#include <cmath>

#include "../../core/cuda_dtype.h"

#if defined(__CUDACC__)
#define RADKIT_HD __host__ __device__ __forceinline__
#else
#define RADKIT_HD inline
#endif

namespace radkit {
namespace apsample {

// One sample point: the four corner pixels (row-major flat indices into an H x W plane, -1 when the
// corner lies outside the map) and their bilinear weights, plus the fractional parts needed by the
// position gradient. Identical arithmetic to grid_sample(align_corners=False, padding zeros) given the
// pixel-index coordinate ix = x - 0.5.
template <typename A>
struct Point {
  long long idx[4];  // (y0,x0) (y0,x1) (y1,x0) (y1,x1)
  A w[4];
  A tx, ty;
  bool any;  // false: every corner outside (value 0, gradient 0)
};

// Coordinates of point (u, v) of an m x m grid inside box (cx, cy, w, h), as pixel-index coordinates.
template <typename A>
RADKIT_HD void pointCoords(A cx, A cy, A bw, A bh, int u, int v, int m, A* ix, A* iy) {
  *ix = cx - bw * A(0.5) + (A(u) + A(0.5)) * bw / A(m) - A(0.5);
  *iy = cy - bh * A(0.5) + (A(v) + A(0.5)) * bh / A(m) - A(0.5);
}

// d x_u / d w for point u of m: -1/2 + (u + 0.5) / m.
template <typename A>
RADKIT_HD A sizeCoef(int u, int m) {
  return A(-0.5) + (A(u) + A(0.5)) / A(m);
}

template <typename A>
RADKIT_HD Point<A> makePoint(A ix, A iy, long long H, long long W) {
  Point<A> p;
  // Outside [-1, W) x [-1, H) (or NaN) no corner can be inside; also keeps floor() in int range.
  p.any = (ix >= A(-1) && ix < A(W) && iy >= A(-1) && iy < A(H));
  if (!p.any) {
    for (int i = 0; i < 4; ++i) { p.idx[i] = -1; p.w[i] = A(0); }
    p.tx = p.ty = A(0);
    return p;
  }
#if defined(__CUDA_ARCH__)
  A fx = floor(ix), fy = floor(iy);
#else
  A fx = std::floor(ix), fy = std::floor(iy);
#endif
  long long x0 = (long long)fx, y0 = (long long)fy;
  long long x1 = x0 + 1, y1 = y0 + 1;
  A tx = ix - fx, ty = iy - fy;
  p.tx = tx;
  p.ty = ty;
  bool vx0 = x0 >= 0 && x0 < W, vx1 = x1 >= 0 && x1 < W;
  bool vy0 = y0 >= 0 && y0 < H, vy1 = y1 >= 0 && y1 < H;
  p.idx[0] = (vy0 && vx0) ? y0 * W + x0 : -1;
  p.idx[1] = (vy0 && vx1) ? y0 * W + x1 : -1;
  p.idx[2] = (vy1 && vx0) ? y1 * W + x0 : -1;
  p.idx[3] = (vy1 && vx1) ? y1 * W + x1 : -1;
  p.w[0] = (A(1) - tx) * (A(1) - ty);
  p.w[1] = tx * (A(1) - ty);
  p.w[2] = (A(1) - tx) * ty;
  p.w[3] = tx * ty;
  return p;
}

}  // namespace apsample

// ---- CUDA launchers (cuda.cu). Tensors are contiguous; features NCHW. Each returns the cudaError_t
// of its launch as an int (0 = success).
namespace cuda {

int adaptivePatchForwardLaunch(CudaDtype dtype, const void* feat, const void* boxes, void* out, long long B, long long C,
                               long long H, long long W, long long P, int m, void* stream);
// gboxes has the dtype of the boxes; one block per box reduces its m*m points (no atomics).
int adaptivePatchBoxGradLaunch(CudaDtype dtype, const void* gout, const void* feat, const void* boxes, void* gboxes,
                               long long B, long long C, long long H, long long W, long long P, int m, void* stream);
// gfeat accumulates in float (float32/16/bf16 inputs) or double (float64), zero-initialised by the caller.
int adaptivePatchFeatureGradLaunch(CudaDtype dtype, const void* gout, const void* boxes, void* gfeat, long long B,
                                   long long C, long long H, long long W, long long P, int m, void* stream);

}  // namespace cuda
}  // namespace radkit
