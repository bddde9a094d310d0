// PVT-like image encoder with AdaPatch (seed 000 section 3.1, PVT: Wang et al. 2021). Four stages
// with shrinking feature maps; each stage embeds patches of the previous map, adds learned position
// embeddings and runs transformer blocks whose attention reads spatially reduced keys/values (SRA:
// a stride-r convolution shrinks the map before the key/value projections, so attention costs
// P * P / r^2 instead of P^2).
//   stage 1: fixed s1 x s1 patches (a stride-s1 convolution = the paper's FC over the flattened patch)
//   stages 2-4: AdaPatch (offsets + sizes predicted per patch, m x m bilinear samples, f5) when
//               `adaptive`, else fixed stride-2 patch embedding (the ablation of the paper's Table 5).
// The encoder can stop at any stage (AdaMatch reads stage 3 by default); later stages are not run.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <string>
#include <vector>

#include "adapatch.h"

namespace radkit {
namespace nn {

struct PvtConfig {
  int64_t inChannels = 1;
  int64_t imageSize = 128;                       // position embeddings are sized for this (resampled otherwise)
  std::vector<int64_t> dims{32, 64, 128, 256};  // channels per stage
  std::vector<int64_t> depths{1, 1, 2, 1};       // transformer blocks per stage
  std::vector<int64_t> heads{1, 2, 4, 8};
  std::vector<int64_t> reductions{8, 4, 2, 1};   // SRA ratio per stage
  int64_t mlpRatio = 4;
  int64_t firstPatch = 4;  // stage-1 patch side
  int64_t patch = 2;       // stages 2-4 patch side (AdaPatch stride)
  int64_t points = 3;      // AdaPatch m
  bool adaptive = true;
  double dropout = 0.0;
  // "linear": the paper's stage-1 patch embedding (one FC over each s1 x s1 patch = a stride-s1 conv).
  // "conv": two stride-2 3x3 convolutions with batch norm and ReLU, then a 1x1 projection (needs
  // s1 = 4). A linear embedding followed by LayerNorm cannot see a flat patch's brightness (LayerNorm
  // of I*u is u/|u| for every intensity I), and effusions, consolidation and cardiomegaly are mostly
  // brightness; without pretrained weights the small model only learns them through the conv stem.
  std::string stem = "linear";
};

// Spatial-reduction multi-head attention over a token map [B, H*W, C].
class SpatialReductionAttentionImpl : public torch::nn::Module {
 public:
  SpatialReductionAttentionImpl(int64_t dim, int64_t heads, int64_t reduction);
  at::Tensor forward(const at::Tensor& x, int64_t h, int64_t w);
  int64_t dim, heads, reduction;
  torch::nn::Linear q{nullptr}, kv{nullptr}, proj{nullptr};
  torch::nn::Conv2d sr{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(SpatialReductionAttention);

class PvtBlockImpl : public torch::nn::Module {
 public:
  PvtBlockImpl(int64_t dim, int64_t heads, int64_t reduction, int64_t mlpRatio, double dropout);
  at::Tensor forward(const at::Tensor& x, int64_t h, int64_t w);
  double dropout;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  SpatialReductionAttention attn{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(PvtBlock);

struct PvtOutput {
  at::Tensor tokens;    // [B, P, C] of the last stage run
  at::Tensor boxes;     // [B, P, 4] (cx, cy, w, h) of its patches in input-image pixels
  at::Tensor fixedBoxes;  // [P, 4] the fixed grid patches in input-image pixels
  int64_t gridH = 0, gridW = 0;
};

class PvtEncoderImpl : public torch::nn::Module {
 public:
  explicit PvtEncoderImpl(const PvtConfig& c);
  // images [B, C, H, W] -> the tokens of stage `stage` (1..4).
  PvtOutput forward(const at::Tensor& images, int64_t stage);
  int64_t dim(int64_t stage) const { return config.dims.at(stage - 1); }

  PvtConfig config;
  torch::nn::Conv2d stem{nullptr};
  torch::nn::Sequential convStem{nullptr};  // stem == "conv": runs before `stem` (then a 1x1 conv)
  std::vector<AdaPatch> adaPatches;          // stages 2-4 when adaptive
  std::vector<torch::nn::Conv2d> fixedEmbeds;  // stages 2-4 when not adaptive
  std::vector<torch::nn::LayerNorm> embedNorms, outNorms;
  std::vector<at::Tensor> positions;         // [1, C, gh, gw] per stage
  std::vector<torch::nn::ModuleList> blocks;
};
TORCH_MODULE(PvtEncoder);

}  // namespace nn
}  // namespace radkit
