// The VQ image tokenizer of AdaMatch-Cyclic (seed 000 section 3.2, supplementary section 8: a
// VQ-GAN f16 with 1,024 codes in the paper), in taming-transformers' parameter names (nn/vq.h), so
// a user's VQ-GAN weights load by name; trained from scratch here:
//   L = |x - x^|_1 + ||sg[z_e] - z_q||^2 (gradient codebook only) + beta ||z_e - sg[z_q]||^2
// with beta 0.25, images mapped from [0, 1] to [-1, 1] (taming's range, where the L1 is taken);
// with `ema` the codebook follows EMA cluster statistics instead of its gradient term, with
// dead-code restart (and the codebook initialised from the encoder outputs of the run's first
// batch); with `gan` a PatchGAN discriminator adds taming's hinge losses
//   L_D = mean relu(1 - D(x)) + mean relu(1 + D(sg[x^])),  L_G = -mean D(x^)
// from a fraction `ganStart` of the run on, L_G weighted by a fixed ganWeight (taming's adaptive
// weight from the last layer's gradient norms is not used) and L_D added to the same loss (one
// optimiser; D's weights see no gradient from L_G).
//
// encode(batch) gives the codes of every view ([B, V, h, w]) and the reconstructions in [0, 1]
// ([B, V, 1, H, W]); a batch with extras.codes [B, h, w] instead decodes them to images [B, 1, 1, H, W].
#include <ATen/ATen.h>

#include <cmath>

#include "../core/errors.h"
#include "../nn/vq.h"
#include "system.h"

namespace radkit {
namespace {

nn::VqConfig vqConfig(const Config& c) {
  nn::VqConfig v;
  v.inChannels = c.integerIn("inChannels", 1, 1, 3);
  v.outChannels = c.integerIn("outChannels", 1, 1, 3);
  v.ch = c.integerIn("ch", 32, 1, 1024);
  v.chMult = c.ints("chMult", {1, 1, 2, 2, 4});
  v.numResBlocks = c.integerIn("numResBlocks", 1, 1, 16);
  v.attnResolutions = c.ints("attnResolutions", {8});
  v.resolution = c.integerIn("resolution", 128, 1, 8192);
  v.zChannels = c.integerIn("zChannels", 64, 1, 4096);
  v.embedDim = c.integerIn("embedDim", 64, 1, 4096);
  v.nEmbed = c.integerIn("nEmbed", 256, 2, 1 << 20);
  v.normGroups = c.integerIn("normGroups", 32, 1, 1024);
  v.dropout = c.num("dropout", 0.0);
  return v;
}

class VqGan : public System {
 public:
  explicit VqGan(const Config& c) {
    at::manual_seed(static_cast<uint64_t>(c.integer("seed", 0)));
    beta_ = c.num("beta", 0.25);
    emaDecay_ = c.num("emaDecay", 0.99);
    emaEps_ = c.num("emaEps", 1e-5);
    deadThreshold_ = c.num("deadCodeThreshold", 1.0);
    ganWeight_ = c.num("ganWeight", 0.1);
    ganStart_ = c.num("ganStart", 0.3);
    if (!(beta_ >= 0)) argError("ERR_INVALID_ARG", "config.beta must be >= 0, got ", beta_);
    if (!(emaDecay_ > 0 && emaDecay_ < 1)) argError("ERR_INVALID_ARG", "config.emaDecay must be in (0, 1), got ", emaDecay_);
    if (!(emaEps_ > 0)) argError("ERR_INVALID_ARG", "config.emaEps must be > 0, got ", emaEps_);
    if (!(deadThreshold_ >= 0)) argError("ERR_INVALID_ARG", "config.deadCodeThreshold must be >= 0 (0: no restart), got ", deadThreshold_);
    if (!(ganWeight_ >= 0)) argError("ERR_INVALID_ARG", "config.ganWeight must be >= 0, got ", ganWeight_);
    if (!(ganStart_ >= 0 && ganStart_ <= 1)) argError("ERR_INVALID_ARG", "config.ganStart must be a fraction of the run in [0, 1], got ", ganStart_);
    nn::VqConfig vc = vqConfig(c);
    // About 4 x 4 bytes per parameter: refuse sizes that do not fit before allocating them.
    double convs = 0;
    for (int64_t m : vc.chMult) convs += 2.0 * (2 * vc.numResBlocks + 1) * 9.0 * std::pow(vc.ch * m, 2);
    checkModelSize("vqgan", convs + static_cast<double>(vc.nEmbed) * vc.embedDim);
    vq_ = nn::VqModel(vc, c.flag("ema", true));
    register_module("encoder", vq_->encoder);
    register_module("decoder", vq_->decoder);
    register_module("quant_conv", vq_->quantConv);
    register_module("post_quant_conv", vq_->postQuantConv);
    register_module("quantize", vq_->quantize);
    const int64_t discChannels = c.integerIn("discChannels", 32, 1, 1024), discLayers = c.integerIn("discLayers", 3, 1, 6);
    if (c.flag("gan", false)) {
      auto loss = std::make_shared<torch::nn::Module>();
      disc_ = loss->register_module("discriminator", nn::PatchDiscriminator(vc.inChannels == 3 ? 3 : 1, discChannels, discLayers));
      register_module("loss", loss);
    }
  }

