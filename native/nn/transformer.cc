// Transformer blocks: see transformer.h.
#include "transformer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/version.h>

#include <cmath>
#include <functional>
#include <limits>

namespace radkit {
namespace nn {

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask, double dropout,
                     bool training, at::Tensor* weights) {
#if TORCH_VERSION_MAJOR >= 2
  if (!weights) {
    c10::optional<at::Tensor> m;
    if (mask.defined()) m = mask;
    return at::scaled_dot_product_attention(q, k, v, m, training ? dropout : 0.0, false);
  }
#endif
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  at::Tensor scores = at::matmul(q, k.transpose(-2, -1)).mul_(scale);
  if (mask.defined()) scores.masked_fill_(mask.logical_not(), -std::numeric_limits<double>::infinity());
  at::Tensor w = at::softmax(scores, -1);
  if (weights) *weights = w;
  if (training && dropout > 0) w = at::dropout(w, dropout, true);
  return at::matmul(w, v);
}

at::Tensor sinusoidalTable(int64_t n, int64_t d) {
  at::Tensor pos = at::arange(n, at::kDouble).unsqueeze(1);
  at::Tensor div = at::exp(at::arange(0, d, 2, at::kDouble) * (-std::log(10000.0) / static_cast<double>(d)));
  at::Tensor table = at::zeros({n, d}, at::kDouble);
  table.slice(1, 0, d, 2).copy_(at::sin(pos * div));
  table.slice(1, 1, d, 2).copy_(at::cos(pos * div).slice(1, 0, d / 2));
  return table.to(at::kFloat);
}

at::Tensor causalMask(int64_t t, const at::Device& device) {
  return at::ones({t, t}, at::TensorOptions().dtype(at::kBool).device(device)).tril().view({1, 1, t, t});
}

at::Tensor positionsFromMask(const at::Tensor& mask) { return (mask.to(at::kLong).cumsum(1) - 1).clamp_min(0); }

// ---- MultiHeadAttention
MultiHeadAttentionImpl::MultiHeadAttentionImpl(int64_t dModel, int64_t numHeads, double dropout)
    : dModel(dModel), numHeads(numHeads), headDim(dModel / numHeads), dropout(dropout) {
  TORCH_CHECK(dModel % numHeads == 0, "dModel (", dModel, ") must be divisible by numHeads (", numHeads, ")");
  wq = register_module("wq", torch::nn::Linear(dModel, dModel));
  wk = register_module("wk", torch::nn::Linear(dModel, dModel));
  wv = register_module("wv", torch::nn::Linear(dModel, dModel));
  wo = register_module("wo", torch::nn::Linear(dModel, dModel));
}

at::Tensor MultiHeadAttentionImpl::splitHeads(const at::Tensor& x) const {
  return x.view({x.size(0), x.size(1), numHeads, headDim}).transpose(1, 2);
}

at::Tensor MultiHeadAttentionImpl::forward(const at::Tensor& query, const at::Tensor& keyValue, const at::Tensor& mask,
                                           at::Tensor* weights) {
  return attendProjected(query, projectKey(keyValue), projectValue(keyValue), mask, weights);
}

at::Tensor MultiHeadAttentionImpl::attendProjected(const at::Tensor& query, const at::Tensor& k, const at::Tensor& v,
                                                   const at::Tensor& mask, at::Tensor* weights) {
  const int64_t n = query.size(0), tq = query.size(1), g = k.size(0);
  TORCH_CHECK(g > 0 && n % g == 0, "attention: ", n, " query rows do not split into ", g, " key groups");
  const int64_t r = n / g;
  at::Tensor q = wq->forward(query).reshape({g, r * tq, numHeads, headDim}).transpose(1, 2);
  at::Tensor w;
  at::Tensor o = attention(q, k, v, mask, dropout, is_training(), weights ? &w : nullptr);
  if (weights) *weights = w.view({g, numHeads, r, tq, w.size(-1)}).permute({0, 2, 1, 3, 4}).reshape({n, numHeads, tq, w.size(-1)});
  o = o.transpose(1, 2).reshape({n, tq, dModel});
  return wo->forward(o);
}

// ---- FeedForward
FeedForwardImpl::FeedForwardImpl(int64_t dModel, int64_t dFF, double dropout) : dropout(dropout) {
  w1 = register_module("w1", torch::nn::Linear(dModel, dFF));
  w2 = register_module("w2", torch::nn::Linear(dFF, dModel));
}

at::Tensor FeedForwardImpl::forward(const at::Tensor& x) {
  at::Tensor h = at::relu(w1->forward(x));
  if (is_training() && dropout > 0) h = at::dropout(h, dropout, true);
  return w2->forward(h);
}

// ---- Embeddings
EmbeddingsImpl::EmbeddingsImpl(int64_t vocab, int64_t dModel, const std::string& positions, int64_t maxPositions, double dropout,
                               bool withPositions)
    : dModel(dModel), maxPositions(maxPositions), dropout(dropout), withPositions(withPositions), learned(positions == "learned") {
  TORCH_CHECK(positions == "learned" || positions == "sinusoidal", "positions must be 'sinusoidal' or 'learned', got '", positions, "'");
  if (vocab > 0) {
    tokens = register_module("tokens", torch::nn::Embedding(vocab, dModel));
    // N(0, 1/d): forward multiplies by sqrt(d), so token vectors enter at unit scale, the scale of the
    // position codes and of every sublayer's update (Vaswani et al. 2017; R2Gen/XProNet reach the same
    // scale through xavier on every matrix). LibTorch's N(0, 1) gave entries of sqrt(d) (11 at d 128):
    // positions and cross-attention updates were then an order of magnitude too small to matter.
    at::NoGradGuard noGrad;
    tokens->weight.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(dModel)));
  }
  if (withPositions && learned) learnedPositions = register_module("positions", torch::nn::Embedding(maxPositions, dModel));
  if (withPositions && !learned) table = register_buffer("positionTable", sinusoidalTable(maxPositions, dModel));
}

