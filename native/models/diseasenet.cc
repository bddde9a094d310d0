// OTDRG's disease predictor (seed 002 section 3.4, "diseasenet"): the ResNet encoder (encoder.*,
// from an ircp run with --init RUN:encoder.) and a linear head (classifier.*) on each patch feature,
// pooled over the patches (mean, or log-sum-exp with config.stateLseR > 0) to 14 x 4 logits, one
// 4-way softmax per CheXpert observation (eq. 9's states), trained with the focal loss of eq. 10
// (nn::losses::focalLoss, gamma from the config, 2 by default). encode() returns the probabilities
// [B, 14, 4], the argmax states [B, 14] and the per-patch logits.
#include <ATen/ATen.h>

#include "../core/errors.h"
#include "../nn/losses.h"
#include "otdrg.h"

namespace radkit {
namespace {

class DiseaseNet : public System {
 public:
  explicit DiseaseNet(const Config& c) : gamma_(c.num("gamma", 2.0)), lseR_(otdrg::parseStateLseR(c, "diseasenet")) {
    if (!(gamma_ >= 0)) argError("ERR_INVALID_ARG", "diseasenet: config.gamma must be >= 0, got ", gamma_);
    at::manual_seed(static_cast<uint64_t>(c.integer("seed", 0)));
    encoder = register_module("encoder", otdrg::buildEncoder(c, "diseasenet"));
    classifier = register_module("classifier", torch::nn::Linear(encoder->outChannels(), kObservations * 4));
  }

  std::string kind() const override { return "diseasenet"; }
  std::string visualPrefix() const override { return "encoder."; }

  at::Tensor logits(const Batch& b) { return otdrg::stateLogits(classifier, otdrg::patchFeatures(encoder, b.images, "diseasenet"), lseR_); }

  at::Tensor loss(const Batch& b, LossParts& parts) override {
    otdrg::checkStates(b.labels, b.images.defined() ? b.images.size(0) : 0, "diseasenet");
    nn::losses::FocalOptions o;
    o.gamma = gamma_;
    at::Tensor l = nn::losses::focalLoss(logits(b), b.labels, o);
    parts["focal"] = l.item<double>();
    return l;
  }

  // The probabilities [B, 14, 4], the argmax states [B, 14] and the head's logits of every patch
  // alone [B, Np, 14, 4] (what the pooling reads: a class activation map).
  std::map<std::string, at::Tensor> encode(const Batch& b) override {
    at::Tensor x = otdrg::patchFeatures(encoder, b.images, "diseasenet");
    at::Tensor p = at::softmax(otdrg::stateLogits(classifier, x, lseR_), -1);
    return {{"probabilities", p}, {"states", p.argmax(-1)}, {"patchLogits", otdrg::patchStateLogits(classifier, x)}};
  }

  Generated generate(const GenerateRequest&) override {
    argError("ERR_UNSUPPORTED", "diseasenet predicts CheXpert label states; it does not generate reports");
  }

  double gamma_, lseR_;
  nn::ResNet encoder{nullptr};
  torch::nn::Linear classifier{nullptr};
};

SystemRegistrar reg("diseasenet", [](const Config& c) { return std::make_shared<DiseaseNet>(c); });

}  // namespace
}  // namespace radkit