  std::string kind() const override { return "vqgan"; }

  void setTrainingProgress(int64_t step, int64_t total) override {
    step_ = step;
    total_ = total;
  }

  void checkBatch(const Batch& b) const override {
    const int64_t f = int64_t{1} << (vq_->c.chMult.size() - 1);
    if (b.images.defined()) {
      if (b.images.dim() != 5 || b.images.size(2) != 1) argError("ERR_SHAPE", "vqgan needs batch.images [B, V, 1, H, W], got ", b.images.sizes());
      if (b.images.size(3) % f || b.images.size(4) % f)
        argError("ERR_SHAPE", "vqgan: the image size ", b.images.size(3), " x ", b.images.size(4), " is not a multiple of the downsampling factor ", f);
    }
    auto it = b.extras.find("codes");
    if (it != b.extras.end()) {
      const at::Tensor& codes = it->second;
      if (codes.dim() != 3 || codes.scalar_type() != at::kLong) argError("ERR_SHAPE", "vqgan: batch.extras.codes must be int64 [B, h, w], got ", codes.sizes(), " ", codes.scalar_type());
      if (codes.numel() && (codes.min().item<int64_t>() < 0 || codes.max().item<int64_t>() >= vq_->c.nEmbed))
        argError("ERR_INVALID_ARG", "vqgan: batch.extras.codes holds a code outside [0, ", vq_->c.nEmbed, ")");
    } else if (!b.images.defined()) {
      argError("ERR_INVALID_ARG", "vqgan needs batch.images (or extras.codes to decode)");
    }
  }

  // [B, V, 1, H, W] in [0, 1] -> [B*V, 1, H, W] in [-1, 1]
  static at::Tensor toModelRange(const at::Tensor& images) { return images.flatten(0, 1) * 2 - 1; }