at::Tensor EmbeddingsImpl::addPositions(const at::Tensor& x, const at::Tensor& positions) {
  if (!withPositions) return x;
  at::Tensor p = positions.defined() ? positions : at::arange(x.size(1), at::TensorOptions().dtype(at::kLong).device(x.device())).unsqueeze(0);
  TORCH_CHECK(p.numel() == 0 || p.max().item<int64_t>() < maxPositions, "position ", p.max().item<int64_t>(),
              " is beyond maxPositions (", maxPositions, ")");
  at::Tensor pe = learned ? learnedPositions->forward(p) : table.index_select(0, p.reshape({-1})).view({p.size(0), p.size(1), dModel});
  return x + pe;
}

at::Tensor EmbeddingsImpl::forward(const at::Tensor& ids, const at::Tensor& positions) {
  at::Tensor x = tokens->forward(ids) * std::sqrt(static_cast<double>(dModel));
  x = addPositions(x, positions);
  if (is_training() && dropout > 0) x = at::dropout(x, dropout, true);
  return x;
}

// ---- Encoder layer
static torch::nn::LayerNorm makeNorm(int64_t d) { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(1e-6)); }

EncoderLayerImpl::EncoderLayerImpl(const TransformerConfig& c) : preNorm(c.preNorm), dropout(c.dropout) {
  selfAttn = register_module("selfAttn", MultiHeadAttention(c.dModel, c.numHeads, c.dropout));
  ff = register_module("ff", FeedForward(c.dModel, c.dFF, c.dropout));
  norm1 = register_module("norm1", makeNorm(c.dModel));
  norm2 = register_module("norm2", makeNorm(c.dModel));
}

static at::Tensor residual(const at::Tensor& x, const at::Tensor& y, double p, bool training) {
  return x + ((training && p > 0) ? at::dropout(y, p, true) : y);
}

at::Tensor EncoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& mask) {
  at::Tensor h;
  if (preNorm) {
    h = norm1->forward(x);
    at::Tensor y = residual(x, selfAttn->forward(h, h, mask), dropout, is_training());
    return residual(y, ff->forward(norm2->forward(y)), dropout, is_training());
  }
  at::Tensor y = norm1->forward(residual(x, selfAttn->forward(x, x, mask), dropout, is_training()));
  return norm2->forward(residual(y, ff->forward(y), dropout, is_training()));
}

// ---- Decoder layer
DecoderLayerImpl::DecoderLayerImpl(const TransformerConfig& c, bool withCross) : preNorm(c.preNorm), withCross(withCross), dropout(c.dropout) {
  selfAttn = register_module("selfAttn", MultiHeadAttention(c.dModel, c.numHeads, c.dropout));
  if (withCross) crossAttn = register_module("crossAttn", MultiHeadAttention(c.dModel, c.numHeads, c.dropout));
  ff = register_module("ff", FeedForward(c.dModel, c.dFF, c.dropout));
  norm1 = register_module("norm1", makeNorm(c.dModel));
  if (withCross) norm2 = register_module("norm2", makeNorm(c.dModel));
  norm3 = register_module("norm3", makeNorm(c.dModel));
}

