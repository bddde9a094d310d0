#include "frozen_norms.h"

namespace radkit {
namespace nn {

namespace {
bool isBatchNorm(const torch::nn::Module& m) {
  return dynamic_cast<const torch::nn::BatchNorm1dImpl*>(&m) || dynamic_cast<const torch::nn::BatchNorm2dImpl*>(&m) ||
         dynamic_cast<const torch::nn::BatchNorm3dImpl*>(&m);
}

// Prefixes name parameters ("visual." or "visual.layer1.0.bn1.weight"): a module is under one when
// its parameter names ("<module>.weight") would be.
bool under(const std::string& module, const std::vector<std::string>& prefixes) {
  const std::string asParent = module + ".";
  for (const auto& p : prefixes)
    if (asParent.rfind(p, 0) == 0 || p.rfind(asParent, 0) == 0) return true;
  return false;
}
}  // namespace

int64_t evalFrozenBatchNorms(torch::nn::Module& root, const std::vector<std::string>& prefixes) {
  if (prefixes.empty()) return 0;
  int64_t n = 0;
  for (auto& item : root.named_modules("", /*include_self=*/false)) {
    if (!isBatchNorm(*item.value()) || !under(item.key(), prefixes)) continue;
    item.value()->eval();
    ++n;
  }
  return n;
}

}  // namespace nn
}  // namespace radkit
