// Composite float64-friendly references for sinkhorn and euclideanCost, written with standard
// LibTorch ops only (no code shared with native/ops/sinkhorn). Exported for the test suite and
// the benchmark as _testing_sinkhornUnrolled, _testing_sinkhornComposite, _testing_euclideanCost.
#include <ATen/ATen.h>

#include "../binding/errors.h"
#include "../binding/registry.h"
#include "../binding/tensor.h"

namespace radkit {
namespace {

at::Tensor optTensor(Napi::Value v) {
  if (v.IsUndefined() || v.IsNull()) return at::Tensor();
  return Napi::ObjectWrap<NativeTensor>::Unwrap(v.As<Napi::Object>())->tensor("reference");
}

// One problem at a time (the contract's per-problem stopping), autograd-transparent: the result's
// `objective` = <T, C> + eps * sum T log T is differentiable through every unrolled iteration.
Napi::Value SinkhornUnrolled(const Napi::CallbackInfo& info) {
  return guarded(info, "_testing_sinkhornUnrolled", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const at::Tensor& cost = tensorArg(info, 0, "ref", "cost");
    Napi::Object o = info[1].As<Napi::Object>();
    const double eps = o.Get("epsilon").As<Napi::Number>().DoubleValue();
    const int64_t maxIt = o.Get("maxIterations").As<Napi::Number>().Int64Value();
    const double tol = o.Has("tolerance") && o.Get("tolerance").IsNumber() ? o.Get("tolerance").As<Napi::Number>().DoubleValue() : 0.0;
    at::Tensor a = optTensor(o.Get("a")), b = optTensor(o.Get("b"));
    const int64_t B = cost.size(0), M = cost.size(1), N = cost.size(2);
    if (!a.defined()) a = at::full({B, M}, 1.0 / M, cost.options().requires_grad(false));
    if (!b.defined()) b = at::full({B, N}, 1.0 / N, cost.options().requires_grad(false));
    std::vector<at::Tensor> plans, dists, errs, objs;
    Napi::Array iters = Napi::Array::New(env, B);
    for (int64_t p = 0; p < B; ++p) {
      at::Tensor C = cost[p], ap = a[p], bp = b[p];
      at::Tensor K = -C / eps;  // log kernel
      at::Tensor f = at::zeros({M}, C.options().requires_grad(false)), g = at::zeros({N}, C.options().requires_grad(false));
      int64_t it = 0;
      for (; it < maxIt; ++it) {
        at::Tensor fn = ap.log() - at::logsumexp(g.unsqueeze(0) + K, 1);
        if (it > 0 && tol > 0) {
          at::Tensor T = at::exp(f.unsqueeze(1) + g.unsqueeze(0) + K);
          double err = ((T.sum(1) - ap).abs().sum() + (T.sum(0) - bp).abs().sum()).item<double>();
          if (err < tol) break;
        }
        f = fn;
        g = bp.log() - at::logsumexp(f.unsqueeze(1) + K, 0);
      }
      at::Tensor T = at::exp(f.unsqueeze(1) + g.unsqueeze(0) + K);
      plans.push_back(T);
      dists.push_back((T * C).sum());
      errs.push_back((T.sum(1) - ap).abs().sum() + (T.sum(0) - bp).abs().sum());
      objs.push_back((T * C).sum() + eps * (T * at::log(T)).sum());
      iters.Set(static_cast<uint32_t>(p), Napi::Number::New(env, static_cast<double>(it)));
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("plan", NativeTensor::Wrap(env, at::stack(plans)));
    out.Set("distance", NativeTensor::Wrap(env, at::stack(dists)));
    out.Set("marginalError", NativeTensor::Wrap(env, at::stack(errs).detach()));
    out.Set("objective", NativeTensor::Wrap(env, at::stack(objs)));
    out.Set("problemIterations", iters);
    return out;
  });
}

// The batched composite loop the benchmark compares against: fixed iterations, uniform marginals,
// the same iteration order; returns [plan, distance].
Napi::Value SinkhornComposite(const Napi::CallbackInfo& info) {
  return guarded(info, "_testing_sinkhornComposite", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const at::Tensor& cost = tensorArg(info, 0, "ref", "cost");
    const double eps = info[1].As<Napi::Number>().DoubleValue();
    const int64_t iters = info[2].As<Napi::Number>().Int64Value();
    const int64_t B = cost.size(0), M = cost.size(1), N = cost.size(2);
    at::Tensor K = -cost / eps;
    at::Tensor la = at::full({B, M}, -std::log(static_cast<double>(M)), cost.options().requires_grad(false));
    at::Tensor lb = at::full({B, N}, -std::log(static_cast<double>(N)), cost.options().requires_grad(false));
    at::Tensor f = at::zeros_like(la), g = at::zeros_like(lb);
    for (int64_t it = 0; it < iters; ++it) {
      f = la - at::logsumexp(g.unsqueeze(1) + K, 2);
      g = lb - at::logsumexp(f.unsqueeze(2) + K, 1);
    }
    at::Tensor T = at::exp(f.unsqueeze(2) + g.unsqueeze(1) + K);
    Napi::Array out = Napi::Array::New(env, 2);
    out.Set(0u, NativeTensor::Wrap(env, T));
    out.Set(1u, NativeTensor::Wrap(env, (T * cost).sum({1, 2})));
    return out;
  });
}

// Direct definition: sqrt(sum_d (x_id - y_jd)^2), via broadcasting.
Napi::Value EuclideanCostRef(const Napi::CallbackInfo& info) {
  return guarded(info, "_testing_euclideanCost", [&]() -> Napi::Value {
    const at::Tensor& x = tensorArg(info, 0, "ref", "x");
    const at::Tensor& y = tensorArg(info, 1, "ref", "y");
    at::Tensor d = x.unsqueeze(2) - y.unsqueeze(1);
    return NativeTensor::Wrap(info.Env(), (d * d).sum(-1).sqrt());
  });
}

// A strided (non-contiguous) view for tests: transpose(t, d0, d1).
Napi::Value Transpose(const Napi::CallbackInfo& info) {
  return guarded(info, "_testing_transpose", [&]() -> Napi::Value {
    const at::Tensor& t = tensorArg(info, 0, "ref", "t");
    return NativeTensor::Wrap(info.Env(), t.transpose(info[1].As<Napi::Number>().Int64Value(), info[2].As<Napi::Number>().Int64Value()));
  });
}

static OpRegistrar reg("testing:sinkhorn", [](Napi::Env env, Napi::Object exports) {
  exports.Set("_testing_sinkhornUnrolled", Napi::Function::New(env, SinkhornUnrolled, "_testing_sinkhornUnrolled"));
  exports.Set("_testing_sinkhornComposite", Napi::Function::New(env, SinkhornComposite, "_testing_sinkhornComposite"));
  exports.Set("_testing_transpose", Napi::Function::New(env, Transpose, "_testing_transpose"));
  exports.Set("_testing_euclideanCost", Napi::Function::New(env, EuclideanCostRef, "_testing_euclideanCost"));
});

}  // namespace
}  // namespace radkit
