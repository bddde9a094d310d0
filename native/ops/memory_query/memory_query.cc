// memoryQuery: argument checks, device dispatch and the autograd function.
#include "../../core/autocast.h"
#include "../../core/checks.h"
#include "memory_query.h"

namespace radkit {
namespace ops {
void checkMemoryQueryArgs(const at::Tensor& query, const at::Tensor& keys, const at::Tensor& values, const at::Tensor& mask,
                          const MemoryQueryOptions& o, const char* fn) {
  if (query.dim() != 3) argError("ERR_SHAPE", "query must have shape [B, L, D] (rank 3), got ", shapeString(query.sizes()));
  if (keys.dim() != 2) argError("ERR_SHAPE", "keys must have shape [S, D] (rank 2), got ", shapeString(keys.sizes()));
  if (values.dim() != 2) argError("ERR_SHAPE", "values must have shape [S, Dv] (rank 2), got ", shapeString(values.sizes()));
  if (!isOpDtype(query)) argError("ERR_DTYPE", "query must be ", opDtypesFor(query), ", got ", dtypeName(query.scalar_type()));
  if (keys.scalar_type() != query.scalar_type())
    argError("ERR_DTYPE", "keys must have query's dtype ", dtypeName(query.scalar_type()), ", got ", dtypeName(keys.scalar_type()));
  if (values.scalar_type() != query.scalar_type())
    argError("ERR_DTYPE", "values must have query's dtype ", dtypeName(query.scalar_type()), ", got ", dtypeName(values.scalar_type()));
  if (keys.device() != query.device() || values.device() != query.device())
    argError("ERR_DEVICE", "query, keys and values must be on one device, got ", deviceName(query.device()), ", ", deviceName(keys.device()), " and ",
             deviceName(values.device()));
  if (!query.is_cpu() && !query.is_cuda()) argError("ERR_DEVICE", "query must be on the CPU or a CUDA device, got ", deviceName(query.device()));
  const int64_t B = query.size(0), D = query.size(2), S = keys.size(0), Dv = values.size(1);
  if (keys.size(1) != D) argError("ERR_SHAPE", "keys must have shape [S, D] with query's D = ", D, ", got ", shapeString(keys.sizes()));
  if (S < 1) argError("ERR_SHAPE", "keys must have at least one memory row (S >= 1), got ", shapeString(keys.sizes()));
  if (values.size(0) != S) argError("ERR_SHAPE", "values must have shape [S, Dv] with the keys' S = ", S, ", got ", shapeString(values.sizes()));
  if (D < 1 || Dv < 1) argError("ERR_SHAPE", "D and Dv must be >= 1, got query ", shapeString(query.sizes()), " and values ", shapeString(values.sizes()));
  if (o.heads < 1 || D % o.heads != 0 || Dv % o.heads != 0)
    argError("ERR_INVALID_ARG", "heads must be >= 1 and divide D = ", D, " and Dv = ", Dv, ", got ", o.heads);
  if (o.k < 1 || o.k > S) argError("ERR_INVALID_ARG", "k must be in [1, S] = [1, ", S, "], got ", o.k);
  if (mask.defined()) {
    if (mask.scalar_type() != at::kBool) argError("ERR_DTYPE", "mask must be bool, got ", dtypeName(mask.scalar_type()));
    if (mask.dim() != 2 || mask.size(0) != B || mask.size(1) != S)
      argError("ERR_SHAPE", "mask must have shape [B, S] = ", shapeString({B, S}), ", got ", shapeString(mask.sizes()));
    if (mask.device() != query.device()) argError("ERR_DEVICE", "mask must be on query's device ", deviceName(query.device()), ", got ", deviceName(mask.device()));
  }
}

namespace detail {
MemoryQueryResult memoryQueryForward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                                     const MemoryQueryOptions& o) {
  if (q.is_cuda()) {
#ifdef RADKIT_WITH_CUDA
    return memoryQueryForwardCuda(q, k, v, mask, o);
#else
    argError("ERR_DEVICE", "query is on ", deviceName(q.device()), " but this build has no CUDA kernels");
#endif
  }
  return memoryQueryForwardCpu(q, k, v, mask, o);
}
}  // namespace detail

static MemoryQueryOptions optionsOf(int64_t k, int64_t similarity, int64_t weighting, int64_t heads) {
  MemoryQueryOptions o;
  o.k = k;
  o.similarity = static_cast<Similarity>(similarity);
  o.weighting = static_cast<Weighting>(weighting);
  o.heads = heads;
  return o;
}

torch::autograd::variable_list MemoryQueryFunction::forward(torch::autograd::AutogradContext* ctx, const at::Tensor& query,
                                                            const at::Tensor& keys, const at::Tensor& values,
                                                            const at::Tensor& mask, int64_t k, int64_t similarity,
                                                            int64_t weighting, int64_t heads) {
  MemoryQueryOptions o = optionsOf(k, similarity, weighting, heads);
  MemoryQueryResult r = detail::memoryQueryForward(query, keys, values, mask.numel() ? mask : at::Tensor(), o);
  ctx->save_for_backward({query, keys, values, r.indices, r.weights});
  ctx->saved_data["k"] = k;
  ctx->saved_data["similarity"] = similarity;
  ctx->saved_data["weighting"] = weighting;
  ctx->saved_data["heads"] = heads;
  ctx->mark_non_differentiable({r.indices});
  return {r.response, r.indices, r.weights};
}

torch::autograd::variable_list MemoryQueryFunction::backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
  auto s = ctx->get_saved_variables();
  MemoryQueryOptions o = optionsOf(ctx->saved_data["k"].toInt(), ctx->saved_data["similarity"].toInt(), ctx->saved_data["weighting"].toInt(),
                                   ctx->saved_data["heads"].toInt());
  std::array<at::Tensor, 3> g;
  if (s[0].is_cuda()) {
#ifdef RADKIT_WITH_CUDA
    g = detail::memoryQueryBackwardCuda(grads[0], grads[2], s[0], s[1], s[2], s[3], s[4], o);
#endif
  } else {
    g = detail::memoryQueryBackwardCpu(grads[0], grads[2], s[0], s[1], s[2], s[3], s[4], o);
  }
  return {g[0], g[1], g[2], at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
}

MemoryQueryResult memoryQuery(const at::Tensor& queryIn, const at::Tensor& keysIn, const at::Tensor& valuesIn, const at::Tensor& mask,
                              const MemoryQueryOptions& options) {
  const std::vector<at::Tensor> in = autocastOpInputs({queryIn, keysIn, valuesIn});  // one dtype under autocast
  const at::Tensor &query = in[0], &keys = in[1], &values = in[2];
  checkMemoryQueryArgs(query, keys, values, mask, options, "memoryQuery");
  if (!query.requires_grad() && !keys.requires_grad() && !values.requires_grad()) {
    at::NoGradGuard ng;
    return detail::memoryQueryForward(query, keys, values, mask, options);
  }
  // LibTorch 1.13's Function::apply cannot take an undefined tensor input: an empty tensor stands for "no mask".
  const at::Tensor m = mask.defined() ? mask : at::empty({0}, query.options().dtype(at::kBool));
  auto out = MemoryQueryFunction::apply(query, keys, values, m, options.k, static_cast<int64_t>(options.similarity),
                                        static_cast<int64_t>(options.weighting), options.heads);
  return {out[0], out[1], out[2]};
}

}  // namespace ops
}  // namespace radkit
