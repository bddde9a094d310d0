// MedRAT (seed 001): unpaired report generation through a shared memory and auxiliary tasks.
//   F_I: ResNet patch features -> Linear to d;  F_R: word embeddings (+ sinusoidal positions)
//   both -> shared memory (eq. 1) -> E_I | E_R (transformer layers of their own) -> shared encoder E_S
//   -> local vectors Z_l -> self-attentive pooling (eqs. 2-3) -> z_global
//   decoder D_R (nn::EncoderDecoder without encoder layers: memory = LayerNorm([z_global; Z_l]))
// Training, unpaired (pairing 'unpaired'): the decoder auto-encodes each report from its own
// [z_global; aug(Z_l)] (vector dropout p or Gaussian noise sigma on the locals), and the auxiliary
// tasks align the modalities: multi-label SupCon (eq. 4) over two augmentations of each image
// (native crop / affine / blur / contrast) and of each report (sentence shuffling), and BCE of a
// 2-layer MLP on the globals (eq. 5); L = g1 L_lang + g2 L_con + g3 L_cls (eq. 6).
// Training, paired (pairing 'paired', the ceiling): the decoder reads the image's [z_global; Z_l] and
// predicts the study's report; the auxiliary tasks are the same.
// Generation always reads the image's [z_global; Z_l] (unaugmented).
#include "medrat.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/modules/normalization.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <utility>

#include "../core/errors.h"
#include "../nn/augment.h"
#include "../nn/decoding.h"
#include "search_output.h"
#include "../nn/losses.h"
#include "../nn/resnet.h"
#include "../nn/transformer.h"
#include "../ops/memory_query/memory_query.h"
#include "resnet_config.h"
#include "system.h"

