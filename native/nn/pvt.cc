#include "pvt.h"

#include <torch/nn/functional/upsampling.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>

#include <string>

#include "distributed.h"
#include "transformer.h"

namespace radkit {
namespace nn {

SpatialReductionAttentionImpl::SpatialReductionAttentionImpl(int64_t dim, int64_t heads, int64_t reduction)
    : dim(dim), heads(heads), reduction(reduction) {
  TORCH_CHECK(dim % heads == 0, "PVT stage width ", dim, " is not divisible by its ", heads, " heads");
  q = register_module("q", torch::nn::Linear(dim, dim));
  kv = register_module("kv", torch::nn::Linear(dim, 2 * dim));
  proj = register_module("proj", torch::nn::Linear(dim, dim));
  if (reduction > 1) {
    sr = register_module("sr", torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, dim, reduction).stride(reduction)));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  }
}

at::Tensor SpatialReductionAttentionImpl::forward(const at::Tensor& x, int64_t h, int64_t w) {
  const int64_t B = x.size(0), P = x.size(1), dh = dim / heads;
  at::Tensor queries = q->forward(x).view({B, P, heads, dh}).transpose(1, 2);
  at::Tensor source = x;
  // Maps smaller than the reduction (odd image sizes) attend to the full map instead.
  if (reduction > 1 && h >= reduction && w >= reduction) {
    at::Tensor map = x.transpose(1, 2).reshape({B, dim, h, w});
    source = norm->forward(sr->forward(map).flatten(2).transpose(1, 2).contiguous());
  }
  at::Tensor kvs = kv->forward(source).view({B, source.size(1), 2, heads, dh}).permute({2, 0, 3, 1, 4});
  at::Tensor o = attention(queries, kvs[0], kvs[1], at::Tensor(), 0.0, is_training());
  return proj->forward(o.transpose(1, 2).reshape({B, P, dim}));
}

PvtBlockImpl::PvtBlockImpl(int64_t dim, int64_t heads, int64_t reduction, int64_t mlpRatio, double dropout) : dropout(dropout) {
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  attn = register_module("attn", SpatialReductionAttention(dim, heads, reduction));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  fc1 = register_module("fc1", torch::nn::Linear(dim, dim * mlpRatio));
  fc2 = register_module("fc2", torch::nn::Linear(dim * mlpRatio, dim));
}

at::Tensor PvtBlockImpl::forward(const at::Tensor& x, int64_t h, int64_t w) {
  at::Tensor y = x + attn->forward(norm1->forward(x), h, w);
  at::Tensor m = at::gelu(fc1->forward(norm2->forward(y)));
  if (is_training() && dropout > 0) m = at::dropout(m, dropout, true);
  return y + fc2->forward(m);
}

PvtEncoderImpl::PvtEncoderImpl(const PvtConfig& c) : config(c) {
  TORCH_CHECK(c.dims.size() == 4 && c.depths.size() == 4 && c.heads.size() == 4 && c.reductions.size() == 4,
              "PVT encoder: dims, depths, heads and reductions need 4 entries each (one per stage)");
  TORCH_CHECK(c.stem == "linear" || c.stem == "conv", "PVT encoder: stem must be 'linear' or 'conv', got '", c.stem, "'");
  if (c.stem == "conv") {
    TORCH_CHECK(c.firstPatch == 4, "PVT encoder: the conv stem has stride 4, so firstPatch must be 4, got ", c.firstPatch);
    const int64_t mid = std::max<int64_t>(8, c.dims[0] / 2);
    convStem = register_module("convStem", torch::nn::Sequential(
        torch::nn::Conv2d(torch::nn::Conv2dOptions(c.inChannels, mid, 3).stride(2).padding(1).bias(false)), torch::nn::BatchNorm2d(mid), torch::nn::ReLU(),
        torch::nn::Conv2d(torch::nn::Conv2dOptions(mid, c.dims[0], 3).stride(2).padding(1).bias(false)), torch::nn::BatchNorm2d(c.dims[0]), torch::nn::ReLU()));
    stem = register_module("stem", torch::nn::Conv2d(torch::nn::Conv2dOptions(c.dims[0], c.dims[0], 1)));
  } else {
    stem = register_module("stem", torch::nn::Conv2d(torch::nn::Conv2dOptions(c.inChannels, c.dims[0], c.firstPatch).stride(c.firstPatch)));
  }
  int64_t side = c.imageSize / c.firstPatch;
  for (int64_t s = 0; s < 4; ++s) {
    const std::string n = std::to_string(s + 1);
    if (s > 0) {
      side /= c.patch;
      if (c.adaptive) {
        adaPatches.push_back(register_module("adapatch" + n, AdaPatch(AdaPatchOptions(c.dims[s - 1], c.dims[s]).stride(c.patch).points(c.points))));
      } else {
        fixedEmbeds.push_back(register_module(
            "embed" + n, torch::nn::Conv2d(torch::nn::Conv2dOptions(c.dims[s - 1], c.dims[s], c.patch).stride(c.patch))));
      }
    }
    embedNorms.push_back(register_module("embedNorm" + n, torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.dims[s]}))));
    positions.push_back(register_parameter("position" + n, at::randn({1, c.dims[s], std::max<int64_t>(side, 1), std::max<int64_t>(side, 1)}) * 0.02));
    torch::nn::ModuleList list;
    for (int64_t b = 0; b < c.depths[s]; ++b) list->push_back(PvtBlock(c.dims[s], c.heads[s], c.reductions[s], c.mlpRatio, c.dropout));
    blocks.push_back(register_module("blocks" + n, list));
    outNorms.push_back(register_module("norm" + n, torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.dims[s]}))));
  }
}

