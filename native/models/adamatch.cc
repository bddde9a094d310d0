// AdaMatch (seed 000 section 3.1 and supplementary section 8): adaptive patch-word matching.
//   image encoder: PVT-like, AdaPatch in stages 2-4, features of `featureStage` (default 3)
//   text encoder:  BERT-style (Hugging Face parameter names, so BERT weights load by name)
//   projections:   Linear -> norm -> ReLU -> Linear to d = 256 for both modalities, then
//                  L2-normalised so similarities are cosines. norm: batch norm as in the paper
//                  (two 1x1 convolutions with batch norm and ReLU; statistics over real words only),
//                  or LayerNorm (config.projectionNorm 'layer', the default of older checkpoints)
//   loss:          eqs. 5-9 through ops::max_similarity (padding excluded):
//                  L = 1/2 (mean_i CE(s^I_i,: / tau, i) + mean_i CE(s^T_:,i / tau, i))
//   tau:           fixed, or learned as log tau (CLIP-style), clamped to [0.01, 1].
#include <ATen/ATen.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/functional/normalization.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <cmath>
#include <utility>

#include "../core/errors.h"
#include "../nn/bert.h"
#include "../nn/pvt.h"
#include "../ops/max_similarity/max_similarity.h"
#include "system.h"

namespace radkit {
namespace {

struct ProjectionImpl : torch::nn::Module {
  // batchNorm: the paper's batch norm between the two layers, with statistics over the real rows
  // only (padded words excluded); otherwise LayerNorm (checkpoints made before the option).
  ProjectionImpl(int64_t in, int64_t out, bool batchNorm) {
    fc1 = register_module("fc1", torch::nn::Linear(in, out));
    if (batchNorm) bn = register_module("norm", torch::nn::BatchNorm1d(out));
    else ln = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({out})));
    // No bias on the output: a shared offset would let every embedding drift to one direction (a
    // collapse to uniform similarities that the contrastive loss cannot leave once reached).
    fc2 = register_module("fc2", torch::nn::Linear(torch::nn::LinearOptions(out, out).bias(false)));
  }
  // x [B, N, in]; mask [B, N] (true = real row) or undefined.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask = at::Tensor()) {
    at::Tensor y = fc1->forward(x);
    if (ln) return fc2->forward(at::relu(ln->forward(y)));
    // Batch statistics of near-identical untrained features are what centres them: every row's
    // common component is removed, so differences between patches and images reach the loss.
    at::Tensor flat = y.reshape({-1, y.size(-1)});
    if (mask.defined()) {
      at::Tensor rows = mask.reshape({-1}).nonzero().squeeze(1);
      flat = at::zeros_like(flat).index_copy(0, rows, normalizeRows(flat.index_select(0, rows)));
    } else {
      flat = normalizeRows(flat);
    }
    return fc2->forward(at::relu(flat.view(y.sizes())));
  }
  // Batch statistics need two rows; fewer (a batch of one one-word report) uses the running ones.
  at::Tensor normalizeRows(const at::Tensor& rows) {
    // Data-parallel: statistics over every rank's real rows (a rank with none still takes part).
    if (nn::currentDistributed() && is_training()) return nn::batchNorm(bn, rows);
    if (rows.size(0) == 0) return rows;
    if (rows.size(0) >= 2 || !is_training()) return bn->forward(rows);
    return at::batch_norm(rows, bn->weight, bn->bias, bn->running_mean, bn->running_var, false, 0.0, bn->options.eps(), false);
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::LayerNorm ln{nullptr};
  torch::nn::BatchNorm1d bn{nullptr};
};
TORCH_MODULE(Projection);

at::Tensor unitRows(const at::Tensor& x) {
  return torch::nn::functional::normalize(x, torch::nn::functional::NormalizeFuncOptions().dim(-1));
}

void checkStageList(const Config& c, const char* key) {
  c.markRead(key);
  auto it = c.arrays.find(key);
  if (it != c.arrays.end() && it->second.size() != 4) argError("ERR_INVALID_ARG", "config.", key, " needs 4 entries (one per stage), got ", it->second.size());
  if (it != c.arrays.end())
    for (double v : it->second)
      if (!(v >= 1)) argError("ERR_INVALID_ARG", "config.", key, " entries must be >= 1, got ", v);
}