at::Tensor DecoderLayerImpl::sublayer(const at::Tensor& x, torch::nn::LayerNorm& norm, const std::function<at::Tensor(const at::Tensor&)>& f) {
  if (preNorm) return residual(x, f(norm->forward(x)), dropout, is_training());
  return norm->forward(residual(x, f(x), dropout, is_training()));
}

at::Tensor DecoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& selfMask, const at::Tensor& crossK, const at::Tensor& crossV,
                                     const at::Tensor& crossMask, at::Tensor* crossWeights) {
  at::Tensor y = sublayer(x, norm1, [&](const at::Tensor& h) { return selfAttn->forward(h, h, selfMask); });
  if (withCross) y = sublayer(y, norm2, [&](const at::Tensor& h) { return crossAttn->attendProjected(h, crossK, crossV, crossMask, crossWeights); });
  return sublayer(y, norm3, [&](const at::Tensor& h) { return ff->forward(h); });
}

at::Tensor DecoderLayerImpl::step(const at::Tensor& x, LayerCache& cache, int64_t pos, const at::Tensor& selfMask, const at::Tensor& crossMask,
                                  at::Tensor* crossWeights) {
  const int64_t t = x.size(1);
  TORCH_CHECK(pos + t <= cache.selfK.size(2), "decoder cache holds ", cache.selfK.size(2), " positions; step needs ", pos + t);
  at::Tensor y = sublayer(x, norm1, [&](const at::Tensor& h) {
    cache.selfK.narrow(2, pos, t).copy_(selfAttn->projectKey(h));
    cache.selfV.narrow(2, pos, t).copy_(selfAttn->projectValue(h));
    return selfAttn->attendProjected(h, cache.selfK.narrow(2, 0, pos + t), cache.selfV.narrow(2, 0, pos + t), selfMask);
  });
  if (withCross)
    y = sublayer(y, norm2, [&](const at::Tensor& h) { return crossAttn->attendProjected(h, cache.crossK, cache.crossV, crossMask, crossWeights); });
  return sublayer(y, norm3, [&](const at::Tensor& h) { return ff->forward(h); });
}

// ---- Decoder stack
DecoderStackImpl::DecoderStackImpl(const TransformerConfig& c, bool withCross) : config(c) {
  embed = register_module("embed", Embeddings(c.vocabSize, c.dModel, c.positions, c.maxPositions, c.dropout, true));
  for (int64_t i = 0; i < c.decoderLayers; ++i)
    layers.push_back(register_module("layer" + std::to_string(i), DecoderLayer(c, withCross)));
  if (c.preNorm) finalNorm = register_module("finalNorm", makeNorm(c.dModel));
  out = register_module("out", torch::nn::Linear(c.dModel, c.vocabSize));
}

std::vector<LayerCache> DecoderStackImpl::projectMemory(const at::Tensor& memory) {
  std::vector<LayerCache> caches(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    if (!layers[i]->withCross) continue;
    caches[i].crossK = layers[i]->crossAttn->projectKey(memory);
    caches[i].crossV = layers[i]->crossAttn->projectValue(memory);
  }
  return caches;
}

at::Tensor DecoderStackImpl::forward(const at::Tensor& tokens, const at::Tensor& positions, const at::Tensor& selfMask,
                                     const std::vector<LayerCache>& cross, const at::Tensor& crossMask, bool lastOnly, at::Tensor* crossWeights) {
  at::Tensor x = embed->forward(tokens, positions);
  if (embeddingHook) x = embeddingHook(x);
  for (size_t i = 0; i < layers.size(); ++i) {
    const bool last = i + 1 == layers.size();
    at::Tensor ck = cross.empty() ? at::Tensor() : cross[i].crossK, cv = cross.empty() ? at::Tensor() : cross[i].crossV;
    x = layers[i]->forward(x, selfMask, ck, cv, crossMask, last ? crossWeights : nullptr);
  }
  if (lastOnly) x = x.narrow(1, x.size(1) - 1, 1);
  if (finalNorm) x = finalNorm->forward(x);
  at::Tensor logits = out->forward(x);
  return lastOnly ? logits.squeeze(1) : logits;
}

at::Tensor DecoderStackImpl::step(const at::Tensor& tokens, const at::Tensor& positions, std::vector<LayerCache>& caches, int64_t pos,
                                  const at::Tensor& selfMask, const at::Tensor& crossMask, at::Tensor* crossWeights) {
  at::Tensor p = positions.defined() ? positions
                                     : at::arange(pos, pos + tokens.size(1), at::TensorOptions().dtype(at::kLong).device(tokens.device())).unsqueeze(0);
  at::Tensor x = embed->forward(tokens, p);
  if (embeddingHook) x = embeddingHook(x);
  for (size_t i = 0; i < layers.size(); ++i) x = layers[i]->step(x, caches[i], pos, selfMask, crossMask, i + 1 == layers.size() ? crossWeights : nullptr);
  x = x.narrow(1, x.size(1) - 1, 1);
  if (finalNorm) x = finalNorm->forward(x);
  return out->forward(x).squeeze(1);
}

