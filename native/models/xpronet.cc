// XProNet (seed 003): cross-modal prototype network for report generation, as the public code does it.
// ResNet patch features -> class-masked multi-head top-gamma prototype querying and responding
// (ops::memoryQuery) -> concat + linear fusion -> transformer encoder; the decoder's word embeddings
// get the same querying/responding/fusion (an embedding hook on the decoder stack); loss = cross-
// entropy + improved multi-label contrastive loss on image and text responses (eqs. 17-18) + a
// label classifier (used when querying with predicted labels).
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <utility>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>

#include "../core/errors.h"
#include "../nn/decoding.h"
#include "../nn/resnet.h"
#include "../nn/transformer.h"
#include "../ops/memory_query/memory_query.h"
#include "kmeans.h"
#include "resnet_config.h"
#include "system.h"

namespace radkit {
namespace {

constexpr int64_t kClasses = 14;

class XProNet : public System {
 public:
  explicit XProNet(const Config& c)
      : dModel_(c.integer("dModel", 512)),
        heads_(c.integer("heads", 8)),
        perClass_(c.integer("prototypesPerClass", 20)),
        topK_(c.integer("topK", 15)),
        theta_(c.num("theta", 1.5)),
        alpha_(c.num("alpha", 0.4)),
        lambdaImage_(c.num("lambdaImage", 1.0)),
        lambdaText_(c.num("lambdaText", 0.1)),
        lambdaClass_(c.num("lambdaClass", 1.0)),
        dropout_(c.num("dropout", 0.1)),
        vocab_(c.integer("vocabSize", 0)),
        labelSource_(c.str("labelSource", "oracle")),
        seed_(static_cast<uint64_t>(c.integer("seed", 0))) {
    if (vocab_ < 2) argError("ERR_INVALID_ARG", "config.vocabSize must be >= 2 (the tokenizer's vocabulary size incl. id 0), got ", vocab_);
    // Sizes first (a zero would divide by zero below, a huge one would allocate for minutes).
    constexpr int64_t kBig = int64_t(1) << 24;
    for (auto [key, v] : {std::pair<const char*, int64_t>{"dModel", dModel_}, {"heads", heads_}, {"prototypesPerClass", perClass_}, {"topK", topK_}, {"vocabSize", vocab_}})
      if (v < 1 || v > kBig) argError("ERR_INVALID_ARG", "config.", key, " must be in [1, ", kBig, "], got ", v);
    const int64_t dFF = c.integerIn("dFF", 512, 1, kBig), encoderLayers = c.integerIn("encoderLayers", 3, 1, 1024), decoderLayers = c.integerIn("decoderLayers", 3, 1, 1024);
    maxPositions_ = c.integerIn("maxPositions", 512, 2, kBig);
    const ResNetSpec resnetSpec = readResNetSpec(c, {64, 64, 128, 256, 512}, {2, 2, 2, 2}, "");
    if (!(dropout_ >= 0 && dropout_ < 1)) argError("ERR_INVALID_ARG", "config.dropout must be in [0, 1), got ", dropout_);
    for (auto [key, v] : {std::pair<const char*, double>{"lambdaImage", lambdaImage_}, {"lambdaText", lambdaText_}, {"lambdaClass", lambdaClass_}})
      if (!(v >= 0 && std::isfinite(v))) argError("ERR_INVALID_ARG", "config.", key, " must be a finite number >= 0, got ", v);
    if (!(theta_ > 0 && std::isfinite(theta_)) || !std::isfinite(alpha_)) argError("ERR_INVALID_ARG", "config.theta must be > 0 and config.alpha finite, got ", theta_, " and ", alpha_);
    {
      // Parameters, roughly: ResNet convolutions, the transformer, embeddings and output, prototypes.
      const double d = static_cast<double>(dModel_), f = static_cast<double>(dFF), V = static_cast<double>(vocab_);
      const double resnet = resnetSpec.parameters();
      const double cv = static_cast<double>(resnetSpec.outChannels());
      const double transformer = encoderLayers * (4 * d * d + 2 * d * f) + decoderLayers * (8 * d * d + 2 * d * f) + 2 * V * d + static_cast<double>(maxPositions_) * d;
      const double prototypes = static_cast<double>(kClasses * perClass_) * (cv + d) + (cv + d) * d + 8 * d * d + cv * d;
      checkModelSize("xpronet", resnet + transformer + prototypes);
    }
    if (dModel_ % heads_ != 0) argError("ERR_INVALID_ARG", "config.dModel (", dModel_, ") must be divisible by config.heads (", heads_, ")");
    if (topK_ < 1 || topK_ > kClasses * perClass_) argError("ERR_INVALID_ARG", "config.topK must be in [1, ", kClasses * perClass_, "], got ", topK_);
    if (labelSource_ != "oracle" && labelSource_ != "predicted" && labelSource_ != "none")
      argError("ERR_INVALID_ARG", "config.labelSource must be 'oracle', 'predicted' or 'none', got '", labelSource_, "'");
    at::manual_seed(seed_);  // parameter initialisation is reproducible under the config seed
    visual = register_module("visual", resnetSpec.build());
    const int64_t cv = visual->outChannels();
    visualProj = register_module("visualProj", torch::nn::Linear(cv, dModel_));
    textInitDim_ = dModel_;
    prototypes = register_parameter("prototypes", at::randn({kClasses * perClass_, cv + textInitDim_}) * 0.02);
    prototypeProj = register_module("prototypeProj", torch::nn::Linear(cv + textInitDim_, dModel_));
    queryProj = register_module("queryProj", torch::nn::Linear(dModel_, dModel_));
    keyProj = register_module("keyProj", torch::nn::Linear(dModel_, dModel_));
    valueProj = register_module("valueProj", torch::nn::Linear(dModel_, dModel_));
    outProj = register_module("outProj", torch::nn::Linear(dModel_, dModel_));
    fuseImage = register_module("fuseImage", torch::nn::Linear(2 * dModel_, dModel_));
    fuseText = register_module("fuseText", torch::nn::Linear(2 * dModel_, dModel_));
    classifier = register_module("classifier", torch::nn::Linear(cv, kClasses));
    nn::TransformerConfig t;
    t.kind = "encoder-decoder";
    t.vocabSize = vocab_;
    t.dModel = dModel_;
    t.numHeads = heads_;
    t.dFF = dFF;
    t.encoderLayers = encoderLayers;
    t.decoderLayers = decoderLayers;
    t.dropout = dropout_;
    t.maxPositions = maxPositions_;
    t.padId = t.bosId = t.eosId = 0;  // R2Gen tokenizer: 0 is BOS, EOS and PAD
    t.seed = seed_;
    transformer = register_module("transformer", nn::EncoderDecoder(t));
    // Words are fused with their prototype responses before entering the decoder (eq. 14, text side).
    transformer->decoder->embeddingHook = [this](const at::Tensor& words) { return fuseWords(words); };
  }

