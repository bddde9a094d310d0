#include "autocast.h"

#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>
#include <torch/version.h>

namespace radkit {
namespace {

bool autocastOn(const at::Device& d) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  return at::autocast::is_autocast_enabled(d.is_cuda() ? at::kCUDA : at::kCPU);
#else
  return d.is_cuda() ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

bool half(at::ScalarType t) { return t == at::kHalf || t == at::kBFloat16; }

}  // namespace

std::vector<at::Tensor> autocastOpInputs(std::vector<at::Tensor> inputs) {
  const at::Tensor* first = nullptr;
  bool anyHalf = false;
  at::ScalarType widest = at::kHalf;
  for (const at::Tensor& t : inputs) {
    if (!t.defined() || !at::isFloatingType(t.scalar_type())) continue;
    widest = first ? at::promote_types(widest, t.scalar_type()) : t.scalar_type();
    if (!first) first = &t;
    anyHalf = anyHalf || half(t.scalar_type());
  }
  if (!first || !anyHalf || !autocastOn(first->device())) return inputs;
  const at::ScalarType target = first->is_cuda() ? widest : at::kFloat;
  for (at::Tensor& t : inputs)
    if (t.defined() && at::isFloatingType(t.scalar_type()) && t.scalar_type() != target) t = t.to(target);
  return inputs;
}

#if TORCH_VERSION_MAJOR < 2
// LibTorch 1.13's CPU autocast has no layer_norm entry, and its CPU kernel refuses a bfloat16 input with
// float32 weights (LibTorch 2 takes mixed dtypes there): under CPU autocast, layer_norm runs in float32
// (autocast's float32 policy, as CUDA autocast does for layer_norm).
namespace {
at::Tensor layerNormInFloat32(const at::Tensor& input, at::IntArrayRef shape, const c10::optional<at::Tensor>& weight, const c10::optional<at::Tensor>& bias, double eps,
                              bool cudnn) {
  c10::impl::ExcludeDispatchKeyGuard noAutocast(c10::DispatchKey::AutocastCPU);
  auto f32 = [](const c10::optional<at::Tensor>& t) -> c10::optional<at::Tensor> {
    if (!t || !t->defined() || !at::isFloatingType(t->scalar_type()) || t->scalar_type() == at::kDouble) return t;
    return t->to(at::kFloat);
  };
  return at::layer_norm(*f32(input), shape, f32(weight), f32(bias), eps, cudnn);
}
}  // namespace

TORCH_LIBRARY_IMPL(aten, AutocastCPU, m) { m.impl("layer_norm", TORCH_FN(layerNormInFloat32)); }
#endif

}  // namespace radkit
