#include "placement.h"

#include <ATen/autocast_mode.h>
#include <c10/util/Exception.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/version.h>
#ifdef RADKIT_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <cmath>

#include "../core/checks.h"
#include "../core/errors.h"

// LibTorch 2.4 replaced the per-device autocast functions (set_cpu_enabled, set_autocast_gpu_dtype)
// with ones taking the device type.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define RADKIT_AUTOCAST_BY_DEVICE_TYPE 1
#endif

namespace radkit {

at::Device deviceOf(const torch::nn::Module& m) {
  for (const auto& p : m.parameters()) return p.device();
  for (const auto& b : m.buffers()) return b.device();
  return at::Device(at::kCPU);
}

at::ScalarType floatDtypeOf(const torch::nn::Module& m) {
  for (const auto& p : m.parameters())
    if (at::isFloatingType(p.scalar_type())) return p.scalar_type();
  return at::kFloat;
}

namespace {

// The image tensor as `dtype` on its (new) device: uint8 grey levels scaled to [0, 1].
at::Tensor widenImages(const at::Tensor& x, at::ScalarType dtype) {
  if (x.scalar_type() == at::kByte) return x.to(dtype).mul_(1.0 / 255.0);
  return x.scalar_type() == dtype ? x : x.to(dtype);
}

}  // namespace

Batch batchTo(const Batch& b, at::Device device, at::ScalarType imageDtype) {
  Batch out = b;
  std::vector<at::Tensor*> all{&out.images, &out.tokens, &out.labels};
  for (auto& [k, t] : out.extras) all.push_back(&t);
  bool moving = false;
  for (at::Tensor* t : all)
    if (t->defined() && t->device() != device) moving = true;
  if (moving && device.is_cuda()) {
#ifdef RADKIT_WITH_CUDA
    // Pinned staging buffers and a side stream: the copies do not wait behind (or hold up) the
    // compute stream's queue; the compute stream waits for them through an event, and each copy is
    // recorded as used there so the caching allocator does not hand its memory out early.
    c10::cuda::CUDAGuard guard(device);
    c10::cuda::CUDAStream compute = c10::cuda::getCurrentCUDAStream(device.index());
    c10::cuda::CUDAStream copy = c10::cuda::getStreamFromPool(false, device.index());
    std::vector<at::Tensor*> moved;
    {
      c10::cuda::CUDAStreamGuard onCopy(copy);
      for (at::Tensor* t : all) {
        if (!t->defined() || t->device() == device) continue;
        at::Tensor src = t->is_cpu() && !t->is_pinned() ? t->contiguous().pin_memory() : *t;
        *t = src.to(device, /*non_blocking=*/true);
        moved.push_back(t);
      }
    }
    at::cuda::CUDAEvent copied;
    copied.record(copy);
    copied.block(compute);
    for (at::Tensor* t : moved) t->record_stream(compute);
#else
    argError("ERR_DEVICE", "the batch cannot move to ", deviceName(device), ": this radkit binary was built without CUDA");
#endif
  } else if (moving) {
    for (at::Tensor* t : all)
      if (t->defined() && t->device() != device) *t = t->to(device);
  }
  if (out.images.defined()) out.images = widenImages(out.images, imageDtype);
  return out;
}

void optimizerStateTo(torch::optim::Optimizer& opt, at::Device device, std::optional<at::ScalarType> dtype) {
  auto move = [&](const at::Tensor& t) -> at::Tensor {
    if (!t.defined()) return t;
    if (dtype && at::isFloatingType(t.scalar_type())) return t.to(device, *dtype);
    return t.to(device);
  };
  for (auto& [key, state] : opt.state()) {
    if (auto* s = dynamic_cast<torch::optim::AdamParamState*>(state.get())) {
      s->exp_avg(move(s->exp_avg()));
      s->exp_avg_sq(move(s->exp_avg_sq()));
      if (s->max_exp_avg_sq().defined()) s->max_exp_avg_sq(move(s->max_exp_avg_sq()));
    } else if (auto* w = dynamic_cast<torch::optim::AdamWParamState*>(state.get())) {
      w->exp_avg(move(w->exp_avg()));
      w->exp_avg_sq(move(w->exp_avg_sq()));
      if (w->max_exp_avg_sq().defined()) w->max_exp_avg_sq(move(w->max_exp_avg_sq()));
    } else {
      fail(ErrorKind::Native, "ERR_INTERNAL", "optimizerStateTo: an optimizer state of an unknown kind");
    }
  }
}

void saveOnCpu(const torch::nn::Module& m, torch::serialize::OutputArchive& a) {
  auto cpu = [](const at::Tensor& t) { return t.is_cpu() ? t : t.detach().to(at::kCPU).requires_grad_(t.requires_grad()); };
  for (const auto& p : m.named_parameters(/*recurse=*/false)) a.write(p.key(), cpu(p.value()));
  for (const auto& b : m.named_buffers(/*recurse=*/false)) a.write(b.key(), cpu(b.value()), /*is_buffer=*/true);
  for (const auto& c : m.named_children()) {
    if (!c.value()->is_serializable()) continue;
    torch::serialize::OutputArchive child(a.compilation_unit());
    saveOnCpu(*c.value(), child);
    a.write(c.key(), child);
  }
}

bool parsePrecision(const std::string& s, Precision* out) {
  if (s == "float32") *out = Precision::Float32;
  else if (s == "bfloat16") *out = Precision::BFloat16;
  else if (s == "float16") *out = Precision::Float16;
  else return false;
  return true;
}

const char* precisionName(Precision p) {
  switch (p) {
    case Precision::BFloat16: return "bfloat16";
    case Precision::Float16: return "float16";
    default: return "float32";
  }
}

at::ScalarType autocastDtype(Precision p) {
  return p == Precision::BFloat16 ? at::kBFloat16 : p == Precision::Float16 ? at::kHalf : at::kFloat;
}

void checkPrecision(Precision p, at::Device device, at::ScalarType paramDtype, const std::string& system) {
  if (p == Precision::Float32) return;
  if (p == Precision::Float16 && !device.is_cuda())
    argError("ERR_INVALID_ARG", "precision 'float16' (with loss scaling) runs on CUDA only; this ", system, " model is on ", deviceName(device),
             ": use 'bfloat16' or 'float32' there");
  if (paramDtype != at::kFloat)
    argError("ERR_INVALID_ARG", "precision '", precisionName(p), "' keeps float32 master weights, but this ", system, " model's parameters are ", dtypeName(paramDtype),
             ": use precision 'float32' with ", dtypeName(paramDtype), " weights");
}

AutocastScope::AutocastScope(at::Device device, Precision p) {
  if (p == Precision::Float32) return;
  const at::ScalarType dtype = autocastDtype(p);
  cuda_ = device.is_cuda();
  const at::DeviceType type = cuda_ ? at::kCUDA : at::kCPU;
#ifdef RADKIT_AUTOCAST_BY_DEVICE_TYPE
  previousEnabled_ = at::autocast::is_autocast_enabled(type);
  previousDtype_ = at::autocast::get_autocast_dtype(type);
  at::autocast::set_autocast_enabled(type, true);
  at::autocast::set_autocast_dtype(type, dtype);
#else
  (void)type;
  if (cuda_) {
    previousEnabled_ = at::autocast::is_enabled();
    previousDtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    previousEnabled_ = at::autocast::is_cpu_enabled();
    previousDtype_ = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
  at::autocast::increment_nesting();
  active_ = true;
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#ifdef RADKIT_AUTOCAST_BY_DEVICE_TYPE
  const at::DeviceType type = cuda_ ? at::kCUDA : at::kCPU;
  at::autocast::set_autocast_enabled(type, previousEnabled_);
  at::autocast::set_autocast_dtype(type, previousDtype_);
#else
  if (cuda_) {
    at::autocast::set_enabled(previousEnabled_);
    at::autocast::set_autocast_gpu_dtype(previousDtype_);
  } else {
    at::autocast::set_cpu_enabled(previousEnabled_);
    at::autocast::set_autocast_cpu_dtype(previousDtype_);
  }
#endif
}

bool LossScaler::unscale(const std::vector<at::Tensor>& params) const {
  bool finite = true;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    at::Tensor g = p.grad().detach();
    g.mul_(1.0 / scale);
    if (finite && !at::isfinite(g).all().item<bool>()) finite = false;
  }
  return finite;
}

void LossScaler::update(bool overflowed) {
  if (overflowed) {
    scale *= backoff;
    goodSteps = 0;
  } else if (++goodSteps >= growthInterval) {
    scale *= growth;
    goodSteps = 0;
  }
}

std::string describeBatch(const Batch& b) {
  std::string out;
  auto one = [&](const char* name, const at::Tensor& t) {
    if (!t.defined()) return;
    out += (out.empty() ? "" : ", ") + std::string(name) + " " + shapeString(t.sizes()) + " " + dtypeName(t.scalar_type());
  };
  one("images", b.images);
  one("tokens", b.tokens);
  one("labels", b.labels);
  for (const auto& [k, t] : b.extras) one(("extras." + k).c_str(), t);
  return out.empty() ? "an empty batch" : out;
}

void releaseCachedDeviceMemory(at::Device device) {
#ifdef RADKIT_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
  (void)device;
}

}  // namespace radkit
