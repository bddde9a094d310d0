// A BERT-style text encoder (Devlin et al. 2019) whose parameter names are Hugging Face's
// (embeddings.word_embeddings.weight, encoder.layer.0.attention.self.query.weight, ...), so weights of
// a user-supplied BERT checkpoint (e.g. BioClinicalBERT, as AdaMatch uses) load by name: post-norm
// layers, GELU, learned absolute positions, token-type embeddings (all type 0 here), LayerNorm eps 1e-12.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

namespace radkit {
namespace nn {

struct BertConfig {
  int64_t vocabSize = 30522;
  int64_t hidden = 768;
  int64_t layers = 12;
  int64_t heads = 12;
  int64_t intermediate = 3072;
  int64_t maxPositions = 512;
  int64_t typeVocab = 2;
  double dropout = 0.1;
  double layerNormEps = 1e-12;
};

// Holds Linear layers under Hugging Face's names; a plain named container.
struct BertSelfAttentionImpl : torch::nn::Module {
  BertSelfAttentionImpl(int64_t hidden);
  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr};
};
TORCH_MODULE(BertSelfAttention);

struct BertDenseNormImpl : torch::nn::Module {  // "output": dense + LayerNorm (residual added by the caller)
  BertDenseNormImpl(int64_t in, int64_t out, double eps);
  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
};
TORCH_MODULE(BertDenseNorm);

struct BertAttentionImpl : torch::nn::Module {
  BertAttentionImpl(int64_t hidden, double eps);
  BertSelfAttention self{nullptr};
  BertDenseNorm output{nullptr};
};
TORCH_MODULE(BertAttention);

struct BertDenseImpl : torch::nn::Module {  // "intermediate": dense (GELU applied by the caller)
  BertDenseImpl(int64_t in, int64_t out);
  torch::nn::Linear dense{nullptr};
};
TORCH_MODULE(BertDense);

struct BertLayerImpl : torch::nn::Module {
  explicit BertLayerImpl(const BertConfig& c);
  // x [B, T, hidden], keyMask bool [B, T] (true = real token)
  at::Tensor forward(const at::Tensor& x, const at::Tensor& keyMask);
  int64_t heads;
  double dropout;
  BertAttention attention{nullptr};
  BertDense intermediate{nullptr};
  BertDenseNorm output{nullptr};
};
TORCH_MODULE(BertLayer);

struct BertEmbeddingsImpl : torch::nn::Module {
  explicit BertEmbeddingsImpl(const BertConfig& c);
  at::Tensor forward(const at::Tensor& ids);
  double dropout;
  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
};
TORCH_MODULE(BertEmbeddings);

struct BertEncoderImpl : torch::nn::Module {
  explicit BertEncoderImpl(const BertConfig& c);
  torch::nn::ModuleList layer{nullptr};
};
TORCH_MODULE(BertEncoder);

class BertModelImpl : public torch::nn::Module {
 public:
  explicit BertModelImpl(const BertConfig& c);
  // ids [B, T] int64, mask bool [B, T] -> hidden states [B, T, hidden]
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& mask);
  BertConfig config;
  BertEmbeddings embeddings{nullptr};
  BertEncoder encoder{nullptr};
};
TORCH_MODULE(BertModel);

}  // namespace nn
}  // namespace radkit
