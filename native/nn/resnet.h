// ResNet visual extractor (BasicBlock, configurable widths and depths) as a torch::nn module.
// Patch features come from the last stage: [N, C, h, w]. Parameter names follow torchvision's
// (conv1, bn1, layer1.0.conv1, ...) so user-supplied ImageNet weights can be loaded by name.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include <vector>

namespace radkit {
namespace nn {

class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(BasicBlock);

class ResNetImpl : public torch::nn::Module {
 public:
  // widths: stem and per-stage channels (4 stages); blocks: BasicBlocks per stage; inChannels 1 (grey) or 3.
  ResNetImpl(const std::vector<int64_t>& widths, const std::vector<int64_t>& blocks, int64_t inChannels);
  at::Tensor forward(const at::Tensor& x);  // [N, in, H, W] -> [N, widths.back(), H/32, W/32]
  int64_t outChannels() const { return outChannels_; }

  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  std::vector<torch::nn::Sequential> stages;

 private:
  int64_t outChannels_;
};
TORCH_MODULE(ResNet);

}  // namespace nn
}  // namespace radkit
