// Vision transformer (Dosovitskiy et al.) for model code, with the parameter names of Hugging Face's
// CLIP vision tower (so CLIP-ViT weights, e.g. CLIP-ViT-B/16 as MPMA (seed 004) uses, load by name
// after dropping their `vision_model.` prefix):
//   embeddings.class_embedding [D], embeddings.patch_embedding.weight [D, C, P, P] (no bias),
//   embeddings.position_embedding.weight [Np + 1, D], pre_layrnorm, encoder.layers.N.{layer_norm1,
//   self_attn.{q,k,v,out}_proj, layer_norm2, mlp.fc1, mlp.fc2}, post_layernorm.
// Pre-norm blocks; GELU or CLIP's quick_gelu; post_layernorm is applied to every output token (MAE's
// final encoder norm; CLIP applies it to the pooled class token only).
//
// Also the MAE pieces (He et al. 2022) MPMA's masked image modelling needs: a seeded per-sample
// random shuffle with keep / restore indices, and the light MAE decoder with mask tokens.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <string>

namespace radkit {
namespace nn {

struct VitConfig {
  int64_t imageSize = 224;
  int64_t patch = 16;
  int64_t inChannels = 1;
  int64_t dim = 768;
  int64_t layers = 12;
  int64_t heads = 12;
  int64_t intermediate = 3072;
  double dropout = 0.0;
  std::string activation = "gelu";  // or "quick_gelu" (CLIP: x * sigmoid(1.702 x))
  bool preLayerNorm = true;         // CLIP's pre_layrnorm after the embeddings (the module exists either way)
  double layerNormEps = 1e-5;
  // Pixels enter the patch projection as (x - pixelMean) / pixelStd (CLIP and MAE feed zero-centred
  // pixels; radkit's loader gives grey in [0, 1]). With a projection without bias followed by a
  // LayerNorm, a flat patch of brightness c becomes c W 1 and then LN(W 1) for every c > 0: on
  // uncentred pixels the tokens cannot see brightness.
  double pixelMean = 0.0, pixelStd = 1.0;
  bool patchBias = false;  // a bias in the patch projection (MAE / timm; CLIP has none)
  // Initial position embeddings: "normal" (N(0, 0.02), CLIP / timm) or "sincos" (MAE's fixed 2D
  // sin-cos table: a quarter of the width each for sin/cos of the patch's column and row, the class
  // token's row zero; here only the starting value, trained like the rest). At 0.02 beside unit-scale
  // patch tokens a from-scratch ViT knows little of where a patch lies.
  std::string positionInit = "normal";
  int64_t patchesPerSide() const { return imageSize / patch; }
  int64_t patches() const { return patchesPerSide() * patchesPerSide(); }
};

struct VitAttentionImpl : torch::nn::Module {
  VitAttentionImpl(int64_t dim, int64_t heads);
  // x [B, T, D]; weights (optional) receives the attention probabilities [B, H, T, T].
  at::Tensor forward(const at::Tensor& x, double dropout, at::Tensor* weights = nullptr);
  int64_t heads;
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
};
TORCH_MODULE(VitAttention);

struct VitMlpImpl : torch::nn::Module {
  VitMlpImpl(int64_t dim, int64_t hidden);
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(VitMlp);

// One pre-norm block: x + attn(ln1(x)), then + mlp(ln2(x)).
struct VitLayerImpl : torch::nn::Module {
  VitLayerImpl(int64_t dim, int64_t heads, int64_t hidden, double eps, const std::string& activation, double dropout);
  at::Tensor forward(const at::Tensor& x, at::Tensor* weights = nullptr);
  std::string activation;
  double dropout;
  VitAttention self_attn{nullptr};
  torch::nn::LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
  VitMlp mlp{nullptr};
};
TORCH_MODULE(VitLayer);

struct VitEncoderImpl : torch::nn::Module {
  VitEncoderImpl(int64_t n, int64_t dim, int64_t heads, int64_t hidden, double eps, const std::string& activation, double dropout);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(VitEncoder);

struct VitEmbeddingsImpl : torch::nn::Module {
  explicit VitEmbeddingsImpl(const VitConfig& c);
  at::Tensor class_embedding;  // [D]
  torch::nn::Conv2d patch_embedding{nullptr};
  torch::nn::Embedding position_embedding{nullptr};  // [Np + 1, D]; row 0 is the class token's
};
TORCH_MODULE(VitEmbeddings);

// images [B, C, H, W] -> patches [B, Np, P*P*C] (row-major patches; pixel order (p, q, c) as MAE's patchify).
at::Tensor patchify(const at::Tensor& images, int64_t patch);
// The inverse: patches [B, Np, P*P*C] -> images [B, C, H, W] (square grid).
at::Tensor unpatchify(const at::Tensor& patches, int64_t patch, int64_t channels);

// MAE's 2D sin-cos position table for a side x side grid, [1 + side^2, dim] float64: row 0 (the class
// token) zero; patch row-major index k at column k % side, row k / side gets
// [sin(col w), cos(col w), sin(row w), cos(row w)] with w_i = 10000^(-i / (dim / 4)).
at::Tensor sincos2dPositions(int64_t side, int64_t dim);

class VitImpl : public torch::nn::Module {
 public:
  explicit VitImpl(const VitConfig& c);
  // Patch tokens with their positions added, no class token: [B, Np, D].
  at::Tensor embedPatches(const at::Tensor& images);
  // Encodes images [B, C, H, W] (side imageSize). keep (optional, [B, Nk] int64): only those patches
  // enter (MAE's visible patches, in keep order). Returns [B, 1 + N, D]: the class token, then the
  // patch tokens, after post_layernorm.
  at::Tensor forward(const at::Tensor& images, const at::Tensor& keep = at::Tensor());
  VitConfig config;
  VitEmbeddings embeddings{nullptr};
  torch::nn::LayerNorm pre_layrnorm{nullptr};
  VitEncoder encoder{nullptr};
  torch::nn::LayerNorm post_layernorm{nullptr};
};
TORCH_MODULE(Vit);

// MAE random masking of `patches` patches per sample for `batch` samples, drawn from a CPU generator
// (reproducible: one generator state gives one split). Exactly round(ratio * patches) patches are
// masked in every sample (at least 1 patch stays visible).
//   keep    [B, Nk] int64: the visible patches (shuffled order);
//   restore [B, Np] int64: argsort of the shuffle, so gather(cat(kept, masked), restore) is the
//           original order;
//   mask    [B, Np] float: 1 = masked, 0 = visible (original order).
struct MaskSplit {
  at::Tensor keep, restore, mask;
};
MaskSplit randomMasking(int64_t batch, int64_t patches, double ratio, at::Generator& gen);

struct MaeDecoderConfig {
  int64_t patches = 196;      // Np
  int64_t encoderDim = 768;
  int64_t dim = 512;
  int64_t layers = 8;
  int64_t heads = 16;
  int64_t intermediate = 2048;
  int64_t patchPixels = 768;  // P * P * C
};

// MAE's decoder: decoder_embed, mask_token, learned positions (class token first), pre-norm blocks,
// decoder_norm and decoder_pred to P*P*C pixels.
class MaeDecoderImpl : public torch::nn::Module {
 public:
  explicit MaeDecoderImpl(const MaeDecoderConfig& c);
  // encoded [B, 1 + Nk, De] (class token + visible patches in keep order), restore [B, Np] ->
  // predicted pixels of every patch [B, Np, P*P*C].
  at::Tensor forward(const at::Tensor& encoded, const at::Tensor& restore);
  MaeDecoderConfig config;
  torch::nn::Linear decoder_embed{nullptr}, decoder_pred{nullptr};
  at::Tensor mask_token;         // [1, 1, Dd]
  at::Tensor decoder_pos_embed;  // [1, Np + 1, Dd]
  VitEncoder decoder_blocks{nullptr};
  torch::nn::LayerNorm decoder_norm{nullptr};
};
TORCH_MODULE(MaeDecoder);

// MAE's loss (MPMA eq. 1): mean over masked patches of the per-patch mean squared error.
// target = patchify(images); with normPixLoss each target patch is standardised by its own mean
// and variance (+1e-6) first. mask [B, Np] 1 = masked; no masked patch gives 0.
at::Tensor maskedPatchMse(const at::Tensor& predicted, const at::Tensor& target, const at::Tensor& mask, bool normPixLoss);

}  // namespace nn
}  // namespace radkit