class AdaMatch : public System {
 public:
  explicit AdaMatch(const Config& c)
      : stage_(c.integer("featureStage", 3)),
        padId_(c.integer("padId", 0)),
        normalize_(c.flag("normalize", true)) {
    const int64_t embedDim = c.integer("embedDim", 256);
    const bool learnTemperature = c.flag("learnTemperature", true);
    for (const char* k : {"dims", "depths", "heads", "reductions"}) checkStageList(c, k);
    if (stage_ < 1 || stage_ > 4) argError("ERR_INVALID_ARG", "config.featureStage must be 1..4, got ", stage_);
    double tau = c.num("temperature", 0.07);
    if (!(tau > 0 && tau <= 1)) argError("ERR_INVALID_ARG", "config.temperature must be in (0, 1], got ", tau);
    nn::PvtConfig p;
    p.imageSize = c.integer("imageSize", 128);
    p.dims = c.ints("dims", p.dims);
    p.depths = c.ints("depths", p.depths);
    p.heads = c.ints("heads", p.heads);
    p.reductions = c.ints("reductions", p.reductions);
    p.firstPatch = c.integer("firstPatch", 4);
    p.patch = c.integer("patch", 2);
    p.points = c.integer("points", 3);
    p.adaptive = c.flag("adaptive", true);
    p.dropout = c.num("dropout", 0.0);
    p.stem = c.str("stem", "linear");
    if (p.stem != "linear" && p.stem != "conv") argError("ERR_INVALID_ARG", "config.stem must be 'linear' or 'conv', got '", p.stem, "'");
    const int64_t minSide = p.firstPatch * p.patch * p.patch * p.patch;
    if (p.imageSize < minSide) argError("ERR_INVALID_ARG", "config.imageSize must be at least ", minSide, " for 4 stages, got ", p.imageSize);
    nn::BertConfig t;
    t.vocabSize = c.integer("vocabSize", 0);
    if (t.vocabSize < 2) argError("ERR_INVALID_ARG", "config.vocabSize must be >= 2 (the text tokenizer's vocabulary size), got ", t.vocabSize);
    t.hidden = c.integer("textHidden", 128);
    t.layers = c.integer("textLayers", 2);
    t.heads = c.integer("textHeads", 4);
    t.intermediate = c.integer("textIntermediate", 4 * t.hidden);
    t.maxPositions = c.integer("textMaxPositions", 512);
    t.dropout = c.num("textDropout", 0.1);
    constexpr int64_t kBig = int64_t(1) << 24;
    for (auto [key, v] : {std::pair<const char*, int64_t>{"textHidden", t.hidden}, {"textLayers", t.layers}, {"textHeads", t.heads}, {"textIntermediate", t.intermediate},
                          {"textMaxPositions", t.maxPositions}, {"embedDim", embedDim}, {"vocabSize", t.vocabSize}, {"imageSize", p.imageSize},
                          {"firstPatch", p.firstPatch}, {"patch", p.patch}, {"points", p.points}})
      if (v < 1 || v > kBig) argError("ERR_INVALID_ARG", "config.", key, " must be in [1, ", kBig, "], got ", v);
    for (int64_t i = 0; i < 4; ++i)
      if (p.dims[i] > 65536 || p.depths[i] > 1024 || p.heads[i] > 65536 || p.reductions[i] > 65536)
        argError("ERR_INVALID_ARG", "config.dims/depths/heads/reductions[", i, "] are out of range (dims and heads <= 65536, depths <= 1024)");
    {
      // Parameters, roughly: PVT blocks (attention + MLP, ~12 d^2 each), BERT layers, embeddings.
      double params = 0;
      for (int64_t i = 0; i < 4; ++i) params += static_cast<double>(p.depths[i]) * 12.0 * static_cast<double>(p.dims[i]) * static_cast<double>(p.dims[i]);
      const double h = static_cast<double>(t.hidden);
      params += static_cast<double>(t.layers) * (4 * h * h + 2 * h * static_cast<double>(t.intermediate)) + static_cast<double>(t.vocabSize + t.maxPositions) * h;
      params += 2.0 * static_cast<double>(embedDim) * (static_cast<double>(embedDim) + h + static_cast<double>(p.dims[3]));
      checkModelSize("adamatch", params);
    }
    textVocab_ = t.vocabSize;
    textMaxPositions_ = t.maxPositions;
    if (t.hidden % t.heads != 0) argError("ERR_INVALID_ARG", "config.textHidden (", t.hidden, ") must be divisible by config.textHeads (", t.heads, ")");
    for (int64_t i = 0; i < 4; ++i)
      if (p.dims[i] % p.heads[i] != 0) argError("ERR_INVALID_ARG", "config.dims[", i, "] (", p.dims[i], ") must be divisible by config.heads[", i, "] (", p.heads[i], ")");
    at::manual_seed(static_cast<uint64_t>(c.integer("seed", 0)));
    image = register_module("image", nn::PvtEncoder(p));
    text = register_module("text", nn::BertModel(t));
    const std::string projectionNorm = c.str("projectionNorm", "layer");
    if (projectionNorm != "layer" && projectionNorm != "batch")
      argError("ERR_INVALID_ARG", "config.projectionNorm must be 'layer' or 'batch', got '", projectionNorm, "'");
    const bool bn = projectionNorm == "batch";
    imageProj = register_module("imageProj", Projection(p.dims[stage_ - 1], embedDim, bn));
    textProj = register_module("textProj", Projection(t.hidden, embedDim, bn));
    at::Tensor logTau = at::full({}, std::log(tau));
    logTemperature = learnTemperature ? register_parameter("logTemperature", logTau) : register_buffer("logTemperature", logTau);
    classWeight_ = c.num("classWeight", 0.0);
    if (classWeight_ < 0) argError("ERR_INVALID_ARG", "config.classWeight must be >= 0, got ", classWeight_);
    // The paper pre-trains its image encoder on disease classification; without pretrained weights a
    // classification head on the pooled patch features trained alongside (classWeight > 0) does that job.
    classifier = register_module("classifier", torch::nn::Linear(p.dims[stage_ - 1], 14));
    // With batch-norm projections the pooled features are centred over the batch as well.
    if (bn) classNorm = register_module("classNorm", torch::nn::BatchNorm1d(p.dims[stage_ - 1]));
  }

