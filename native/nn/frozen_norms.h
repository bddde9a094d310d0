// Batch-norm layers under frozen parameters stay in evaluation mode during training, so a frozen
// part of a model (a pre-trained encoder after `--freeze`) neither moves its running statistics nor
// normalises with batch statistics: it computes exactly what it computed when it was trained.
#pragma once
#include <torch/torch.h>
#include <string>
#include <vector>

namespace radkit {
namespace nn {

// Puts every BatchNorm1d/2d/3d module of `root` whose name starts with one of `prefixes` (the
// parameter-name prefixes given to freeze) into evaluation mode; other modules are not touched.
// Call after root.train(true). Returns how many modules it switched.
int64_t evalFrozenBatchNorms(torch::nn::Module& root, const std::vector<std::string>& prefixes);

}  // namespace nn
}  // namespace radkit
