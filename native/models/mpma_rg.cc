// MPMA fine-tuned for report generation (seed 004 section IV-C, "mpma-rg"): the pre-trained vision
// encoder (image.*, the same ViT as "mpma", so `--init RUN:image.` copies it) feeds an R2Gen-style
// encoder-decoder transformer (the paper leaves the generation head unstated). Every view is encoded
// on its own; the decoder's source is the concatenation of the views' tokens (class + patches),
// projected from the ViT width to dModel. Loss: token cross-entropy (words + one EOS).
// Not the paper's (off by default): lambdaClass > 0 adds lambdaClass x a multi-label binary
// cross-entropy of the 14 CheXpert observations (positive vs the rest) from one linear layer over the
// mean of every view's patch tokens, so the ViT tokens the decoder reads must carry the findings (the
// auxiliary label signal XProNet's classification loss gives its generator).
#include <ATen/ATen.h>
#include <torch/nn/modules/linear.h>

#include "../core/errors.h"
#include "../nn/decoding.h"
#include "../nn/transformer.h"
#include "mpma.h"
#include "search_output.h"

namespace radkit {
namespace {

class MpmaRg : public System {
 public:
  explicit MpmaRg(const Config& c) {
    const int64_t vocab = c.integer("vocabSize", 0);
    if (vocab < 2) argError("ERR_INVALID_ARG", "config.vocabSize must be >= 2 (the tokenizer's vocabulary size incl. id 0), got ", vocab);
    const uint64_t seed = static_cast<uint64_t>(c.integer("seed", 0));
    at::manual_seed(seed);
    nn::VitConfig vc = mpma::vitConfig(c);
    image = register_module("image", nn::Vit(vc));
    nn::TransformerConfig t;
    t.kind = "encoder-decoder";
    t.vocabSize = vocab;
    t.dModel = c.integer("dModel", 128);
    t.numHeads = c.integer("heads", 4);
    t.dFF = c.integer("dFF", 4 * t.dModel);
    t.encoderLayers = c.integer("encoderLayers", 2);
    t.decoderLayers = c.integer("decoderLayers", 2);
    t.dropout = c.num("dropout", 0.1);
    t.maxPositions = c.integer("maxPositions", 512);
    t.sourceDim = vc.dim;
    // Positions of the source tokens (sinusoidal over the views' concatenated tokens, added after the
    // projection to dModel): the ViT's learned positions start at 0.02 beside unit-scale patch tokens.
    t.sourcePositions = c.flag("sourcePositions", false);
    t.padId = t.bosId = t.eosId = 0;  // radkit's Tokenizer: 0 is BOS, EOS and PAD
    t.seed = seed;
    if (t.dModel % t.numHeads != 0) argError("ERR_INVALID_ARG", "config.dModel (", t.dModel, ") must be divisible by config.heads (", t.numHeads, ")");
    transformer = register_module("transformer", nn::EncoderDecoder(t));
    lambdaClass = c.num("lambdaClass", 0.0);
    if (!(lambdaClass >= 0)) argError("ERR_INVALID_ARG", "config.lambdaClass must be >= 0, got ", lambdaClass);
    if (lambdaClass > 0) classifier = register_module("classifier", torch::nn::Linear(vc.dim, kObservations));
  }

  std::string kind() const override { return "mpma-rg"; }
  std::string visualPrefix() const override { return "image."; }

  // images [B, V, 1, H, W] -> source tokens [B, V * (1 + Np), D]
  at::Tensor source(const at::Tensor& images) {
    if (!images.defined() || images.dim() != 5) argError("ERR_SHAPE", "mpma-rg needs batch.images [B, V, 1, H, W]");
    const int64_t B = images.size(0), V = images.size(1);
    at::Tensor tokens = image->forward(images.flatten(0, 1).contiguous());  // [B*V, 1+Np, D]
    return tokens.view({B, V * tokens.size(1), tokens.size(2)});
  }

  at::Tensor loss(const Batch& b, LossParts& parts) override {
    if (!b.tokens.defined()) argError("ERR_INVALID_ARG", "mpma-rg training needs batch.tokens");
    if (lambdaClass > 0 && !b.labels.defined())
      argError("ERR_INVALID_ARG", "mpma-rg with config.lambdaClass > 0 needs batch.labels (CheXpert label states)");
    at::Tensor src = source(b.images);
    at::Tensor mask = at::ones({src.size(0), src.size(1)}, src.options().dtype(at::kBool));
    at::Tensor input = b.tokens.slice(1, 0, b.tokens.size(1) - 1);
    at::Tensor target = b.tokens.slice(1, 1);
    at::Tensor logits = transformer->forward(src, mask, input);
    at::Tensor lengths = target.gt(0).sum(1, true);
    at::Tensor positions = at::arange(target.size(1), target.options()).unsqueeze(0);
    at::Tensor valid = positions.le(lengths);  // the words, then one EOS
    at::Tensor nll = -at::log_softmax(logits, -1).gather(2, target.unsqueeze(-1)).squeeze(-1);
    at::Tensor ce = (nll * valid).sum() / valid.sum().clamp_min(1);
    parts["ce"] = ce.item<double>();
    if (lambdaClass == 0) return ce;
    // The mean of the patch tokens (class tokens excluded) of every view.
    const int64_t perView = image->config.patches() + 1;
    at::Tensor patches = src.view({src.size(0), -1, perView, src.size(2)}).slice(2, 1).mean({1, 2});
    at::Tensor z = classifier->forward(patches);
    at::Tensor bce = at::binary_cross_entropy_with_logits(z, b.labels.eq(kPositive).to(z.scalar_type()));
    parts["class"] = bce.item<double>();
    return ce + lambdaClass * bce;
  }

  Generated generate(const GenerateRequest& r) override {
    if (!r.systemOptions.numbers.empty() || !r.systemOptions.strings.empty() || !r.systemOptions.arrays.empty())
      argError("ERR_INVALID_ARG", "mpma-rg has no generation systemOptions");
    at::Tensor src = source(r.batch.images);
    at::Tensor mask = at::ones({src.size(0), src.size(1)}, src.options().dtype(at::kBool));
    nn::SearchOptions so = r.search;
    so.eosId = 0;
    so.padId = 0;
    nn::SearchResult result;
    {
      nn::EncoderDecoderStepper stepper(transformer, src, mask, nn::CacheMode::Full);
      result = nn::search(stepper, so);
    }
    return generatedUntilEos(result, so.eosId);
  }

  double lambdaClass = 0;
  nn::Vit image{nullptr};
  nn::EncoderDecoder transformer{nullptr};
  torch::nn::Linear classifier{nullptr};
};

SystemRegistrar reg("mpma-rg", [](const Config& c) { return std::make_shared<MpmaRg>(c); });

}  // namespace
}  // namespace radkit