  std::string kind() const override { return "adamatch"; }
  std::string visualPrefix() const override { return "image."; }
  std::string distributedTerms() const override {
    return "eqs. 7-9 over the global batch (patch and word embeddings all-gathered with gradients, each rank's rows scored against every rank's); "
           "projection, classification and conv-stem batch norms synchronised over ranks; classification per sample";
  }

  void checkBatch(const Batch& b) const override { checkTokenIds(b.tokens, textVocab_, textMaxPositions_, "adamatch"); }

  at::Tensor temperature() const { return logTemperature.clamp(std::log(0.01), 0.0).exp(); }

  struct Encoded {
    at::Tensor image, imageTokens, text, textMask, textHidden, boxes, fixedBoxes;
    int64_t gridH = 0, gridW = 0;
  };

  Encoded run(const Batch& b) {
    Encoded e;
    if (b.images.defined()) {
      at::Tensor x = b.images.select(1, 0);  // the first (frontal) view: AdaMatch matches one image to its report
      if (x.size(1) != image->config.inChannels)
        argError("ERR_SHAPE", "batch.images must have ", image->config.inChannels, " channel(s), got ", x.size(1));
      nn::PvtOutput o = image->forward(x.contiguous(), stage_);
      e.imageTokens = o.tokens;
      e.image = imageProj->forward(o.tokens);
      if (normalize_) e.image = unitRows(e.image);
      e.boxes = o.boxes;
      e.fixedBoxes = o.fixedBoxes;
      e.gridH = o.gridH;
      e.gridW = o.gridW;
    }
    if (b.tokens.defined()) {
      e.textMask = b.tokens.ne(padId_);
      // Attention needs one key per row: an empty report attends to its first slot (its words stay masked).
      at::Tensor attend = e.textMask.clone();
      if (attend.size(1) > 0) attend.select(1, 0).fill_(true);
      e.textHidden = text->forward(b.tokens, attend);
      e.text = textProj->forward(e.textHidden, e.textMask);
      if (normalize_) e.text = unitRows(e.text);
    }
    return e;
  }

