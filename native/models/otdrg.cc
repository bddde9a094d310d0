// OTDRG alignment and fine-tuning (seed 002 sections 3.3-3.5, "otdrg"):
//
//   X = f_e(I)           patch features of every view (encoder.*, a ResNet; from diseasenet/ircp)
//   Y = f_e(L)           one vector per observation: the mean of the LM's input embeddings of the
//                        tokens of "observation: state" (14 per study), divided by the RMS of the
//                        56-row table (labelFeatureScale 'rms'; 'raw' keeps the embeddings' scale)
//   f_p(X) = W_i X + b_i, f_p(Y) = W_l Y + b_l  (eqs. 4-5: imageProjection, labelProjection)
//   C_ij = ||f_p(X)_i - f_p(Y)_j||  (eq. 6, ops::euclideanCost), divided by its mean per study,
//                        detached (costScale 'mean') or with the gradient through it ('ratio'),
//                        or raw ('raw'); see otdrg::CostScale
//   T* = Sinkhorn(C, uniform, uniform, epsilon, t iterations)  (eqs. 7-8, Algorithm 1, ops::sinkhorn)
//   L_OT = <T*, C>;  L = L_RG + lambda L_OT  (eq. 12)
//
// The LM (lm.*, a LLaMA-layout nn::CausalLM with LoRA adapters on the attention projections, base
// frozen) reads [f_p(X); f_p(Y)] as an embedding prefix, then the label text (the non-absent
// "observation: state" strings), the paper's prompt, and the report after BOS; L_RG is the mean
// token cross-entropy of the report words and the EOS (response-only, eq. 11).
//
// Stage switches recorded in the configuration: imagePrefix / labelPrefix / labelText (0 or 1);
// lmPretrainFraction > 0 makes the first fraction of the run's steps pre-train the whole LM from
// scratch on the batch's reports alone (no image, no prompt; the LoRA adapters frozen; with
// lmPretrainInput 'labelled' on [label text; prompt; BOS; report; EOS] of the ground-truth states,
// scored on the report and EOS only, so that the LM learns to read the label text), after which
// the base is frozen and only the adapters, the projections (and the encoder with trainEncoder)
// learn. The disease predictor (classifier.*, diseasenet's head on the same encoder, copied with
// --init) is never trained here; its argmax states replace the labels at generation
// (labelSource 'predicted', the default; 'oracle' reads batch.labels). With trainEncoder 0 (default)
// the encoder is frozen and runs in eval mode, so the predictor sees the features it was trained on.
#include <ATen/ATen.h>
#include <torch/nn/modules/linear.h>

#include <sstream>

#include "../core/errors.h"
#include "../nn/causal_lm.h"
#include "../nn/decoding.h"
#include "otdrg.h"

