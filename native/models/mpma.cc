// MPMA pre-training (seed 004, "mpma"): one ViT image encoder E_I shared by three tasks.
//   MIM (eq. 1):  MAE masking of maskRatio (75%) of the patches with a seeded per-sample shuffle,
//                 E_I on the visible patches only, the MAE decoder D_I with mask tokens, MSE on the
//                 masked patches (option normPixLoss).
//   MLM (eq. 5):  mlmRatio (50%) of the report words masked BERT-style (80/10/10; special tokens and
//                 padding never), E_t = R_u W_l2^T + E_pos2, MA-CMF (eqs. 2-4) with the image tokens
//                 v of the unmasked image pass (decision; mlmVisual 'visible' uses the MIM pass's
//                 visible tokens I_U as eq. 5 writes), a bidirectional transformer report decoder
//                 over C = [C_v; C_Et] and cross-entropy on the masked positions.
//                 fusion 'gap' / 'gmp' (Table V): the average / max pooled image feature, projected,
//                 is added to every word embedding and the decoder reads the words only (MRM style).
//   GLA (eqs. 6-9): a BERT-style text encoder (Hugging Face names under text., so CXR-BERT or
//                 BioClinicalBERT weights load) gives t [T, K]; v_m = W_v v (a 1x1 convolution over
//                 the Np patch channels to M = textSlots rows), t_m = t W_t^T; global eq. 6 over the
//                 similarity of mpma::globalSimilarity with a learned tau1; local eqs. 7-9 with tau2,
//                 tau3 (see mpma.h for the readings chosen).
//   total (eq. 10): L = lambdaMim L_MIM + lambdaIL L_MLM + lambda_GLA lambdaGla (L_g + lambdaGl L_l),
//                 lambda_GLA the Gaussian ramp over the first rampFraction of the run's steps
//                 (setTrainingProgress; ramp 'constant' keeps it at 1). A weight of 0 skips its task.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/functional/normalization.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include <cmath>

#include "../core/errors.h"
#include "../nn/bert.h"
#include "../nn/losses.h"
#include "mpma.h"

