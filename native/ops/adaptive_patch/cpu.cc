// CPU kernels of adaptivePatchSample. Layout: features are read channels-last ([B, H, W, C] memory),
// so the four corners of a sample point are four contiguous C-vectors; the bilinear weights of each
// point are computed once and reused across all channels.
//   forward:        parallel over (b, p); an [m*m, C] tile per box, written transposed to [C, m*m].
//   grad boxes:     parallel over (b, p); the m*m points of a box are reduced in the task (no atomics).
//   grad features:  parallel over (b, channel block); each task owns its slice of the gradient and
//                   visits boxes and points in a fixed order, so results are bit-identical across runs
//                   and thread counts.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <vector>

#include "adaptive_patch.h"
#include "geometry.h"

namespace radkit {
namespace ops {
namespace detail {
namespace {

using apsample::Point;

template <typename T>
Point<T> pointOf(const T* box, int u, int v, int m, int64_t H, int64_t W) {
  T ix, iy;
  apsample::pointCoords<T>(box[0], box[1], box[2], box[3], u, v, m, &ix, &iy);
  return apsample::makePoint<T>(ix, iy, H, W);
}

template <typename T>
void forwardKernel(const T* feat, const T* boxes, T* out, int64_t B, int64_t C, int64_t H, int64_t W, int64_t P, int m) {
  const int64_t mm = int64_t(m) * m;
  std::vector<T> zeros(C, T(0));
  const T* zero = zeros.data();
  at::parallel_for(0, B * P, 16, [&](int64_t begin, int64_t end) {
    std::vector<T> tile(mm * C);
    for (int64_t bp = begin; bp < end; ++bp) {
      const int64_t b = bp / P;
      const T* fb = feat + b * H * W * C;
      const T* box = boxes + bp * 4;
      for (int v = 0; v < m; ++v)
        for (int u = 0; u < m; ++u) {
          Point<T> pt = pointOf(box, u, v, m, H, W);
          T* __restrict t = tile.data() + (int64_t(v) * m + u) * C;
          const T* __restrict r0 = pt.idx[0] >= 0 ? fb + pt.idx[0] * C : zero;
          const T* __restrict r1 = pt.idx[1] >= 0 ? fb + pt.idx[1] * C : zero;
          const T* __restrict r2 = pt.idx[2] >= 0 ? fb + pt.idx[2] * C : zero;
          const T* __restrict r3 = pt.idx[3] >= 0 ? fb + pt.idx[3] * C : zero;
          const T w0 = pt.w[0], w1 = pt.w[1], w2 = pt.w[2], w3 = pt.w[3];
          for (int64_t c = 0; c < C; ++c) t[c] = w0 * r0[c] + w1 * r1[c] + w2 * r2[c] + w3 * r3[c];
        }
      T* __restrict o = out + bp * C * mm;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t k = 0; k < mm; ++k) o[c * mm + k] = tile[k * C + c];
    }
  });
}

template <typename T>
void boxGradKernel(const T* gout, const T* feat, const T* boxes, T* gboxes, int64_t B, int64_t C, int64_t H, int64_t W,
                   int64_t P, int m) {
  using acc_t = double;
  const int64_t mm = int64_t(m) * m;
  std::vector<T> zeros(C, T(0));
  const T* zero = zeros.data();
  at::parallel_for(0, B * P, 16, [&](int64_t begin, int64_t end) {
    std::vector<T> tile(mm * C);
    for (int64_t bp = begin; bp < end; ++bp) {
      const int64_t b = bp / P;
      const T* fb = feat + b * H * W * C;
      const T* box = boxes + bp * 4;
      const T* g = gout + bp * C * mm;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t k = 0; k < mm; ++k) tile[k * C + c] = g[c * mm + k];
      acc_t dcx = 0, dcy = 0, dw = 0, dh = 0;
      for (int v = 0; v < m; ++v)
        for (int u = 0; u < m; ++u) {
          Point<T> pt = pointOf(box, u, v, m, H, W);
          if (!pt.any) continue;
          const T* __restrict t = tile.data() + (int64_t(v) * m + u) * C;
          const T* __restrict r0 = pt.idx[0] >= 0 ? fb + pt.idx[0] * C : zero;
          const T* __restrict r1 = pt.idx[1] >= 0 ? fb + pt.idx[1] * C : zero;
          const T* __restrict r2 = pt.idx[2] >= 0 ? fb + pt.idx[2] * C : zero;
          const T* __restrict r3 = pt.idx[3] >= 0 ? fb + pt.idx[3] * C : zero;
          const T tx = pt.tx, ty = pt.ty, sx = T(1) - tx, sy = T(1) - ty;
          T gx = 0, gy = 0;
          for (int64_t c = 0; c < C; ++c) {
            const T a = r0[c], bb = r1[c], cc = r2[c], d = r3[c];
            gx += t[c] * (sy * (bb - a) + ty * (d - cc));
            gy += t[c] * (sx * (cc - a) + tx * (d - bb));
          }
          dcx += gx;
          dcy += gy;
          dw += acc_t(gx) * apsample::sizeCoef<acc_t>(u, m);
          dh += acc_t(gy) * apsample::sizeCoef<acc_t>(v, m);
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
  const int64_t mm = int64_t(m) * m;
  const int64_t block = 64;
  const int64_t nblocks = (C + block - 1) / block;
  at::parallel_for(0, B * nblocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> tile(mm * block);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / nblocks;
      const int64_t c0 = (task % nblocks) * block;
      const int64_t nc = std::min(block, C - c0);
      T* gb = gfeat + b * H * W * C + c0;
      for (int64_t p = 0; p < P; ++p) {
        const int64_t bp = b * P + p;
        const T* box = boxes + bp * 4;
        const T* g = gout + (bp * C + c0) * mm;
        for (int64_t c = 0; c < nc; ++c)
          for (int64_t k = 0; k < mm; ++k) tile[k * nc + c] = g[c * mm + k];
        for (int v = 0; v < m; ++v)
          for (int u = 0; u < m; ++u) {
            Point<T> pt = pointOf(box, u, v, m, H, W);
            if (!pt.any) continue;
            const T* __restrict t = tile.data() + (int64_t(v) * m + u) * nc;
            for (int q = 0; q < 4; ++q) {
              if (pt.idx[q] < 0) continue;
              T* __restrict r = gb + pt.idx[q] * C;
              const T w = pt.w[q];
              for (int64_t c = 0; c < nc; ++c) r[c] += w * t[c];
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
  at::Tensor feat = features.contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor bx = boxes.contiguous();
  at::Tensor out = at::empty({B, P, C, points, points}, features.options());
  if (out.numel() == 0) return out;
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
  if (need_features) gfeat = at::zeros_like(features, features.options(), at::MemoryFormat::ChannelsLast);
  if (need_boxes) gboxes = at::zeros_like(bx);
  if (g.numel() == 0) return {gfeat, gboxes};
  AT_DISPATCH_FLOATING_TYPES(features.scalar_type(), "adaptivePatchSample.backward", [&] {
    if (need_boxes) {
      at::Tensor feat = features.contiguous(at::MemoryFormat::ChannelsLast);
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
