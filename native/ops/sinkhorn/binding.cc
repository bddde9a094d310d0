// N-API bindings: ops.sinkhorn(cost, { epsilon, maxIterations, tolerance?, a?, b? }) and
// ops.euclideanCost(x, y).
#include "../../binding/errors.h"
#include "../../binding/registry.h"
#include "../../binding/tensor.h"
#include "sinkhorn.h"

namespace radkit {
namespace {

at::Tensor optionalTensor(Napi::Value v, const char* name) {
  if (v.IsUndefined() || v.IsNull()) return at::Tensor();
  if (!NativeTensor::IsInstance(v)) argError("ERR_INVALID_ARG", name, " must be a Tensor, got ", describeJs(v));
  NativeTensor* nt = Napi::ObjectWrap<NativeTensor>::Unwrap(v.As<Napi::Object>());
  if (nt->isDisposed()) fail(ErrorKind::Disposed, "ERR_DISPOSED", name, " was disposed; it can no longer be used");
  return nt->tensor(name);
}

Napi::Value Sinkhorn(const Napi::CallbackInfo& info) {
  const char* fn = "ops.sinkhorn";
  return guarded(info, fn, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const at::Tensor& cost = tensorArg(info, 0, fn, "cost");
    Napi::Object o = optionsArg(info, 1, fn);
    ops::SinkhornOptions opts;
    opts.epsilon = numberArg(o.Get("epsilon"), fn, "options.epsilon");
    opts.maxIterations = intArg(o.Get("maxIterations"), fn, "options.maxIterations", 1, 100000000);
    Napi::Value tol = o.Get("tolerance");
    opts.tolerance = tol.IsUndefined() || tol.IsNull() ? 0.0 : numberArg(tol, fn, "options.tolerance");
    at::Tensor a = optionalTensor(o.Get("a"), "options.a");
    at::Tensor b = optionalTensor(o.Get("b"), "options.b");
    ops::SinkhornResult r = ops::sinkhorn(cost, a, b, opts);
    Napi::Object out = Napi::Object::New(env);
    at::Tensor iters = r.iterations.to(at::kCPU);
    int64_t maxIt = iters.numel() ? iters.max().item<int64_t>() : 0;
    Napi::Array per = Napi::Array::New(env, iters.numel());
    for (int64_t i = 0; i < iters.numel(); ++i) per.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(iters[i].item<int64_t>())));
    out.Set("plan", NativeTensor::Wrap(env, r.plan));
    out.Set("distance", NativeTensor::Wrap(env, r.distance));
    out.Set("iterations", Napi::Number::New(env, static_cast<double>(maxIt)));
    out.Set("problemIterations", per);
    out.Set("marginalError", NativeTensor::Wrap(env, r.marginalError));
    return out;
  });
}

Napi::Value EuclideanCost(const Napi::CallbackInfo& info) {
  const char* fn = "ops.euclideanCost";
  return guarded(info, fn, [&]() -> Napi::Value {
    const at::Tensor& x = tensorArg(info, 0, fn, "x");
    const at::Tensor& y = tensorArg(info, 1, fn, "y");
    return NativeTensor::Wrap(info.Env(), ops::euclideanCost(x, y));
  });
}

static OpRegistrar reg("sinkhorn", [](Napi::Env env, Napi::Object exports) {
  exports.Set("sinkhorn", Napi::Function::New(env, Sinkhorn, "sinkhorn"));
  exports.Set("euclideanCost", Napi::Function::New(env, EuclideanCost, "euclideanCost"));
});

}  // namespace
}  // namespace radkit
