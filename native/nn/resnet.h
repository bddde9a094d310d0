// ResNet visual extractor (BasicBlock or Bottleneck, configurable widths and depths) as a
// torch::nn module. Patch features come from the last stage: [N, C, h, w]. Parameter names follow
// torchvision's (conv1, bn1, layer1.0.conv1, ..., layer1.0.conv3 in bottlenecks) so user-supplied
// ImageNet weights (resnet18/34 basic, resnet50/101/152 bottleneck) can be loaded by name.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include <vector>

namespace radkit {
namespace nn {

enum class ResNetBlock { kBasic, kBottleneck };

class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(BasicBlock);

// torchvision's Bottleneck (ResNet v1.5: the stride sits on the 3x3 conv): 1x1 in -> planes,
// 3x3 planes -> planes, 1x1 planes -> planes * kExpansion.
class BottleneckImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 4;
  BottleneckImpl(int64_t in, int64_t planes, int64_t stride);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(Bottleneck);

class ResNetImpl : public torch::nn::Module {
 public:
  // widths: stem and per-stage channels (4 stages; a bottleneck stage's "planes", its output being 4x
  // that); blocks: blocks per stage; inChannels 1 (grey) or 3.
  ResNetImpl(const std::vector<int64_t>& widths, const std::vector<int64_t>& blocks, int64_t inChannels, ResNetBlock block = ResNetBlock::kBasic);
  at::Tensor forward(const at::Tensor& x);  // [N, in, H, W] -> [N, outChannels(), H/32, W/32]
  int64_t outChannels() const { return outChannels_; }

  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  std::vector<torch::nn::Sequential> stages;

 private:
  int64_t outChannels_;
};
TORCH_MODULE(ResNet);

// Convolution weights of that ResNet (batch-norm affine terms left out): the size check's estimate.
double resnetParameters(const std::vector<int64_t>& widths, const std::vector<int64_t>& blocks, int64_t inChannels, ResNetBlock block);

}  // namespace nn
}  // namespace radkit
