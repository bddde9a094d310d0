// Transformer building blocks as torch::nn modules for model code (XProNet, R2Gen-style decoders,
// decoder-only LLM heads): multi-head attention with boolean masks (true = may attend), position-wise
// feed-forward, pre-/post-norm residual layers, sinusoidal or learned positions, encoder and decoder
// layers, and the EncoderDecoder / DecoderOnly models. Every module has a full (teacher-forced) forward
// for training and scoring, and an incremental `step` path used by native/nn/decoding.h with a
// pre-allocated self-attention key/value cache and cross-attention keys/values computed once.
//
// Attention runs through at::scaled_dot_product_attention on LibTorch >= 2 and a direct
// softmax(QK^T/sqrt(d))V on 1.13 (and whenever the caller asks for the attention weights).
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <functional>
#include <string>
#include <vector>

namespace radkit {
namespace nn {

struct TransformerConfig {
  std::string kind = "encoder-decoder";  // or "decoder-only"
  int64_t vocabSize = 1000;              // target vocabulary (logits width)
  int64_t dModel = 512;
  int64_t numHeads = 8;
  int64_t dFF = 512;
  int64_t encoderLayers = 3;  // ignored by decoder-only
  int64_t decoderLayers = 3;
  double dropout = 0.1;
  bool preNorm = true;                   // R2Gen/XProNet use pre-norm (x + sublayer(norm(x))) + final norms
  std::string positions = "sinusoidal";  // or "learned"
  int64_t maxPositions = 512;            // longest target (and source, for positions on the source)
  int64_t sourceVocabSize = 0;           // > 0: the source is token ids; 0: the source is features
  int64_t sourceDim = 0;                 // feature width of the source (0 = dModel); != dModel adds a Linear
  bool sourcePositions = false;          // add positions to the source embedding
  int64_t padId = 0, bosId = 1, eosId = 2;
  uint64_t seed = 0;     // parameters are drawn from a private generator seeded with this
  double initGain = 1.0; // xavier-uniform gain for weight matrices (tests use larger gains for peaky logits)
};

// softmax(q k^T / sqrt(dh) masked) v for q [G,H,Tq,dh], k/v [G,H,Tk,dh]; mask bool broadcastable to
// [G,H,Tq,Tk] (true = may attend; undefined = all). When `weights` is given, the attention
// probabilities [G,H,Tq,Tk] are written there (direct path).
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask, double dropout,
                     bool training, at::Tensor* weights = nullptr);

// Sinusoidal table [n, d] (Vaswani et al.): even columns sin, odd columns cos.
at::Tensor sinusoidalTable(int64_t n, int64_t d);

class MultiHeadAttentionImpl : public torch::nn::Module {
 public:
  MultiHeadAttentionImpl(int64_t dModel, int64_t numHeads, double dropout);
  // [N,T,d] -> [N,H,T,dh]
  at::Tensor splitHeads(const at::Tensor& x) const;
  // Projections of keys and values: x [N,T,d] -> [N,H,T,dh] each.
  at::Tensor projectKey(const at::Tensor& x) { return splitHeads(wk->forward(x)); }
  at::Tensor projectValue(const at::Tensor& x) { return splitHeads(wv->forward(x)); }
  // Full attention: query [N,Tq,d], keyValue [N,Tk,d]; mask broadcastable to [N,H,Tq,Tk].
  at::Tensor forward(const at::Tensor& query, const at::Tensor& keyValue, const at::Tensor& mask = {}, at::Tensor* weights = nullptr);
  // Attention on already projected keys/values k,v [G,H,Tk,dh] for a query [N,Tq,d] with N = G*R:
  // the R rows of a group share the keys (beams of one image share the image's cross-attention
  // keys/values, so they are stored once per image, not once per beam). mask broadcastable to
  // [G,1,1|R*Tq,Tk]. weights (if given) receives [N,H,Tq,Tk].
  at::Tensor attendProjected(const at::Tensor& query, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                             at::Tensor* weights = nullptr);

  int64_t dModel, numHeads, headDim;
  double dropout;
  torch::nn::Linear wq{nullptr}, wk{nullptr}, wv{nullptr}, wo{nullptr};
};
TORCH_MODULE(MultiHeadAttention);

class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(int64_t dModel, int64_t dFF, double dropout);
  at::Tensor forward(const at::Tensor& x);
  double dropout;
  torch::nn::Linear w1{nullptr}, w2{nullptr};
};
TORCH_MODULE(FeedForward);

// Token embedding scaled by sqrt(d) plus sinusoidal or learned positions, then dropout.
class EmbeddingsImpl : public torch::nn::Module {
 public:
  EmbeddingsImpl(int64_t vocab, int64_t dModel, const std::string& positions, int64_t maxPositions, double dropout, bool withPositions);
  // tokens [N,T] int64, positions [N,T] int64 (undefined: 0..T-1)
  at::Tensor forward(const at::Tensor& tokens, const at::Tensor& positions = {});
  at::Tensor addPositions(const at::Tensor& x, const at::Tensor& positions);
  int64_t dModel, maxPositions;
  double dropout;
  bool withPositions, learned;
  torch::nn::Embedding tokens{nullptr}, learnedPositions{nullptr};
  at::Tensor table;  // sinusoidal buffer [maxPositions, d]
};
TORCH_MODULE(Embeddings);