  at::Tensor loss(const Batch& b, LossParts& parts) override {
    if (!b.images.defined()) argError("ERR_INVALID_ARG", "vqgan training needs batch.images");
    at::Tensor x = toModelRange(b.images);
    at::Tensor ze = vq_->encodeLatents(x);  // [N, D, h, w]
    const int64_t N = ze.size(0), D = ze.size(1), h = ze.size(2), w = ze.size(3);
    at::Tensor flat = ze.permute({0, 2, 3, 1}).reshape({-1, D});
    if (vq_->ema && is_training() && step_ == 0) {
      // The run's first step: every code starts at a random encoder output of the batch (a
      // data-dependent initialisation; random codes far from the encoder's outputs would never
      // be chosen and only dead-code restarts would bring them in, one slow restart at a time).
      at::NoGradGuard ng;
      at::Tensor pick = at::randint(flat.size(0), {vq_->c.nEmbed}, at::detail::getDefaultCPUGenerator(), at::TensorOptions().dtype(at::kLong));
      vq_->embedAvg.copy_(flat.detach().index_select(0, pick));
      vq_->embedding->weight.copy_(vq_->embedAvg);
      vq_->clusterSize.fill_(1.0);
    }
    nn::Quantized q = nn::quantize(flat, vq_->embedding->weight);
    if (vq_->ema && is_training()) {
      at::Tensor cb = vq_->embedding->weight;
      parts["restarted"] = static_cast<double>(nn::emaUpdate(vq_->clusterSize, vq_->embedAvg, cb, flat, q.codes, emaDecay_, emaEps_, deadThreshold_, at::detail::getDefaultCPUGenerator()));
    }
    at::Tensor zq = q.zq.view({N, h, w, D}).permute({0, 3, 1, 2});
    at::Tensor xr = vq_->decodeLatents(zq);
    at::Tensor rec = (x - xr).abs().mean();
    at::Tensor total = rec + beta_ * q.commitLoss;
    if (!vq_->ema) total = total + q.codebookLoss;
    if (disc_ && (step_ < 0 || static_cast<double>(step_) >= ganStart_ * static_cast<double>(total_))) {
      at::Tensor xin = vq_->c.inChannels == 3 ? x.expand({N, 3, x.size(2), x.size(3)}) : x;
      at::Tensor xrin = vq_->c.inChannels == 3 ? xr.expand({N, 3, xr.size(2), xr.size(3)}) : xr;
      at::Tensor g = -disc_->forward(xrin, true).mean();
      at::Tensor d = at::relu(1 - disc_->forward(xin, false)).mean() + at::relu(1 + disc_->forward(xrin.detach(), false)).mean();
      total = total + ganWeight_ * g + d;
      parts["g"] = g.item<double>();
      parts["d"] = d.item<double>();
    }
    {
      at::NoGradGuard ng;
      const double mse = ((xr.clamp(-1, 1) - x) / 2).pow(2).mean().item<double>();  // on [0, 1]
      parts["psnr"] = 10 * std::log10(1.0 / std::max(mse, 1e-12));
      parts["rec"] = rec.item<double>();
      parts["commit"] = q.commitLoss.item<double>();
      parts["codebook"] = q.codebookLoss.item<double>();
      parts["perplexity"] = nn::codePerplexity(q.codes, vq_->c.nEmbed);
    }
    return total;
  }

  Generated generate(const GenerateRequest&) override {
    argError("ERR_INVALID_ARG", "vqgan is an image tokenizer and generates no reports: Model.encode gives the codes of images (and decodes extras.codes)");
  }

  std::map<std::string, at::Tensor> encode(const Batch& b) override {
    std::map<std::string, at::Tensor> out;
    auto it = b.extras.find("codes");
    if (it != b.extras.end()) {
      at::Tensor img = ((vq_->decodeCodes(it->second) + 1) / 2).clamp(0, 1);
      out["images"] = img.unsqueeze(1);
      return out;
    }
    const int64_t B = b.images.size(0), V = b.images.size(1);
    at::Tensor ze = vq_->encodeLatents(toModelRange(b.images));
    const int64_t D = ze.size(1), h = ze.size(2), w = ze.size(3);
    nn::Quantized q = nn::quantize(ze.permute({0, 2, 3, 1}).reshape({-1, D}), vq_->embedding->weight);
    at::Tensor zq = q.zq.view({B * V, h, w, D}).permute({0, 3, 1, 2});
    at::Tensor xr = ((vq_->decodeLatents(zq) + 1) / 2).clamp(0, 1);
    out["codes"] = q.codes.view({B, V, h, w});
    out["reconstructions"] = xr.view({B, V, 1, xr.size(2), xr.size(3)});
    return out;
  }

 private:
  nn::VqModel vq_{nullptr};
  nn::PatchDiscriminator disc_{nullptr};
  double beta_, emaDecay_, emaEps_, deadThreshold_, ganWeight_, ganStart_;
  int64_t step_ = -1, total_ = 0;
};

SystemRegistrar reg("vqgan", [](const Config& c) { return std::make_shared<VqGan>(c); });

}  // namespace
}  // namespace radkit