  std::string kind() const override { return "xpronet"; }
  std::string visualPrefix() const override { return "visual."; }
  std::string distributedTerms() const override {
    return "cross-entropy token-weighted over the global batch; IMLC (eqs. 17-18) over the global batch (pooled responses all-gathered with gradients); "
           "ResNet batch norms synchronised over ranks; label classification per sample";
  }

  void checkBatch(const Batch& b) const override {
    checkTokenIds(b.tokens, vocab_, 0, "xpronet");
    // Teacher forcing feeds the decoder T-1 positions (BOS and the words before the last target).
    if (b.tokens.defined() && b.tokens.size(1) - 1 > maxPositions_)
      argError("ERR_SHAPE", "batch.tokens has ", b.tokens.size(1), " positions but this xpronet model's decoder reads at most ", maxPositions_,
               " (config.maxPositions) after BOS: truncate the reports (tokenizer maxLength)");
    if (b.tokens.defined() && b.tokens.size(1) < 2) argError("ERR_SHAPE", "batch.tokens needs at least 2 positions (BOS and one target), got ", b.tokens.size(1));
    if (b.images.defined() && b.images.size(2) != 1) argError("ERR_SHAPE", "xpronet reads grey images [B, V, 1, H, W], got ", b.images.size(2), " channels");
  }

