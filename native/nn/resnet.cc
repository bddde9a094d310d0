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

BottleneckImpl::BottleneckImpl(int64_t in, int64_t planes, int64_t stride) {
  const int64_t out = planes * kExpansion;
  conv1 = register_module("conv1", conv(in, planes, 1, 1, 0));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(planes));
  conv2 = register_module("conv2", conv(planes, planes, 3, stride, 1));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(planes));
  conv3 = register_module("conv3", conv(planes, out, 1, 1, 0));
  bn3 = register_module("bn3", torch::nn::BatchNorm2d(out));
  if (stride != 1 || in != out) {
    downsample = register_module("downsample", torch::nn::Sequential(conv(in, out, 1, stride, 0), torch::nn::BatchNorm2d(out)));
  }
}

at::Tensor BottleneckImpl::forward(const at::Tensor& x) {
  at::Tensor y = at::relu(batchNorm(bn1, conv1->forward(x)));
  y = at::relu(batchNorm(bn2, conv2->forward(y)));
  y = batchNorm(bn3, conv3->forward(y));
  return at::relu(y + (downsample ? forwardSyncingNorms(downsample, x) : x));
}

ResNetImpl::ResNetImpl(const std::vector<int64_t>& widths, const std::vector<int64_t>& blocks, int64_t inChannels, ResNetBlock block) {
  conv1 = register_module("conv1", conv(inChannels, widths[0], 7, 2, 3));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(widths[0]));
  int64_t in = widths[0];
  for (size_t s = 0; s < blocks.size(); ++s) {
    const int64_t planes = widths[std::min(s + 1, widths.size() - 1)];
    torch::nn::Sequential stage;
    for (int64_t b = 0; b < blocks[s]; ++b) {
      const int64_t stride = b == 0 && s > 0 ? 2 : 1;
      if (block == ResNetBlock::kBottleneck) {
        stage->push_back(Bottleneck(in, planes, stride));
        in = planes * BottleneckImpl::kExpansion;
      } else {
        stage->push_back(BasicBlock(in, planes, stride));
        in = planes;
      }
    }
    stages.push_back(register_module("layer" + std::to_string(s + 1), stage));
  }
  outChannels_ = in;
  // He initialisation as torchvision does; BatchNorm starts at identity.
  for (auto& m : modules(false)) {
    if (auto* c = m->as<torch::nn::Conv2d>()) torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
  }
}

double resnetParameters(const std::vector<int64_t>& widths, const std::vector<int64_t>& blocks, int64_t inChannels, ResNetBlock block) {
  double n = 49.0 * static_cast<double>(inChannels * widths[0]);
  double in = static_cast<double>(widths[0]);
  for (size_t s = 0; s < blocks.size(); ++s) {
    const double p = static_cast<double>(widths[std::min(s + 1, widths.size() - 1)]);
    for (int64_t b = 0; b < blocks[s]; ++b) {
      const double out = block == ResNetBlock::kBottleneck ? p * BottleneckImpl::kExpansion : p;
      n += block == ResNetBlock::kBottleneck ? in * p + 9.0 * p * p + p * out : 9.0 * in * p + 9.0 * p * p;
      if (b == 0 && (s > 0 || in != out)) n += in * out;  // downsample
      in = out;
    }
  }
  return n;
}

at::Tensor ResNetImpl::forward(const at::Tensor& x) {
  at::Tensor y = at::relu(batchNorm(bn1, conv1->forward(x)));
  y = at::max_pool2d(y, {3, 3}, {2, 2}, {1, 1});
  for (auto& s : stages) y = s->forward(y);
  return y;
}

}  // namespace nn
}  // namespace radkit
