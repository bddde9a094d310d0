// CUDA dispatch of memoryQuery (compiled only when LibTorch has CUDA).
#ifdef RADKIT_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#include <cmath>

#include "../../core/cuda_glue.h"
#include "kernels.h"
#include "memory_query.h"

namespace radkit {
namespace ops {
namespace detail {
namespace {

constexpr const char* kOp = "memoryQuery";

at::ScalarType accOf(const at::Tensor& t) { return cudaAccType(t.scalar_type()); }

// alpha [B*L*H], beta [S*H] in the accumulation type (see memory_query.h for the definitions).
std::pair<at::Tensor, at::Tensor> scalesOf(const at::Tensor& q, const at::Tensor& k, const MemoryQueryOptions& o) {
  const int64_t B = q.size(0), L = q.size(1), D = q.size(2), S = k.size(0), H = o.heads, dh = D / H;
  const auto acc = accOf(q);
  if (o.similarity == Similarity::Cosine) {
    at::Tensor a = q.to(acc).reshape({B * L * H, dh}).norm(2, {1}).clamp_min(1e-12).reciprocal();
    at::Tensor b = k.to(acc).reshape({S * H, dh}).norm(2, {1}).clamp_min(1e-12).reciprocal();
    return {a.contiguous(), b.contiguous()};
  }
  const double s = o.similarity == Similarity::ScaledDot ? 1.0 / std::sqrt(static_cast<double>(dh)) : 1.0;
  return {at::full({B * L * H}, s, q.options().dtype(acc)), at::ones({S * H}, q.options().dtype(acc))};
}

cuda::MemoryQueryDims dimsOf(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const MemoryQueryOptions& o) {
  return {q.size(0), q.size(1), q.size(2), k.size(0), v.size(1), o.heads, o.k, o.weighting == Weighting::Normalized ? 1 : 0,
          o.similarity == Similarity::Cosine ? 1 : 0};
}

}  // namespace

MemoryQueryResult memoryQueryForwardCuda(const at::Tensor& query, const at::Tensor& keys, const at::Tensor& values, const at::Tensor& mask,
                                         const MemoryQueryOptions& o) {
  c10::cuda::CUDAGuard guard(query.device());
  const at::Tensor q = query.contiguous(), k = keys.contiguous(), v = values.contiguous();
  const at::Tensor m = mask.defined() ? mask.contiguous() : mask;
  const cuda::MemoryQueryDims d = dimsOf(q, k, v, o);
  auto [alpha, beta] = scalesOf(q, k, o);
  const std::vector<int64_t> shape = o.heads == 1 ? std::vector<int64_t>{d.B, d.L, d.k} : std::vector<int64_t>{d.B, d.L, d.H, d.k};
  at::Tensor response = at::empty({d.B, d.L, d.Dv}, q.options());
  at::Tensor indices = at::empty(shape, q.options().dtype(at::kLong));
  at::Tensor weights = at::empty(shape, q.options());
  const auto acc = accOf(q);
  at::Tensor topv = at::empty({d.B * d.L * d.H * d.k}, q.options().dtype(acc));
  at::Tensor count = at::zeros({d.B * d.L * d.H}, q.options().dtype(at::kInt));
  at::Tensor flag = at::zeros({1}, q.options().dtype(at::kInt));
  void* stream = c10::cuda::getCurrentCUDAStream().stream();
  const int64_t rows = d.B * d.L * d.H, dh = d.D / d.H;
  // Memory chunks of kCudaScratchElements scores (64 MiB in float32), and at least 256 keys.
  const int64_t chunk = std::max<int64_t>(256, kCudaScratchElements / std::max<int64_t>(1, rows));
  // Candidate lists of 4k entries per row: a chunk after the first rarely brings more than k.
  const int cap = static_cast<int>(std::max<int64_t>(32, 4 * d.k));
  at::Tensor gate = at::full({rows}, -INFINITY, q.options().dtype(acc));
  at::Tensor candV = at::empty({rows * cap}, q.options().dtype(acc));
  at::Tensor candI = at::empty({rows * cap}, q.options().dtype(at::kLong));
  at::Tensor ncand = at::zeros({rows}, q.options().dtype(at::kInt));
  const cuda::MemoryQueryMergeScratch scratch{gate.data_ptr(), candV.data_ptr(), candI.data_ptr<int64_t>(), ncand.data_ptr<int>(), cap};
  const at::Tensor qh = q.to(acc).view({d.B * d.L, d.H, dh}).transpose(0, 1).contiguous();  // [H, B*L, dh]
  for (int64_t s0 = 0; s0 < d.S && rows > 0; s0 += chunk) {
    const int64_t sc = std::min(chunk, d.S - s0);
    const at::Tensor kc = k.narrow(0, s0, sc).to(acc).view({sc, d.H, dh}).permute({1, 2, 0});  // [H, dh, sc]
    const at::Tensor scores = at::bmm(qh, kc).contiguous();                                      // [H, B*L, sc]
    const int rc = cuda::memoryQueryMergeChunkLaunch(cudaDtypeOf(acc, kOp), scores.data_ptr(), s0, sc,
                                                     m.defined() ? m.data_ptr<bool>() : nullptr, alpha.data_ptr(), beta.data_ptr(),
                                                     topv.data_ptr(), indices.data_ptr<int64_t>(), count.data_ptr<int>(), scratch,
                                                     flag.data_ptr<int>(), d, stream);
    checkCudaLaunch(rc, kOp, "forward (merge)");
  }
  const int rc = cuda::memoryQueryFinishLaunch(cudaDtypeOf(q.scalar_type(), kOp), v.data_ptr(), topv.data_ptr(),
                                               indices.data_ptr<int64_t>(), count.data_ptr<int>(), weights.data_ptr(),
                                               response.data_ptr(), d, stream);
  checkCudaLaunch(rc, kOp, "forward (finish)");
  if (flag.item<int>() != 0)
    argError("ERR_NOT_FINITE", "query and keys must give finite similarity scores (found NaN or infinity in query or keys, or an overflow)");
  return {response, indices, weights};
}

std::array<at::Tensor, 3> memoryQueryBackwardCuda(const at::Tensor& gResponse, const at::Tensor& gWeights, const at::Tensor& query,
                                                  const at::Tensor& keys, const at::Tensor& values, const at::Tensor& indices,
                                                  const at::Tensor& weights, const MemoryQueryOptions& o) {
  c10::cuda::CUDAGuard guard(query.device());
  const at::Tensor q = query.contiguous(), k = keys.contiguous(), v = values.contiguous();
  const at::Tensor gR = gResponse.defined() ? gResponse.to(q.scalar_type()).contiguous() : gResponse;
  const at::Tensor gW = gWeights.defined() ? gWeights.to(q.scalar_type()).contiguous() : gWeights;
  const cuda::MemoryQueryDims d = dimsOf(q, k, v, o);
  auto [alpha, beta] = scalesOf(q, k, o);
  const auto acc = accOf(q);
  at::Tensor gq = at::empty_like(q);
  at::Tensor gk = at::zeros({d.S, d.D}, q.options().dtype(acc));
  at::Tensor gv = at::zeros({d.S, d.Dv}, q.options().dtype(acc));
  at::Tensor scratch = at::empty({2 * d.B * d.L * d.H * d.k}, q.options().dtype(acc));
  const at::Tensor idx = indices.contiguous(), w = weights.contiguous();
  const int rc = cuda::memoryQueryBackwardLaunch(cudaDtypeOf(q.scalar_type(), kOp), gR.defined() ? gR.data_ptr() : nullptr,
                                                 gW.defined() ? gW.data_ptr() : nullptr, q.data_ptr(), k.data_ptr(), v.data_ptr(),
                                                 idx.data_ptr<int64_t>(), w.data_ptr(), alpha.data_ptr(), beta.data_ptr(), gq.data_ptr(),
                                                 gk.data_ptr(), gv.data_ptr(), scratch.data_ptr(), d,
                                                 c10::cuda::getCurrentCUDAStream().stream());
  checkCudaLaunch(rc, kOp, "backward");
  return {gq, gk.to(q.scalar_type()), gv.to(q.scalar_type())};
}

}  // namespace detail
}  // namespace ops
}  // namespace radkit
#endif
