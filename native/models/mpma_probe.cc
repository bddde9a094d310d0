// MPMA linear probe (seed 004 Tables I and V, "mpma-probe"): a linear classifier of the 14 CheXpert
// observations (positive vs the rest, binary cross-entropy) on the frozen pre-trained ViT (image.*,
// copied with `--init RUN:image.`). The ViT always runs without gradients here, so its weights stay
// as loaded whatever the optimiser groups hold. Features: the mean of the patch tokens of the first
// view, standardised by a batch norm without affine parameters (MAE's linear-probe recipe), then
// one Linear layer. encode() returns the probabilities [B, 14] for the AUC evaluation.
#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/linear.h>

#include "../core/errors.h"
#include "mpma.h"

namespace radkit {
namespace {

class MpmaProbe : public System {
 public:
  explicit MpmaProbe(const Config& c) {
    at::manual_seed(static_cast<uint64_t>(c.integer("seed", 0)));
    nn::VitConfig vc = mpma::vitConfig(c);
    image = register_module("image", nn::Vit(vc));
    norm = register_module("norm", torch::nn::BatchNorm1d(torch::nn::BatchNorm1dOptions(vc.dim).affine(false)));
    probe = register_module("probe", torch::nn::Linear(vc.dim, kObservations));
  }

  std::string kind() const override { return "mpma-probe"; }
  std::string visualPrefix() const override { return "image."; }

  at::Tensor logits(const Batch& b) {
    if (!b.images.defined()) argError("ERR_INVALID_ARG", "mpma-probe needs batch.images");
    at::Tensor features;
    {
      at::NoGradGuard ng;  // the encoder is frozen: a linear probe
      image->eval();
      features = image->forward(b.images.select(1, 0).contiguous()).slice(1, 1).mean(1);
    }
    return probe->forward(norm->forward(features));
  }

  at::Tensor loss(const Batch& b, LossParts& parts) override {
    if (!b.labels.defined()) argError("ERR_INVALID_ARG", "mpma-probe needs batch.labels (CheXpert label states)");
    at::Tensor z = logits(b);
    at::Tensor y = b.labels.eq(kPositive).to(z.scalar_type());
    at::Tensor l = at::binary_cross_entropy_with_logits(z, y);
    parts["bce"] = l.item<double>();
    return l;
  }

  std::map<std::string, at::Tensor> encode(const Batch& b) override {
    std::map<std::string, at::Tensor> out;
    out["probabilities"] = at::sigmoid(logits(b));
    return out;
  }

  Generated generate(const GenerateRequest&) override {
    argError("ERR_UNSUPPORTED", "mpma-probe classifies CheXpert observations; it does not generate reports");
  }

  nn::Vit image{nullptr};
  torch::nn::BatchNorm1d norm{nullptr};
  torch::nn::Linear probe{nullptr};
};

SystemRegistrar reg("mpma-probe", [](const Config& c) { return std::make_shared<MpmaProbe>(c); });

}  // namespace
}  // namespace radkit
