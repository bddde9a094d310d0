// sinkhorn / euclideanCost: argument checks, device dispatch and the autograd functions.
#include <cmath>

#include "../../core/checks.h"
#include "sinkhorn.h"

namespace radkit {
namespace ops {
namespace {

void checkFinite(const at::Tensor& t, const char* name) {
  if (t.numel() && !at::isfinite(t).all().item<bool>()) argError("ERR_NOT_FINITE", name, " must hold only finite values (found NaN or infinity)");
}

at::Tensor checkMarginal(const at::Tensor& m, const at::Tensor& cost, int64_t len, const char* name, const char* dimName) {
  const int64_t B = cost.size(0);
  if (!m.defined()) return at::full({B, len}, 1.0 / static_cast<double>(len), cost.options());
  if (m.dim() != 2 || m.size(0) != B || m.size(1) != len)
    argError("ERR_SHAPE", name, " must have shape [B, ", dimName, "] = ", shapeString({B, len}), ", got ", shapeString(m.sizes()));
  if (m.scalar_type() != cost.scalar_type())
    argError("ERR_DTYPE", name, " must have the cost's dtype ", dtypeName(cost.scalar_type()), ", got ", dtypeName(m.scalar_type()));
  if (m.device() != cost.device())
    argError("ERR_DEVICE", name, " must be on the cost's device ", deviceName(cost.device()), ", got ", deviceName(m.device()));
  checkFinite(m, name);
  if (m.numel() && (m.lt(0).any().item<bool>()))
    argError("ERR_INVALID_ARG", name, " must be non-negative (a probability vector per problem); found a negative entry");
  if (m.numel() && m.sum(1).le(0).any().item<bool>())
    argError("ERR_INVALID_ARG", name, " must have a positive total mass in every problem; found a problem with mass 0");
  return m.detach();
}

}  // namespace

std::pair<at::Tensor, at::Tensor> checkSinkhornArgs(const at::Tensor& cost, const at::Tensor& a, const at::Tensor& b,
                                                     const SinkhornOptions& o, const char* fn) {
  if (!cost.defined()) argError("ERR_INVALID_ARG", "cost must be a tensor");
  if (cost.dim() != 3) argError("ERR_SHAPE", "cost must have shape [B, M, N] (rank 3), got ", shapeString(cost.sizes()));
  if (cost.size(1) < 1 || cost.size(2) < 1) argError("ERR_SHAPE", "cost must have M >= 1 and N >= 1, got ", shapeString(cost.sizes()));
  if (!isOpDtype(cost)) argError("ERR_DTYPE", "cost must be ", opDtypesFor(cost), ", got ", dtypeName(cost.scalar_type()));
  if (!cost.is_cpu() && !cost.is_cuda()) argError("ERR_DEVICE", "cost must be on the CPU or a CUDA device, got ", deviceName(cost.device()));
  if (!std::isfinite(o.epsilon) || !(o.epsilon > 0)) argError("ERR_INVALID_ARG", "epsilon must be a finite number > 0, got ", o.epsilon);
  if (o.maxIterations < 1 || o.maxIterations > 100000000)
    argError("ERR_INVALID_ARG", "maxIterations must be in [1, 100000000], got ", o.maxIterations);
  if (!std::isfinite(o.tolerance) || o.tolerance < 0) argError("ERR_INVALID_ARG", "tolerance must be a finite number >= 0, got ", o.tolerance);
  at::Tensor A = checkMarginal(a, cost, cost.size(1), "a", "M");
  at::Tensor Bm = checkMarginal(b, cost, cost.size(2), "b", "N");
  checkFinite(cost, "cost");
  return {A, Bm};
}

void checkEuclideanCostArgs(const at::Tensor& x, const at::Tensor& y, const char* fn) {
  if (x.dim() != 3) argError("ERR_SHAPE", "x must have shape [B, M, D] (rank 3), got ", shapeString(x.sizes()));
  if (y.dim() != 3) argError("ERR_SHAPE", "y must have shape [B, N, D] (rank 3), got ", shapeString(y.sizes()));
  if (!isOpDtype(x)) argError("ERR_DTYPE", "x must be ", opDtypesFor(x), ", got ", dtypeName(x.scalar_type()));
  if (y.scalar_type() != x.scalar_type())
    argError("ERR_DTYPE", "y must have x's dtype ", dtypeName(x.scalar_type()), ", got ", dtypeName(y.scalar_type()));
  if (y.device() != x.device()) argError("ERR_DEVICE", "x and y must be on one device, got ", deviceName(x.device()), " and ", deviceName(y.device()));
  if (x.size(0) != y.size(0) || x.size(2) != y.size(2))
    argError("ERR_SHAPE", "x [B, M, D] and y [B, N, D] must agree in B and D, got ", shapeString(x.sizes()), " and ", shapeString(y.sizes()));
}

namespace detail {
SinkhornResult sinkhornForward(const at::Tensor& cost, const at::Tensor& a, const at::Tensor& b, const SinkhornOptions& o) {
  if (cost.is_cuda()) {
#ifdef RADKIT_WITH_CUDA
    return sinkhornCuda(cost, a, b, o);
#else
    argError("ERR_DEVICE", "cost is on ", deviceName(cost.device()), " but this build has no CUDA kernels");
#endif
  }
  return sinkhornCpu(cost, a, b, o);
}
}  // namespace detail

torch::autograd::variable_list SinkhornFunction::forward(torch::autograd::AutogradContext* ctx, const at::Tensor& cost,
                                                         const at::Tensor& a, const at::Tensor& b, double epsilon,
                                                         int64_t maxIterations, double tolerance) {
  SinkhornResult r = detail::sinkhornForward(cost, a, b, {epsilon, maxIterations, tolerance});
  ctx->save_for_backward({r.plan});
  ctx->mark_non_differentiable({r.plan, r.iterations, r.marginalError});
  return {r.plan, r.distance, r.iterations, r.marginalError};
}

torch::autograd::variable_list SinkhornFunction::backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
  const at::Tensor plan = ctx->get_saved_variables()[0];
  const at::Tensor& gd = grads[1];
  at::Tensor gc = gd.defined() ? plan * gd.to(plan.scalar_type()).view({-1, 1, 1}) : at::zeros_like(plan);
  return {gc, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
}

SinkhornResult sinkhorn(const at::Tensor& cost, const at::Tensor& a, const at::Tensor& b, const SinkhornOptions& options) {
  auto [A, Bm] = checkSinkhornArgs(cost, a, b, options, "sinkhorn");
  if (!cost.requires_grad()) {
    at::NoGradGuard ng;
    return detail::sinkhornForward(cost, A, Bm, options);
  }
  auto out = SinkhornFunction::apply(cost, A, Bm, options.epsilon, options.maxIterations, options.tolerance);
  return {out[0], out[1], out[2], out[3]};
}

// ---- euclideanCost: C = sqrt(max(|x|^2 + |y|^2 - 2 x.y, 0)) with batched GEMM; backward
// dx_i = sum_j W_ij (x_i - y_j) with W = grad / C (0 where C = 0), likewise for y.
static at::Tensor euclideanCostRaw(const at::Tensor& x, const at::Tensor& y) {
  at::Tensor xx = x.mul(x).sum(-1, true);                 // [B, M, 1]
  at::Tensor yy = y.mul(y).sum(-1).unsqueeze(1);          // [B, 1, N]
  return at::baddbmm(xx + yy, x, y.transpose(1, 2), 1, -2).clamp_min_(0).sqrt_();
}

at::Tensor EuclideanCostFunction::forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& y) {
  at::Tensor c = euclideanCostRaw(x, y);
  ctx->save_for_backward({x, y, c});
  return c;
}

torch::autograd::variable_list EuclideanCostFunction::backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
  auto saved = ctx->get_saved_variables();
  const at::Tensor &x = saved[0], &y = saved[1], &c = saved[2];
  at::Tensor w = at::where(c > 0, grads[0] / c, at::zeros_like(c));   // [B, M, N]
  at::Tensor gx = x * w.sum(2, true) - at::bmm(w, y);
  at::Tensor gy = y * w.sum(1).unsqueeze(-1) - at::bmm(w.transpose(1, 2), x);
  return {gx, gy};
}

at::Tensor euclideanCost(const at::Tensor& x, const at::Tensor& y) {
  checkEuclideanCostArgs(x, y, "euclideanCost");
  if (!x.requires_grad() && !y.requires_grad()) {
    at::NoGradGuard ng;
    return euclideanCostRaw(x, y);
  }
  return EuclideanCostFunction::apply(x, y);
}

}  // namespace ops
}  // namespace radkit
