// Process-wide state: memory accounting, seeds, threads, grad mode, build facts for radkit.info().
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#include <dlfcn.h>
#include <torch/cuda.h>
#include <torch/version.h>
#ifdef RADKIT_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <cuda_runtime_api.h>
#endif

#include "bindings.h"
#include "tensor.h"
#include "threads.h"

namespace radkit {
namespace {

Napi::Value Memory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto& s = memoryStats();
  Napi::Object o = Napi::Object::New(env);
  o.Set("liveTensors", Napi::Number::New(env, static_cast<double>(s.liveTensors.load())));
  o.Set("liveBytes", Napi::Number::New(env, static_cast<double>(s.liveBytes.load())));
  o.Set("totalCreated", Napi::Number::New(env, static_cast<double>(s.totalCreated.load())));
  return o;
}

Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  return guarded(info, "manualSeed", [&]() -> Napi::Value {
    int64_t seed = intArg(info[0], "manualSeed", "seed", 0, 9007199254740991LL);
    at::manual_seed(static_cast<uint64_t>(seed));
    return info.Env().Undefined();
  });
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  return guarded(info, "setNumThreads", [&]() -> Napi::Value {
    setProcessThreads(static_cast<int>(intArg(info[0], "setNumThreads", "n", 1, 1024)));
    return info.Env().Undefined();
  });
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), at::get_num_threads()); }

Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  return guarded(info, "setGradEnabled", [&]() -> Napi::Value {
    bool previous = c10::GradMode::is_enabled();
    c10::GradMode::set_enabled(boolArg(info[0], "setGradEnabled", "enabled", true));
    return Napi::Boolean::New(info.Env(), previous);
  });
}

Napi::Value IsGradEnabled(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), c10::GradMode::is_enabled()); }

std::string libraryPathOf(const void* symbol) {
  Dl_info dl;
  if (dladdr(symbol, &dl) && dl.dli_fname) return dl.dli_fname;
  return "";
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("torchVersion", std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." + std::to_string(TORCH_VERSION_PATCH));
  o.Set("torchLibrary", libraryPathOf(reinterpret_cast<const void*>(&at::get_num_threads)));
  o.Set("addonPath", libraryPathOf(reinterpret_cast<const void*>(&Info)));
#ifdef RADKIT_WITH_CUDA
  o.Set("builtWithCuda", true);
#else
  o.Set("builtWithCuda", false);
#endif
  bool cuda = torch::cuda::is_available();
  o.Set("cudaAvailable", cuda);
  o.Set("cudaDevices", Napi::Number::New(env, cuda ? static_cast<double>(torch::cuda::device_count()) : 0.0));
  o.Set("threads", at::get_num_threads());
  o.Set("parallelInfo", at::get_parallel_info());
  o.Set("cxx11Abi", static_cast<bool>(_GLIBCXX_USE_CXX11_ABI));
  o.Set("napiVersion", NAPI_VERSION);
  return o;
}

// CUDA work is queued asynchronously: timing or host-side waits need an explicit barrier.
Napi::Value CudaSynchronize(const Napi::CallbackInfo& info) {
  return guarded(info, "cudaSynchronize", [&]() -> Napi::Value {
#ifdef RADKIT_WITH_CUDA
    if (torch::cuda::is_available()) c10::cuda::device_synchronize();
#endif
    return info.Env().Undefined();
  });
}

// Bytes held by LibTorch's CUDA caching allocator on the current device (null without CUDA);
// `resetPeak` starts a new peak window, so a benchmark can read one call's peak.
Napi::Value CudaMemory(const Napi::CallbackInfo& info) {
  return guarded(info, "cudaMemory", [&]() -> Napi::Value {
    bool resetPeak = boolArg(info[0], "cudaMemory", "resetPeak", false);
#ifdef RADKIT_WITH_CUDA
    if (torch::cuda::is_available()) {
      // The caching allocator is set up lazily, on the first CUDA allocation.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 6)
      at::globalContext().lazyInitDevice(c10::DeviceType::CUDA);
#else
      at::globalContext().lazyInitCUDA();
#endif
      c10::DeviceIndex device = c10::cuda::current_device();
      auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device);
      const size_t all = 0;  // StatType::AGGREGATE
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("allocatedBytes", static_cast<double>(stats.allocated_bytes[all].current));
      o.Set("peakAllocatedBytes", static_cast<double>(stats.allocated_bytes[all].peak));
      o.Set("reservedBytes", static_cast<double>(stats.reserved_bytes[all].current));
      if (resetPeak) c10::cuda::CUDACachingAllocator::resetPeakStats(device);
      return o;
    }
#endif
    (void)resetPeak;
    return info.Env().Null();
  });
}