  at::Tensor loss(const Batch& b, LossParts& parts) override {
    if (!b.images.defined() || !b.tokens.defined()) argError("ERR_INVALID_ARG", "training needs batch.images and batch.tokens");
    if (!b.labels.defined() && (labelSource_ != "none" || lambdaImage_ > 0 || lambdaClass_ > 0))
      argError("ERR_INVALID_ARG", "XProNet training needs batch.labels (CheXpert labels of the reports)");
    at::Tensor pooled;
    at::Tensor v = visualTokens(b.images, &pooled);
    at::Tensor y = b.labels.defined() ? b.labels.eq(1).to(v.scalar_type()) : at::Tensor();
    at::Tensor mask = labelSource_ == "none" ? at::Tensor() : classMask(y);
    at::Tensor rImage = respond(v, mask, nullptr);
    at::Tensor source = fuseImage->forward(at::cat({v, rImage}, -1));
    at::Tensor sourceMask = at::ones({v.size(0), v.size(1)}, v.options().dtype(at::kBool));

    wordMask_ = mask;
    at::Tensor input = b.tokens.slice(1, 0, b.tokens.size(1) - 1);
    at::Tensor target = b.tokens.slice(1, 1);
    at::Tensor logits = transformer->forward(source, sourceMask, input);  // [B, T-1, V]
    at::Tensor rText = lastWordResponse_;
    wordMask_ = at::Tensor();
    // Targets: the words, then one EOS (id 0); positions after it are padding.
    at::Tensor lengths = target.gt(0).sum(1, true);
    at::Tensor positions = at::arange(target.size(1), target.options()).unsqueeze(0);
    at::Tensor valid = positions.le(lengths);
    at::Tensor nll = -at::log_softmax(logits, -1).gather(2, target.unsqueeze(-1)).squeeze(-1);
    at::Tensor ce;
    if (nn::currentDistributed()) {
      // Token-weighted over the global batch: every rank's token count (nn/distributed.h convention).
      at::Tensor tokens = nn::globalSum(valid.sum().to(nll.scalar_type())).clamp_min(1) / static_cast<double>(nn::worldSize());
      ce = (nll * valid).sum() / tokens;
    } else {
      ce = (nll * valid).sum() / valid.sum().clamp_min(1);
    }
    at::Tensor total = ce;
    parts["ce"] = ce.item<double>();
    if (y.defined() && lambdaImage_ > 0) {
      at::Tensor li = contrastive(rImage, at::Tensor(), y);
      total = total + lambdaImage_ * li;
      parts["contrastiveImage"] = li.item<double>();
    }
    if (y.defined() && lambdaText_ > 0 && rText.defined()) {
      at::Tensor lt = contrastive(rText, valid.slice(1, 0, rText.size(1)), y);
      total = total + lambdaText_ * lt;
      parts["contrastiveText"] = lt.item<double>();
    }
    if (y.defined() && lambdaClass_ > 0) {
      at::Tensor lc = at::binary_cross_entropy_with_logits(classifier->forward(pooled), y);
      total = total + lambdaClass_ * lc;
      parts["classification"] = lc.item<double>();
    }
    return total;
  }

  Generated generate(const GenerateRequest& r) override {
    const Batch& b = r.batch;
    std::string source = r.systemOptions.str("labelSource", labelSource_);
    for (auto& [k, v] : r.systemOptions.numbers) argError("ERR_INVALID_ARG", "xpronet has no generation option '", k, "' (it has: labelSource)");
    for (auto& [k, v] : r.systemOptions.strings)
      if (k != "labelSource") argError("ERR_INVALID_ARG", "xpronet has no generation option '", k, "' (it has: labelSource)");
    if (source != "oracle" && source != "predicted" && source != "none")
      argError("ERR_INVALID_ARG", "systemOptions.labelSource must be 'oracle', 'predicted' or 'none', got '", source, "'");
    at::Tensor pooled;
    at::Tensor v = visualTokens(b.images, &pooled);
    const int64_t B = v.size(0);
    at::Tensor y;
    if (source == "oracle") {
      if (!b.labels.defined()) argError("ERR_INVALID_ARG", "labelSource 'oracle' needs batch.labels; use 'predicted' for new images");
      y = b.labels.eq(1).to(v.scalar_type());
    } else if (source == "predicted") {
      at::Tensor p = at::sigmoid(classifier->forward(pooled));
      y = p.gt(0.5).to(v.scalar_type());
      // At least the most likely class, so some prototypes are always eligible.
      y.scatter_(1, p.argmax(1, true), 1.0);
    }
    at::Tensor mask = y.defined() ? classMask(y) : at::Tensor();
    at::Tensor imageIdx;
    at::Tensor rImage = respond(v, mask, &imageIdx);
    at::Tensor fused = fuseImage->forward(at::cat({v, rImage}, -1));
    at::Tensor sourceMask = at::ones({B, v.size(1)}, v.options().dtype(at::kBool));

    nn::SearchOptions so = r.search;
    so.eosId = 0;
    so.padId = 0;
    wordMask_ = mask;
    nn::SearchResult result;
    {
      nn::EncoderDecoderStepper stepper(transformer, fused, sourceMask, nn::CacheMode::Full);
      result = nn::search(stepper, so);
    }
    // The tokens as the decoder reads them (EOS and padding are id 0), for the explanations below.
    int64_t longest = 1;
    for (auto& t : result.tokens) longest = std::max<int64_t>(longest, static_cast<int64_t>(t.size()));
    at::Tensor tokens = at::zeros({B, longest}, at::kLong);
    Generated g;
    for (int64_t i = 0; i < B; ++i) {
      std::vector<int64_t> row;
      for (size_t j = 0; j < result.tokens[i].size(); ++j) {
        tokens[i][j] = result.tokens[i][j];
        if (result.tokens[i][j] == so.eosId) break;
        row.push_back(result.tokens[i][j]);
      }
      g.tokens.push_back(std::move(row));
    }
    g.scores = result.scores;
    // Explanations: the prototypes each generated word and each image patch selected (first head).
    at::Tensor words = transformer->decoder->embed->forward(tokens.to(v.device()));
    at::Tensor wordIdx;
    respond(words, mask, &wordIdx);
    wordMask_ = at::Tensor();
    g.extras["wordPrototypes"] = (wordIdx.dim() == 4 ? wordIdx.select(2, 0) : wordIdx).to(at::kCPU);
    g.extras["patchPrototypes"] = (imageIdx.dim() == 4 ? imageIdx.select(2, 0) : imageIdx).to(at::kCPU);
    if (y.defined()) g.extras["queryLabels"] = y.to(at::kCPU, at::kLong);
    return g;
  }