  at::Tensor loss(const Batch& b, LossParts& parts) override {
    if (!b.images.defined() || !b.tokens.defined()) argError("ERR_INVALID_ARG", "AdaMatch training needs batch.images and batch.tokens");
    if (b.images.size(0) < 2 && !nn::currentDistributed())
      argError("ERR_INVALID_ARG", "the contrastive loss needs at least 2 image-report pairs per batch, got ", b.images.size(0));
    Encoded e = run(b);
    at::Tensor tau = temperature();
    ops::MaxSimilarityResult s;
    at::Tensor target, textToImage;
    if (nn::currentDistributed()) {
      // Data-parallel: this rank's images against every rank's reports and its reports against every
      // rank's images (gathered with gradients; reports padded to the longest), W x its share.
      int64_t offset = 0;
      at::Tensor images = nn::gatherRows(e.image, &offset);
      at::Tensor texts = nn::gatherRows(e.text, nullptr, {1});
      at::Tensor masks = nn::gatherRows(e.textMask.to(at::kLong), nullptr, {1}).to(at::kBool);
      s = ops::max_similarity(e.image, texts, at::Tensor(), masks);                              // [b, B]
      textToImage = ops::max_similarity(images, e.text, at::Tensor(), e.textMask).textToImage.t();  // [b, B]
      target = at::arange(e.image.size(0), b.tokens.options()) + offset;
    } else {
      s = ops::max_similarity(e.image, e.text, at::Tensor(), e.textMask);
      textToImage = s.textToImage.t();
      target = at::arange(e.image.size(0), b.tokens.options());
    }
    at::Tensor i2t = torch::nn::functional::cross_entropy(s.imageToText / tau, target);          // eq. 7: row i over reports j
    at::Tensor t2i = torch::nn::functional::cross_entropy(textToImage / tau, target);            // eq. 8: report i over images j
    at::Tensor total = 0.5 * (i2t + t2i);                                          // eq. 9 (1/b inside each term)
    parts["imageToText"] = i2t.item<double>();
    parts["textToImage"] = t2i.item<double>();
    parts["temperature"] = tau.item<double>();
    parts["batchAccuracy"] = s.imageToText.argmax(1).eq(target).to(at::kDouble).mean().item<double>();
    if (classWeight_ > 0) {
      if (!b.labels.defined()) argError("ERR_INVALID_ARG", "config.classWeight > 0 needs batch.labels (CheXpert labels of the reports)");
      at::Tensor y = b.labels.eq(1).to(e.imageTokens.scalar_type());
      at::Tensor pooled = e.imageTokens.mean(1);
      if (classNorm) pooled = nn::batchNorm(classNorm, pooled);
      at::Tensor lc = at::binary_cross_entropy_with_logits(classifier->forward(pooled), y);
      total = total + classWeight_ * lc;
      parts["classification"] = lc.item<double>();
    }
    return total;
  }

  std::map<std::string, at::Tensor> encode(const Batch& b) override {
    if (!b.images.defined() && !b.tokens.defined()) argError("ERR_INVALID_ARG", "encode needs batch.images, batch.tokens or both");
    Encoded e = run(b);
    std::map<std::string, at::Tensor> out;
    if (e.image.defined()) {
      out["image"] = e.image;
      out["boxes"] = e.boxes.contiguous();
      out["fixedBoxes"] = e.fixedBoxes;
      out["grid"] = at::tensor(std::vector<int64_t>{e.gridH, e.gridW});
    }
    if (e.text.defined()) {
      out["text"] = e.text;
      out["textMask"] = e.textMask;
      out["textHidden"] = e.textHidden;  // the text encoder's own output (before projection)
    }
    out["temperature"] = temperature().detach();
    return out;
  }

  Generated generate(const GenerateRequest&) override {
    argError("ERR_UNSUPPORTED", "AdaMatch aligns images and reports; it does not generate reports (use encode, retrieval, keywords or keypatches)");
  }

  nn::PvtEncoder image{nullptr};
  nn::BertModel text{nullptr};
  Projection imageProj{nullptr}, textProj{nullptr};
  torch::nn::Linear classifier{nullptr};
  torch::nn::BatchNorm1d classNorm{nullptr};
  at::Tensor logTemperature;

 private:
  int64_t stage_, padId_, textVocab_ = 0, textMaxPositions_ = 0;
  double classWeight_ = 0;
  bool normalize_;
};

SystemRegistrar reg("adamatch", [](const Config& c) { return std::make_shared<AdaMatch>(c); });

}  // namespace
}  // namespace radkit
