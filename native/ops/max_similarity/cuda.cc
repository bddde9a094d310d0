// ATen glue of the maxSimilarity CUDA kernels (compiled only when LibTorch has CUDA). The similarity
// block of Ib images comes from cuBLAS; Ib is chosen so the block holds at most
// max(N * Bt * K, Bi * Bt * (N + K), kCudaScratchElements) elements: never the [Bi, Bt, N, K] tensor.
#ifdef RADKIT_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#include "../../core/cuda_glue.h"
#include "kernels.h"
#include "max_similarity.h"

namespace radkit {
namespace ops {
namespace detail {

constexpr const char* kOp = "maxSimilarity";

MaxSimilarityResult max_similarity_forward_cuda(const at::Tensor& image, const at::Tensor& text,
                                                const at::Tensor& imageMask, const at::Tensor& textMask) {
  c10::cuda::CUDAGuard guard(image.device());
  const int64_t Bi = image.size(0), N = image.size(1), D = image.size(2), Bt = text.size(0), K = text.size(1);
  const at::ScalarType ct = cudaAccType(image.scalar_type());
  const cuda::CudaDtype acc = cudaDtypeOf(ct, kOp);
  auto bopt = image.options().dtype(at::kBool);
  at::Tensor im = imageMask.defined() ? imageMask.to(at::kBool).contiguous() : at::ones({Bi, N}, bopt);
  at::Tensor tm = textMask.defined() ? textMask.to(at::kBool).contiguous() : at::ones({Bt, K}, bopt);
  MaxSimilarityResult r;
  auto lopt = image.options().dtype(at::kLong);
  if (Bi == 0 || Bt == 0) {
    r.imageToText = at::zeros({Bi, Bt}, image.options());
    r.textToImage = at::zeros({Bi, Bt}, image.options());
    r.imageToTextArgmax = at::full({Bi, Bt, N}, -1, lopt);
    r.textToImageArgmax = at::full({Bi, Bt, K}, -1, lopt);
    return r;
  }
  at::Tensor T2 = text.to(ct).reshape({Bt * K, D}).t();  // [D, Bt*K]
  at::Tensor ni = im.sum(1).to(ct), kj = tm.sum(1).to(ct);
  const int64_t per = std::max<int64_t>(1, N * Bt * K);
  // O(Bi * Bt * (N + K)) as the contract allows, and never less than the fixed scratch floor.
  const int64_t budget = std::max<int64_t>({per, Bi * Bt * (N + K), kCudaScratchElements});
  const int64_t Ib = std::max<int64_t>(1, std::min<int64_t>(Bi, budget / per));
  void* stream = c10::cuda::getCurrentCUDAStream().stream();
  // The maxima of all pairs (O(Bi * Bt * (N + K)), as the contract allows) are filled block by block;
  // the masking and means then run once over them, so a block costs one GEMM and two kernels.
  auto vopt = image.options().dtype(ct);
  at::Tensor rowVal = at::empty({Bi, Bt, N}, vopt), colVal = at::empty({Bi, Bt, K}, vopt);
  at::Tensor rowIdx = at::empty({Bi, Bt, N}, lopt), colIdx = at::empty({Bi, Bt, K}, lopt);
  for (int64_t i0 = 0; i0 < Bi; i0 += Ib) {
    const int64_t nb = std::min(Ib, Bi - i0);
    const at::Tensor S = at::matmul(image.narrow(0, i0, nb).to(ct), T2).contiguous();  // [nb, N, Bt*K]
    checkCudaLaunch(cuda::maxSimilarityRowMaxLaunch(acc, S.data_ptr(), tm.data_ptr<bool>(), nb, N, Bt, K,
                                                    rowVal.narrow(0, i0, nb).data_ptr(),
                                                    reinterpret_cast<long long*>(rowIdx.narrow(0, i0, nb).data_ptr<int64_t>()), stream),
                    kOp, "rowMax");
    checkCudaLaunch(cuda::maxSimilarityColMaxLaunch(acc, S.data_ptr(), im.narrow(0, i0, nb).data_ptr<bool>(), nb, N, Bt, K,
                                                    colVal.narrow(0, i0, nb).data_ptr(),
                                                    reinterpret_cast<long long*>(colIdx.narrow(0, i0, nb).data_ptr<int64_t>()), stream),
                    kOp, "colMax");
  }
  at::Tensor nib = ni.view({Bi, 1});
  at::Tensor valid = (nib > 0) & (kj.view({1, Bt}) > 0);  // [Bi, Bt]
  at::Tensor rowReal = im.view({Bi, 1, N}) & valid.unsqueeze(2);
  at::Tensor colReal = tm.view({1, Bt, K}) & valid.unsqueeze(2);
  at::Tensor s1 = at::where(rowReal, rowVal, at::zeros({}, vopt)).sum(2) / nib.clamp_min(1);
  at::Tensor s2 = at::where(colReal, colVal, at::zeros({}, vopt)).sum(2) / kj.view({1, Bt}).clamp_min(1);
  r.imageToText = at::where(valid, s1, at::zeros({}, vopt)).to(image.scalar_type());
  r.textToImage = at::where(valid, s2, at::zeros({}, vopt)).to(image.scalar_type());
  r.imageToTextArgmax = at::where(rowReal, rowIdx, at::full({}, -1, lopt));
  r.textToImageArgmax = at::where(colReal, colIdx, at::full({}, -1, lopt));
  return r;
}

std::tuple<at::Tensor, at::Tensor> max_similarity_backward_cuda(const at::Tensor& c1, const at::Tensor& c2,
                                                                const at::Tensor& image, const at::Tensor& text,
                                                                const at::Tensor& argN2K, const at::Tensor& argK2N,
                                                                bool need_image, bool need_text) {
  c10::cuda::CUDAGuard guard(image.device());
  const int64_t Bi = image.size(0), N = image.size(1), D = image.size(2), Bt = text.size(0), K = text.size(1);
  const at::ScalarType ct = cudaAccType(image.scalar_type());
  at::Tensor img = image.contiguous(), txt = text.contiguous();
  at::Tensor a1 = argN2K.contiguous(), a2 = argK2N.contiguous();
  at::Tensor cc1 = c1.to(ct).contiguous(), cc2 = c2.to(ct).contiguous();
  at::Tensor gi, gt;
  if (need_image) gi = at::zeros({Bi, N, D}, img.options().dtype(ct));
  if (need_text) gt = at::zeros({Bt, K, D}, img.options().dtype(ct));
  checkCudaLaunch(cuda::maxSimilarityBackwardLaunch(cudaDtypeOf(img.scalar_type(), kOp), cc1.data_ptr(), cc2.data_ptr(),
                                                    img.data_ptr(), txt.data_ptr(),
                                                    reinterpret_cast<const long long*>(a1.data_ptr<int64_t>()),
                                                    reinterpret_cast<const long long*>(a2.data_ptr<int64_t>()), Bi, N, Bt, K, D,
                                                    need_image ? gi.data_ptr() : nullptr, need_text ? gt.data_ptr() : nullptr,
                                                    c10::cuda::getCurrentCUDAStream().stream()),
                  kOp, "backward");
  if (gi.defined()) gi = gi.to(image.scalar_type());
  if (gt.defined()) gt = gt.to(image.scalar_type());
  return {gi, gt};
}

}  // namespace detail
}  // namespace ops
}  // namespace radkit
#endif
