// AdaMatch-Cyclic's language model (seed 000 section 3.2): one GPT-NeoX-layout causal LM over a
// joint vocabulary that learns both directions with the response-only loss of eqs. 10-11:
//   image -> report: prompt = image tokens (+ keyword hints), response = report tokens + EOS
//   report -> image: prompt = report tokens (+ keypatch tokens), response = the image's N tokens
// Two vocabulary layouts (config.vocabLayout):
//   'specials' (from-scratch LM over radkit's word ids): [0 PAD/BOS/EOS][textIds - 1 words]
//              [6 task tokens][codes]
//   'joint'    (a user's LM with its BPE tokenizer, the paper's dolly-v2-3b): [textIds rows of the
//              loaded LM][codes]; image token = code + textIds, the prompts are the Fig. 3-4 text.
// The sequences are built in TypeScript (lib/models/adamatch-cyclic.ts) from cached VQ codes and
// hints; a training batch carries them as extras `sequence` [B, T] (right-padded),
// `sequenceMask` [B, T] and `lossMask` [B, T] (1 = a response token, scored). Generation reads
// extras `prompt` [B, P] (left-padded) and `promptMask`, and systemOptions.direction:
//   'report': only the report ranges (config.reportRanges; default [1, textIds)) and EOS may be
//             chosen, EOS ends a report
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
    const std::string layout = c.str("vocabLayout", "specials");
    if (layout != "specials" && layout != "joint") argError("ERR_INVALID_ARG", "adamatch-cyclic: config.vocabLayout must be 'specials' or 'joint', got '", layout, "'");
    imageStart_ = textIds_ + (layout == "specials" ? kTaskTokens : 0);
    // Paths the TypeScript side keeps with the model (the VQ tokenizer run, the codes and hints
    // files, the user's LM folder); read here so that the configuration check knows them.
    for (const char* key : {"vq", "codesFile", "hints", "lm"}) c.str(key, "");
    nn::CausalLMConfig lc;
    lc.arch = "gpt_neox";
    lc.vocabSize = imageStart_ + codes_;
    lc.hiddenSize = c.integerIn("hiddenSize", 192, 8, 1 << 16);
    lc.numLayers = c.integerIn("numLayers", 3, 1, 1024);
    lc.numHeads = c.integerIn("numHeads", 6, 1, 1024);
    if (lc.hiddenSize % lc.numHeads) argError("ERR_INVALID_ARG", "adamatch-cyclic: config.hiddenSize ", lc.hiddenSize, " is not a multiple of config.numHeads ", lc.numHeads);
    lc.numKvHeads = lc.numHeads;
    lc.headDim = lc.hiddenSize / lc.numHeads;
    const int64_t rotary = c.integerIn("rotaryDim", 0, 0, lc.headDim);  // 0: every dim of a head
    lc.rotaryDim = rotary ? rotary : lc.headDim;
    lc.ropeTheta = c.num("ropeTheta", 10000.0);
    lc.intermediateSize = c.integerIn("intermediateSize", 768, 1, 1 << 20);
    lc.maxPositions = c.integerIn("maxPositions", 256, 8, 1 << 20);
    lc.normEps = c.num("normEps", 1e-5);
    lc.parallelResidual = c.flag("parallelResidual", true);
    lc.tieEmbeddings = c.flag("tieEmbeddings", false);
    lc.attentionBias = true;
    lc.mlpBias = true;
    lc.activation = c.str("activation", "gelu");
    eosId_ = c.integerIn("eosId", 0, 0, lc.vocabSize - 1);
    padId_ = c.integerIn("padId", eosId_, 0, lc.vocabSize - 1);
    lc.bosId = c.integerIn("bosId", 0, 0, lc.vocabSize - 1), lc.eosId = eosId_, lc.padId = padId_;
    // Report token ranges [a, b) as a flat list (the joint layout leaves out the BPE special tokens).
    std::vector<int64_t> ranges = c.ints("reportRanges", {});
    if (ranges.empty()) ranges = {1, textIds_};  // radkit's word ids (0 is PAD/BOS/EOS)
    if (ranges.size() % 2) argError("ERR_INVALID_ARG", "adamatch-cyclic: config.reportRanges must hold [start, end) pairs, got ", ranges.size(), " numbers");
    for (size_t i = 0; i < ranges.size(); i += 2) {
      if (ranges[i] < 0 || ranges[i] >= ranges[i + 1] || ranges[i + 1] > textIds_)
        argError("ERR_INVALID_ARG", "adamatch-cyclic: config.reportRanges [", ranges[i], ", ", ranges[i + 1], ") is not a range of text ids inside [0, ", textIds_, ")");
      reportRanges_.emplace_back(ranges[i], ranges[i + 1]);
    }
    nn::validateConfig(lc);
    const std::string dtype = c.str("lmDtype", "float32");
    if (dtype != "float32" && dtype != "bfloat16") argError("ERR_INVALID_ARG", "adamatch-cyclic: config.lmDtype must be 'float32' or 'bfloat16', got '", dtype, "'");
    const double params = static_cast<double>(lc.vocabSize) * lc.hiddenSize * 2 + lc.numLayers * (4.0 * lc.hiddenSize * lc.hiddenSize + 2.0 * lc.hiddenSize * lc.intermediateSize);
    checkModelSize("adamatch-cyclic", params);
    lm = register_module("lm", nn::createCausalLM(lc, at::TensorOptions().dtype(dtype == "bfloat16" ? at::kBFloat16 : at::kFloat), seed));
  }

  std::string kind() const override { return "adamatch-cyclic"; }

  int64_t vocab() const { return imageStart_ + codes_; }

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
      at::Tensor isImage = target.ge(imageStart_);
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
    so.eosId = eosId_;
    so.padId = padId_;
    so.stopIds.clear();
    so.allowedRanges.clear();
    if (direction == "report") {
      so.allowedRanges = reportRanges_;
      so.maxLength = std::min<int64_t>(so.maxLength, lm->config.maxPositions - prompt.size(1));
    } else {
      // Exactly N image tokens: EOS is blocked (minLength) and the search stops at N.
      so.allowedRanges.emplace_back(imageStart_, vocab());
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
        if (direction == "report" ? id == eosId_ || id == padId_ : id < imageStart_) break;
        row.push_back(id);
      }
      if (direction == "image" && static_cast<int64_t>(row.size()) != imageTokens_)
        fail(ErrorKind::Native, "ERR_RADKIT", "adamatch-cyclic: the constrained search gave ", row.size(), " image tokens, not ", imageTokens_);
      g.tokens.push_back(std::move(row));
    }
    g.scores = result.scores;
    return g;
  }

  int64_t textIds_, codes_, imageTokens_, imageStart_, eosId_, padId_;
  std::vector<std::pair<int64_t, int64_t>> reportRanges_;
  nn::CausalLM lm{nullptr};
};

SystemRegistrar reg("adamatch-cyclic", [](const Config& c) { return std::make_shared<AdaMatchCyclic>(c); });

}  // namespace
}  // namespace radkit
