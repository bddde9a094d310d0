// AdaMatch-Cyclic's language model (seed 000 section 3.2): one GPT-NeoX-layout causal LM over a
// joint vocabulary [0 PAD/BOS/EOS][text ids][task tokens][image codes] that learns both
// directions with the response-only loss of eqs. 10-11:
//   image -> report: prompt = image tokens (+ keyword hints), response = report words + EOS
//   report -> image: prompt = report words (+ keypatch tokens), response = the image's N tokens
// The sequences are built in TypeScript (lib/models/adamatch-cyclic.ts) from cached VQ codes and
// hints; a training batch carries them as extras `sequence` [B, T] (right-padded),
// `sequenceMask` [B, T] and `lossMask` [B, T] (1 = a response token, scored). Generation reads
// extras `prompt` [B, P] (left-padded) and `promptMask`, and systemOptions.direction:
//   'report': only text ids [1, textIds) may be chosen, EOS (0) ends a report
//   'image':  only image ids [imageStart, vocab) may be chosen, exactly imageTokens of them.
#include <ATen/ATen.h>

#include "../core/errors.h"
#include "../nn/causal_lm.h"
#include "system.h"

namespace radkit {
namespace {

constexpr int64_t kTaskTokens = 6;  // <i2r> <r2i> <img> <kw> <kp> <resp> (lib/models/cyclic-prompts.ts)

class AdaMatchCyclic : public System {
 public:
  explicit AdaMatchCyclic(const Config& c) {
    const uint64_t seed = static_cast<uint64_t>(c.integer("seed", 0));
    at::manual_seed(seed);
    textIds_ = c.integerIn("textIds", 0, 2, 1 << 22);
    codes_ = c.integerIn("codes", 256, 2, 1 << 20);
    imageTokens_ = c.integerIn("imageTokens", 64, 1, 1 << 16);
    // Paths the TypeScript side keeps with the model (the VQ tokenizer run, the codes and hints
    // files); read here so that the configuration check knows them.
    for (const char* key : {"vq", "codesFile", "hints"}) c.str(key, "");
    nn::CausalLMConfig lc;
    lc.arch = "gpt_neox";
    lc.vocabSize = textIds_ + kTaskTokens + codes_;
    lc.hiddenSize = c.integerIn("hiddenSize", 192, 8, 1 << 16);
    lc.numLayers = c.integerIn("numLayers", 3, 1, 1024);
    lc.numHeads = c.integerIn("numHeads", 6, 1, 1024);
    if (lc.hiddenSize % lc.numHeads) argError("ERR_INVALID_ARG", "adamatch-cyclic: config.hiddenSize ", lc.hiddenSize, " is not a multiple of config.numHeads ", lc.numHeads);
    lc.numKvHeads = lc.numHeads;
    lc.headDim = lc.hiddenSize / lc.numHeads;
    lc.rotaryDim = lc.headDim;
    lc.intermediateSize = c.integerIn("intermediateSize", 768, 1, 1 << 20);
    lc.maxPositions = c.integerIn("maxPositions", 256, 8, 1 << 20);
    lc.normEps = 1e-5;
    lc.parallelResidual = true;
    lc.attentionBias = true;
    lc.mlpBias = true;
    lc.activation = "gelu";
    lc.bosId = 0, lc.eosId = 0, lc.padId = 0;
    nn::validateConfig(lc);
    const double params = static_cast<double>(lc.vocabSize) * lc.hiddenSize * 2 + lc.numLayers * (4.0 * lc.hiddenSize * lc.hiddenSize + 2.0 * lc.hiddenSize * lc.intermediateSize);
    checkModelSize("adamatch-cyclic", params);
    lm = register_module("lm", nn::createCausalLM(lc, at::TensorOptions().dtype(at::kFloat), seed));
  }

  std::string kind() const override { return "adamatch-cyclic"; }

  int64_t vocab() const { return textIds_ + kTaskTokens + codes_; }

  void checkBatch(const Batch& b) const override {
    if (b.extras.count("sequence")) {
      const at::Tensor& s = b.extra("sequence", "adamatch-cyclic");
      checkTokenIds(s, vocab(), lm->config.maxPositions, "adamatch-cyclic", "batch.extras.sequence");
      for (const char* k : {"sequenceMask", "lossMask"}) {
        const at::Tensor& m = b.extra(k, "adamatch-cyclic");
        if (m.sizes() != s.sizes()) argError("ERR_SHAPE", "adamatch-cyclic: batch.extras.", k, " is ", m.sizes(), ", batch.extras.sequence is ", s.sizes());
      }
    }
    if (b.extras.count("prompt")) {
      const at::Tensor& p = b.extra("prompt", "adamatch-cyclic");
      checkTokenIds(p, vocab(), lm->config.maxPositions - imageTokens_, "adamatch-cyclic", "batch.extras.prompt");
      const at::Tensor& m = b.extra("promptMask", "adamatch-cyclic");
      if (m.sizes() != p.sizes()) argError("ERR_SHAPE", "adamatch-cyclic: batch.extras.promptMask is ", m.sizes(), ", batch.extras.prompt is ", p.sizes());
    }
  }

