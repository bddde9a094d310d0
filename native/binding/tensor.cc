#include "tensor.h"

#include <c10/core/GradMode.h>
#include <torch/cuda.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace radkit {

MemoryStats& memoryStats() {
  static MemoryStats stats;
  return stats;
}

namespace {
Napi::FunctionReference* constructor = nullptr;
}

// ---------------------------------------------------------------- NativeTensor

Napi::Function NativeTensor::Define(Napi::Env env) {
  Napi::Function fn = DefineClass(
      env, "NativeTensor",
      {
          InstanceMethod("shape", &NativeTensor::Shape),
          InstanceMethod("dtype", &NativeTensor::Dtype),
          InstanceMethod("device", &NativeTensor::Device),
          InstanceMethod("isDisposed", &NativeTensor::Disposed),
          InstanceMethod("nbytes", &NativeTensor::Nbytes),
          InstanceMethod("requiresGrad", &NativeTensor::RequiresGrad),
          InstanceMethod("setRequiresGrad", &NativeTensor::SetRequiresGrad),
          InstanceMethod("grad", &NativeTensor::Grad),
          InstanceMethod("backward", &NativeTensor::Backward),
          InstanceMethod("toArray", &NativeTensor::ToArray),
          InstanceMethod("to", &NativeTensor::To),
          InstanceMethod("dispose", &NativeTensor::Dispose),
      });
  constructor = new Napi::FunctionReference(Napi::Persistent(fn));
  return fn;
}

Napi::Object NativeTensor::Wrap(Napi::Env env, at::Tensor tensor) {
  Napi::Object obj = constructor->New({});
  NativeTensor* self = Napi::ObjectWrap<NativeTensor>::Unwrap(obj);
  self->bytes_ = static_cast<int64_t>(tensor.numel()) * static_cast<int64_t>(tensor.element_size());
  self->tensor_ = std::move(tensor);
  self->disposed_ = false;
  auto& stats = memoryStats();
  stats.liveTensors++;
  stats.liveBytes += self->bytes_;
  stats.totalCreated++;
  if (self->tensor_.device().is_cpu()) Napi::MemoryManagement::AdjustExternalMemory(env, self->bytes_);
  return obj;
}

bool NativeTensor::IsInstance(Napi::Value v) {
  return v.IsObject() && constructor != nullptr && v.As<Napi::Object>().InstanceOf(constructor->Value());
}

NativeTensor::NativeTensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeTensor>(info) {}

NativeTensor::~NativeTensor() {
  // Safety net when neither dispose() nor the JS FinalizationRegistry ran first.
  if (!disposed_) release(Env());
}

void NativeTensor::release(Napi::Env env) {
  if (disposed_) return;
  disposed_ = true;
  auto& stats = memoryStats();
  stats.liveTensors--;
  stats.liveBytes -= bytes_;
  if (tensor_.defined() && tensor_.device().is_cpu()) Napi::MemoryManagement::AdjustExternalMemory(env, -bytes_);
  tensor_ = at::Tensor();
}

const at::Tensor& NativeTensor::tensor(const char* fn) const {
  if (disposed_) fail(ErrorKind::Disposed, "ERR_DISPOSED", "tensor was disposed; it can no longer be used");
  return tensor_;
}

Napi::Value NativeTensor::Shape(const Napi::CallbackInfo& info) {
  return guarded(info, "Tensor.shape", [&]() -> Napi::Value {
    auto sizes = tensor("Tensor.shape").sizes();
    Napi::Array arr = Napi::Array::New(info.Env(), sizes.size());
    for (size_t i = 0; i < sizes.size(); ++i) arr.Set(i, Napi::Number::New(info.Env(), static_cast<double>(sizes[i])));
    return arr;
  });
}

Napi::Value NativeTensor::Dtype(const Napi::CallbackInfo& info) {
  return guarded(info, "Tensor.dtype", [&]() -> Napi::Value {
    return Napi::String::New(info.Env(), dtypeName(tensor("Tensor.dtype").scalar_type()));
  });
}

Napi::Value NativeTensor::Device(const Napi::CallbackInfo& info) {
  return guarded(info, "Tensor.device", [&]() -> Napi::Value {
    return Napi::String::New(info.Env(), deviceName(tensor("Tensor.device").device()));
  });
}

Napi::Value NativeTensor::Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), disposed_); }

Napi::Value NativeTensor::Nbytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(disposed_ ? 0 : bytes_));
}

Napi::Value NativeTensor::RequiresGrad(const Napi::CallbackInfo& info) {
  return guarded(info, "Tensor.requiresGrad", [&]() -> Napi::Value {
    return Napi::Boolean::New(info.Env(), tensor("Tensor.requiresGrad").requires_grad());
  });
}

