// A VQ image tokenizer in the taming-transformers layout (Esser et al., "Taming transformers", the
// VQModel of its first stage), so user VQ-GAN weights load name for name:
//
//   encoder.conv_in / encoder.down.L.block.B.{norm1,conv1,norm2,conv2,nin_shortcut} /
//   encoder.down.L.attn.B.{norm,q,k,v,proj_out} / encoder.down.L.downsample.conv /
//   encoder.mid.{block_1,attn_1,block_2} / encoder.norm_out / encoder.conv_out
//   quant_conv / quantize.embedding.weight / post_quant_conv
//   decoder.conv_in / decoder.mid.* / decoder.up.L.block.B.* / decoder.up.L.attn.B.* /
//   decoder.up.L.upsample.conv / decoder.norm_out / decoder.conv_out
//
// GroupNorm (32 groups, eps 1e-6) + swish residual blocks, single-head spatial self-attention at
// the resolutions listed, a strided 3x3 convolution after a (0,1,0,1) zero pad to go down, nearest
// 2x + 3x3 convolution to go up (taming's resamp_with_conv). One level per chMult entry; every
// level but the last halves the resolution, so f = 2^(levels-1).
//
// The quantiser: nearest code by squared distance, straight-through estimator
// z_q = z_e + sg[e_k - z_e]; codebook term ||sg[z_e] - e_k||^2 and commitment term ||z_e - sg[e_k]||^2
// (means over elements). With EMA the codebook is not a gradient parameter: cluster sizes N and
// sums m follow N <- d N + (1-d) n, m <- d m + (1-d) sum z, e = m / N~ with Laplace-smoothed N~
// (van den Oord et al. 2017, App. A.1; Sonnet's VectorQuantizerEMA), and codes whose EMA count falls
// below a threshold restart at random encoder outputs of the batch (Jukebox's dead-code restart).
// The buffers are quantize.cluster_size and quantize.embed_avg (not in taming checkpoints).
//
// PatchGAN: taming's NLayerDiscriminator names (loss.discriminator.main.N: 4x4 convolutions,
// batch norm, LeakyReLU 0.2), hinge losses.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>

#include <vector>