PvtOutput PvtEncoderImpl::forward(const at::Tensor& images, int64_t stage) {
  TORCH_CHECK(stage >= 1 && stage <= 4, "PVT encoder: stage must be 1..4, got ", stage);
  TORCH_CHECK(images.dim() == 4 && images.size(1) == config.inChannels, "PVT encoder: images must be [B, ", config.inChannels,
              ", H, W], got ", images.sizes());
  const int64_t B = images.size(0);
  at::Tensor map = stem->forward(convStem ? forwardSyncingNorms(convStem, images) : images);  // [B, C1, h, w]; stem batch norms synchronised over ranks
  int64_t h = map.size(2), w = map.size(3);
  double scale = static_cast<double>(config.firstPatch);  // input pixels per map pixel
  at::Tensor tokens = map.flatten(2).transpose(1, 2).contiguous();  // channels innermost for the norms
  PvtOutput out;
  out.fixedBoxes = gridBoxes(h, w, scale, images.options());
  out.boxes = out.fixedBoxes.unsqueeze(0).expand({B, h * w, 4});
  for (int64_t s = 0; s < stage; ++s) {
    if (s > 0) {
      at::Tensor prev = tokens.transpose(1, 2).reshape({B, config.dims[s - 1], h, w});
      if (config.adaptive) {
        AdaPatchOutput a = adaPatches[s - 1]->forward(prev);
        tokens = a.tokens;
        // AdaPatch boxes are in pixels of the previous map; scale them to input pixels.
        out.boxes = a.boxes * scale;
        h = a.gridH;
        w = a.gridW;
      } else {
        at::Tensor m = fixedEmbeds[s - 1]->forward(prev);
        h = m.size(2);
        w = m.size(3);
        tokens = m.flatten(2).transpose(1, 2).contiguous();
      }
      scale *= static_cast<double>(config.patch);
      out.fixedBoxes = gridBoxes(h, w, scale, images.options());
      if (!config.adaptive) out.boxes = out.fixedBoxes.unsqueeze(0).expand({B, h * w, 4});
    }
    tokens = embedNorms[s]->forward(tokens);
    at::Tensor pos = positions[s];
    if (pos.size(2) != h || pos.size(3) != w)
      pos = torch::nn::functional::interpolate(
          pos, torch::nn::functional::InterpolateFuncOptions().size(std::vector<int64_t>{h, w}).mode(torch::kBilinear).align_corners(false));
    tokens = tokens + pos.flatten(2).transpose(1, 2);
    for (auto& m : *blocks[s]) tokens = m->as<PvtBlock>()->forward(tokens, h, w);
    tokens = outNorms[s]->forward(tokens);
  }
  out.tokens = tokens;
  out.gridH = h;
  out.gridW = w;
  return out;
}

}  // namespace nn
}  // namespace radkit
