#include "resnet.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>

#include "distributed.h"

namespace radkit {
namespace nn {

namespace {
torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).bias(false));
}
}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t in, int64_t out, int64_t stride) {
  conv1 = register_module("conv1", conv(in, out, 3, stride, 1));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(out));
  conv2 = register_module("conv2", conv(out, out, 3, 1, 1));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(out));
  if (stride != 1 || in != out) {
    downsample = register_module("downsample", torch::nn::Sequential(conv(in, out, 1, stride, 0), torch::nn::BatchNorm2d(out)));
  }
}

// Batch norms through nn::batchNorm: synchronised over the ranks in data-parallel training.
at::Tensor BasicBlockImpl::forward(const at::Tensor& x) {
  at::Tensor y = at::relu(batchNorm(bn1, conv1->forward(x)));
  y = batchNorm(bn2, conv2->forward(y));
  return at::relu(y + (downsample ? forwardSyncingNorms(downsample, x) : x));
}

ResNetImpl::ResNetImpl(const std::vector<int64_t>& widths, const std::vector<int64_t>& blocks, int64_t inChannels) {
  conv1 = register_module("conv1", conv(inChannels, widths[0], 7, 2, 3));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(widths[0]));
  int64_t in = widths[0];
  for (size_t s = 0; s < blocks.size(); ++s) {
    int64_t out = widths[std::min(s + 1, widths.size() - 1)];
    torch::nn::Sequential stage;
    for (int64_t b = 0; b < blocks[s]; ++b) {
      stage->push_back(BasicBlock(in, out, b == 0 && s > 0 ? 2 : 1));
      in = out;
    }
    stages.push_back(register_module("layer" + std::to_string(s + 1), stage));
  }
  outChannels_ = in;
  // He initialisation as torchvision does; BatchNorm starts at identity.
  for (auto& m : modules(false)) {
    if (auto* c = m->as<torch::nn::Conv2d>()) torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
  }
}

at::Tensor ResNetImpl::forward(const at::Tensor& x) {
  at::Tensor y = at::relu(batchNorm(bn1, conv1->forward(x)));
  y = at::max_pool2d(y, {3, 3}, {2, 2}, {1, 1});
  for (auto& s : stages) y = s->forward(y);
  return y;
}

}  // namespace nn
}  // namespace radkit