  // Eqs. 10-11 in one pass: the mean negative log-likelihood of the scored (response) tokens;
  // the log also gets it split into report tokens (text) and image tokens.
  at::Tensor loss(const Batch& b, LossParts& parts) override {
    const at::Tensor& ids = b.extra("sequence", "adamatch-cyclic");
    at::Tensor mask = b.extra("sequenceMask", "adamatch-cyclic").to(at::kBool);
    const int64_t T = ids.size(1);
    if (T < 2) argError("ERR_SHAPE", "adamatch-cyclic: batch.extras.sequence needs at least 2 positions, got ", T);
    at::Tensor logits = lm->logits(ids, mask, at::Tensor());
    at::Tensor pred = logits.narrow(1, 0, T - 1), target = ids.narrow(1, 1, T - 1);
    at::Tensor sel = b.extra("lossMask", "adamatch-cyclic").to(at::kBool).narrow(1, 1, T - 1).logical_and(mask.narrow(1, 1, T - 1));
    at::Tensor nll = at::cross_entropy_loss(pred.reshape({-1, pred.size(-1)}), target.reshape({-1}), {}, at::Reduction::None).view(target.sizes());
    at::Tensor w = sel.to(nll.scalar_type());
    at::Tensor l = (nll * w).sum() / w.sum().clamp_min(1.0);
    {
      at::NoGradGuard ng;
      at::Tensor d = nll.detach();
      at::Tensor isImage = target.ge(textIds_ + kTaskTokens);
      for (auto [name, m] : {std::pair{"text", sel.logical_and(isImage.logical_not())}, std::pair{"image", sel.logical_and(isImage)}}) {
        const double n = m.sum().item<double>();
        if (n > 0) parts[name] = (d * m.to(d.scalar_type())).sum().item<double>() / n;
      }
    }
    return l;
  }

  Generated generate(const GenerateRequest& r) override {
    for (auto& [k, v] : r.systemOptions.numbers) argError("ERR_INVALID_ARG", "adamatch-cyclic has no generation option '", k, "' (it has: direction)");
    for (auto& [k, v] : r.systemOptions.arrays) argError("ERR_INVALID_ARG", "adamatch-cyclic has no generation option '", k, "' (it has: direction)");
    for (auto& [k, v] : r.systemOptions.strings)
      if (k != "direction") argError("ERR_INVALID_ARG", "adamatch-cyclic has no generation option '", k, "' (it has: direction)");
    const std::string direction = r.systemOptions.str("direction", "report");
    if (direction != "report" && direction != "image") argError("ERR_INVALID_ARG", "adamatch-cyclic: systemOptions.direction must be 'report' or 'image', got '", direction, "'");
    const at::Tensor& prompt = r.batch.extra("prompt", "adamatch-cyclic");
    at::Tensor promptMask = r.batch.extra("promptMask", "adamatch-cyclic").to(at::kBool);
    nn::SearchOptions so = r.search;
    so.eosId = 0;
    so.padId = 0;
    so.stopIds.clear();
    so.allowedRanges.clear();
    if (direction == "report") {
      so.allowedRanges.emplace_back(1, textIds_);
      so.maxLength = std::min<int64_t>(so.maxLength, lm->config.maxPositions - prompt.size(1));
    } else {
      // Exactly N image tokens: EOS is blocked (minLength) and the search stops at N.
      so.allowedRanges.emplace_back(textIds_ + kTaskTokens, vocab());
      so.minLength = so.maxLength = imageTokens_;
      if (so.method == "beam") argError("ERR_INVALID_ARG", "adamatch-cyclic: image generation is greedy or sampled, not beam search");
    }
    nn::SearchResult result;
    {
      at::NoGradGuard ng;
      nn::CausalLMStepper stepper(lm, prompt, promptMask, at::Tensor(), nn::CacheMode::Full);
      result = nn::search(stepper, so);
    }
    Generated g;
    for (auto& t : result.tokens) {
      std::vector<int64_t> row;
      for (int64_t id : t) {
        if (id == 0) break;
        row.push_back(id);
      }
      if (direction == "image" && static_cast<int64_t>(row.size()) != imageTokens_)
        fail(ErrorKind::Native, "ERR_RADKIT", "adamatch-cyclic: the constrained search gave ", row.size(), " image tokens, not ", imageTokens_);
      g.tokens.push_back(std::move(row));
    }
    g.scores = result.scores;
    return g;
  }

  int64_t textIds_, codes_, imageTokens_;
  nn::CausalLM lm{nullptr};
};

SystemRegistrar reg("adamatch-cyclic", [](const Config& c) { return std::make_shared<AdaMatchCyclic>(c); });

}  // namespace
}  // namespace radkit
