#include <torch/nn/functional/loss.h>
#include <torch/nn/functional/normalization.h>

#include <cmath>

#include "../core/errors.h"
#include "mpma.h"

namespace radkit {
namespace mpma {

namespace {
at::Tensor unit(const at::Tensor& x) {
  return torch::nn::functional::normalize(x, torch::nn::functional::NormalizeFuncOptions().dim(-1).eps(1e-8));
}
}  // namespace

nn::VitConfig vitConfig(const Config& c) {
  nn::VitConfig v;
  v.imageSize = c.integer("imageSize", 128);
  v.patch = c.integer("patch", 16);
  v.inChannels = 1;
  v.dim = c.integer("vitDim", 192);
  v.layers = c.integer("vitLayers", 6);
  v.heads = c.integer("vitHeads", 3);
  v.intermediate = c.integer("vitIntermediate", 4 * v.dim);
  v.activation = c.str("vitActivation", "gelu");
  v.preLayerNorm = c.flag("vitPreLayerNorm", true);
  v.dropout = c.num("vitDropout", 0.0);
  v.pixelMean = c.num("vitPixelMean", 0.0);
  v.pixelStd = c.num("vitPixelStd", 1.0);
  v.patchBias = c.flag("vitPatchBias", false);
  v.positionInit = c.str("vitPositionInit", "normal");
  if (!(v.pixelStd > 0) || !std::isfinite(v.pixelMean)) argError("ERR_INVALID_ARG", "config.vitPixelStd must be > 0 and config.vitPixelMean finite, got ", v.pixelStd, " and ", v.pixelMean);
  if (v.patch < 1 || v.imageSize % v.patch != 0)
    argError("ERR_INVALID_ARG", "config.imageSize (", v.imageSize, ") must be a multiple of config.patch (", v.patch, ")");
  if (v.dim % v.heads != 0) argError("ERR_INVALID_ARG", "config.vitDim (", v.dim, ") must be divisible by config.vitHeads (", v.heads, ")");
  if (v.layers < 1) argError("ERR_INVALID_ARG", "config.vitLayers must be >= 1, got ", v.layers);
  return v;
}

double gaussianRamp(int64_t step, int64_t rampSteps) {
  if (rampSteps <= 0 || step >= rampSteps) return 1.0;
  const double r = 1.0 - static_cast<double>(std::max<int64_t>(step, 0)) / static_cast<double>(rampSteps);
  return std::exp(-5.0 * r * r);
}

MlmMasked maskTokens(const at::Tensor& tokens, const at::Tensor& maskable, double ratio, int64_t maskId, int64_t randomLow,
                     int64_t randomHigh, at::Generator& gen) {
  if (!(ratio > 0 && ratio <= 1)) argError("ERR_INVALID_ARG", "MLM mask ratio must be in (0, 1], got ", ratio);
  if (randomHigh <= randomLow) argError("ERR_INVALID_ARG", "MLM random-token range [", randomLow, ", ", randomHigh, ") is empty");
  if (!tokens.sizes().equals(maskable.sizes())) argError("ERR_SHAPE", "maskTokens: tokens ", tokens.sizes(), " and maskable ", maskable.sizes(), " differ");
  at::Tensor tok = tokens.to(at::kCPU, at::kLong).contiguous();
  at::Tensor can = maskable.to(at::kCPU, at::kBool).contiguous();
  const int64_t B = tok.size(0), T = tok.size(1);
  // Random keys: maskable positions get U(0, 1), the rest 2, so each row's k smallest keys are k
  // uniformly chosen maskable positions.
  at::Tensor keys = at::rand({B, T}, gen, at::TensorOptions().dtype(at::kDouble));
  keys = at::where(can, keys, at::full_like(keys, 2.0));
  at::Tensor order = std::get<1>(keys.sort(1));
  at::Tensor counts = can.sum(1);
  at::Tensor chosen = at::zeros({B, T}, at::kBool);
  auto ord = order.accessor<int64_t, 2>();
  auto cnt = counts.accessor<int64_t, 1>();
  auto ch = chosen.accessor<bool, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = cnt[b];
    int64_t k = static_cast<int64_t>(std::llround(ratio * static_cast<double>(n)));
    if (n > 0) k = std::min(n, std::max<int64_t>(k, 1));
    for (int64_t i = 0; i < k; ++i) ch[b][ord[b][i]] = true;
  }
  at::Tensor u = at::rand({B, T}, gen, at::TensorOptions().dtype(at::kDouble));
  at::Tensor random = at::randint(randomLow, randomHigh, {B, T}, gen, at::TensorOptions().dtype(at::kLong));
  at::Tensor input = at::where(chosen & u.lt(0.8), at::full_like(tok, maskId), tok);
  input = at::where(chosen & u.ge(0.8) & u.lt(0.9), random, input);
  MlmMasked m;
  m.input = input.to(tokens.device());
  m.chosen = chosen.to(tokens.device());
  return m;
}

MaCmfImpl::MaCmfImpl(int64_t dim, int64_t heads, int64_t s, bool res, double dropout) : slots(s), residual(res) {
  if (slots < 0) argError("ERR_INVALID_ARG", "MA-CMF memory slots must be >= 0, got ", slots);
  imageQuery = register_module("imageQuery", nn::MultiHeadAttention(dim, heads, dropout));
  textQuery = register_module("textQuery", nn::MultiHeadAttention(dim, heads, dropout));
  imageNorm = register_module("imageNorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  textNorm = register_module("textNorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  // Memory rows start like the normalised features they sit beside (unit variance per element).
  memoryText = register_parameter("memoryText", at::randn({slots, dim}));
  memoryImage = register_parameter("memoryImage", at::randn({slots, dim}));
}

at::Tensor MaCmfImpl::forward(const at::Tensor& v, const at::Tensor& text, const at::Tensor& textValid) {
  const int64_t B = v.size(0), Np = v.size(1), T = text.size(1), D = v.size(2);
  at::Tensor vn = residual ? imageNorm->forward(v) : v;
  at::Tensor tn = residual ? textNorm->forward(text) : text;
  at::Tensor memT = memoryText.unsqueeze(0).expand({B, slots, D});
  at::Tensor memV = memoryImage.unsqueeze(0).expand({B, slots, D});
  auto opt = textValid.options().dtype(at::kBool);
  // eq. 3: image queries over [E_t; M_Et] (padded words are no keys; memory rows always are)
  at::Tensor keyT = at::cat({textValid.to(at::kBool), at::ones({B, slots}, opt)}, 1).view({B, 1, 1, T + slots});
  at::Tensor cv = imageQuery->forward(vn, at::cat({tn, memT}, 1), keyT);
  // eq. 4: text queries over [v; M_v]
  at::Tensor cet = textQuery->forward(tn, at::cat({vn, memV}, 1));
  if (residual) {
    cv = v + cv;
    cet = text + cet;
  }
  (void)Np;
  return at::cat({cv, cet}, 1);
}

at::Tensor wordMask(const at::Tensor& tokens, const std::vector<int64_t>& specialIds) {
  at::Tensor m = at::ones(tokens.sizes(), tokens.options().dtype(at::kBool));
  for (int64_t id : specialIds) m = m & tokens.ne(id);
  return m;
}

at::Tensor validPositions(const at::Tensor& tokens, int64_t padId, bool sharedSpecial) {
  if (!sharedSpecial) return tokens.ne(padId);
  at::Tensor lengths = tokens.ne(padId).sum(1, true);  // words (BOS at 0, words from 1)
  at::Tensor pos = at::arange(tokens.size(1), tokens.options()).unsqueeze(0);
  return pos.le(lengths + 1);
}

at::Tensor globalSimilarity(const at::Tensor& vm, const at::Tensor& tm, const at::Tensor& words, const std::string& mode) {
  const int64_t T = tm.size(1);
  if (vm.size(1) < T) argError("ERR_SHAPE", "GLA: the report has ", T, " positions but W_v maps patches to ", vm.size(1), " word slots (config.textSlots)");
  at::Tensor w = words.to(tm.scalar_type()).unsqueeze(-1);  // [B, T, 1]
  if (mode == "mean") {
    at::Tensor gv = unit(vm.mean(1));
    at::Tensor gt = unit((tm * w).sum(1) / w.sum(1).clamp_min(1.0));
    return gv.matmul(gt.t());
  }
  if (mode == "frobenius") {
    at::Tensor fv = unit(vm.slice(1, 0, T).reshape({vm.size(0), -1}));
    at::Tensor ft = unit((tm * w).reshape({tm.size(0), -1}));
    return fv.matmul(ft.t());
  }
  argError("ERR_INVALID_ARG", "config.globalSimilarity must be 'mean' or 'frobenius', got '", mode, "'");
}

at::Tensor wordPatchAttention(const at::Tensor& v, const at::Tensor& tm, double tau2, bool cosine) {
  if (!(tau2 > 0)) argError("ERR_INVALID_ARG", "GLA tau2 must be > 0, got ", tau2);
  at::Tensor a = cosine ? unit(v) : v, b = cosine ? unit(tm) : tm;
  at::Tensor s = at::einsum("aid,bjd->abij", {a, b});  // [Bi, Bt, Np, T]
  return at::softmax(s / tau2, 2);
}

at::Tensor localSimilarity(const at::Tensor& v, const at::Tensor& tm, const at::Tensor& words, double tau2, bool cosine, bool normalizeLocal) {
  at::Tensor alpha = wordPatchAttention(v, tm, tau2, cosine);
  at::Tensor g = at::einsum("abij,aid->abjd", {alpha, v});  // [Bi, Bt, T, D]
  at::Tensor t = tm.unsqueeze(0);                          // [1, Bt, T, D]
  if (normalizeLocal) {
    g = unit(g);
    t = unit(t);
  }
  at::Tensor dots = (g * t).sum(-1);  // [Bi, Bt, T]
  at::Tensor real = words.to(at::kBool).unsqueeze(0).expand_as(dots);
  at::Tensor masked = dots.masked_fill(real.logical_not(), -1e9);  // finite: an all-padding row keeps finite gradients
  at::Tensor h = at::logsumexp(masked, -1);
  // A report without words has no local similarity: 0 instead of -inf.
  return at::where(real.any(-1), h, at::zeros_like(h));
}

at::Tensor symmetricInfoNCEFromSimilarity(const at::Tensor& s, const at::Tensor& tau) {
  if (s.dim() != 2 || s.size(0) != s.size(1)) argError("ERR_SHAPE", "symmetric InfoNCE needs a square similarity matrix, got ", s.sizes());
  at::Tensor target = at::arange(s.size(0), s.options().dtype(at::kLong));
  at::Tensor logits = s / tau;
  namespace F = torch::nn::functional;
  return 0.5 * (F::cross_entropy(logits, target) + F::cross_entropy(logits.t(), target));
}

}  // namespace mpma
}  // namespace radkit
