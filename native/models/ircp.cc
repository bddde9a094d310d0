// OTDRG's visual pre-training (seed 002 section 3.2.2, "ircp"): the ResNet encoder (encoder.*, the
// same keys as diseasenet and otdrg, so `--init RUN:encoder.` moves it on) trained with eq. 2:
// InfoNCE of each study's mean-pooled patch feature a against a noisy copy a+ = a + N(0, sigma^2 I)
// (sigma 0.1), the other studies' keys as negatives, temperature tau (0.5), cosine similarity.
// encode() returns the pooled features [B, C].
#include <ATen/ATen.h>

#include "../core/errors.h"
#include "../nn/losses.h"
#include "otdrg.h"

namespace radkit {
namespace {

class Ircp : public System {
 public:
  explicit Ircp(const Config& c) : sigma_(c.num("sigma", 0.1)), tau_(c.num("tau", 0.5)) {
    if (!(sigma_ >= 0)) argError("ERR_INVALID_ARG", "ircp: config.sigma must be >= 0, got ", sigma_);
    if (!(tau_ > 0)) argError("ERR_INVALID_ARG", "ircp: config.tau must be > 0, got ", tau_);
    at::manual_seed(static_cast<uint64_t>(c.integer("seed", 0)));
    encoder = register_module("encoder", otdrg::buildEncoder(c, "ircp"));
  }

  std::string kind() const override { return "ircp"; }
  std::string visualPrefix() const override { return "encoder."; }

  at::Tensor pooled(const Batch& b) { return otdrg::patchFeatures(encoder, b.images, "ircp").mean(1); }

  at::Tensor loss(const Batch& b, LossParts& parts) override {
    at::Tensor a = pooled(b);
    if (a.size(0) < 2) argError("ERR_SHAPE", "ircp: eq. 2 needs in-batch negatives: a batch of at least 2 studies, got ", a.size(0));
    at::Tensor noise = at::randn(a.sizes(), a.options()) * sigma_;
    nn::losses::InfoNCEOptions o;
    o.temperature = tau_;
    at::Tensor l = nn::losses::noisyPositiveInfoNCE(a, noise, o);
    parts["infonce"] = l.item<double>();
    return l;
  }

  std::map<std::string, at::Tensor> encode(const Batch& b) override { return {{"features", pooled(b)}}; }

  Generated generate(const GenerateRequest&) override {
    argError("ERR_UNSUPPORTED", "ircp pre-trains a visual encoder; it does not generate reports");
  }

  double sigma_, tau_;
  nn::ResNet encoder{nullptr};
};

SystemRegistrar reg("ircp", [](const Config& c) { return std::make_shared<Ircp>(c); });

}  // namespace
}  // namespace radkit