namespace radkit {
namespace medrat {

SharedMemoryImpl::SharedMemoryImpl(int64_t slots, int64_t dim, int64_t k, double t) : topK(k), temperature(t) {
  memory = register_parameter("memory", at::randn({slots, dim}) / std::sqrt(static_cast<double>(dim)));
  queryProj = register_module("queryProj", torch::nn::Linear(torch::nn::LinearOptions(dim, dim).bias(false)));
  keyProj = register_module("keyProj", torch::nn::Linear(torch::nn::LinearOptions(dim, dim).bias(false)));
  valueProj = register_module("valueProj", torch::nn::Linear(torch::nn::LinearOptions(dim, dim).bias(false)));
}

at::Tensor SharedMemoryImpl::forward(const at::Tensor& f, at::Tensor* indices) {
  at::Tensor q = queryProj->forward(f);
  at::Tensor keys = keyProj->forward(memory);
  at::Tensor values = valueProj->forward(memory);
  ops::MemoryQueryOptions o;
  o.k = std::min<int64_t>(topK, memory.size(0));
  o.weighting = ops::Weighting::Softmax;
  if (temperature == 1.0) {
    o.similarity = ops::Similarity::Cosine;
  } else {
    // cos / t as a dot product of unit vectors (the clamp is the op's cosine clamp).
    q = q / (q.norm(2, -1, true).clamp_min(1e-12) * temperature);
    keys = keys / keys.norm(2, -1, true).clamp_min(1e-12);
    o.similarity = ops::Similarity::Dot;
  }
  auto r = ops::memoryQuery(q, keys, values, at::Tensor(), o);
  if (indices) *indices = r.indices;
  return f + r.response;
}

SelfAttentivePoolingImpl::SelfAttentivePoolingImpl(int64_t dim) {
  sa1 = register_module("sa1", torch::nn::Linear(torch::nn::LinearOptions(dim, dim).bias(false)));
  sa2 = register_module("sa2", torch::nn::Linear(torch::nn::LinearOptions(dim, 1).bias(false)));
}

at::Tensor SelfAttentivePoolingImpl::forward(const at::Tensor& locals, const at::Tensor& valid, at::Tensor* weights) {
  at::Tensor scores = sa2->forward(at::tanh(sa1->forward(locals))).squeeze(-1);  // [B, n]
  if (valid.defined()) scores = scores.masked_fill(valid.logical_not(), -std::numeric_limits<double>::infinity());
  at::Tensor a = at::softmax(scores, -1);
  if (weights) *weights = a;
  return at::matmul(a.unsqueeze(1), locals).squeeze(1);
}

at::Tensor shuffleSentenceTokens(const at::Tensor& tokens, const std::vector<int64_t>& sentenceEnds, double p, at::Generator gen) {
  at::Tensor cpu = tokens.to(at::kCPU).contiguous();
  at::Tensor out = cpu.clone();
  if (!(p > 0)) return out.to(tokens.device());
  const int64_t B = cpu.size(0), T = cpu.size(1);
  auto in = cpu.accessor<int64_t, 2>();
  auto o = out.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const bool go = at::rand({1}, gen, at::kDouble).item<double>() < p;
    if (!go) continue;
    // Words run from position 1 to the first 0 (EOS) after it.
    int64_t end = 1;
    while (end < T && in[b][end] != 0) ++end;
    std::vector<std::pair<int64_t, int64_t>> sentences;  // [begin, end)
    int64_t begin = 1;
    for (int64_t t = 1; t < end; ++t)
      if (std::find(sentenceEnds.begin(), sentenceEnds.end(), in[b][t]) != sentenceEnds.end()) {
        sentences.emplace_back(begin, t + 1);
        begin = t + 1;
      }
    if (begin < end) sentences.emplace_back(begin, end);
    if (sentences.size() < 2) continue;
    at::Tensor perm = at::randperm(static_cast<int64_t>(sentences.size()), gen, at::TensorOptions().dtype(at::kLong));
    int64_t pos = 1;
    for (int64_t i = 0; i < perm.size(0); ++i) {
      auto [s, e] = sentences[perm[i].item<int64_t>()];
      for (int64_t t = s; t < e; ++t) o[b][pos++] = in[b][t];
    }
  }
  return out.to(tokens.device());
}

namespace {

constexpr int64_t kClasses = kObservations;

struct Encoded {
  at::Tensor locals;  // Z_l [B, n, d]
  at::Tensor valid;   // [B, n] bool
  at::Tensor global;  // z_global [B, d]
  at::Tensor memoryRows;  // [B, n, K] (on request)
};

class MedRAT : public System {
 public:
  explicit MedRAT(const Config& c)
      : dModel_(c.integerIn("dModel", 512, 1, 1 << 16)),
        heads_(c.integerIn("heads", 8, 1, 1024)),
        vocab_(c.integer("vocabSize", 0)),
        useMemory_(c.flag("memory", true)),
        localAugment_(c.str("localAugment", "dropout")),
        vectorDropout_(c.num("vectorDropout", 0.9)),
        noiseSigma_(c.num("noiseSigma", 5.0)),
        contrastTemperature_(c.num("contrastTemperature", 0.07)),
        gammaLang_(c.num("gammaLang", 1.0)),
        gammaContrast_(c.num("gammaContrast", 1.0)),
        gammaClass_(c.num("gammaClass", 1.0)),
        uncertainPositive_(c.flag("uncertainPositive", false)),
        textShuffle_(c.num("textShuffle", 1.0)),
        imageAugment_(c.flag("imageAugment", true)),
        pairing_(c.str("pairing", "unpaired")),
        dropout_(c.num("dropout", 0.1)),
        seed_(static_cast<uint64_t>(c.integerIn("seed", 0, 0, int64_t(1) << 53))) {
    if (vocab_ < 2 || vocab_ > (int64_t(1) << 24)) argError("ERR_INVALID_ARG", "config.vocabSize must be in [2, 2^24] (the tokenizer's vocabulary size incl. id 0), got ", vocab_);
    constexpr int64_t kBig = int64_t(1) << 24;
    const int64_t dFF = c.integerIn("dFF", 512, 1, kBig), modalityLayers = c.integerIn("modalityLayers", 1, 0, 64),
                  encoderLayers = c.integerIn("encoderLayers", 3, 1, 64), decoderLayers = c.integerIn("decoderLayers", 3, 1, 64);
    const int64_t slots = c.integerIn("memorySlots", 2048, 1, 1 << 20), topK = c.integerIn("memoryTopK", 32, 1, 1 << 20);
    if (topK > slots) argError("ERR_INVALID_ARG", "config.memoryTopK (", topK, ") must be at most config.memorySlots (", slots, ")");
    const double memoryTemperature = c.num("memoryTemperature", 1.0);
    maxPositions_ = c.integerIn("maxPositions", 512, 2, kBig);
    const ResNetSpec resnetSpec = readResNetSpec(c, {64, 64, 128, 256, 512}, {3, 4, 6, 3}, "");
    sentenceEnds_ = c.ints("sentenceEndIds", {});
    for (int64_t id : sentenceEnds_)
      if (id < 1 || id >= vocab_) argError("ERR_INVALID_ARG", "config.sentenceEndIds must be word ids in [1, ", vocab_ - 1, "], got ", id);
    if (dModel_ % heads_ != 0) argError("ERR_INVALID_ARG", "config.dModel (", dModel_, ") must be divisible by config.heads (", heads_, ")");
    if (localAugment_ != "dropout" && localAugment_ != "noise" && localAugment_ != "none")
      argError("ERR_INVALID_ARG", "config.localAugment must be 'dropout', 'noise' or 'none', got '", localAugment_, "'");
    if (pairing_ != "unpaired" && pairing_ != "paired") argError("ERR_INVALID_ARG", "config.pairing must be 'unpaired' or 'paired', got '", pairing_, "'");
    for (auto [key, v, lo, hi] : {std::tuple<const char*, double, double, double>{"vectorDropout", vectorDropout_, 0, 1}, {"dropout", dropout_, 0, 0.999}, {"textShuffle", textShuffle_, 0, 1}})
      if (!(v >= lo && v <= hi)) argError("ERR_INVALID_ARG", "config.", key, " must be in [", lo, ", ", hi, "], got ", v);
    for (auto [key, v] : {std::pair<const char*, double>{"noiseSigma", noiseSigma_}, {"gammaLang", gammaLang_}, {"gammaContrast", gammaContrast_}, {"gammaClass", gammaClass_}})
      if (!(v >= 0 && std::isfinite(v))) argError("ERR_INVALID_ARG", "config.", key, " must be a finite number >= 0, got ", v);
    for (auto [key, v] : {std::pair<const char*, double>{"memoryTemperature", memoryTemperature}, {"contrastTemperature", contrastTemperature_}})
      if (!(v > 0 && std::isfinite(v))) argError("ERR_INVALID_ARG", "config.", key, " must be a finite number > 0, got ", v);
    augment_.cropP = c.num("augmentCropP", 0.8);
    augment_.affineP = c.num("augmentAffineP", 0.5);
    augment_.blurP = c.num("augmentBlurP", 0.3);
    augment_.contrast = c.num("augmentContrast", 0.3);
    nn::checkAugmentConfig(augment_);
    {
      const double d = static_cast<double>(dModel_), f = static_cast<double>(dFF), V = static_cast<double>(vocab_);
      const double resnet = resnetSpec.parameters();
      const double layers = (2.0 * modalityLayers + encoderLayers) * (4 * d * d + 2 * d * f) + decoderLayers * (8 * d * d + 2 * d * f);
      checkModelSize("medrat", resnet + layers + 3 * V * d + static_cast<double>(slots) * d + 5 * d * d + d * kClasses);
    }
    at::manual_seed(seed_);
    visual = register_module("visual", resnetSpec.build());
    visualProj = register_module("visualProj", torch::nn::Linear(visual->outChannels(), dModel_));
    nn::TransformerConfig t;
    t.vocabSize = vocab_;
    t.dModel = dModel_;
    t.numHeads = heads_;
    t.dFF = dFF;
    t.dropout = dropout_;
    t.maxPositions = maxPositions_;
    t.padId = t.bosId = t.eosId = 0;  // radkit's Tokenizer: 0 is BOS, EOS and PAD
    t.seed = seed_;
    wordEmbed = register_module("wordEmbed", nn::Embeddings(vocab_, dModel_, "sinusoidal", maxPositions_, dropout_, true));
    memory = register_module("memory", SharedMemory(slots, dModel_, topK, memoryTemperature));
    for (int64_t i = 0; i < modalityLayers; ++i) {
      imageEncoder.push_back(register_module("imageEncoder" + std::to_string(i), nn::EncoderLayer(t)));
      reportEncoder.push_back(register_module("reportEncoder" + std::to_string(i), nn::EncoderLayer(t)));
    }
    for (int64_t i = 0; i < encoderLayers; ++i) sharedEncoder.push_back(register_module("sharedEncoder" + std::to_string(i), nn::EncoderLayer(t)));
    sharedNorm = register_module("sharedNorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dModel_})));
    pooling = register_module("pooling", SelfAttentivePooling(dModel_));
    classifier1 = register_module("classifier1", torch::nn::Linear(dModel_, dModel_));
    classifier2 = register_module("classifier2", torch::nn::Linear(dModel_, kClasses));
    // The decoder: no encoder layers, so its memory is LayerNorm(dropout([z_global; Z_l])) (the stack's
    // pre-norm input norm); nn::EncoderDecoderStepper and nn::search then run it unchanged.
    t.kind = "encoder-decoder";
    t.encoderLayers = 0;
    t.decoderLayers = decoderLayers;
    decoder = register_module("decoder", nn::EncoderDecoder(t));
    // Word embeddings (wordEmbed, the decoder's) start N(0, 1/d) in nn::Embeddings: unit scale after its
    // sqrt(d) factor. With LibTorch's N(0, 1) this decoder never read [z_global; Z_l] (bench/RESULTS.md).
  }

  std::string kind() const override { return "medrat"; }
  std::string visualPrefix() const override { return "visual."; }

  void checkBatch(const Batch& b) const override {
    checkTokenIds(b.tokens, vocab_, 0, "medrat");
    if (b.tokens.defined() && b.tokens.size(1) - 1 > maxPositions_)
      argError("ERR_SHAPE", "batch.tokens has ", b.tokens.size(1), " positions but this medrat model reads at most ", maxPositions_,
               " (config.maxPositions) after BOS: truncate the reports (tokenizer maxLength)");
    if (b.tokens.defined() && b.tokens.size(1) < 2) argError("ERR_SHAPE", "batch.tokens needs at least 2 positions (BOS and one word), got ", b.tokens.size(1));
    if (b.images.defined() && b.images.size(2) != 1) argError("ERR_SHAPE", "medrat reads grey images [B, V, 1, H, W], got ", b.images.size(2), " channels");
    auto it = b.extras.find("imageLabels");
    if (it != b.extras.end() && it->second.defined()) {
      const at::Tensor& l = it->second;
      if (l.dim() != 2 || l.size(1) != kClasses || l.scalar_type() != at::kLong || !b.images.defined() || l.size(0) != b.images.size(0))
        argError("ERR_SHAPE", "batch.extras.imageLabels must be an int64 [Bi, 14] tensor of label states, one row per image, got ", l.sizes());
      if (l.numel() && (l.min().item<int64_t>() < kAbsent || l.max().item<int64_t>() > kUncertain))
        argError("ERR_INVALID_ARG", "batch.extras.imageLabels holds label states 0..3");
    }
  }

  at::Tensor loss(const Batch& b, LossParts& parts) override {
    if (!b.images.defined() || !b.tokens.defined()) argError("ERR_INVALID_ARG", "medrat training needs batch.images and batch.tokens");
    if (!b.labels.defined()) argError("ERR_INVALID_ARG", "medrat training needs batch.labels (the reports' CheXpert label states)");
    const bool unpaired = pairing_ == "unpaired";
    if (unpaired == b.paired)
      argError("ERR_INVALID_ARG", "this medrat model trains ", pairing_, " (config.pairing) but the batch is ", b.paired ? "paired" : "unpaired",
               unpaired ? ": give unpaired batches (images and reports of separate sets, extras.imageLabels)" : ": give paired batches (one report per image)");
    const at::Tensor& imageStates = unpaired ? b.extra("imageLabels", "medrat unpaired training") : b.labels;
    at::Tensor images = b.images.select(1, 0).contiguous();  // the first (frontal) view, [Bi, 1, H, W]
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    const bool twoViews = gammaContrast_ > 0;
    at::Tensor images1 = augmentImages(images, gen), tokens1 = shuffle(b.tokens, gen);
    Encoded i1 = encodeImages(images1, false), r1 = encodeReports(tokens1);
    at::Tensor yI = positives(imageStates, i1.global), yR = positives(b.labels, i1.global);
    at::Tensor total = at::zeros({}, i1.global.options());

    // L_lang: auto-encoding the report from its own view (unpaired), or the study's report from the image (paired).
    {
      at::Tensor source, sourceMask;
      if (unpaired) {
        std::tie(source, sourceMask) = decoderMemory(r1, true);
      } else {
        std::tie(source, sourceMask) = decoderMemory(i1, false);
      }
      at::Tensor input = b.tokens.slice(1, 0, b.tokens.size(1) - 1);
      at::Tensor target = b.tokens.slice(1, 1);
      at::Tensor logits = decoder->forward(source, sourceMask, input);
      // Targets: the words, then one EOS (id 0); positions after it are padding.
      at::Tensor lengths = target.gt(0).sum(1, true);
      at::Tensor valid = at::arange(target.size(1), target.options()).unsqueeze(0).le(lengths);
      at::Tensor ce = nn::losses::maskedCrossEntropy(logits, target, valid, {});
      parts["lang"] = ce.item<double>();
      if (gammaLang_ > 0) total = total + gammaLang_ * ce;
    }
    // L_con (eq. 4) over both augmentations of both modalities.
    if (twoViews) {
      Encoded i2 = encodeImages(augmentImages(images, gen), false), r2 = encodeReports(shuffle(b.tokens, gen));
      const int64_t Bi = images.size(0), Br = b.tokens.size(0);
      at::Tensor z = at::cat({i1.global, i2.global, r1.global, r2.global}, 0);
      at::Tensor y = at::cat({yI, yI, yR, yR}, 0);
      at::Tensor idI = at::arange(Bi, at::TensorOptions().dtype(at::kLong).device(z.device()));
      at::Tensor idR = unpaired ? at::arange(Bi, Bi + Br, idI.options()) : idI;  // paired: an image and its report are one item
      nn::losses::SupConOptions o;
      o.temperature = contrastTemperature_;
      o.instances = at::cat({idI, idI, idR, idR}, 0);
      at::Tensor con = nn::losses::supervisedContrastive(z, y, o);
      parts["contrast"] = con.item<double>();
      total = total + gammaContrast_ * con;
    }
    // L_cls (eq. 5): sum over the 14 labels, mean over the 2N globals.
    {
      at::Tensor g = at::cat({i1.global, r1.global}, 0);
      at::Tensor y = at::cat({yI, yR}, 0);
      at::Tensor cls = at::binary_cross_entropy_with_logits(classify(g), y, {}, {}, at::Reduction::None).sum(1).mean();
      parts["class"] = cls.item<double>();
      if (gammaClass_ > 0) total = total + gammaClass_ * cls;
    }
    return total;
  }

  Generated generate(const GenerateRequest& r) override {
    for (auto& [k, v] : r.systemOptions.numbers) argError("ERR_INVALID_ARG", "medrat has no generation option '", k, "' (it has: imageLocals, source)");
    for (auto& [k, v] : r.systemOptions.strings)
      if (k != "imageLocals" && k != "source") argError("ERR_INVALID_ARG", "medrat has no generation option '", k, "' (it has: imageLocals, source)");
    // imageLocals 'all' (default, the paper): the decoder reads [z_global; Z_l]; 'none' (a diagnostic,
    // not the paper): z_global alone, the locals masked out of its attention.
    const std::string imageLocals = r.systemOptions.str("imageLocals", "all");
    if (imageLocals != "all" && imageLocals != "none") argError("ERR_INVALID_ARG", "systemOptions.imageLocals must be 'all' or 'none', got '", imageLocals, "'");
    // source 'image' (default, the paper's inference) or 'report' (a diagnostic: the decoder
    // reconstructs batch.tokens from that report's own [z_global; Z_l], the auto-encoding path).
    const std::string sourceKind = r.systemOptions.str("source", "image");
    if (sourceKind != "image" && sourceKind != "report") argError("ERR_INVALID_ARG", "systemOptions.source must be 'image' or 'report', got '", sourceKind, "'");
    const Batch& b = r.batch;
    const bool fromReport = sourceKind == "report";
    if (fromReport && !b.tokens.defined()) argError("ERR_INVALID_ARG", "medrat generation with systemOptions.source 'report' reads batch.tokens");
    if (!fromReport && !b.images.defined()) argError("ERR_INVALID_ARG", "medrat generates from batch.images");
    Encoded e = fromReport ? encodeReports(b.tokens) : encodeImages(b.images.select(1, 0).contiguous(), true);
    auto [source, sourceMask] = decoderMemory(e, false);
    if (imageLocals == "none") sourceMask.slice(1, 1).fill_(false);
    nn::SearchOptions so = r.search;
    so.eosId = 0;
    so.padId = 0;
    nn::SearchResult result;
    {
      nn::EncoderDecoderStepper stepper(decoder, source, sourceMask, nn::CacheMode::Full);
      result = nn::search(stepper, so);
    }
    Generated g = generatedUntilEos(result, so.eosId);
    if (!fromReport) g.extras["memoryRows"] = e.memoryRows.to(at::kCPU);  // [B, patches, K]: the shared-memory rows each patch read
    g.extras["predictedLabels"] = at::sigmoid(classify(e.global)).gt(0.5).to(at::kCPU, at::kLong);
    return g;
  }

  // imageGlobal / imageLogits for images, reportGlobal / reportLogits for tokens.
  std::map<std::string, at::Tensor> encode(const Batch& b) override {
    std::map<std::string, at::Tensor> out;
    if (b.images.defined()) {
      Encoded e = encodeImages(b.images.select(1, 0).contiguous(), true);
      out["imageGlobal"] = e.global;
      out["imageLogits"] = classify(e.global);
      out["imageMemoryRows"] = e.memoryRows;
    }
    if (b.tokens.defined()) {
      Encoded e = encodeReports(b.tokens);
      out["reportGlobal"] = e.global;
      out["reportLogits"] = classify(e.global);
    }
    if (out.empty()) argError("ERR_INVALID_ARG", "medrat encodes batch.images and/or batch.tokens; the batch has neither");
    return out;
  }

  nn::ResNet visual{nullptr};
  torch::nn::Linear visualProj{nullptr}, classifier1{nullptr}, classifier2{nullptr};
  nn::Embeddings wordEmbed{nullptr};
  SharedMemory memory{nullptr};
  std::vector<nn::EncoderLayer> imageEncoder, reportEncoder, sharedEncoder;
  torch::nn::LayerNorm sharedNorm{nullptr};
  SelfAttentivePooling pooling{nullptr};
  nn::EncoderDecoder decoder{nullptr};

 private:
  // Two seeded random augmentations per image in training (seeds from the default generator, whose
  // state checkpoints carry); the images as given otherwise.
  at::Tensor augmentImages(const at::Tensor& images, at::Generator& gen) {
    if (!is_training() || !imageAugment_) return images;
    at::Tensor s = at::randint(0, int64_t(1) << 53, {images.size(0)}, gen, at::TensorOptions().dtype(at::kLong));
    std::vector<uint64_t> seeds(static_cast<size_t>(images.size(0)));
    for (int64_t i = 0; i < images.size(0); ++i) seeds[static_cast<size_t>(i)] = static_cast<uint64_t>(s[i].item<int64_t>());
    return nn::augmentImages(images, seeds, augment_);
  }

  at::Tensor shuffle(const at::Tensor& tokens, at::Generator& gen) {
    if (!is_training() || sentenceEnds_.empty() || textShuffle_ <= 0) return tokens;
    return shuffleSentenceTokens(tokens, sentenceEnds_, textShuffle_, gen);
  }

  // Label states -> positives (1; uncertain too with uncertainPositive), as floats.
  at::Tensor positives(const at::Tensor& states, const at::Tensor& like) const {
    at::Tensor y = states.eq(kPositive);
    if (uncertainPositive_) y = y.logical_or(states.eq(kUncertain));
    return y.to(like.scalar_type());
  }

  at::Tensor classify(const at::Tensor& g) { return classifier2->forward(at::relu(classifier1->forward(g))); }

  // Shared memory, the modality's encoder, the shared encoder and pooling.
  Encoded shared(at::Tensor x, const at::Tensor& valid, std::vector<nn::EncoderLayer>& own, bool wantRows) {
    Encoded e;
    if (useMemory_) x = memory->forward(x, wantRows ? &e.memoryRows : nullptr);
    at::Tensor mask = valid.view({valid.size(0), 1, 1, valid.size(1)});
    for (auto& layer : own) x = layer->forward(x, mask);
    for (auto& layer : sharedEncoder) x = layer->forward(x, mask);
    e.locals = sharedNorm->forward(x);
    e.valid = valid;
    e.global = pooling->forward(e.locals, valid);
    if (wantRows && !e.memoryRows.defined()) e.memoryRows = at::zeros({x.size(0), x.size(1), 0}, at::kLong);
    return e;
  }

  Encoded encodeImages(const at::Tensor& images, bool wantRows) {
    at::Tensor f = visual->forward(images);                     // [B, C, h, w]
    at::Tensor patches = visualProj->forward(f.flatten(2).transpose(1, 2));  // F_I [B, hw, d]
    if (is_training() && dropout_ > 0) patches = at::dropout(patches, dropout_, true);
    at::Tensor valid = at::ones({patches.size(0), patches.size(1)}, patches.options().dtype(at::kBool));
    return shared(patches, valid, imageEncoder, wantRows);
  }

  // tokens [B, T] (BOS, words, EOS, PAD): the words are the locals.
  Encoded encodeReports(const at::Tensor& tokens) {
    at::Tensor words = tokens.slice(1, 1);
    if (words.size(1) == 0) words = tokens;
    at::Tensor valid = words.gt(0);
    valid.select(1, 0).fill_(true);  // an empty report still has one (EOS) local
    at::Tensor x = wordEmbed->forward(words);  // F_R [B, T-1, d]
    return shared(x, valid, reportEncoder, false);
  }

  // The decoder's memory [z_global; locals] and its mask; in training (augment) the locals get
  // vector dropout (masked out of attention, no rescaling) or Gaussian noise.
  std::pair<at::Tensor, at::Tensor> decoderMemory(const Encoded& e, bool augment) {
    at::Tensor locals = e.locals, valid = e.valid;
    if (augment && is_training()) {
      if (localAugment_ == "dropout" && vectorDropout_ > 0) {
        valid = valid.logical_and(at::rand(valid.sizes(), locals.options()).ge(vectorDropout_));
      } else if (localAugment_ == "noise" && noiseSigma_ > 0) {
        locals = locals + noiseSigma_ * at::randn_like(locals);
      }
    }
    at::Tensor source = at::cat({e.global.unsqueeze(1), locals}, 1);
    at::Tensor mask = at::cat({at::ones({valid.size(0), 1}, valid.options()), valid}, 1);
    return {source, mask};
  }

  int64_t dModel_, heads_, vocab_;
  bool useMemory_;
  std::string localAugment_;
  double vectorDropout_, noiseSigma_, contrastTemperature_, gammaLang_, gammaContrast_, gammaClass_;
  bool uncertainPositive_;
  double textShuffle_;
  bool imageAugment_;
  std::string pairing_;
  double dropout_;
  uint64_t seed_;
  int64_t maxPositions_ = 512;
  std::vector<int64_t> sentenceEnds_;
  nn::AugmentConfig augment_;
};

SystemRegistrar reg("medrat", [](const Config& c) { return std::make_shared<MedRAT>(c); });

}  // namespace
}  // namespace medrat
}  // namespace radkit
