// CPU kernels of adaptivePatchSample, on the NCHW layout as given (no layout copy: on a CPU where
// fresh large buffers are expensive a channels-last copy of the features costs more than it saves).
// For every box the m*m sample points are decoded once into a small table (four corner offsets and
// four bilinear weights per point) that is reused for every channel.
//   forward:        parallel over (b, p); writes out[b, p, :, :, :] contiguously.
//   grad boxes:     parallel over (b, p); the m*m points of a box are reduced in the task (no atomics).
//   grad features:  parallel over (b, channel block); each task owns its feature-gradient planes and
//                   visits boxes and points in a fixed order, so results are bit-identical across runs
//                   and thread counts.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "adaptive_patch.h"
#include "kernels.h"

namespace radkit {
namespace ops {
namespace detail {
namespace {

using apsample::Point;

// Large outputs (the [B, P, C, m, m] samples, the feature gradient) are written once, right after
// allocation, so their cost can be dominated by first-touch page faults. On Linux, ask for
// transparent huge pages on fresh buffers of 4 MB or more before the first write (the same policy
// recent LibTorch versions apply to large CPU allocations). Only a hint: results do not change.
void hugePageHint(const at::Tensor& t) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const size_t bytes = t.nbytes();
  if (bytes < (size_t(4) << 20)) return;
  const uintptr_t p = reinterpret_cast<uintptr_t>(t.data_ptr()), page = 4096;
  const uintptr_t s = (p + page - 1) & ~(page - 1), e = (p + bytes) & ~(page - 1);
  if (e > s) (void)madvise(reinterpret_cast<void*>(s), e - s, MADV_HUGEPAGE);
#else
  (void)t;
#endif
}

template <typename T>
Point<T> pointOf(const T* box, int u, int v, int m, int64_t H, int64_t W) {
  T ix, iy;
  apsample::pointCoords<T>(box[0], box[1], box[2], box[3], u, v, m, &ix, &iy);
  return apsample::makePoint<T>(ix, iy, H, W);
}

// Decodes the m*m points of one box: corner offsets (0 with weight 0 when outside) and weights.
template <typename T>
struct BoxTable {
  std::vector<int64_t> idx;  // [mm][4]
  std::vector<T> w;          // [mm][4]
  std::vector<T> tx, ty;     // [mm]
  std::vector<T> in;         // [mm][4]: 1 when the corner is inside the map
  std::vector<char> any;     // [mm]
  explicit BoxTable(int64_t mm) : idx(mm * 4), w(mm * 4), tx(mm), ty(mm), in(mm * 4), any(mm) {}
  void fill(const T* box, int m, int64_t H, int64_t W) {
    for (int v = 0; v < m; ++v)
      for (int u = 0; u < m; ++u) {
        const int64_t k = int64_t(v) * m + u;
        Point<T> pt = pointOf(box, u, v, m, H, W);
        for (int q = 0; q < 4; ++q) {
          const bool in = pt.idx[q] >= 0;
          idx[k * 4 + q] = in ? pt.idx[q] : 0;
          w[k * 4 + q] = in ? pt.w[q] : T(0);
          this->in[k * 4 + q] = in ? T(1) : T(0);
        }
        tx[k] = pt.tx;
        ty[k] = pt.ty;
        any[k] = pt.any;
      }
  }
};

template <typename T>
void forwardKernel(const T* feat, const T* boxes, T* out, int64_t B, int64_t C, int64_t H, int64_t W, int64_t P, int m) {
  const int64_t mm = int64_t(m) * m, HW = H * W;
  at::parallel_for(0, B * P, 8, [&](int64_t begin, int64_t end) {
    BoxTable<T> t(mm);
    for (int64_t bp = begin; bp < end; ++bp) {
      const int64_t b = bp / P;
      t.fill(boxes + bp * 4, m, H, W);
      const T* fb = feat + b * C * HW;
      T* o = out + bp * C * mm;
      for (int64_t c = 0; c < C; ++c) {
        const T* plane = fb + c * HW;
        for (int64_t k = 0; k < mm; ++k) {
          const int64_t* i4 = &t.idx[k * 4];
          const T* w4 = &t.w[k * 4];
          o[c * mm + k] = w4[0] * plane[i4[0]] + w4[1] * plane[i4[1]] + w4[2] * plane[i4[2]] + w4[3] * plane[i4[3]];
        }
      }
    }
  });
}

template <typename T>
void boxGradKernel(const T* gout, const T* feat, const T* boxes, T* gboxes, int64_t B, int64_t C, int64_t H, int64_t W,
                   int64_t P, int m) {
  using acc_t = double;
  const int64_t mm = int64_t(m) * m, HW = H * W;
  at::parallel_for(0, B * P, 8, [&](int64_t begin, int64_t end) {
    BoxTable<T> t(mm);
    std::vector<T> gx(mm), gy(mm);
    for (int64_t bp = begin; bp < end; ++bp) {
      const int64_t b = bp / P;
      t.fill(boxes + bp * 4, m, H, W);
      std::fill(gx.begin(), gx.end(), T(0));
      std::fill(gy.begin(), gy.end(), T(0));
      const T* fb = feat + b * C * HW;
      const T* g = gout + bp * C * mm;
      for (int64_t c = 0; c < C; ++c) {
        const T* plane = fb + c * HW;
        for (int64_t k = 0; k < mm; ++k) {
          if (!t.any[k]) continue;
          const int64_t* i4 = &t.idx[k * 4];
          const T* in4 = &t.in[k * 4];
          const T gk = g[c * mm + k];
          const T v0 = in4[0] * plane[i4[0]], v1 = in4[1] * plane[i4[1]];
          const T v2 = in4[2] * plane[i4[2]], v3 = in4[3] * plane[i4[3]];
          gx[k] += gk * ((T(1) - t.ty[k]) * (v1 - v0) + t.ty[k] * (v3 - v2));
          gy[k] += gk * ((T(1) - t.tx[k]) * (v2 - v0) + t.tx[k] * (v3 - v1));
        }
      }
      acc_t dcx = 0, dcy = 0, dw = 0, dh = 0;
      for (int v = 0; v < m; ++v)
        for (int u = 0; u < m; ++u) {
          const int64_t k = int64_t(v) * m + u;
          dcx += gx[k];
          dcy += gy[k];
          dw += acc_t(gx[k]) * apsample::sizeCoef<acc_t>(u, m);
          dh += acc_t(gy[k]) * apsample::sizeCoef<acc_t>(v, m);
        }
      T* gb = gboxes + bp * 4;
      gb[0] = T(dcx);
      gb[1] = T(dcy);
      gb[2] = T(dw);
      gb[3] = T(dh);
    }
  });
}
template <typename T>
void featureGradKernel(const T* gout, const T* boxes, T* gfeat, int64_t B, int64_t C, int64_t H, int64_t W, int64_t P,
                       int m) {
  const int64_t mm = int64_t(m) * m, HW = H * W;
  // Channel blocks give parallelism when B is small; every block decodes the boxes of its image once.
  const int64_t threads = at::get_num_threads();
  const int64_t nblocks = std::max<int64_t>(1, std::min<int64_t>(C, (2 * threads + B - 1) / B));
  const int64_t block = (C + nblocks - 1) / nblocks;
  at::parallel_for(0, B * nblocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> idx(P * mm * 4);
    std::vector<T> w(P * mm * 4);
    BoxTable<T> t(mm);
    int64_t decoded = -1;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / nblocks;
      const int64_t c0 = (task % nblocks) * block, c1 = std::min(C, c0 + block);
      if (decoded != b) {
        for (int64_t p = 0; p < P; ++p) {
          t.fill(boxes + (b * P + p) * 4, m, H, W);
          std::copy(t.idx.begin(), t.idx.end(), idx.begin() + p * mm * 4);
          std::copy(t.w.begin(), t.w.end(), w.begin() + p * mm * 4);
        }
        decoded = b;
      }
      for (int64_t c = c0; c < c1; ++c) {
        T* plane = gfeat + (b * C + c) * HW;
        for (int64_t p = 0; p < P; ++p) {
          const T* g = gout + ((b * P + p) * C + c) * mm;
          const int64_t* i4 = idx.data() + p * mm * 4;
          const T* w4 = w.data() + p * mm * 4;
          for (int64_t k = 0; k < mm; ++k) {
            const T gk = g[k];
            // outside corners have offset 0 and weight 0: adding 0 is exact
            plane[i4[k * 4 + 0]] += w4[k * 4 + 0] * gk;
            plane[i4[k * 4 + 1]] += w4[k * 4 + 1] * gk;
            plane[i4[k * 4 + 2]] += w4[k * 4 + 2] * gk;
            plane[i4[k * 4 + 3]] += w4[k * 4 + 3] * gk;
          }
        }
      }
    }
  });
}

}  // namespace