namespace radkit {
namespace {

std::vector<std::string> splitNames(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

class Otdrg : public System {
 public:
  explicit Otdrg(const Config& c)
      : lambda_(c.num("lambda", 1.0)),
        epsilon_(c.num("epsilon", 0.1)),
        iterations_(c.integerIn("iterations", 50, 1, 100000)),
        // 'mean' when the key is missing (hand-written configurations); otdrgConfig writes 'ratio'.
        costScale_(otdrg::parseCostScale(c.str("costScale", "mean"), "otdrg")),
        stateLseR_(otdrg::parseStateLseR(c, "otdrg")),
        imagePrefix_(c.flag("imagePrefix", true)),
        labelPrefix_(c.flag("labelPrefix", true)),
        labelText_(c.flag("labelText", true)),
        trainEncoder_(c.flag("trainEncoder", false)),
        pretrainFraction_(c.num("lmPretrainFraction", 0.0)),
        labelSource_(c.str("labelSource", "predicted")),
        // The configuration default is 'raw' so that checkpoints written before the key existed load
        // as they were trained; otdrgConfig (lib/models/otdrg.ts) writes 'rms' for new models.
        labelFeatureScale_(c.str("labelFeatureScale", "raw")),
        pretrainInput_(c.str("lmPretrainInput", "reports")) {
    if (pretrainInput_ != "reports" && pretrainInput_ != "labelled")
      argError("ERR_INVALID_ARG", "otdrg: config.lmPretrainInput must be 'reports' or 'labelled', got '", pretrainInput_, "'");
    if (labelFeatureScale_ != "rms" && labelFeatureScale_ != "raw")
      argError("ERR_INVALID_ARG", "otdrg: config.labelFeatureScale must be 'rms' or 'raw', got '", labelFeatureScale_, "'");
    if (!(lambda_ >= 0)) argError("ERR_INVALID_ARG", "otdrg: config.lambda must be >= 0, got ", lambda_);
    if (!(epsilon_ > 0)) argError("ERR_INVALID_ARG", "otdrg: config.epsilon must be > 0, got ", epsilon_);
    if (!(pretrainFraction_ >= 0 && pretrainFraction_ < 1)) argError("ERR_INVALID_ARG", "otdrg: config.lmPretrainFraction must lie in [0, 1), got ", pretrainFraction_);
    checkLabelSource(labelSource_);
    const uint64_t seed = static_cast<uint64_t>(c.integer("seed", 0));
    at::manual_seed(seed);

    nn::CausalLMConfig lc;
    lc.arch = "llama";
    lc.vocabSize = c.integerIn("lmVocabSize", 0, 2, 1 << 22);
    lc.hiddenSize = c.integerIn("lmHidden", 192, 8, 1 << 16);
    lc.numLayers = c.integerIn("lmLayers", 4, 1, 1024);
    lc.numHeads = c.integerIn("lmHeads", 4, 1, 1024);
    lc.numKvHeads = c.integerIn("lmKvHeads", lc.numHeads, 1, 1024);
    lc.headDim = c.integerIn("lmHeadDim", lc.hiddenSize / lc.numHeads, 1, 1 << 14);
    lc.rotaryDim = lc.headDim;
    lc.intermediateSize = c.integerIn("lmIntermediate", 512, 1, 1 << 20);
    lc.maxPositions = c.integerIn("lmMaxPositions", 512, 8, 1 << 20);
    lc.ropeTheta = c.num("lmRopeTheta", 10000.0);
    lc.normEps = c.num("lmNormEps", 1e-6);
    lc.tieEmbeddings = c.flag("lmTieEmbeddings", false);
    bosId_ = c.integerIn("bosId", 0, 0, lc.vocabSize - 1);
    eosId_ = c.integerIn("eosId", 0, 0, lc.vocabSize - 1);
    padId_ = c.integerIn("padId", 0, 0, lc.vocabSize - 1);
    lc.bosId = bosId_, lc.eosId = eosId_, lc.padId = padId_;
    nn::validateConfig(lc);
    const std::string dtype = c.str("lmDtype", "float32");
    if (dtype != "float32" && dtype != "bfloat16") argError("ERR_INVALID_ARG", "otdrg: config.lmDtype must be 'float32' or 'bfloat16', got '", dtype, "'");

    prompt_ = idsArray(c.ints("promptIds", {}), lc.vocabSize, "promptIds");
    if (prompt_.numel() < 1) argError("ERR_INVALID_ARG", "otdrg: config.promptIds must hold the prompt's token ids");
    const int64_t L = c.integerIn("labelTokenLength", 0, 1, 4096);
    std::vector<int64_t> lt = c.ints("labelTokenIds", {});
    if (static_cast<int64_t>(lt.size()) != kObservations * 4 * L)
      argError("ERR_INVALID_ARG", "otdrg: config.labelTokenIds must hold 14 x 4 x labelTokenLength = ", kObservations * 4 * L, " ids (-1 pads), got ", lt.size());
    for (size_t i = 0; i < lt.size(); ++i) {
      if (lt[i] < -1 || lt[i] >= lc.vocabSize) argError("ERR_INVALID_ARG", "otdrg: config.labelTokenIds[", i, "] = ", lt[i], " lies outside the vocabulary [0, ", lc.vocabSize, ") (-1 pads)");
      if (i % L == 0 && lt[i] < 0) argError("ERR_INVALID_ARG", "otdrg: config.labelTokenIds: label ", i / L, " has no token");
    }
    labelIds_ = at::tensor(lt, at::kLong).view({kObservations * 4, L});

    encoder = register_module("encoder", otdrg::buildEncoder(c, "otdrg"));
    const int64_t C = encoder->outChannels();
    classifier = register_module("classifier", torch::nn::Linear(C, kObservations * 4));
    imageProjection = register_module("imageProjection", torch::nn::Linear(C, lc.hiddenSize));
    labelProjection = register_module("labelProjection", torch::nn::Linear(lc.hiddenSize, lc.hiddenSize));
    lm = register_module("lm", nn::createCausalLM(lc, at::TensorOptions().dtype(dtype == "bfloat16" ? at::kBFloat16 : at::kFloat), seed));

    nn::LoraOptions lo;
    lo.rank = c.integerIn("loraRank", 8, 1, 4096);
    lo.alpha = c.num("loraAlpha", 2.0 * static_cast<double>(lo.rank));
    lo.dropout = c.num("loraDropout", 0.0);
    lo.targets = splitNames(c.str("loraTargets", "q_proj,v_proj"));
    lo.seed = seed;
    lm->addLora(lo);  // fails (naming the modules there are) when a target matches none

    for (auto& p : classifier->parameters()) p.set_requires_grad(false);
    if (!trainEncoder_)
      for (auto& p : encoder->parameters()) p.set_requires_grad(false);
    // With an LM pre-training phase every LM weight starts trainable, so the optimizer holds the
    // base and the adapters; setTrainingProgress decides which of them learn at each step.
    if (pretrainFraction_ > 0)
      for (auto& p : lm->parameters()) p.set_requires_grad(true);
  }

  std::string kind() const override { return "otdrg"; }
  std::string visualPrefix() const override { return "encoder."; }

  static void checkLabelSource(const std::string& s) {
    if (s != "predicted" && s != "oracle") argError("ERR_INVALID_ARG", "otdrg: labelSource must be 'predicted' or 'oracle', got '", s, "'");
  }

  static at::Tensor idsArray(const std::vector<int64_t>& v, int64_t vocab, const char* key) {
    for (size_t i = 0; i < v.size(); ++i)
      if (v[i] < 0 || v[i] >= vocab) argError("ERR_INVALID_ARG", "otdrg: config.", key, "[", i, "] = ", v[i], " lies outside the vocabulary [0, ", vocab, ")");
    return at::tensor(v, at::kLong);
  }

  bool pretraining() const { return pretraining_; }

  void setTrainingProgress(int64_t step, int64_t totalSteps) override {
    const bool pre = pretrainFraction_ > 0 && static_cast<double>(step) < pretrainFraction_ * static_cast<double>(totalSteps);
    pretraining_ = pre;
    for (auto& kv : lm->named_parameters()) {
      const bool adapter = kv.key().find("lora_") != std::string::npos;
      const bool learn = pre ? !adapter : adapter;
      at::Tensor p = kv.value();
      if (p.requires_grad() != learn) {
        p.set_requires_grad(learn);
        if (!learn) p.mutable_grad() = at::Tensor();  // no stale zero gradient: Adam skips it
      }
    }
  }

  void checkBatch(const Batch& b) const override {
    if (b.tokens.defined()) checkTokenIds(b.tokens, lm->config.vocabSize, lm->config.maxPositions, "otdrg");
  }

  // Patch features [B, Np, C] (frozen encoder: no gradients, eval mode).
  at::Tensor patches(const Batch& b) {
    if (trainEncoder_) return otdrg::patchFeatures(encoder, b.images, "otdrg");
    at::NoGradGuard ng;
    const bool was = encoder->is_training();
    encoder->eval();
    at::Tensor f = otdrg::patchFeatures(encoder, b.images, "otdrg");
    encoder->train(was);
    return f;
  }

  at::Tensor predictStates(const at::Tensor& x) {
    at::NoGradGuard ng;
    return otdrg::stateLogits(classifier, x, stateLseR_).argmax(-1);
  }

  // Y: [B, 14, D] mean input embedding of each observation's "observation: state" tokens (no gradient).
  at::Tensor labelFeatures(const at::Tensor& states) {
    at::NoGradGuard ng;
    at::Tensor valid = labelIds_.ge(0);
    at::Tensor emb = lm->embed(labelIds_.clamp_min(0)).to(at::kFloat);  // [56, L, D]
    at::Tensor table = (emb * valid.unsqueeze(-1)).sum(1) / valid.sum(1, true).clamp_min(1);  // [56, D]
    // labelFeatureScale 'rms': the table divided by its root mean square, so Y's entries are of
    // order 1 like the patch features. An LM's input embeddings are small (about 0.02 at
    // initialisation): at their own scale W_l Y is nearly the same point for every label, every
    // patch is at about the same distance from all 14, the cost is constant along the labels and
    // T* is the uniform plan whatever epsilon and t. One scalar for the whole table keeps the
    // labels' relative geometry (no per-row normalisation).
    if (labelFeatureScale_ == "rms") table = table / table.pow(2).mean().sqrt().clamp_min(1e-12);
    at::Tensor index = at::arange(kObservations, at::kLong).unsqueeze(0) * 4 + states.to(at::kLong);  // [B, 14]
    return table.index_select(0, index.flatten()).view({states.size(0), kObservations, table.size(1)});
  }

  // Token ids of the label text of one study: the strings of the observations that are mentioned.
  std::vector<int64_t> labelTextOf(const at::Tensor& statesRow) const {
    std::vector<int64_t> out;
    if (!labelText_) return out;
    auto s = statesRow.accessor<int64_t, 1>();
    auto ids = labelIds_.accessor<int64_t, 2>();
    for (int64_t k = 0; k < kObservations; ++k) {
      if (s[k] == kAbsent) continue;
      for (int64_t j = 0; j < labelIds_.size(1) && ids[k * 4 + s[k]][j] >= 0; ++j) out.push_back(ids[k * 4 + s[k]][j]);
    }
    return out;
  }

  // The report of row b: tokens[b, 1 .. first EOS after position 0] (words), EOS excluded.
  std::vector<int64_t> reportOf(const at::Tensor& tokens, int64_t b) const {
    auto t = tokens.accessor<int64_t, 2>();
    std::vector<int64_t> out;
    for (int64_t j = 1; j < tokens.size(1) && t[b][j] != eosId_; ++j) out.push_back(t[b][j]);
    return out;
  }

  struct Sequence {
    at::Tensor ids, mask, lossMask;  // [B, T]
  };

  // Training rows: [label text; prompt; BOS; report; EOS], right-padded.
  Sequence trainingRows(const at::Tensor& states, const at::Tensor& tokens) const {
    const int64_t B = tokens.size(0);
    std::vector<std::vector<int64_t>> rows(B);
    std::vector<int64_t> respStart(B);
    std::vector<int64_t> promptIds(prompt_.data_ptr<int64_t>(), prompt_.data_ptr<int64_t>() + prompt_.numel());
    for (int64_t b = 0; b < B; ++b) {
      std::vector<int64_t>& r = rows[b];
      r = labelTextOf(states[b]);
      r.insert(r.end(), promptIds.begin(), promptIds.end());
      r.push_back(bosId_);
      respStart[b] = static_cast<int64_t>(r.size());
      std::vector<int64_t> rep = reportOf(tokens, b);
      r.insert(r.end(), rep.begin(), rep.end());
      r.push_back(eosId_);
    }
    return pack(rows, respStart, false);
  }

  // Generation prompts: [label text; prompt; BOS], left-padded.
  Sequence promptRows(const at::Tensor& states) const {
    const int64_t B = states.size(0);
    std::vector<std::vector<int64_t>> rows(B);
    std::vector<int64_t> promptIds(prompt_.data_ptr<int64_t>(), prompt_.data_ptr<int64_t>() + prompt_.numel());
    for (int64_t b = 0; b < B; ++b) {
      rows[b] = labelTextOf(states[b]);
      rows[b].insert(rows[b].end(), promptIds.begin(), promptIds.end());
      rows[b].push_back(bosId_);
    }
    return pack(rows, std::vector<int64_t>(B, 0), true);
  }

  Sequence pack(const std::vector<std::vector<int64_t>>& rows, const std::vector<int64_t>& respStart, bool left) const {
    const int64_t B = static_cast<int64_t>(rows.size());
    int64_t T = 1;
    for (auto& r : rows) T = std::max<int64_t>(T, static_cast<int64_t>(r.size()));
    Sequence s;
    s.ids = at::full({B, T}, padId_, at::kLong);
    s.mask = at::zeros({B, T}, at::kBool);
    s.lossMask = at::zeros({B, T}, at::kBool);
    auto ids = s.ids.accessor<int64_t, 2>();
    auto m = s.mask.accessor<bool, 2>();
    auto lm_ = s.lossMask.accessor<bool, 2>();
    for (int64_t b = 0; b < B; ++b) {
      const int64_t n = static_cast<int64_t>(rows[b].size()), off = left ? T - n : 0;
      for (int64_t j = 0; j < n; ++j) {
        ids[b][off + j] = rows[b][j];
        m[b][off + j] = true;
        if (!left && j >= respStart[b]) lm_[b][off + j] = true;
      }
    }
    return s;
  }

  struct Prefix {
    at::Tensor embeds, plan, distance;
    double objective = 0;  // mean entropic objective <T*, C> - eps H(T*) (what ops::sinkhorn differentiates)
  };

  // f_p(X), f_p(Y), the OT term and the LM prefix for the given label states.
  Prefix align(const at::Tensor& x, const at::Tensor& states) {
    Prefix p;
    at::Tensor fx = imageProjection->forward(x);                 // [B, Np, D]
    at::Tensor fy = labelProjection->forward(labelFeatures(states));  // [B, 14, D]
    otdrg::Transport t = otdrg::transport(fx, fy, epsilon_, iterations_, costScale_);
    p.plan = t.plan;
    p.distance = t.distance.mean();
    {
      at::NoGradGuard ng;
      at::Tensor plan = t.plan.to(at::kDouble);
      at::Tensor entropy = -(plan * plan.clamp_min(1e-300).log()).sum({1, 2});
      p.objective = (t.distance.detach().to(at::kDouble) - epsilon_ * entropy).mean().item<double>();
    }
    std::vector<at::Tensor> parts;
    if (imagePrefix_) parts.push_back(fx);
    if (labelPrefix_) parts.push_back(fy);
    if (!parts.empty()) p.embeds = at::cat(parts, 1);
    return p;
  }

  at::Tensor loss(const Batch& b, LossParts& parts) override {
    if (!b.tokens.defined()) argError("ERR_INVALID_ARG", "otdrg training needs batch.tokens");
    const int64_t B = b.tokens.size(0);
    if (pretraining_ && pretrainInput_ == "labelled") {
      // LM pre-training on the label text and the prompt before each report (no prefix).
      otdrg::checkStates(b.labels, B, "otdrg (lmPretrainInput 'labelled')");
      Sequence s = trainingRows(b.labels, b.tokens);
      at::Tensor l = lm->loss(s.ids, s.mask, at::Tensor(), s.lossMask);
      parts["lm"] = l.item<double>();
      return l;
    }
    if (pretraining_) {
      // LM pre-training on the reports alone: [BOS; report; EOS], every report token scored.
      at::Tensor valid = at::zeros({B, b.tokens.size(1)}, at::kBool);
      for (int64_t r = 0; r < B; ++r)
        valid[r].narrow(0, 0, std::min<int64_t>(b.tokens.size(1), static_cast<int64_t>(reportOf(b.tokens, r).size()) + 2)).fill_(true);
      at::Tensor l = lm->loss(b.tokens, valid, at::Tensor(), valid);
      parts["lm"] = l.item<double>();
      return l;
    }
    otdrg::checkStates(b.labels, B, "otdrg");
    at::Tensor x = patches(b);
    Prefix p = align(x, b.labels);  // ground-truth states in training (the paper's DLE labels)
    Sequence s = trainingRows(b.labels, b.tokens);
    at::Tensor rg = lm->loss(s.ids, s.mask, p.embeds, s.lossMask);
    parts["rg"] = rg.item<double>();
    parts["ot"] = p.distance.item<double>();
    parts["otObjective"] = p.objective;
    return lambda_ > 0 ? rg + lambda_ * p.distance : rg;
  }

  at::Tensor statesFor(const Batch& b, const at::Tensor& x, const std::string& source) {
    if (source == "oracle") {
      otdrg::checkStates(b.labels, x.size(0), "otdrg (labelSource 'oracle')");
      return b.labels;
    }
    return predictStates(x);
  }

  Generated generate(const GenerateRequest& r) override {
    for (auto& [k, v] : r.systemOptions.numbers) argError("ERR_INVALID_ARG", "otdrg has no generation option '", k, "' (it has: labelSource)");
    for (auto& [k, v] : r.systemOptions.arrays) argError("ERR_INVALID_ARG", "otdrg has no generation option '", k, "' (it has: labelSource)");
    for (auto& [k, v] : r.systemOptions.strings)
      if (k != "labelSource") argError("ERR_INVALID_ARG", "otdrg has no generation option '", k, "' (it has: labelSource)");
    const std::string source = r.systemOptions.str("labelSource", labelSource_);
    checkLabelSource(source);
    at::Tensor x = patches(r.batch);
    at::Tensor states = statesFor(r.batch, x, source);
    Prefix p = align(x, states);
    Sequence s = promptRows(states);
    nn::SearchOptions so = r.search;
    so.eosId = eosId_;
    so.padId = padId_;
    nn::SearchResult result;
    {
      nn::CausalLMStepper stepper(lm, s.ids, s.mask, p.embeds.defined() ? p.embeds.to(lm->dtype) : at::Tensor(), nn::CacheMode::Full);
      result = nn::search(stepper, so);
    }
    Generated g;
    for (auto& t : result.tokens) {
      std::vector<int64_t> row;
      for (int64_t id : t) {
        if (so.stops(id)) break;
        row.push_back(id);
      }
      g.tokens.push_back(std::move(row));
    }
    g.scores = result.scores;
    g.extras["plan"] = p.plan.to(at::kFloat);  // [B, Np, 14]: the transport plan (Fig. 5 heat maps)
    g.extras["states"] = states.to(at::kLong);   // [B, 14]: the label states the LM read
    return g;
  }

  // The plan and the (scaled) cost [B, Np, 14] for the batch's labels (oracle when the batch has
  // them, else predicted), the predicted states, the OT distance per study, and the predictor's
  // logits of every patch alone [B, Np, 14, 4] (the head's logits are these pooled over the patches:
  // a class activation map, for checking where the features hold a finding).
  std::map<std::string, at::Tensor> encode(const Batch& b) override {
    at::Tensor x = patches(b);
    at::Tensor predicted = predictStates(x);
    at::Tensor states = b.labels.defined() ? b.labels : predicted;
    at::NoGradGuard ng;
    at::Tensor fx = imageProjection->forward(x), fy = labelProjection->forward(labelFeatures(states));
    otdrg::Transport t = otdrg::transport(fx, fy, epsilon_, iterations_, costScale_);
    at::Tensor perPatch = otdrg::patchStateLogits(classifier, x);
    return {{"plan", t.plan}, {"cost", t.cost}, {"predictedStates", predicted}, {"distance", t.distance}, {"patchStateLogits", perPatch}};
  }

  double lambda_, epsilon_;
  int64_t iterations_;
  otdrg::CostScale costScale_;
  double stateLseR_;  // the predictor head's pooling; must be the diseasenet run's (checked at --init)
  bool imagePrefix_, labelPrefix_, labelText_, trainEncoder_;
  double pretrainFraction_;
  std::string labelSource_, labelFeatureScale_, pretrainInput_;
  bool pretraining_ = false;
  int64_t bosId_ = 0, eosId_ = 0, padId_ = 0;
  at::Tensor prompt_, labelIds_;
  nn::ResNet encoder{nullptr};
  torch::nn::Linear classifier{nullptr}, imageProjection{nullptr}, labelProjection{nullptr};
  nn::CausalLM lm{nullptr};
};

SystemRegistrar reg("otdrg", [](const Config& c) { return std::make_shared<Otdrg>(c); });

}  // namespace
}  // namespace radkit