// ---- EncoderDecoder
EncoderDecoderImpl::EncoderDecoderImpl(TransformerConfig c) : config(std::move(c)) {
  const TransformerConfig& k = config;
  const int64_t sourceDim = k.sourceDim > 0 ? k.sourceDim : k.dModel;
  if (k.sourceVocabSize == 0 && sourceDim != k.dModel) sourceProj = register_module("sourceProj", torch::nn::Linear(sourceDim, k.dModel));
  if (k.sourceVocabSize > 0 || k.sourcePositions)
    sourceEmbed = register_module("sourceEmbed", Embeddings(k.sourceVocabSize, k.dModel, k.positions, k.maxPositions, k.dropout, k.sourcePositions));
  for (int64_t i = 0; i < k.encoderLayers; ++i) encoderLayers.push_back(register_module("encoderLayer" + std::to_string(i), EncoderLayer(k)));
  if (k.preNorm) encoderNorm = register_module("encoderNorm", makeNorm(k.dModel));
  decoder = register_module("decoder", DecoderStack(k, true));
}

at::Tensor EncoderDecoderImpl::encode(const at::Tensor& source, const at::Tensor& sourceMask) {
  at::Tensor positions = positionsFromMask(sourceMask);
  at::Tensor x;
  if (config.sourceVocabSize > 0) {
    x = sourceEmbed->forward(source, positions);
  } else {
    x = sourceProj ? sourceProj->forward(source) : source;
    if (sourceEmbed) x = sourceEmbed->addPositions(x, positions);
    if (is_training() && config.dropout > 0) x = at::dropout(x, config.dropout, true);
  }
  at::Tensor mask = sourceMask.view({sourceMask.size(0), 1, 1, sourceMask.size(1)});
  for (auto& layer : encoderLayers) x = layer->forward(x, mask);
  if (encoderNorm) x = encoderNorm->forward(x);
  return x;
}

at::Tensor EncoderDecoderImpl::forward(const at::Tensor& source, const at::Tensor& sourceMask, const at::Tensor& target) {
  at::Tensor memory = encode(source, sourceMask);
  std::vector<LayerCache> cross = decoder->projectMemory(memory);
  at::Tensor crossMask = sourceMask.view({sourceMask.size(0), 1, 1, sourceMask.size(1)});
  return decoder->forward(target, {}, causalMask(target.size(1), target.device()), cross, crossMask, false);
}

// ---- DecoderOnly
DecoderOnlyImpl::DecoderOnlyImpl(TransformerConfig c) : config(std::move(c)) { decoder = register_module("decoder", DecoderStack(config, false)); }

at::Tensor DecoderOnlyImpl::forward(const at::Tensor& tokens, const at::Tensor& mask) {
  const int64_t t = tokens.size(1);
  at::Tensor eye = at::eye(t, at::TensorOptions().dtype(at::kBool).device(tokens.device())).view({1, 1, t, t});
  at::Tensor selfMask = causalMask(t, tokens.device()).logical_and(mask.view({mask.size(0), 1, 1, t})).logical_or(eye);
  return decoder->forward(tokens, positionsFromMask(mask), selfMask, {}, {}, false);
}

// ---- deterministic initialisation
void initParameters(torch::nn::Module& m, uint64_t seed, double gain) {
  at::NoGradGuard noGrad;
  at::Generator gen = at::detail::createCPUGenerator(seed);
  for (auto& item : m.named_parameters(true)) {
    at::Tensor& p = item.value();
    if (p.dim() > 1) {
      const double fanOut = static_cast<double>(p.size(0)), fanIn = static_cast<double>(p.numel() / p.size(0));
      const double a = gain * std::sqrt(6.0 / (fanIn + fanOut));
      at::Tensor tmp = at::empty(p.sizes(), at::TensorOptions().dtype(at::kDouble));
      tmp.uniform_(-a, a, gen);
      p.copy_(tmp);
    } else if (item.key().size() >= 6 && item.key().compare(item.key().size() - 6, 6, "weight") == 0) {
      p.fill_(1.0);
    } else {
      p.zero_();
    }
  }
}

}  // namespace nn
}  // namespace radkit