namespace radkit {
namespace {

class Mpma : public System {
 public:
  explicit Mpma(const Config& c)
      : maskRatio_(c.num("maskRatio", 0.75)),
        mlmRatio_(c.num("mlmRatio", 0.5)),
        normPix_(c.flag("normPixLoss", false)),
        lambdaMim_(c.num("lambdaMim", 1.0)),
        lambdaIL_(c.num("lambdaIL", 5.0)),
        lambdaGla_(c.num("lambdaGla", 1.0)),
        lambdaGl_(c.num("lambdaGl", 1.0)),
        ramp_(c.str("ramp", "gaussian")),
        rampFraction_(c.num("rampFraction", 0.3)),
        tau2_(c.num("tau2", 0.25)),
        tau3_(c.num("tau3", 0.1)),
        globalMode_(c.str("globalSimilarity", "mean")),
        localAttention_(c.str("localAttention", "cosine")),
        normalizeLocal_(c.flag("normalizeLocal", true)),
        fusion_(c.str("fusion", "cmf")),
        mlmVisual_(c.str("mlmVisual", "full")),
        padId_(c.integer("padId", 0)),
        maskId_(c.integer("maskId", -1)),
        randomLow_(c.integer("randomLow", 1)),
        randomHigh_(c.integer("randomHigh", -1)),
        sharedSpecial_(c.flag("sharedSpecial", true)),
        specialIds_(c.ints("specialIds", {0})),
        textSlots_(c.integer("textSlots", 60)),
        seed_(static_cast<uint64_t>(c.integer("seed", 0))) {
    const int64_t vocab = c.integer("vocabSize", 0);
    if (vocab < 3) argError("ERR_INVALID_ARG", "config.vocabSize must be >= 3 (tokenizer rows and the [MASK] row), got ", vocab);
    if (maskId_ < 0 || maskId_ >= vocab) argError("ERR_INVALID_ARG", "config.maskId must be a row of the vocabulary [0, ", vocab, "), got ", maskId_);
    if (randomHigh_ < 0) randomHigh_ = vocab;
    if (!(maskRatio_ > 0 && maskRatio_ < 1)) argError("ERR_INVALID_ARG", "config.maskRatio must be in (0, 1), got ", maskRatio_);
    if (!(mlmRatio_ > 0 && mlmRatio_ <= 1)) argError("ERR_INVALID_ARG", "config.mlmRatio must be in (0, 1], got ", mlmRatio_);
    for (double w : {lambdaMim_, lambdaIL_, lambdaGla_, lambdaGl_})
      if (!(w >= 0)) argError("ERR_INVALID_ARG", "loss weights (lambdaMim, lambdaIL, lambdaGla, lambdaGl) must be >= 0, got ", w);
    if (ramp_ != "gaussian" && ramp_ != "constant") argError("ERR_INVALID_ARG", "config.ramp must be 'gaussian' or 'constant', got '", ramp_, "'");
    if (fusion_ != "cmf" && fusion_ != "gap" && fusion_ != "gmp") argError("ERR_INVALID_ARG", "config.fusion must be 'cmf', 'gap' or 'gmp', got '", fusion_, "'");
    if (mlmVisual_ != "full" && mlmVisual_ != "visible") argError("ERR_INVALID_ARG", "config.mlmVisual must be 'full' or 'visible', got '", mlmVisual_, "'");
    if (localAttention_ != "cosine" && localAttention_ != "dot") argError("ERR_INVALID_ARG", "config.localAttention must be 'cosine' or 'dot', got '", localAttention_, "'");
    if (globalMode_ != "mean" && globalMode_ != "frobenius") argError("ERR_INVALID_ARG", "config.globalSimilarity must be 'mean' or 'frobenius', got '", globalMode_, "'");
    if (!(tau2_ > 0 && tau3_ > 0)) argError("ERR_INVALID_ARG", "config.tau2 and config.tau3 must be > 0");
    at::manual_seed(seed_);
    nn::VitConfig vc = mpma::vitConfig(c);
    const int64_t D = vc.dim, Np = vc.patches();
    image = register_module("image", nn::Vit(vc));
    nn::MaeDecoderConfig mc;
    mc.patches = Np;
    mc.encoderDim = D;
    mc.dim = c.integer("maeDim", 128);
    mc.layers = c.integer("maeLayers", 2);
    mc.heads = c.integer("maeHeads", 4);
    mc.intermediate = 4 * mc.dim;
    mc.patchPixels = vc.patch * vc.patch * vc.inChannels;
    if (mc.dim % mc.heads != 0) argError("ERR_INVALID_ARG", "config.maeDim (", mc.dim, ") must be divisible by config.maeHeads (", mc.heads, ")");
    mae = register_module("mae", nn::MaeDecoder(mc));
    // MLM branch (report reconstruction).
    const int64_t maxPositions = c.integer("maxPositions", 512);
    const int64_t mlmHeads = c.integer("mlmHeads", 4);
    if (D % mlmHeads != 0) argError("ERR_INVALID_ARG", "config.vitDim (", D, ") must be divisible by config.mlmHeads (", mlmHeads, ")");
    mlmEmbed = register_module("mlmEmbed", torch::nn::Embedding(vocab, D));
    mlmPositions = register_module("mlmPositions", torch::nn::Embedding(maxPositions, D));
    {
      at::NoGradGuard ng;
      mlmEmbed->weight.normal_(0, 0.02);
      mlmPositions->weight.normal_(0, 0.02);
    }
    mlmEmbedNorm = register_module("mlmEmbedNorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({D})));
    fusion = register_module("fusion", mpma::MaCmf(D, mlmHeads, c.integer("memorySlots", 16), c.flag("cmfResidual", true), 0.0));
    poolProj = register_module("poolProj", torch::nn::Linear(D, D));
    nn::TransformerConfig tc;
    tc.dModel = D;
    tc.numHeads = mlmHeads;
    tc.dFF = 4 * D;
    tc.dropout = c.num("mlmDropout", 0.1);
    tc.preNorm = true;
    const int64_t mlmLayers = c.integer("mlmLayers", 2);
    for (int64_t i = 0; i < mlmLayers; ++i) mlmDecoder.push_back(register_module("mlmDecoder" + std::to_string(i), nn::EncoderLayer(tc)));
    mlmNorm = register_module("mlmNorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({D})));
    mlmHead = register_module("mlmHead", torch::nn::Linear(D, vocab));
    // GLA branch.
    nn::BertConfig bc;
    bc.vocabSize = c.integer("textVocabSize", vocab);
    bc.hidden = c.integer("textHidden", 128);
    bc.layers = c.integer("textLayers", 2);
    bc.heads = c.integer("textHeads", 4);
    bc.intermediate = c.integer("textIntermediate", 4 * bc.hidden);
    bc.maxPositions = c.integer("textMaxPositions", 512);
    bc.dropout = c.num("textDropout", 0.1);
    if (bc.hidden % bc.heads != 0) argError("ERR_INVALID_ARG", "config.textHidden (", bc.hidden, ") must be divisible by config.textHeads (", bc.heads, ")");
    if (textSlots_ < 1) argError("ERR_INVALID_ARG", "config.textSlots must be >= 1, got ", textSlots_);
    text = register_module("text", nn::BertModel(bc));
    patchToWords = register_module("patchToWords", torch::nn::Linear(Np, textSlots_));  // W_v: 1x1 conv over patches
    textProj = register_module("textProj", torch::nn::Linear(bc.hidden, D));            // W_t
    double tau1 = c.num("tau1", 0.07);
    if (!(tau1 > 0 && tau1 <= 1)) argError("ERR_INVALID_ARG", "config.tau1 must be in (0, 1], got ", tau1);
    at::Tensor logTau = at::full({}, std::log(tau1));
    logTau1 = c.flag("learnTau1", true) ? register_parameter("logTau1", logTau) : register_buffer("logTau1", logTau);
    gen_ = at::detail::createCPUGenerator(seed_ + 1);
  }

  std::string kind() const override { return "mpma"; }
  std::string visualPrefix() const override { return "image."; }

  void setTrainingProgress(int64_t step, int64_t totalSteps) override {
    const int64_t rampSteps = static_cast<int64_t>(std::llround(rampFraction_ * static_cast<double>(totalSteps)));
    rampWeight_ = ramp_ == "constant" ? 1.0 : mpma::gaussianRamp(step, rampSteps);
  }

  at::Tensor tau1() const { return logTau1.clamp(std::log(0.01), 0.0).exp(); }

  at::Tensor frontal(const Batch& b) const {
    if (!b.images.defined()) argError("ERR_INVALID_ARG", "mpma needs batch.images");
    return b.images.select(1, 0).contiguous();  // pre-training reads the first (frontal) view
  }

  struct Mim {
    at::Tensor loss, predicted, target, mask, visible;
  };
  Mim mim(const at::Tensor& x, at::Generator& gen) {
    const int64_t B = x.size(0), Np = image->config.patches();
    nn::MaskSplit split = nn::randomMasking(B, Np, maskRatio_, gen);
    at::Tensor keep = split.keep.to(x.device()), restore = split.restore.to(x.device());
    Mim m;
    at::Tensor encoded = image->forward(x, keep);
    m.visible = encoded.slice(1, 1);
    m.predicted = mae->forward(encoded, restore);
    m.target = nn::patchify(x, image->config.patch);
    m.mask = split.mask.to(x.device(), x.scalar_type());
    m.loss = nn::maskedPatchMse(m.predicted, m.target, m.mask, normPix_);
    return m;
  }

  struct Mlm {
    at::Tensor loss, logits, chosen;
  };
  Mlm mlm(const at::Tensor& v, const at::Tensor& tokens, at::Generator& gen) {
    at::Tensor words = mpma::wordMask(tokens, specialIds_);
    mpma::MlmMasked masked = mpma::maskTokens(tokens, words, mlmRatio_, maskId_, randomLow_, randomHigh_, gen);
    const int64_t T = tokens.size(1);
    if (T > mlmPositions->weight.size(0)) argError("ERR_SHAPE", "mpma: reports of ", T, " tokens exceed config.maxPositions (", mlmPositions->weight.size(0), ")");
    at::Tensor pos = at::arange(T, tokens.options());
    // E_t = R_u W_l2^T + E_pos2, layer-normalised as BERT's embeddings are: the rows start at 0.02
    // (BERT's initialisation) while the fused image rows are of unit scale, so without the norm the
    // words and their positions are a few percent of what the decoder reads.
    at::Tensor e = mlmEmbedNorm->forward(mlmEmbed->forward(masked.input) + mlmPositions->forward(pos).unsqueeze(0));
    at::Tensor valid = mpma::validPositions(tokens, padId_, sharedSpecial_);
    at::Tensor h, keys;
    const int64_t Nv = v.size(1);
    if (fusion_ == "cmf") {
      h = fusion->forward(v, e, valid);
      keys = at::cat({at::ones({v.size(0), Nv}, valid.options()), valid}, 1);
    } else {
      at::Tensor pooled = fusion_ == "gap" ? v.mean(1) : std::get<0>(v.max(1));
      h = e + poolProj->forward(pooled).unsqueeze(1);
      keys = valid;
    }
    at::Tensor km = keys.view({keys.size(0), 1, 1, keys.size(1)});
    for (auto& layer : mlmDecoder) h = layer->forward(h, km);
    if (fusion_ == "cmf") h = h.slice(1, Nv);  // the C_Et rows predict the words
    Mlm m;
    m.logits = mlmHead->forward(mlmNorm->forward(h));
    m.chosen = masked.chosen;
    m.loss = nn::losses::maskedCrossEntropy(m.logits, tokens, masked.chosen, nn::losses::MaskedCEOptions{});
    return m;
  }

  struct Gla {
    at::Tensor global, local, vm, tm, words, v;
  };
  Gla glaFeatures(const at::Tensor& v, const at::Tensor& tokens) {
    Gla g;
    g.v = v;
    g.words = mpma::wordMask(tokens, specialIds_);
    // Attention needs one key per row: an empty report attends to its first slot (its words stay masked).
    at::Tensor attend = mpma::validPositions(tokens, padId_, sharedSpecial_);
    if (attend.size(1) > 0) attend.select(1, 0).fill_(true);
    const int64_t T = tokens.size(1);
    if (T > textSlots_) argError("ERR_SHAPE", "mpma: reports of ", T, " tokens exceed config.textSlots (", textSlots_, ")");
    at::Tensor t = text->forward(tokens, attend);                            // [B, T, K]
    g.tm = textProj->forward(t);                                             // t_m [B, T, D]
    g.vm = patchToWords->forward(v.transpose(1, 2)).transpose(1, 2);         // v_m = W_v v [B, M, D]
    return g;
  }

  at::Tensor loss(const Batch& b, LossParts& parts) override {
    if (!b.tokens.defined()) argError("ERR_INVALID_ARG", "mpma needs batch.tokens (the reports paired with the images)");
    at::Tensor x = frontal(b);
    if (x.size(0) != b.tokens.size(0)) argError("ERR_SHAPE", "mpma needs paired batches: ", x.size(0), " images, ", b.tokens.size(0), " reports");
    at::Tensor total = at::zeros({}, x.options());
    Mim m;
    if (lambdaMim_ > 0 || mlmVisual_ == "visible") {
      m = mim(x, gen_);
      if (lambdaMim_ > 0) total = total + lambdaMim_ * m.loss;
      parts["mim"] = m.loss.item<double>();
    }
    const double lambdaGla = lambdaGla_ * rampWeight_;
    at::Tensor v;
    if (lambdaIL_ > 0 || lambdaGla_ > 0) v = image->forward(x).slice(1, 1);  // unmasked pass (GLA, MA-CMF)
    if (lambdaIL_ > 0) {
      Mlm l = mlm(mlmVisual_ == "visible" ? m.visible : v, b.tokens, gen_);
      total = total + lambdaIL_ * l.loss;
      parts["mlm"] = l.loss.item<double>();
      at::Tensor hit = l.logits.argmax(-1).eq(b.tokens) & l.chosen;
      parts["mlmAccuracy"] = hit.sum().item<double>() / std::max(1.0, l.chosen.sum().item<double>());
    }
    if (lambdaGla_ > 0) {
      if (x.size(0) < 2) argError("ERR_INVALID_ARG", "the GLA contrastive losses need at least 2 image-report pairs per batch, got ", x.size(0));
      Gla g = glaFeatures(v, b.tokens);
      at::Tensor lg = mpma::symmetricInfoNCEFromSimilarity(mpma::globalSimilarity(g.vm, g.tm, g.words, globalMode_), tau1());
      at::Tensor h = mpma::localSimilarity(v, g.tm, g.words, tau2_, localAttention_ == "cosine", normalizeLocal_);
      at::Tensor ll = mpma::symmetricInfoNCEFromSimilarity(h, at::full({}, tau3_, h.options()));
      total = total + lambdaGla * (lg + lambdaGl_ * ll);
      parts["global"] = lg.item<double>();
      parts["local"] = ll.item<double>();
      parts["tau1"] = tau1().item<double>();
    }
    parts["lambdaGLA"] = lambdaGla;
    return total;
  }

  // Global embeddings as 1-token sequences (retrieval through lib/align), and with
  // batch.extras.diagnose (a scalar seed) the pre-training diagnostics and pictures: MIM targets,
  // predictions and mask under that seed, MLM targets / predictions / chosen positions, and GLA's
  // word-to-patch attention of each pair.
  std::map<std::string, at::Tensor> encode(const Batch& b) override {
    std::map<std::string, at::Tensor> out;
    at::Tensor v;
    if (b.images.defined()) {
      at::Tensor x = frontal(b);
      v = image->forward(x).slice(1, 1);
      at::Tensor vm = patchToWords->forward(v.transpose(1, 2)).transpose(1, 2);
      at::Tensor gv = globalMode_ == "mean" ? vm.mean(1) : vm.reshape({vm.size(0), -1});
      out["image"] = torch::nn::functional::normalize(gv, torch::nn::functional::NormalizeFuncOptions().dim(-1)).unsqueeze(1);
      out["pooled"] = v.mean(1);
    }
    Gla g;
    if (b.tokens.defined()) {
      g = glaFeatures(v.defined() ? v : at::zeros({b.tokens.size(0), image->config.patches(), image->config.dim}), b.tokens);
      at::Tensor w = g.words.to(g.tm.scalar_type()).unsqueeze(-1);
      at::Tensor gt = globalMode_ == "mean" ? (g.tm * w).sum(1) / w.sum(1).clamp_min(1.0) : (g.tm * w).reshape({g.tm.size(0), -1});
      if (globalMode_ == "frobenius") {
        // The Frobenius reading compares T rows: pad t_m to the M slots so every report has one width.
        gt = at::constant_pad_nd((g.tm * w), {0, 0, 0, textSlots_ - g.tm.size(1)}).reshape({g.tm.size(0), -1});
      }
      out["text"] = torch::nn::functional::normalize(gt, torch::nn::functional::NormalizeFuncOptions().dim(-1)).unsqueeze(1);
      out["textMask"] = at::ones({b.tokens.size(0), 1}, b.tokens.options().dtype(at::kBool));
    }
    out["temperature"] = tau1().detach();
    auto it = b.extras.find("diagnose");
    if (it != b.extras.end() && b.images.defined()) {
      at::Generator gen = at::detail::createCPUGenerator(static_cast<uint64_t>(it->second.item<double>()));
      at::Tensor x = frontal(b);
      Mim m = mim(x, gen);
      at::Tensor target = m.target;
      if (normPix_) target = (target - target.mean(-1, true)) / (target.var(-1, true, true) + 1e-6).sqrt();
      out["mimTarget"] = target;
      out["mimPredicted"] = m.predicted;
      out["mimMask"] = m.mask;
      if (b.tokens.defined()) {
        if (lambdaIL_ > 0) {
          Mlm l = mlm(mlmVisual_ == "visible" ? m.visible : v, b.tokens, gen);
          out["mlmTargets"] = b.tokens;
          out["mlmPredicted"] = l.logits.argmax(-1);
          out["mlmChosen"] = l.chosen;
        }
        at::Tensor alpha = mpma::wordPatchAttention(v, g.tm, tau2_, localAttention_ == "cosine");  // [B, B, Np, T]
        at::Tensor idx = at::arange(v.size(0), b.tokens.options());
        out["wordPatchAttention"] = alpha.index({idx, idx}).transpose(1, 2).contiguous();  // [B, T, Np]
        out["words"] = g.words;
      }
    }
    return out;
  }

  Generated generate(const GenerateRequest&) override {
    argError("ERR_UNSUPPORTED", "mpma pre-trains an image encoder; it does not generate reports (fine-tune it: radkit train --model mpma-rg --init RUN:image.)");
  }

  nn::Vit image{nullptr};
  nn::MaeDecoder mae{nullptr};
  torch::nn::Embedding mlmEmbed{nullptr}, mlmPositions{nullptr};
  torch::nn::LayerNorm mlmEmbedNorm{nullptr};
  mpma::MaCmf fusion{nullptr};
  torch::nn::Linear poolProj{nullptr};
  std::vector<nn::EncoderLayer> mlmDecoder;
  torch::nn::LayerNorm mlmNorm{nullptr};
  torch::nn::Linear mlmHead{nullptr};
  nn::BertModel text{nullptr};
  torch::nn::Linear patchToWords{nullptr}, textProj{nullptr};
  at::Tensor logTau1;

 private:
  double maskRatio_, mlmRatio_;
  bool normPix_;
  double lambdaMim_, lambdaIL_, lambdaGla_, lambdaGl_;
  std::string ramp_;
  double rampFraction_, tau2_, tau3_;
  std::string globalMode_, localAttention_;
  bool normalizeLocal_;
  std::string fusion_, mlmVisual_;
  int64_t padId_, maskId_, randomLow_, randomHigh_;
  bool sharedSpecial_;
  std::vector<int64_t> specialIds_;
  int64_t textSlots_;
  uint64_t seed_;
  double rampWeight_ = 1.0;  // until the trainer reports a position (evaluation: full weight)
  at::Generator gen_;
};

SystemRegistrar reg("mpma", [](const Config& c) { return std::make_shared<Mpma>(c); });

}  // namespace
}  // namespace radkit
