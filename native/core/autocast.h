// radkit's own ops (native/ops) are not on LibTorch's autocast op lists. Under autocast (mixed-precision
// training: native/models/placement.h's AutocastScope) their inputs come from autocast ops in bfloat16
// or float16, mixed with float32 ones; they meet at one dtype before the op: float32 on the CPU (where
// the ops take float32 and float64, as autocast's float32 list), the widest of them on CUDA (where the
// kernels take the half types). Outside autocast, or with no half-precision input, nothing changes.
#pragma once
#include <ATen/ATen.h>

#include <vector>

namespace radkit {

// The inputs as the op should take them (undefined and non-floating tensors pass through).
std::vector<at::Tensor> autocastOpInputs(std::vector<at::Tensor> inputs);

}  // namespace radkit