  // k-means prototypes per class on concatenated visual (extractor, original + flipped) and textual
  // (bag of words under a fixed seeded random projection) global features (eqs. 4-7).
  void initializeFromData(const std::vector<Batch>& batches) override {
    at::NoGradGuard ng;
    std::vector<at::Tensor> feats, labels;
    at::Tensor projection = at::randn({vocab_, textInitDim_}, at::detail::createCPUGenerator(seed_ + 17), at::kFloat) / std::sqrt(static_cast<double>(textInitDim_));
    // Without labels (a run that needs none: labelSource 'none', no label losses) the prototypes
    // are k-means centres of all features; no class mask ever selects among them then.
    const bool labelled = !batches.empty() && batches.front().labels.defined();
    for (const Batch& b : batches) {
      if (!b.images.defined() || !b.tokens.defined()) argError("ERR_INVALID_ARG", "prototype initialisation needs batches with images and tokens");
      if (b.labels.defined() != labelled) argError("ERR_INVALID_ARG", "prototype initialisation needs labels in every batch or in none");
      at::Tensor pooled, pooledFlip;
      visualTokens(b.images, &pooled);
      visualTokens(b.images.flip({-1}), &pooledFlip);
      at::Tensor bow = at::zeros({b.tokens.size(0), vocab_}, at::kFloat);
      at::Tensor tok = b.tokens.to(at::kCPU);
      bow.scatter_add_(1, tok, at::ones_like(tok, at::kFloat));
      bow.select(1, 0).zero_();
      at::Tensor text = at::matmul(bow / bow.sum(1, true).clamp_min(1), projection) * std::sqrt(static_cast<double>(vocab_));
      for (const at::Tensor& p : {pooled, pooledFlip}) {
        feats.push_back(at::cat({p.to(at::kCPU, at::kFloat), text}, 1));
        if (labelled) labels.push_back(b.labels.to(at::kCPU).eq(1));
      }
    }
    if (feats.empty()) return;
    at::Tensor all = at::cat(feats, 0);
    at::Tensor centres = at::empty({kClasses * perClass_, all.size(1)}, at::kFloat);
    if (!labelled) {
      centres.copy_(kmeans(all, kClasses * perClass_, 50, seed_));
      prototypes.copy_(centres.to(prototypes.options()));
      return;
    }
    at::Tensor y = at::cat(labels, 0);
    for (int64_t k = 0; k < kClasses; ++k) {
      at::Tensor members = all.index_select(0, y.select(1, k).nonzero().squeeze(1));
      centres.slice(0, k * perClass_, (k + 1) * perClass_).copy_(kmeans(members, perClass_, 50, seed_ + static_cast<uint64_t>(k)));
    }
    prototypes.copy_(centres.to(prototypes.options()));
  }

  nn::ResNet visual{nullptr};
  torch::nn::Linear visualProj{nullptr}, prototypeProj{nullptr}, queryProj{nullptr}, keyProj{nullptr}, valueProj{nullptr}, outProj{nullptr},
      fuseImage{nullptr}, fuseText{nullptr}, classifier{nullptr};
  at::Tensor prototypes;
  nn::EncoderDecoder transformer{nullptr};

