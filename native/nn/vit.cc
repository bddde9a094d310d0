#include "vit.h"

#include <cmath>

#include "../core/errors.h"
#include "transformer.h"

namespace radkit {
namespace nn {

namespace {

torch::nn::LayerNorm layerNorm(int64_t d, double eps) { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(eps)); }

// MAE/timm initialisation of a linear layer: xavier-uniform weight, zero bias.
void xavier(torch::nn::Linear& l) {
  at::NoGradGuard ng;
  const double fanIn = static_cast<double>(l->weight.size(1)), fanOut = static_cast<double>(l->weight.size(0));
  const double a = std::sqrt(6.0 / (fanIn + fanOut));
  l->weight.uniform_(-a, a);
  if (l->bias.defined()) l->bias.zero_();
}

at::Tensor activate(const at::Tensor& x, const std::string& activation) {
  if (activation == "quick_gelu") return x * at::sigmoid(1.702 * x);
  return at::gelu(x);
}

}  // namespace

VitAttentionImpl::VitAttentionImpl(int64_t dim, int64_t h) : heads(h) {
  q_proj = register_module("q_proj", torch::nn::Linear(dim, dim));
  k_proj = register_module("k_proj", torch::nn::Linear(dim, dim));
  v_proj = register_module("v_proj", torch::nn::Linear(dim, dim));
  out_proj = register_module("out_proj", torch::nn::Linear(dim, dim));
  for (auto* l : {&q_proj, &k_proj, &v_proj, &out_proj}) xavier(*l);
}

at::Tensor VitAttentionImpl::forward(const at::Tensor& x, double dropout, at::Tensor* weights) {
  const int64_t B = x.size(0), T = x.size(1), d = x.size(2), dh = d / heads;
  auto split = [&](const at::Tensor& t) { return t.view({B, T, heads, dh}).transpose(1, 2); };
  at::Tensor o = nn::attention(split(q_proj->forward(x)), split(k_proj->forward(x)), split(v_proj->forward(x)), at::Tensor(), dropout,
                               is_training(), weights);
  return out_proj->forward(o.transpose(1, 2).reshape({B, T, d}));
}

VitMlpImpl::VitMlpImpl(int64_t dim, int64_t hidden) {
  fc1 = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, dim));
  xavier(fc1);
  xavier(fc2);
}

VitLayerImpl::VitLayerImpl(int64_t dim, int64_t heads, int64_t hidden, double eps, const std::string& act, double drop)
    : activation(act), dropout(drop) {
  if (dim % heads != 0) argError("ERR_INVALID_ARG", "ViT: width ", dim, " is not divisible by ", heads, " heads");
  layer_norm1 = register_module("layer_norm1", layerNorm(dim, eps));
  self_attn = register_module("self_attn", VitAttention(dim, heads));
  layer_norm2 = register_module("layer_norm2", layerNorm(dim, eps));
  mlp = register_module("mlp", VitMlp(dim, hidden));
}

at::Tensor VitLayerImpl::forward(const at::Tensor& x, at::Tensor* weights) {
  at::Tensor a = self_attn->forward(layer_norm1->forward(x), dropout, weights);
  if (is_training() && dropout > 0) a = at::dropout(a, dropout, true);
  at::Tensor y = x + a;
  at::Tensor h = mlp->fc2->forward(activate(mlp->fc1->forward(layer_norm2->forward(y)), activation));
  if (is_training() && dropout > 0) h = at::dropout(h, dropout, true);
  return y + h;
}

VitEncoderImpl::VitEncoderImpl(int64_t n, int64_t dim, int64_t heads, int64_t hidden, double eps, const std::string& activation, double dropout) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < n; ++i) layers->push_back(VitLayer(dim, heads, hidden, eps, activation, dropout));
}

at::Tensor VitEncoderImpl::forward(const at::Tensor& x) {
  at::Tensor h = x;
  for (const auto& m : *layers) h = m->as<VitLayerImpl>()->forward(h);
  return h;
}

at::Tensor sincos2dPositions(int64_t side, int64_t dim) {
  if (dim % 4 != 0) argError("ERR_INVALID_ARG", "ViT: sin-cos positions need a width divisible by 4, got ", dim);
  const int64_t q = dim / 4;
  at::Tensor omega = at::pow(10000.0, -at::arange(q, at::kDouble) / static_cast<double>(q));  // [q]
  at::Tensor idx = at::arange(side * side, at::kDouble);
  at::Tensor col = at::remainder(idx, side).unsqueeze(1) * omega.unsqueeze(0), row = at::floor(idx / side).unsqueeze(1) * omega.unsqueeze(0);
  at::Tensor table = at::cat({at::sin(col), at::cos(col), at::sin(row), at::cos(row)}, 1);  // [side^2, dim]
  return at::cat({at::zeros({1, dim}, at::kDouble), table}, 0);
}