class EncoderLayerImpl : public torch::nn::Module {
 public:
  EncoderLayerImpl(const TransformerConfig& c);
  // x [B,S,d], mask bool [B,1,1,S]
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask);
  bool preNorm;
  double dropout;
  MultiHeadAttention selfAttn{nullptr};
  FeedForward ff{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
};
TORCH_MODULE(EncoderLayer);

// Per-layer incremental state. Self-attention keys/values are pre-allocated [N,H,capacity,dh] and
// filled one position per step; cross-attention keys/values [G,H,S,dh] are computed once per source.
struct LayerCache {
  at::Tensor selfK, selfV;
  at::Tensor crossK, crossV;
};

class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const TransformerConfig& c, bool withCross);
  // Full: x [N,T,d]; selfMask broadcastable to [N,H,T,T]; crossK/V [G,H,S,dh]; crossMask [G,1,1,S].
  at::Tensor forward(const at::Tensor& x, const at::Tensor& selfMask, const at::Tensor& crossK, const at::Tensor& crossV,
                     const at::Tensor& crossMask, at::Tensor* crossWeights = nullptr);
  // Step: x [N,T,d] holding positions [pos, pos+T) of every row; writes their keys/values into the
  // cache and attends over cache[:, :, :pos+T]. selfMask broadcastable to [N,H,T,pos+T].
  at::Tensor step(const at::Tensor& x, LayerCache& cache, int64_t pos, const at::Tensor& selfMask, const at::Tensor& crossMask,
                  at::Tensor* crossWeights = nullptr);
  at::Tensor sublayer(const at::Tensor& x, torch::nn::LayerNorm& norm, const std::function<at::Tensor(const at::Tensor&)>& f);
  bool preNorm, withCross;
  double dropout;
  MultiHeadAttention selfAttn{nullptr}, crossAttn{nullptr};
  FeedForward ff{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
};
TORCH_MODULE(DecoderLayer);

// Causal mask [1,1,T,T] (true on and below the diagonal).
at::Tensor causalMask(int64_t t, const at::Device& device);

// Decoder stack shared by both models: target embeddings, layers, final norm (pre-norm) and the
// output projection to the vocabulary.
class DecoderStackImpl : public torch::nn::Module {
 public:
  DecoderStackImpl(const TransformerConfig& c, bool withCross);
  // Full teacher-forced pass: tokens [N,T] -> logits [N,T,V]. crossK/V [G,H,S,dh] per layer.
  at::Tensor forward(const at::Tensor& tokens, const at::Tensor& positions, const at::Tensor& selfMask,
                     const std::vector<LayerCache>& cross, const at::Tensor& crossMask, bool lastOnly, at::Tensor* crossWeights = nullptr);
  // Incremental: tokens [N,T] at positions [pos, pos+T) -> logits of the last position [N,V].
  at::Tensor step(const at::Tensor& tokens, const at::Tensor& positions, std::vector<LayerCache>& caches, int64_t pos,
                  const at::Tensor& selfMask, const at::Tensor& crossMask, at::Tensor* crossWeights = nullptr);
  // Cross-attention keys/values of every layer for memory [G,S,d].
  std::vector<LayerCache> projectMemory(const at::Tensor& memory);
  TransformerConfig config;
  Embeddings embed{nullptr};
  // Optional transform of the token embeddings [N,T,d] before the first layer, in forward and step
  // (XProNet fuses each word with its prototype response here).
  std::function<at::Tensor(const at::Tensor&)> embeddingHook;
  std::vector<DecoderLayer> layers;
  torch::nn::LayerNorm finalNorm{nullptr};
  torch::nn::Linear out{nullptr};
};
TORCH_MODULE(DecoderStack);

class EncoderDecoderImpl : public torch::nn::Module {
 public:
  explicit EncoderDecoderImpl(TransformerConfig c);
  // source: features [B,S,sourceDim] (float) or token ids [B,S]; sourceMask [B,S] bool (true = valid).
  at::Tensor encode(const at::Tensor& source, const at::Tensor& sourceMask);
  // Teacher-forced logits [B,T,V] of the next token after each target position.
  at::Tensor forward(const at::Tensor& source, const at::Tensor& sourceMask, const at::Tensor& target);
  TransformerConfig config;
  torch::nn::Linear sourceProj{nullptr};
  Embeddings sourceEmbed{nullptr};
  std::vector<EncoderLayer> encoderLayers;
  torch::nn::LayerNorm encoderNorm{nullptr};
  DecoderStack decoder{nullptr};
};
TORCH_MODULE(EncoderDecoder);

class DecoderOnlyImpl : public torch::nn::Module {
 public:
  explicit DecoderOnlyImpl(TransformerConfig c);
  // tokens [B,T] with mask [B,T] (true = valid; left padding) -> logits [B,T,V].
  at::Tensor forward(const at::Tensor& tokens, const at::Tensor& mask);
  TransformerConfig config;
  DecoderStack decoder{nullptr};
};
TORCH_MODULE(DecoderOnly);

// Positions 0.. counted over valid tokens only (left padding): cumsum(mask) - 1, clamped at 0.
at::Tensor positionsFromMask(const at::Tensor& mask);

// Re-draws every parameter deterministically from a private generator seeded with `seed`:
// matrices xavier-uniform(gain), biases zero, layer norms (1, 0), embeddings N(0, 1/sqrt(d))... see .cc.
void initParameters(torch::nn::Module& m, uint64_t seed, double gain);

}  // namespace nn
}  // namespace radkit
