// Optimizer::state_ is keyed by the parameter's TensorImpl: as its printed address (a string) in
// LibTorch 1.x and as the pointer itself in newer releases. stateKey builds whichever key this build
// uses (Key = the key type of torch::optim::Optimizer::state()).
#pragma once
#include <ATen/ATen.h>

#include <sstream>
#include <string>
#include <type_traits>

namespace radkit {
namespace nn {

template <typename Key>
Key stateKey(const at::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream s;
    s << p.unsafeGetTensorImpl();
    return s.str();
  } else {
    return reinterpret_cast<Key>(p.unsafeGetTensorImpl());
  }
}

}  // namespace nn
}  // namespace radkit