VitEmbeddingsImpl::VitEmbeddingsImpl(const VitConfig& c) {
  class_embedding = register_parameter("class_embedding", at::zeros({c.dim}));
  patch_embedding = register_module("patch_embedding", torch::nn::Conv2d(torch::nn::Conv2dOptions(c.inChannels, c.dim, c.patch).stride(c.patch).bias(c.patchBias)));
  position_embedding = register_module("position_embedding", torch::nn::Embedding(c.patches() + 1, c.dim));
  at::NoGradGuard ng;
  class_embedding.normal_(0, 0.02);
  position_embedding->weight.normal_(0, 0.02);
  if (c.positionInit == "sincos") {
    position_embedding->weight.copy_(sincos2dPositions(c.patchesPerSide(), c.dim).to(position_embedding->weight.dtype()));
  } else if (c.positionInit != "normal") {
    argError("ERR_INVALID_ARG", "ViT: positionInit must be 'normal' or 'sincos', got '", c.positionInit, "'");
  }
  // MAE: the patch projection is initialised like a linear layer over the flattened patch.
  const double fanIn = static_cast<double>(c.inChannels * c.patch * c.patch), fanOut = static_cast<double>(c.dim);
  const double a = std::sqrt(6.0 / (fanIn + fanOut));
  patch_embedding->weight.uniform_(-a, a);
  if (c.patchBias) patch_embedding->bias.zero_();
}

at::Tensor patchify(const at::Tensor& images, int64_t p) {
  const int64_t B = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
  if (H % p != 0 || W % p != 0) argError("ERR_SHAPE", "patchify: image side ", H, "x", W, " is not a multiple of the patch size ", p);
  const int64_t h = H / p, w = W / p;
  return images.reshape({B, C, h, p, w, p}).permute({0, 2, 4, 3, 5, 1}).reshape({B, h * w, p * p * C});
}

at::Tensor unpatchify(const at::Tensor& patches, int64_t p, int64_t C) {
  const int64_t B = patches.size(0), N = patches.size(1);
  const int64_t h = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(N))));
  if (h * h != N) argError("ERR_SHAPE", "unpatchify: ", N, " patches do not form a square grid");
  return patches.reshape({B, h, h, p, p, C}).permute({0, 5, 1, 3, 2, 4}).reshape({B, C, h * p, h * p});
}

VitImpl::VitImpl(const VitConfig& c) : config(c) {
  if (c.patch < 1 || c.imageSize % c.patch != 0)
    argError("ERR_INVALID_ARG", "ViT: imageSize (", c.imageSize, ") must be a multiple of the patch size (", c.patch, ")");
  if (c.activation != "gelu" && c.activation != "quick_gelu") argError("ERR_INVALID_ARG", "ViT: activation must be 'gelu' or 'quick_gelu', got '", c.activation, "'");
  embeddings = register_module("embeddings", VitEmbeddings(c));
  pre_layrnorm = register_module("pre_layrnorm", layerNorm(c.dim, c.layerNormEps));
  encoder = register_module("encoder", VitEncoder(c.layers, c.dim, c.heads, c.intermediate, c.layerNormEps, c.activation, c.dropout));
  post_layernorm = register_module("post_layernorm", layerNorm(c.dim, c.layerNormEps));
}

at::Tensor VitImpl::embedPatches(const at::Tensor& images) {
  if (images.dim() != 4 || images.size(1) != config.inChannels || images.size(2) != config.imageSize || images.size(3) != config.imageSize)
    argError("ERR_SHAPE", "ViT: images must be [B, ", config.inChannels, ", ", config.imageSize, ", ", config.imageSize, "], got ", images.sizes());
  const bool centre = config.pixelMean != 0.0 || config.pixelStd != 1.0;
  at::Tensor pixels = centre ? (images - config.pixelMean) / config.pixelStd : images;
  at::Tensor x = embeddings->patch_embedding->forward(pixels).flatten(2).transpose(1, 2);  // [B, Np, D]
  return x + embeddings->position_embedding->weight.slice(0, 1).unsqueeze(0);
}

