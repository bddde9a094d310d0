// ATen glue of the adaptivePatchSample CUDA kernels (compiled only when LibTorch has CUDA).
#ifdef RADKIT_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#include "../../core/cuda_glue.h"
#include "adaptive_patch.h"
#include "kernels.h"

namespace radkit {
namespace ops {
namespace detail {

constexpr const char* kOp = "adaptivePatchSample";

at::Tensor adaptive_patch_forward_cuda(const at::Tensor& features, const at::Tensor& boxes, int64_t points) {
  c10::cuda::CUDAGuard guard(features.device());
  at::Tensor f = features.contiguous(), bx = boxes.contiguous();
  const int64_t B = f.size(0), C = f.size(1), H = f.size(2), W = f.size(3), P = bx.size(1);
  at::Tensor out = at::empty({B, P, C, points, points}, f.options());
  checkCudaLaunch(cuda::adaptivePatchForwardLaunch(cudaDtypeOf(f.scalar_type(), kOp), f.data_ptr(), bx.data_ptr(), out.data_ptr(),
                                                   B, C, H, W, P, static_cast<int>(points), c10::cuda::getCurrentCUDAStream().stream()),
                  kOp, "forward");
  return out;
}

std::tuple<at::Tensor, at::Tensor> adaptive_patch_backward_cuda(const at::Tensor& grad_out, const at::Tensor& features,
                                                                const at::Tensor& boxes, int64_t points,
                                                                bool need_features, bool need_boxes) {
  c10::cuda::CUDAGuard guard(features.device());
  at::Tensor f = features.contiguous(), bx = boxes.contiguous(), g = grad_out.contiguous();
  const int64_t B = f.size(0), C = f.size(1), H = f.size(2), W = f.size(3), P = bx.size(1);
  const cuda::CudaDtype dtype = cudaDtypeOf(f.scalar_type(), kOp);
  void* stream = c10::cuda::getCurrentCUDAStream().stream();
  at::Tensor gf, gb;
  if (need_boxes) {
    gb = at::empty_like(bx);
    checkCudaLaunch(cuda::adaptivePatchBoxGradLaunch(dtype, g.data_ptr(), f.data_ptr(), bx.data_ptr(), gb.data_ptr(), B, C, H, W,
                                                     P, static_cast<int>(points), stream),
                    kOp, "backward (boxes)");
  }
  if (need_features) {
    at::Tensor acc = at::zeros(f.sizes(), f.options().dtype(cudaAccType(f.scalar_type())));
    checkCudaLaunch(cuda::adaptivePatchFeatureGradLaunch(dtype, g.data_ptr(), bx.data_ptr(), acc.data_ptr(), B, C, H, W, P,
                                                         static_cast<int>(points), stream),
                    kOp, "backward (features)");
    gf = acc.to(f.scalar_type());
  }
  return {gf, gb};
}

}  // namespace detail
}  // namespace ops
}  // namespace radkit
#endif