namespace radkit {
namespace nn {

struct VqConfig {
  int64_t inChannels = 1;  // 3: a grey image is given to the encoder as three equal channels
  int64_t outChannels = 1;  // 3: the decoder's three channels are averaged back to grey
  int64_t ch = 32;
  std::vector<int64_t> chMult{1, 1, 2, 2, 4};
  int64_t numResBlocks = 1;
  std::vector<int64_t> attnResolutions{8};
  int64_t resolution = 128;  // the image size the attention resolutions refer to
  int64_t zChannels = 64;
  int64_t embedDim = 64;
  int64_t nEmbed = 256;
  int64_t normGroups = 32;
  double dropout = 0.0;
};

// Checks a config (ERR_INVALID_ARG naming the field).
void validateVqConfig(const VqConfig& c);

class VqResnetBlockImpl : public torch::nn::Module {
 public:
  VqResnetBlockImpl(int64_t in, int64_t out, int64_t groups, double dropout);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, ninShortcut{nullptr};
  double dropout;
};
TORCH_MODULE(VqResnetBlock);

class VqAttnBlockImpl : public torch::nn::Module {
 public:
  VqAttnBlockImpl(int64_t channels, int64_t groups);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Conv2d q{nullptr}, k{nullptr}, v{nullptr}, projOut{nullptr};
};
TORCH_MODULE(VqAttnBlock);

// One level of the encoder (down) or decoder (up): residual blocks, attention after each block at
// attention resolutions, and the resampling convolution (downsample / upsample; none on the last
// down level and on up level 0).
class VqLevelImpl : public torch::nn::Module {
 public:
  VqLevelImpl(const std::vector<std::pair<int64_t, int64_t>>& blocks, bool attention, int64_t resample, int64_t groups, double dropout);
  at::Tensor forward(at::Tensor h);
  std::vector<VqResnetBlock> blocks;
  std::vector<VqAttnBlock> attns;
  torch::nn::Conv2d resampleConv{nullptr};
  int64_t resample;  // -1 down, +1 up, 0 none
};
TORCH_MODULE(VqLevel);

class VqMidImpl : public torch::nn::Module {
 public:
  VqMidImpl(int64_t channels, int64_t groups, double dropout);
  at::Tensor forward(const at::Tensor& x);
  VqResnetBlock block1{nullptr}, block2{nullptr};
  VqAttnBlock attn1{nullptr};
};
TORCH_MODULE(VqMid);

class VqEncoderImpl : public torch::nn::Module {
 public:
  explicit VqEncoderImpl(const VqConfig& c);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Conv2d convIn{nullptr}, convOut{nullptr};
  std::vector<VqLevel> levels;
  VqMid mid{nullptr};
  torch::nn::GroupNorm normOut{nullptr};
};
TORCH_MODULE(VqEncoder);

class VqDecoderImpl : public torch::nn::Module {
 public:
  explicit VqDecoderImpl(const VqConfig& c);
  at::Tensor forward(const at::Tensor& z);
  torch::nn::Conv2d convIn{nullptr}, convOut{nullptr};
  std::vector<VqLevel> levels;  // index = taming's up index (levels[0] is the last applied)
  VqMid mid{nullptr};
  torch::nn::GroupNorm normOut{nullptr};
};
TORCH_MODULE(VqDecoder);

struct Quantized {
  at::Tensor zq;            // [N, D] straight-through: forward e_codes, gradient to z as identity
  at::Tensor codes;         // [N] int64
  at::Tensor codebookLoss;  // mean ||sg[z] - e||^2
  at::Tensor commitLoss;    // mean ||z - sg[e]||^2
};

// z [N, D], codebook [K, D] (same floating dtype).
Quantized quantize(const at::Tensor& z, const at::Tensor& codebook);

// The EMA codebook update (in place, no gradients): clusterSize [K], embedAvg [K, D], codebook
// [K, D] from the batch vectors z [N, D] and their codes [N]. Codes whose updated EMA count is below
// deadThreshold (> 0) restart at random rows of z (drawn with `gen`): their embedAvg row becomes
// that vector and their count 1. Returns the number of restarted codes.
int64_t emaUpdate(at::Tensor& clusterSize, at::Tensor& embedAvg, at::Tensor& codebook, const at::Tensor& z, const at::Tensor& codes, double decay, double eps,
                  double deadThreshold, at::Generator gen);

// Perplexity exp(H) of the code histogram of `codes` over K codes.
double codePerplexity(const at::Tensor& codes, int64_t K);

class VqModelImpl : public torch::nn::Module {
 public:
  VqModelImpl(const VqConfig& c, bool ema);
  // images in [-1, 1] [B, 1, H, W] -> pre-quantisation latents [B, D, h, w]
  at::Tensor encodeLatents(const at::Tensor& x);
  // latents (quantised) [B, D, h, w] -> images in [-1, 1] [B, 1, H, W]
  at::Tensor decodeLatents(const at::Tensor& zq);
  // codes [B, h, w] -> images in [-1, 1]
  at::Tensor decodeCodes(const at::Tensor& codes);
  VqConfig c;
  bool ema;
  VqEncoder encoder{nullptr};
  VqDecoder decoder{nullptr};
  torch::nn::Conv2d quantConv{nullptr}, postQuantConv{nullptr};
  std::shared_ptr<torch::nn::Module> quantize;  // holds embedding (+ EMA buffers)
  torch::nn::Embedding embedding{nullptr};
  at::Tensor clusterSize, embedAvg;
};
TORCH_MODULE(VqModel);

// taming's NLayerDiscriminator (input channels, base width ndf, nLayers strided layers); its
// `main` Sequential indices match the checkpoint names. forward(x, frozen): frozen uses the
// weights without gradient and batch statistics without updating the running ones (the
// generator's adversarial term must not train the discriminator).
class PatchDiscriminatorImpl : public torch::nn::Module {
 public:
  PatchDiscriminatorImpl(int64_t inChannels, int64_t ndf, int64_t nLayers);
  at::Tensor forward(const at::Tensor& x, bool frozen);
  std::vector<torch::nn::Conv2d> convs;
  std::vector<torch::nn::BatchNorm2d> norms;  // norms[i] after convs[i + 1] (none after the first and last)
};
TORCH_MODULE(PatchDiscriminator);

}  // namespace nn
}  // namespace radkit
