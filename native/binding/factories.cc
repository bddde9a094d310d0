// Tensor creation from JS data and the few basic tensor operations the Tensor API exposes.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <chrono>
#include <cstring>

#include "async.h"
#include "bindings.h"
#include "tensor.h"

namespace radkit {
namespace {

struct CreateOptions {
  at::ScalarType dtype;
  at::Device device{at::kCPU};
  bool requiresGrad = false;
};

CreateOptions createOptions(const Napi::CallbackInfo& info, size_t i, const char* fn, at::ScalarType defaultDtype) {
  Napi::Object o = optionsArg(info, i, fn);
  CreateOptions c;
  c.dtype = dtypeArg(o.Get("dtype"), fn, "options.dtype", defaultDtype);
  c.device = deviceArg(o.Get("device"), fn, "options.device");
  c.requiresGrad = boolArg(o.Get("requiresGrad"), fn, "options.requiresGrad", false);
  if (c.requiresGrad && !at::isFloatingType(c.dtype))
    argError("ERR_DTYPE", "requiresGrad needs a floating-point dtype, got ", dtypeName(c.dtype));
  return c;
}

at::Tensor finish(at::Tensor t, const CreateOptions& c) {
  if (t.device() != c.device) t = t.to(c.device);
  if (c.requiresGrad) t.requires_grad_(true);
  return t;
}

// fromTypedArray(data, shape, { dtype?, device?, requiresGrad? })
Napi::Value FromTypedArray(const Napi::CallbackInfo& info) {
  const char* fn = "Tensor.from";
  return guarded(info, fn, [&]() -> Napi::Value {
    Napi::Value data = info[0];
    if (!data.IsTypedArray())
      argError("ERR_INVALID_ARG", "data must be a Float32Array, Float64Array, Int32Array, BigInt64Array or Uint8Array, got ", describeJs(data));
    Napi::TypedArray ta = data.As<Napi::TypedArray>();
    at::ScalarType srcType;
    switch (ta.TypedArrayType()) {
      case napi_float32_array: srcType = at::kFloat; break;
      case napi_float64_array: srcType = at::kDouble; break;
      case napi_int32_array: srcType = at::kInt; break;
      case napi_bigint64_array: srcType = at::kLong; break;
      case napi_uint8_array: srcType = at::kByte; break;
      default:
        argError("ERR_DTYPE", "data must be a Float32Array, Float64Array, Int32Array, BigInt64Array or Uint8Array; this typed array type is not supported");
    }
    std::vector<int64_t> shape = shapeArg(info[1], fn, "shape");
    CreateOptions c = createOptions(info, 2, fn, srcType);
    int64_t numel = 1;
    for (int64_t d : shape) numel *= d;
    if (static_cast<size_t>(numel) != ta.ElementLength())
      argError("ERR_SHAPE", "shape ", shapeString(shape), " holds ", numel, " elements but data has ", ta.ElementLength());
    checkAllocation(shape, c.dtype, fn);
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(srcType));
    if (numel) std::memcpy(t.data_ptr(), static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset(), ta.ByteLength());
    if (c.dtype != srcType) {
      checkIntegerCast(t, c.dtype, std::string(fn) + " data", /*wholeOnly=*/true);
      t = t.to(c.dtype);
    }
    return NativeTensor::Wrap(info.Env(), finish(std::move(t), c));
  });
}

enum class Fill { Zeros, Ones, Randn };

template <Fill kind>
Napi::Value Filled(const Napi::CallbackInfo& info) {
  const char* fn = kind == Fill::Zeros ? "Tensor.zeros" : kind == Fill::Ones ? "Tensor.ones" : "Tensor.randn";
  return guarded(info, fn, [&]() -> Napi::Value {
    std::vector<int64_t> shape = shapeArg(info[0], fn, "shape");
    CreateOptions c = createOptions(info, 1, fn, at::kFloat);
    if (kind == Fill::Randn && !at::isFloatingType(c.dtype)) argError("ERR_DTYPE", "randn needs a floating-point dtype, got ", dtypeName(c.dtype));
    checkAllocation(shape, c.dtype, fn);
    auto opts = at::TensorOptions().dtype(c.dtype).device(c.device);
    at::Tensor t = kind == Fill::Zeros ? at::zeros(shape, opts) : kind == Fill::Ones ? at::ones(shape, opts) : at::randn(shape, opts);
    if (c.requiresGrad) t.requires_grad_(true);
    return NativeTensor::Wrap(info.Env(), std::move(t));
  });
}

void checkMatmulPair(const at::Tensor& a, const at::Tensor& b) {
  if (!at::isFloatingType(a.scalar_type())) argError("ERR_DTYPE", "a must be a floating-point tensor, got ", dtypeName(a.scalar_type()));
  if (a.scalar_type() != b.scalar_type())
    argError("ERR_DTYPE", "a and b must have the same dtype, got ", dtypeName(a.scalar_type()), " and ", dtypeName(b.scalar_type()));
  if (a.device() != b.device()) argError("ERR_DEVICE", "a and b must be on one device, got ", deviceName(a.device()), " and ", deviceName(b.device()));
  if (a.dim() < 1 || b.dim() < 1) argError("ERR_SHAPE", "a and b must have at least one dimension, got ", shapeString(a.sizes()), " and ", shapeString(b.sizes()));
  int64_t ka = a.size(-1), kb = b.dim() == 1 ? b.size(0) : b.size(-2);
  if (ka != kb) argError("ERR_SHAPE", "inner dimensions differ: a is ", shapeString(a.sizes()), ", b is ", shapeString(b.sizes()));
}

Napi::Value Matmul(const Napi::CallbackInfo& info) {
  const char* fn = "matmul";
  return guarded(info, fn, [&]() -> Napi::Value {
    const at::Tensor& a = tensorArg(info, 0, fn, "a");
    const at::Tensor& b = tensorArg(info, 1, fn, "b");
    checkMatmulPair(a, b);
    return NativeTensor::Wrap(info.Env(), at::matmul(a, b));
  });
}

Napi::Value MatmulAsync(const Napi::CallbackInfo& info) {
  const char* fn = "matmulAsync";
  return guarded(info, fn, [&]() -> Napi::Value {
    at::Tensor a = tensorArg(info, 0, fn, "a");  // copies share storage and keep it alive if JS disposes
    at::Tensor b = tensorArg(info, 1, fn, "b");
    checkMatmulPair(a, b);
    return PromiseWorker<at::Tensor>::Start(
        info.Env(), fn, [a, b]() { return at::matmul(a, b); },
        [](Napi::Env env, at::Tensor& r) -> Napi::Value { return NativeTensor::Wrap(env, std::move(r)); });
  });
}

// benchmarkMatmul(size, minSeconds): repeats an n x n float32 product on a worker until minSeconds pass.
Napi::Value BenchmarkMatmul(const Napi::CallbackInfo& info) {
  const char* fn = "benchmarkMatmul";
  return guarded(info, fn, [&]() -> Napi::Value {
    int64_t n = intArg(info[0], fn, "size", 1, 16384);
    double minSeconds = numberArg(info[1], fn, "minSeconds");
    if (minSeconds < 0 || minSeconds > 3600) argError("ERR_INVALID_ARG", "minSeconds must be in [0, 3600], got ", minSeconds);
    struct Out { int64_t iterations; double seconds; };
    return PromiseWorker<Out>::Start(
        info.Env(), fn,
        [n, minSeconds]() {
          at::NoGradGuard noGrad;
          at::Tensor a = at::randn({n, n}), b = at::randn({n, n});
          auto start = std::chrono::steady_clock::now();
          Out out{0, 0.0};
          do {
            at::Tensor c = at::mm(a, b);
            out.iterations++;
            out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          } while (out.seconds < minSeconds);
          return out;
        },
        [n](Napi::Env env, Out& o) -> Napi::Value {
          Napi::Object r = Napi::Object::New(env);
          r.Set("size", Napi::Number::New(env, static_cast<double>(n)));
          r.Set("iterations", Napi::Number::New(env, static_cast<double>(o.iterations)));
          r.Set("seconds", Napi::Number::New(env, o.seconds));
          r.Set("gflops", Napi::Number::New(env, 2.0 * n * n * n * o.iterations / o.seconds / 1e9));
          return r;
        });
  });
}

Napi::Value Sum(const Napi::CallbackInfo& info) {
  const char* fn = "sum";
  return guarded(info, fn, [&]() -> Napi::Value {
    const at::Tensor& a = tensorArg(info, 0, fn, "a");
    return NativeTensor::Wrap(info.Env(), a.sum());
  });
}

Napi::Value Mul(const Napi::CallbackInfo& info) {
  const char* fn = "mul";
  return guarded(info, fn, [&]() -> Napi::Value {
    const at::Tensor& a = tensorArg(info, 0, fn, "a");
    const at::Tensor& b = tensorArg(info, 1, fn, "b");
    if (a.device() != b.device()) argError("ERR_DEVICE", "a and b must be on one device, got ", deviceName(a.device()), " and ", deviceName(b.device()));
    return NativeTensor::Wrap(info.Env(), a.mul(b));
  });
}

}  // namespace

void registerFactories(Napi::Env env, Napi::Object exports) {
  exports.Set("fromTypedArray", Napi::Function::New(env, FromTypedArray, "fromTypedArray"));
  exports.Set("zeros", Napi::Function::New(env, Filled<Fill::Zeros>, "zeros"));
  exports.Set("ones", Napi::Function::New(env, Filled<Fill::Ones>, "ones"));
  exports.Set("randn", Napi::Function::New(env, Filled<Fill::Randn>, "randn"));
  exports.Set("matmul", Napi::Function::New(env, Matmul, "matmul"));
  exports.Set("matmulAsync", Napi::Function::New(env, MatmulAsync, "matmulAsync"));
  exports.Set("benchmarkMatmul", Napi::Function::New(env, BenchmarkMatmul, "benchmarkMatmul"));
  exports.Set("sum", Napi::Function::New(env, Sum, "sum"));
  exports.Set("mul", Napi::Function::New(env, Mul, "mul"));
}

}  // namespace radkit