Napi::Value NativeTensor::SetRequiresGrad(const Napi::CallbackInfo& info) {
  return guarded(info, "Tensor.requiresGrad", [&]() -> Napi::Value {
    const at::Tensor& t = tensor("Tensor.requiresGrad");
    bool flag = boolArg(info[0], "Tensor.requiresGrad", "value", false);
    if (flag && !at::isFloatingType(t.scalar_type()))
      argError("ERR_DTYPE", "only floating-point tensors can require gradients; this tensor is ", dtypeName(t.scalar_type()));
    if (!t.is_leaf()) argError("ERR_INVALID_ARG", "requiresGrad can only be changed on leaf tensors (not on results of operations)");
    const_cast<at::Tensor&>(t).requires_grad_(flag);
    return info.Env().Undefined();
  });
}

Napi::Value NativeTensor::Grad(const Napi::CallbackInfo& info) {
  return guarded(info, "Tensor.grad", [&]() -> Napi::Value {
    const at::Tensor& g = tensor("Tensor.grad").grad();
    if (!g.defined()) return info.Env().Null();
    return Wrap(info.Env(), g.detach());
  });
}

Napi::Value NativeTensor::Backward(const Napi::CallbackInfo& info) {
  const char* fn = "Tensor.backward";
  return guarded(info, fn, [&]() -> Napi::Value {
    const at::Tensor& t = tensor(fn);
    if (!t.requires_grad())
      argError("ERR_NO_GRAD", "this tensor does not require gradients (no input had requiresGrad: true, or it was made under noGrad)");
    at::Tensor gradOut;
    if (info.Length() > 0 && !info[0].IsUndefined() && !info[0].IsNull()) {
      gradOut = tensorArg(info, 0, fn, "gradOutput");
      if (gradOut.sizes() != t.sizes())
        argError("ERR_SHAPE", "gradOutput must have the tensor's shape ", shapeString(t.sizes()), ", got ", shapeString(gradOut.sizes()));
      if (gradOut.device() != t.device())
        argError("ERR_DEVICE", "gradOutput must be on ", deviceName(t.device()), ", got ", deviceName(gradOut.device()));
      gradOut = gradOut.to(t.scalar_type());
    } else if (t.numel() != 1) {
      argError("ERR_INVALID_ARG", "backward() without gradOutput needs a single-element tensor, got shape ", shapeString(t.sizes()));
    }
    t.backward(gradOut);
    return info.Env().Undefined();
  });
}

Napi::Value NativeTensor::ToArray(const Napi::CallbackInfo& info) {
  return guarded(info, "Tensor.toArray", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    at::Tensor t = tensor("Tensor.toArray").detach().to(at::kCPU);
    at::ScalarType st = t.scalar_type();
    if (st == at::kHalf || st == at::kBFloat16) t = t.to(at::kFloat);  // JS has no 16-bit float array on Node 20
    if (st == at::kBool) t = t.to(at::kByte);
    t = t.contiguous();
    size_t n = static_cast<size_t>(t.numel());
    size_t nbytes = n * t.element_size();
    Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, nbytes);
    if (nbytes) std::memcpy(buf.Data(), t.data_ptr(), nbytes);
    switch (t.scalar_type()) {
      case at::kFloat: return Napi::Float32Array::New(env, n, buf, 0);
      case at::kDouble: return Napi::Float64Array::New(env, n, buf, 0);
      case at::kInt: return Napi::Int32Array::New(env, n, buf, 0);
      case at::kLong: return Napi::BigInt64Array::New(env, n, buf, 0);
      case at::kByte: return Napi::Uint8Array::New(env, n, buf, 0);
      default: argError("ERR_DTYPE", "toArray does not support dtype ", dtypeName(st));
    }
  });
}

Napi::Value NativeTensor::To(const Napi::CallbackInfo& info) {
  const char* fn = "Tensor.to";
  return guarded(info, fn, [&]() -> Napi::Value {
    const at::Tensor& t = tensor(fn);
    if (!info[0].IsString()) argError("ERR_INVALID_ARG", "target must be a dtype or device name string, got ", describeJs(info[0]));
    std::string s = info[0].As<Napi::String>().Utf8Value();
    at::ScalarType st;
    if (parseDtypeName(s, &st)) {
      checkIntegerCast(t, st, fn, /*wholeOnly=*/false);  // fractions truncate as in PyTorch; wrap-around is refused
      return Wrap(info.Env(), t.to(st));
    }
    at::Device dev = deviceArg(info[0], fn, "target");
    return Wrap(info.Env(), t.to(dev));
  });
}

Napi::Value NativeTensor::Dispose(const Napi::CallbackInfo& info) {
  release(info.Env());
  return info.Env().Undefined();
}

// ---------------------------------------------------------------- argument parsing

std::string describeJs(Napi::Value v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsBoolean()) return std::string("boolean ") + (v.As<Napi::Boolean>().Value() ? "true" : "false");
  if (v.IsNumber()) {
    std::ostringstream os;
    os << "number " << v.As<Napi::Number>().DoubleValue();
    return os.str();
  }
  if (v.IsString()) return "string '" + v.As<Napi::String>().Utf8Value() + "'";
  if (v.IsBigInt()) return "bigint";
  if (v.IsTypedArray()) return "typed array";
  if (v.IsArray()) return "array";
  if (v.IsFunction()) return "function";
  if (NativeTensor::IsInstance(v)) return "tensor";
  return "object";
}

