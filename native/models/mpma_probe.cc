// MPMA linear probe (seed 004 Tables I and V, "mpma-probe"): a linear classifier of the 14 CheXpert
// observations (positive vs the rest, binary cross-entropy) on the frozen pre-trained ViT (image.*,
// copied with `--init RUN:image.`). The ViT always runs without gradients here, so its weights stay
// as loaded whatever the optimiser groups hold. Features: the mean of the patch tokens of the first
// view (config probePool "mean"; "cls": the class token; "concat": both; "patches": every patch
// token side by side, which keeps where a finding is), standardised by a batch
// norm without affine parameters (MAE's linear-probe recipe), then one Linear layer. encode()
// returns the probabilities [B, 14] for the AUC evaluation and the pooled features [B, F] before
// the norm (for diagnostics outside the trainer).
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
    pool = c.str("probePool", "mean");
    if (pool != "mean" && pool != "cls" && pool != "concat" && pool != "patches")
      argError("ERR_INVALID_ARG", "config.probePool must be 'mean', 'cls', 'concat' or 'patches', got '", pool, "'");
    const int64_t features = pool == "concat" ? 2 * vc.dim : pool == "patches" ? vc.patches() * vc.dim : vc.dim;
    image = register_module("image", nn::Vit(vc));
    norm = register_module("norm", torch::nn::BatchNorm1d(torch::nn::BatchNorm1dOptions(features).affine(false)));
    probe = register_module("probe", torch::nn::Linear(features, kObservations));
  }

  std::string kind() const override { return "mpma-probe"; }
  std::string visualPrefix() const override { return "image."; }

  // The frozen ViT's pooled features of the first view [B, F].
  at::Tensor features(const Batch& b) {
    if (!b.images.defined()) argError("ERR_INVALID_ARG", "mpma-probe needs batch.images");
    at::NoGradGuard ng;  // the encoder is frozen: a linear probe
    image->eval();
    at::Tensor tokens = image->forward(b.images.select(1, 0).contiguous());
    at::Tensor mean = tokens.slice(1, 1).mean(1), cls = tokens.select(1, 0);
    if (pool == "cls") return cls;
    if (pool == "concat") return at::cat({mean, cls}, 1);
    if (pool == "patches") return tokens.slice(1, 1).flatten(1);
    return mean;
  }

  at::Tensor logits(const Batch& b) { return probe->forward(norm->forward(features(b))); }

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
    at::Tensor f = features(b);
    out["features"] = f;
    out["probabilities"] = at::sigmoid(probe->forward(norm->forward(f)));
    return out;
  }

  Generated generate(const GenerateRequest&) override {
    argError("ERR_UNSUPPORTED", "mpma-probe classifies CheXpert observations; it does not generate reports");
  }

  std::string pool;
  nn::Vit image{nullptr};
  torch::nn::BatchNorm1d norm{nullptr};
  torch::nn::Linear probe{nullptr};
};

SystemRegistrar reg("mpma-probe", [](const Config& c) { return std::make_shared<MpmaProbe>(c); });

}  // namespace
}  // namespace radkit
