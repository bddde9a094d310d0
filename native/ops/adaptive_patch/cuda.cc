// ATen glue of the adaptivePatchSample CUDA kernels (compiled only when LibTorch has CUDA).
#ifdef RADKIT_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#include "adaptive_patch.h"
#include "kernels.h"

namespace radkit {
namespace ops {
namespace detail {
namespace {
int dtypeCode(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return 0;
    case at::kDouble: return 1;
    case at::kHalf: return 2;
    case at::kBFloat16: return 3;
    default: TORCH_CHECK(false, "adaptivePatchSample: unsupported CUDA dtype ", t);
  }
}
void check(int err, const char* what) {
  TORCH_CHECK(err == 0, "adaptivePatchSample: CUDA launch failed in ", what, ": ",
              cudaGetErrorString(static_cast<cudaError_t>(err)));
}
}  // namespace

at::Tensor adaptive_patch_forward_cuda(const at::Tensor& features, const at::Tensor& boxes, int64_t points) {
  c10::cuda::CUDAGuard guard(features.device());
  at::Tensor f = features.contiguous(), bx = boxes.contiguous();
  const int64_t B = f.size(0), C = f.size(1), H = f.size(2), W = f.size(3), P = bx.size(1);
  at::Tensor out = at::empty({B, P, C, points, points}, f.options());
  check(apsample_cuda::forward(dtypeCode(f.scalar_type()), f.data_ptr(), bx.data_ptr(), out.data_ptr(), B, C, H, W, P,
                               static_cast<int>(points), c10::cuda::getCurrentCUDAStream().stream()),
        "forward");
  return out;
}

std::tuple<at::Tensor, at::Tensor> adaptive_patch_backward_cuda(const at::Tensor& grad_out, const at::Tensor& features,
                                                                const at::Tensor& boxes, int64_t points,
                                                                bool need_features, bool need_boxes) {
  c10::cuda::CUDAGuard guard(features.device());
  at::Tensor f = features.contiguous(), bx = boxes.contiguous(), g = grad_out.contiguous();
  const int64_t B = f.size(0), C = f.size(1), H = f.size(2), W = f.size(3), P = bx.size(1);
  const int code = dtypeCode(f.scalar_type());
  void* stream = c10::cuda::getCurrentCUDAStream().stream();
  at::Tensor gf, gb;
  if (need_boxes) {
    gb = at::empty_like(bx);
    check(apsample_cuda::backwardBoxes(code, g.data_ptr(), f.data_ptr(), bx.data_ptr(), gb.data_ptr(), B, C, H, W, P,
                                       static_cast<int>(points), stream),
          "backward (boxes)");
  }
  if (need_features) {
    at::Tensor acc = at::zeros(f.sizes(), f.options().dtype(f.scalar_type() == at::kDouble ? at::kDouble : at::kFloat));
    check(apsample_cuda::backwardFeatures(code, g.data_ptr(), bx.data_ptr(), acc.data_ptr(), B, C, H, W, P,
                                          static_cast<int>(points), stream),
          "backward (features)");
    gf = acc.to(f.scalar_type());
  }
  return {gf, gb};
}

}  // namespace detail
}  // namespace ops
}  // namespace radkit
#endif
