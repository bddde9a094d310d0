// CUDA dispatch of sinkhorn (compiled only when LibTorch has CUDA).
#ifdef RADKIT_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#include "../../core/cuda_glue.h"
#include "kernels.h"
#include "sinkhorn.h"

namespace radkit {
namespace ops {
namespace detail {

SinkhornResult sinkhornCuda(const at::Tensor& cost, const at::Tensor& a, const at::Tensor& b, const SinkhornOptions& o) {
  c10::cuda::CUDAGuard guard(cost.device());
  const at::Tensor C = cost.contiguous();
  const at::ScalarType acc = cudaAccType(C.scalar_type());
  const at::Tensor A = a.to(acc).contiguous(), Bm = b.to(acc).contiguous();
  const int64_t B = C.size(0), M = C.size(1), N = C.size(2);
  at::Tensor plan = at::empty_like(C);
  at::Tensor distance = at::empty({B}, C.options().dtype(acc));
  at::Tensor err = at::empty({B}, C.options().dtype(acc));
  at::Tensor iters = at::empty({B}, C.options().dtype(at::kLong));
  const int rc = cuda::sinkhornLaunch(cudaDtypeOf(C.scalar_type(), "sinkhorn"), C.data_ptr(), A.data_ptr(), Bm.data_ptr(), plan.data_ptr(),
                                      distance.data_ptr(), iters.data_ptr<int64_t>(), err.data_ptr(), B, M, N, o.epsilon, o.maxIterations,
                                      o.tolerance, c10::cuda::getCurrentCUDAStream().stream());
  checkCudaLaunch(rc, "sinkhorn", "forward");
  return {plan, distance.to(C.scalar_type()), iters, err.to(C.scalar_type())};
}

}  // namespace detail
}  // namespace ops
}  // namespace radkit
#endif
