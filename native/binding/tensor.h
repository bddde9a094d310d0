// NativeTensor: the JS-visible handle owning one at::Tensor, plus argument parsing shared by all bindings
// (dtype/device/shape names and the allocation guard are napi-free, in core/checks.h).
#pragma once
#include <ATen/ATen.h>
#include <napi.h>

#include <atomic>
#include <string>
#include <vector>

#include "../core/checks.h"
#include "errors.h"

namespace radkit {

class NativeTensor : public Napi::ObjectWrap<NativeTensor> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, at::Tensor tensor);  // new JS handle owning `tensor`
  static bool IsInstance(Napi::Value v);

  explicit NativeTensor(const Napi::CallbackInfo& info);
  ~NativeTensor() override;

  const at::Tensor& tensor(const char* fn) const;  // throws ERR_DISPOSED after dispose()
  bool isDisposed() const { return disposed_; }

 private:
  void release(Napi::Env env);
  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value Dtype(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);
  Napi::Value Nbytes(const Napi::CallbackInfo& info);
  Napi::Value RequiresGrad(const Napi::CallbackInfo& info);
  Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info);
  Napi::Value Grad(const Napi::CallbackInfo& info);
  Napi::Value Backward(const Napi::CallbackInfo& info);
  Napi::Value ToArray(const Napi::CallbackInfo& info);
  Napi::Value To(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  at::Tensor tensor_;
  int64_t bytes_ = 0;
  bool disposed_ = true;
};

// Live-handle accounting behind radkit.memory().
struct MemoryStats {
  std::atomic<int64_t> liveTensors{0};
  std::atomic<int64_t> liveBytes{0};
  std::atomic<int64_t> totalCreated{0};
};
MemoryStats& memoryStats();

// ---- argument parsing (every check names the function, the argument, what was expected and given)
std::string describeJs(Napi::Value v);
const at::Tensor& tensorArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name);
std::vector<int64_t> shapeArg(Napi::Value v, const char* fn, const char* name);
at::ScalarType dtypeArg(Napi::Value v, const char* fn, const char* name, at::ScalarType fallback);
at::Device deviceArg(Napi::Value v, const char* fn, const char* name);
bool boolArg(Napi::Value v, const char* fn, const char* name, bool fallback);
double numberArg(Napi::Value v, const char* fn, const char* name);
int64_t intArg(Napi::Value v, const char* fn, const char* name, int64_t min, int64_t max);
Napi::Object optionsArg(const Napi::CallbackInfo& info, size_t i, const char* fn);

}  // namespace radkit
