#include "bert.h"

#include "transformer.h"

namespace radkit {
namespace nn {

namespace {
torch::nn::LayerNorm layerNorm(int64_t d, double eps) { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(eps)); }
}  // namespace

BertSelfAttentionImpl::BertSelfAttentionImpl(int64_t hidden) {
  query = register_module("query", torch::nn::Linear(hidden, hidden));
  key = register_module("key", torch::nn::Linear(hidden, hidden));
  value = register_module("value", torch::nn::Linear(hidden, hidden));
}

BertDenseNormImpl::BertDenseNormImpl(int64_t in, int64_t out, double eps) {
  dense = register_module("dense", torch::nn::Linear(in, out));
  LayerNorm = register_module("LayerNorm", layerNorm(out, eps));
}

BertAttentionImpl::BertAttentionImpl(int64_t hidden, double eps) {
  self = register_module("self", BertSelfAttention(hidden));
  output = register_module("output", BertDenseNorm(hidden, hidden, eps));
}

BertDenseImpl::BertDenseImpl(int64_t in, int64_t out) { dense = register_module("dense", torch::nn::Linear(in, out)); }

BertLayerImpl::BertLayerImpl(const BertConfig& c) : heads(c.heads), dropout(c.dropout) {
  TORCH_CHECK(c.hidden % c.heads == 0, "text encoder: hidden size ", c.hidden, " is not divisible by ", c.heads, " heads");
  attention = register_module("attention", BertAttention(c.hidden, c.layerNormEps));
  intermediate = register_module("intermediate", BertDense(c.hidden, c.intermediate));
  output = register_module("output", BertDenseNorm(c.intermediate, c.hidden, c.layerNormEps));
}

at::Tensor BertLayerImpl::forward(const at::Tensor& x, const at::Tensor& keyMask) {
  const int64_t B = x.size(0), T = x.size(1), d = x.size(2), dh = d / heads;
  auto split = [&](const at::Tensor& t) { return t.view({B, T, heads, dh}).transpose(1, 2); };
  auto* sa = attention->self.get();
  at::Tensor o = nn::attention(split(sa->query->forward(x)), split(sa->key->forward(x)), split(sa->value->forward(x)),
                               keyMask.view({B, 1, 1, T}), dropout, is_training());
  o = attention->output->dense->forward(o.transpose(1, 2).reshape({B, T, d}));
  if (is_training() && dropout > 0) o = at::dropout(o, dropout, true);
  at::Tensor y = attention->output->LayerNorm->forward(x + o);
  at::Tensor h = output->dense->forward(at::gelu(intermediate->dense->forward(y)));
  if (is_training() && dropout > 0) h = at::dropout(h, dropout, true);
  return output->LayerNorm->forward(y + h);
}

BertEmbeddingsImpl::BertEmbeddingsImpl(const BertConfig& c) : dropout(c.dropout) {
  word_embeddings = register_module("word_embeddings", torch::nn::Embedding(c.vocabSize, c.hidden));
  position_embeddings = register_module("position_embeddings", torch::nn::Embedding(c.maxPositions, c.hidden));
  token_type_embeddings = register_module("token_type_embeddings", torch::nn::Embedding(c.typeVocab, c.hidden));
  LayerNorm = register_module("LayerNorm", layerNorm(c.hidden, c.layerNormEps));
  torch::NoGradGuard ng;  // BERT's initialisation: N(0, 0.02)
  for (auto* e : {&word_embeddings, &position_embeddings, &token_type_embeddings}) (*e)->weight.normal_(0, 0.02);
}

at::Tensor BertEmbeddingsImpl::forward(const at::Tensor& ids) {
  const int64_t T = ids.size(1);
  TORCH_CHECK(T <= position_embeddings->weight.size(0), "text encoder: ", T, " tokens exceed its ",
              position_embeddings->weight.size(0), " positions");
  at::Tensor pos = at::arange(T, ids.options()).unsqueeze(0);
  at::Tensor x = word_embeddings->forward(ids) + position_embeddings->forward(pos) + token_type_embeddings->weight[0];
  x = LayerNorm->forward(x);
  if (is_training() && dropout > 0) x = at::dropout(x, dropout, true);
  return x;
}

BertEncoderImpl::BertEncoderImpl(const BertConfig& c) {
  layer = register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.layers; ++i) layer->push_back(BertLayer(c));
}

BertModelImpl::BertModelImpl(const BertConfig& c) : config(c) {
  embeddings = register_module("embeddings", BertEmbeddings(c));
  encoder = register_module("encoder", BertEncoder(c));
}

at::Tensor BertModelImpl::forward(const at::Tensor& ids, const at::Tensor& mask) {
  TORCH_CHECK(ids.dim() == 2 && ids.scalar_type() == at::kLong, "text encoder: ids must be int64 [B, T], got ", ids.sizes());
  TORCH_CHECK(ids.numel() == 0 || (ids.min().item<int64_t>() >= 0 && ids.max().item<int64_t>() < config.vocabSize),
              "text encoder: token ids must be in [0, ", config.vocabSize, ") (the model's vocabulary)");
  at::Tensor x = embeddings->forward(ids);
  for (auto& m : *encoder->layer) x = m->as<BertLayer>()->forward(x, mask);
  return x;
}

}  // namespace nn
}  // namespace radkit