// devices() -> [{ name, usable, detail?, reason? }]: the CPU, then each CUDA device, or one 'cuda'
// entry saying why none can be used (radkit doctor prints them).
Napi::Value Devices(const Napi::CallbackInfo& info) {
  return guarded(info, "devices", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    auto add = [&](const std::string& name, bool usable, const std::string& detail, const std::string& reason) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", name);
      o.Set("usable", usable);
      if (!detail.empty()) o.Set("detail", detail);
      if (!reason.empty()) o.Set("reason", reason);
      out.Set(out.Length(), o);
    };
    add("cpu", true, std::to_string(at::get_num_threads()) + " threads", "");
    const std::string torch = std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." + std::to_string(TORCH_VERSION_PATCH);
    if (!at::hasCUDA()) {
      add("cuda", false, "", "this radkit binary's LibTorch " + torch + " was built without CUDA (a CPU build); a CUDA LibTorch (Python torch with CUDA) and `radkit build` make a CUDA binary");
      return out;
    }
    const int64_t count = torch::cuda::is_available() ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
    if (count == 0) {
      add("cuda", false, "", "LibTorch " + torch + " has CUDA but no device is visible (no GPU, its driver not loaded, or CUDA_VISIBLE_DEVICES hides it)");
      return out;
    }
    for (int64_t i = 0; i < count; ++i) {
      std::string detail;
#ifdef RADKIT_WITH_CUDA
      cudaDeviceProp prop;
      if (cudaGetDeviceProperties(&prop, static_cast<int>(i)) == cudaSuccess) {
        char mem[32];
        std::snprintf(mem, sizeof mem, "%.1f", static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
        detail = std::string(prop.name) + ", " + mem + " GiB, compute capability " + std::to_string(prop.major) + "." + std::to_string(prop.minor);
      }
#else
      detail = "radkit's own CUDA kernels are not compiled into this binary: its ops fail on CUDA tensors (rebuild against this LibTorch)";
#endif
      add("cuda:" + std::to_string(i), true, detail, "");
    }
    return out;
  });
}

// checkDevice(name) -> the device's canonical name ('cuda' -> 'cuda:0'),
// or ERR_DEVICE naming the device and why it cannot be used.
Napi::Value CheckDevice(const Napi::CallbackInfo& info) {
  return guarded(info, "checkDevice", [&]() -> Napi::Value { return Napi::String::New(info.Env(), deviceName(deviceArg(info[0], "checkDevice", "device"))); });
}

}  // namespace

void registerRuntime(Napi::Env env, Napi::Object exports) {
  exports.Set("memory", Napi::Function::New(env, Memory, "memory"));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed, "manualSeed"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads, "getNumThreads"));
  exports.Set("setGradEnabled", Napi::Function::New(env, SetGradEnabled, "setGradEnabled"));
  exports.Set("isGradEnabled", Napi::Function::New(env, IsGradEnabled, "isGradEnabled"));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("cudaSynchronize", Napi::Function::New(env, CudaSynchronize, "cudaSynchronize"));
  exports.Set("cudaMemory", Napi::Function::New(env, CudaMemory, "cudaMemory"));
  exports.Set("devices", Napi::Function::New(env, Devices, "devices"));
  exports.Set("checkDevice", Napi::Function::New(env, CheckDevice, "checkDevice"));
  exports.Set("setErrorClasses", Napi::Function::New(env, [](const Napi::CallbackInfo& i) -> Napi::Value {
    setErrorClasses(i);
    return i.Env().Undefined();
  }, "setErrorClasses"));
}

}  // namespace radkit