at::Tensor adaptive_patch_forward_cpu(const at::Tensor& features, const at::Tensor& boxes, int64_t points) {
  const int64_t B = features.size(0), C = features.size(1), H = features.size(2), W = features.size(3);
  const int64_t P = boxes.size(1);
  at::Tensor feat = features.contiguous();
  at::Tensor bx = boxes.contiguous();
  at::Tensor out = at::empty({B, P, C, points, points}, features.options());
  if (out.numel() == 0) return out;
  if (H == 0 || W == 0) return out.zero_();  // an empty map: every sample is padding
  hugePageHint(out);
  AT_DISPATCH_FLOATING_TYPES(features.scalar_type(), "adaptivePatchSample", [&] {
    forwardKernel<scalar_t>(feat.data_ptr<scalar_t>(), bx.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), B, C, H, W, P,
                            static_cast<int>(points));
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> adaptive_patch_backward_cpu(const at::Tensor& grad_out, const at::Tensor& features,
                                                               const at::Tensor& boxes, int64_t points,
                                                               bool need_features, bool need_boxes) {
  const int64_t B = features.size(0), C = features.size(1), H = features.size(2), W = features.size(3);
  const int64_t P = boxes.size(1);
  at::Tensor g = grad_out.contiguous();
  at::Tensor bx = boxes.contiguous();
  at::Tensor gfeat, gboxes;
  if (need_features) {
    gfeat = at::empty({B, C, H, W}, features.options());
    hugePageHint(gfeat);
    gfeat.zero_();
  }
  if (need_boxes) gboxes = at::zeros_like(bx);
  if (g.numel() == 0 || H == 0 || W == 0) return {gfeat, gboxes};
  AT_DISPATCH_FLOATING_TYPES(features.scalar_type(), "adaptivePatchSample.backward", [&] {
    if (need_boxes) {
      at::Tensor feat = features.contiguous();
      boxGradKernel<scalar_t>(g.data_ptr<scalar_t>(), feat.data_ptr<scalar_t>(), bx.data_ptr<scalar_t>(),
                              gboxes.data_ptr<scalar_t>(), B, C, H, W, P, static_cast<int>(points));
    }
    if (need_features)
      featureGradKernel<scalar_t>(g.data_ptr<scalar_t>(), bx.data_ptr<scalar_t>(), gfeat.data_ptr<scalar_t>(), B, C, H,
                                  W, P, static_cast<int>(points));
  });
  return {gfeat, gboxes};
}

}  // namespace detail
}  // namespace ops
}  // namespace radkit