 private:
  // images [B, V, 1, H, W] -> patch tokens [B, V*h*w, d]; pooled extractor features [B, C] on request.
  at::Tensor visualTokens(const at::Tensor& images, at::Tensor* pooled) {
    const int64_t B = images.size(0), V = images.size(1);
    at::Tensor f = visual->forward(images.reshape({B * V, images.size(2), images.size(3), images.size(4)}));  // [BV, C, h, w]
    const int64_t C = f.size(1);
    at::Tensor tokens = f.flatten(2).transpose(1, 2).reshape({B, -1, C});  // [B, V*h*w, C]
    if (pooled) *pooled = tokens.mean(1);
    at::Tensor x = visualProj->forward(tokens);
    return is_training() && dropout_ > 0 ? at::dropout(x, dropout_, true) : x;
  }

  // y [B, 14] (1 = positive) -> eligible prototypes [B, 14 * perClass].
  at::Tensor classMask(const at::Tensor& y) const { return y.gt(0.5).repeat_interleave(perClass_, 1); }

  // Multi-head top-gamma querying over the (projected) prototypes and responding (eqs. 8-13).
  at::Tensor respond(const at::Tensor& x, const at::Tensor& mask, at::Tensor* indices) {
    at::Tensor p = prototypeProj->forward(prototypes);  // [S, d] (eq. 8)
    at::Tensor rowMask = mask;
    if (mask.defined() && mask.size(0) != x.size(0)) rowMask = mask.repeat_interleave(x.size(0) / mask.size(0), 0);  // beams share their image's mask
    ops::MemoryQueryOptions o;
    o.k = std::min<int64_t>(topK_, p.size(0));
    o.heads = heads_;
    o.similarity = ops::Similarity::ScaledDot;
    o.weighting = ops::Weighting::Softmax;
    auto r = ops::memoryQuery(queryProj->forward(x), keyProj->forward(p), valueProj->forward(p), rowMask, o);
    if (indices) *indices = r.indices;
    at::Tensor out = outProj->forward(r.response);
    return is_training() && dropout_ > 0 ? at::dropout(out, dropout_, true) : out;
  }

  at::Tensor fuseWords(const at::Tensor& words) {
    at::Tensor r = respond(words, wordMask_, nullptr);
    if (is_training()) lastWordResponse_ = r;
    return fuseText->forward(at::cat({words, r}, -1));
  }

  // Improved multi-label contrastive loss (eqs. 17-18) on responses [B, L, d] (mask [B, L] or undefined).
  at::Tensor contrastive(const at::Tensor& responses, const at::Tensor& tokenMask, const at::Tensor& y) const {
    at::Tensor pooled;
    if (tokenMask.defined()) {
      at::Tensor m = tokenMask.to(responses.scalar_type()).unsqueeze(-1);
      pooled = (responses * m).sum(1) / m.sum(1).clamp_min(1);
    } else {
      pooled = responses.mean(1);
    }
    at::Tensor z = pooled / pooled.norm(2, -1, true).clamp_min(1e-12);
    // Data-parallel: this rank's rows against every rank's (gathered with gradients), W x its share.
    at::Tensor Z = nn::gatherRows(z), Y = nn::gatherRows(y);
    at::Tensor sim = at::matmul(z, Z.transpose(0, 1));  // [b, B]
    at::Tensor common = at::matmul(y, Y.transpose(0, 1)).gt(0);
    at::Tensor hd = (y.unsqueeze(1) - Y.unsqueeze(0)).abs().sum(-1);
    at::Tensor ht = (y.unsqueeze(1) + Y.unsqueeze(0)).sum(-1).clamp_min(1);
    at::Tensor target = at::pow(theta_, -(hd / ht));
    at::Tensor positive = (target - sim) * common;
    at::Tensor negative = at::relu(sim - alpha_) * common.logical_not();
    const double b2 = static_cast<double>(Y.size(0) * Y.size(0));
    at::Tensor l = (positive.sum() + negative.sum()) / b2;
    return nn::worldSize() > 1 ? l * static_cast<double>(nn::worldSize()) : l;
  }

  int64_t dModel_, heads_, perClass_, topK_;
  double theta_, alpha_, lambdaImage_, lambdaText_, lambdaClass_, dropout_;
  int64_t vocab_, textInitDim_ = 0, maxPositions_ = 512;
  std::string labelSource_;
  uint64_t seed_;
  at::Tensor wordMask_, lastWordResponse_;
};

SystemRegistrar reg("xpronet", [](const Config& c) { return std::make_shared<XProNet>(c); });

}  // namespace
}  // namespace radkit