const at::Tensor& tensorArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  Napi::Value v = i < info.Length() ? info[i] : info.Env().Undefined();
  if (!NativeTensor::IsInstance(v)) argError("ERR_INVALID_ARG", name, " must be a Tensor, got ", describeJs(v));
  NativeTensor* nt = Napi::ObjectWrap<NativeTensor>::Unwrap(v.As<Napi::Object>());
  if (nt->isDisposed()) fail(ErrorKind::Disposed, "ERR_DISPOSED", name, " was disposed; it can no longer be used");
  return nt->tensor(fn);
}

std::vector<int64_t> shapeArg(Napi::Value v, const char* fn, const char* name) {
  if (!v.IsArray()) argError("ERR_INVALID_ARG", name, " must be an array of non-negative integers, got ", describeJs(v));
  Napi::Array arr = v.As<Napi::Array>();
  if (arr.Length() > 16) argError("ERR_SHAPE", name, " may have at most 16 dimensions, got ", arr.Length());
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value d = arr.Get(i);
    double x = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : std::nan("");
    if (!d.IsNumber() || !std::isfinite(x) || x < 0 || x != std::floor(x) || x > 9007199254740991.0)
      argError("ERR_SHAPE", name, "[", i, "] must be a non-negative integer, got ", describeJs(d));
    shape.push_back(static_cast<int64_t>(x));
  }
  return shape;
}

at::ScalarType dtypeArg(Napi::Value v, const char* fn, const char* name, at::ScalarType fallback) {
  if (v.IsUndefined() || v.IsNull()) return fallback;
  at::ScalarType t;
  if (!v.IsString() || !parseDtypeName(v.As<Napi::String>().Utf8Value(), &t))
    argError("ERR_DTYPE", name, " must be one of float32|float64|float16|bfloat16|int32|int64|bool|uint8, got ", describeJs(v));
  return t;
}

at::Device deviceArg(Napi::Value v, const char* fn, const char* name) {
  if (v.IsUndefined() || v.IsNull()) return at::Device(at::kCPU);
  at::Device d(at::kCPU);
  if (!v.IsString() || !parseDeviceName(v.As<Napi::String>().Utf8Value(), &d))
    argError("ERR_DEVICE", name, " must be 'cpu', 'cuda' or 'cuda:N', got ", describeJs(v));
  if (d.is_cuda()) {
    int64_t count = torch::cuda::is_available() ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
    if (count == 0)
      argError("ERR_DEVICE", name, " is ", deviceName(d), " but CUDA is not available: ",
               at::hasCUDA() ? "this LibTorch has CUDA but no device is visible (no GPU, its driver not loaded, or CUDA_VISIBLE_DEVICES hides it)"
                             : "this radkit binary's LibTorch was built without CUDA (a CPU build; a CUDA LibTorch and `radkit build` give a CUDA one)",
               "; `radkit doctor` lists the usable devices");
    if (d.index() >= count)
      argError("ERR_DEVICE", name, " is ", deviceName(d), " but only ", count, " CUDA device(s) exist (cuda:0", count > 1 ? " to cuda:" + std::to_string(count - 1) : std::string(), ")");
  }
  return d;
}

bool boolArg(Napi::Value v, const char* fn, const char* name, bool fallback) {
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsBoolean()) argError("ERR_INVALID_ARG", name, " must be a boolean, got ", describeJs(v));
  return v.As<Napi::Boolean>().Value();
}

double numberArg(Napi::Value v, const char* fn, const char* name) {
  if (!v.IsNumber()) argError("ERR_INVALID_ARG", name, " must be a number, got ", describeJs(v));
  double x = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(x)) argError("ERR_NOT_FINITE", name, " must be finite, got ", x);
  return x;
}

int64_t intArg(Napi::Value v, const char* fn, const char* name, int64_t min, int64_t max) {
  double x = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : std::nan("");
  if (!v.IsNumber() || !std::isfinite(x) || x != std::floor(x))
    argError("ERR_INVALID_ARG", name, " must be an integer, got ", describeJs(v));
  if (x < static_cast<double>(min) || x > static_cast<double>(max))
    argError("ERR_INVALID_ARG", name, " must be in [", min, ", ", max, "], got ", x);
  return static_cast<int64_t>(x);
}

Napi::Object optionsArg(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  if (i >= info.Length() || info[i].IsUndefined() || info[i].IsNull()) return Napi::Object::New(info.Env());
  if (!info[i].IsObject() || info[i].IsArray()) argError("ERR_INVALID_ARG", "options must be an object, got ", describeJs(info[i]));
  return info[i].As<Napi::Object>();
}

}  // namespace radkit