at::Tensor VitImpl::forward(const at::Tensor& images, const at::Tensor& keep) {
  at::Tensor x = embedPatches(images);
  if (keep.defined()) x = x.gather(1, keep.unsqueeze(-1).expand({keep.size(0), keep.size(1), x.size(2)}));
  at::Tensor cls = (embeddings->class_embedding + embeddings->position_embedding->weight[0]).view({1, 1, -1}).expand({x.size(0), 1, x.size(2)});
  x = at::cat({cls, x}, 1);
  if (config.preLayerNorm) x = pre_layrnorm->forward(x);
  return post_layernorm->forward(encoder->forward(x));
}

MaskSplit randomMasking(int64_t batch, int64_t patches, double ratio, at::Generator& gen) {
  if (!(ratio >= 0 && ratio < 1)) argError("ERR_INVALID_ARG", "mask ratio must be in [0, 1), got ", ratio);
  if (patches < 1) argError("ERR_INVALID_ARG", "masking needs at least one patch, got ", patches);
  int64_t masked = static_cast<int64_t>(std::llround(ratio * static_cast<double>(patches)));
  masked = std::min(masked, patches - 1);
  const int64_t keepCount = patches - masked;
  at::Tensor noise = at::rand({batch, patches}, gen, at::TensorOptions().dtype(at::kFloat));
  at::Tensor shuffle = std::get<1>(noise.sort(1));
  MaskSplit s;
  s.restore = std::get<1>(shuffle.sort(1));
  s.keep = shuffle.slice(1, 0, keepCount).contiguous();
  at::Tensor m = at::ones({batch, patches}, at::kFloat);
  m.slice(1, 0, keepCount).zero_();
  s.mask = m.gather(1, s.restore);
  return s;
}

MaeDecoderImpl::MaeDecoderImpl(const MaeDecoderConfig& c) : config(c) {
  decoder_embed = register_module("decoder_embed", torch::nn::Linear(c.encoderDim, c.dim));
  mask_token = register_parameter("mask_token", at::zeros({1, 1, c.dim}));
  decoder_pos_embed = register_parameter("decoder_pos_embed", at::zeros({1, c.patches + 1, c.dim}));
  decoder_blocks = register_module("decoder_blocks", VitEncoder(c.layers, c.dim, c.heads, c.intermediate, 1e-5, "gelu", 0.0));
  decoder_norm = register_module("decoder_norm", layerNorm(c.dim, 1e-5));
  decoder_pred = register_module("decoder_pred", torch::nn::Linear(c.dim, c.patchPixels));
  xavier(decoder_embed);
  xavier(decoder_pred);
  at::NoGradGuard ng;
  mask_token.normal_(0, 0.02);
  decoder_pos_embed.normal_(0, 0.02);
}

at::Tensor MaeDecoderImpl::forward(const at::Tensor& encoded, const at::Tensor& restore) {
  at::Tensor x = decoder_embed->forward(encoded);
  const int64_t B = x.size(0), Np = restore.size(1), Nk = x.size(1) - 1, D = x.size(2);
  if (Np != config.patches) argError("ERR_SHAPE", "MAE decoder: built for ", config.patches, " patches, got ", Np);
  at::Tensor patches = at::cat({x.slice(1, 1), mask_token.expand({B, Np - Nk, D})}, 1);
  patches = patches.gather(1, restore.unsqueeze(-1).expand({B, Np, D}));  // back to the original order
  x = at::cat({x.slice(1, 0, 1), patches}, 1) + decoder_pos_embed;
  x = decoder_norm->forward(decoder_blocks->forward(x));
  return decoder_pred->forward(x.slice(1, 1));
}

at::Tensor maskedPatchMse(const at::Tensor& predicted, const at::Tensor& target, const at::Tensor& mask, bool normPixLoss) {
  if (!predicted.sizes().equals(target.sizes())) argError("ERR_SHAPE", "maskedPatchMse: predicted ", predicted.sizes(), " and target ", target.sizes(), " differ");
  at::Tensor t = target;
  if (normPixLoss) {
    at::Tensor mean = t.mean(-1, true), var = t.var(-1, /*unbiased*/ true, true);
    t = (t - mean) / (var + 1e-6).sqrt();
  }
  at::Tensor perPatch = (predicted - t).pow(2).mean(-1);
  at::Tensor m = mask.to(perPatch.scalar_type());
  return (perPatch * m).sum() / m.sum().clamp_min(1.0);
}

}  // namespace nn
}  // namespace radkit
