// Decoder-only causal language models in the Hugging Face layouts, as torch::nn modules whose
// parameter names are the checkpoints' names (so loading is a name-for-name copy):
//
//   llama    model.embed_tokens / model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj,
//            post_attention_layernorm, mlp.{gate,up,down}_proj} / model.norm / lm_head
//            RMSNorm (computed in float32), rotary embeddings in the rotate-half layout over the
//            whole head, SwiGLU, grouped-query attention, optional tied embeddings.
//   gpt_neox gpt_neox.embed_in / gpt_neox.layers.N.{input_layernorm, attention.{query_key_value,
//            dense}, post_attention_layernorm, mlp.{dense_h_to_4h, dense_4h_to_h}} /
//            gpt_neox.final_layer_norm / embed_out
//            LayerNorm with biases, fused query_key_value interleaved per head ([H, 3, dh] rows),
//            rotary over the first rotaryDim dims of each head (rotary_pct), parallel or
//            sequential residual, exact GELU.
//
// Positions are cumsum(valid) - 1 over the whole sequence (embedding prefix included), so padding
// (left padding, or padding between a prefix and its prompt) changes nothing for the valid tokens.
// A query never attends to invalid keys; a padded query attends to itself only (its output is
// meaningless and unused).
//
// LoRA: any projection (CausalLinear) can carry a low-rank adapter lora_A [r, in] / lora_B [out, r]
// (PEFT's names and initialisation: A Kaiming-uniform, B zero, scaling alpha / r). Adapter weights
// are float32 whatever the base dtype. addLora freezes every base parameter (except the modules
// named in trainModules); merge folds scaling * B A into the base weight and removes the adapters.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <memory>
#include <string>
#include <vector>

#include "../core/safetensors.h"

namespace radkit {
namespace nn {

struct CausalLMConfig {
  std::string arch = "llama";  // llama | gpt_neox
  int64_t vocabSize = 32000;
  int64_t hiddenSize = 4096;
  int64_t numLayers = 32;
  int64_t numHeads = 32;
  int64_t numKvHeads = 32;  // grouped-query attention when < numHeads (llama)
  int64_t headDim = 128;
  int64_t intermediateSize = 11008;
  int64_t maxPositions = 2048;
  double ropeTheta = 10000.0;
  int64_t rotaryDim = 128;      // rotated dims per head (even, <= headDim); gpt_neox: headDim * rotary_pct
  double normEps = 1e-6;
  bool tieEmbeddings = false;
  bool parallelResidual = true;  // gpt_neox
  bool attentionBias = false;    // llama: q/k/v/o biases; gpt_neox: query_key_value / dense biases
  bool mlpBias = false;
  std::string activation = "silu";  // silu | gelu | gelu_tanh | relu
  int64_t bosId = -1, eosId = -1, padId = -1;  // -1: none
};

// Checks a config (ERR_INVALID_ARG naming the field).
void validateConfig(const CausalLMConfig& c);

struct KVCache {
  at::Tensor k, v;  // [rows, kvHeads, capacity, headDim]
};

struct LoraOptions {
  int64_t rank = 8;
  double alpha = 16;
  double dropout = 0;
  std::vector<std::string> targets;       // module names (the last name part), e.g. q_proj, v_proj
  std::vector<std::string> trainModules;  // whole modules kept trainable (e.g. embed_tokens, lm_head)
  uint64_t seed = 0;
};

// A module holding one parameter `weight` (the token embedding table; LoRA's lora_A / lora_B).
class WeightOnlyImpl : public torch::nn::Module {
 public:
  WeightOnlyImpl(at::IntArrayRef shape, const at::TensorOptions& opts);
  at::Tensor weight;
};
TORCH_MODULE(WeightOnly);

class CausalLinearImpl : public torch::nn::Module {
 public:
  CausalLinearImpl(int64_t in, int64_t out, bool bias, const at::TensorOptions& opts);
  at::Tensor forward(const at::Tensor& x);
  void addLora(const LoraOptions& o, uint64_t seed);
  void mergeLora();
  bool hasLora() const { return static_cast<bool>(loraA); }
  int64_t in, out;
  at::Tensor weight, bias;
  WeightOnly loraA{nullptr}, loraB{nullptr};  // registered as lora_A / lora_B
  double scaling = 0, dropout = 0;
};
TORCH_MODULE(CausalLinear);

class CausalNormImpl : public torch::nn::Module {
 public:
  CausalNormImpl(int64_t dim, double eps, bool rms, const at::TensorOptions& opts);
  at::Tensor forward(const at::Tensor& x);
  double eps;
  bool rms;
  at::Tensor weight, bias;
};
TORCH_MODULE(CausalNorm);

class CausalAttentionImpl : public torch::nn::Module {
 public:
  CausalAttentionImpl(const CausalLMConfig& c, const at::TensorOptions& opts);
  // x [B,n,D] at cache slots [pos, pos+n); cos/sin [B,1,n,rotaryDim]; mask bool broadcastable to
  // [B,1,n,keys] or undefined. Without a cache the keys are this call's n positions.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask, KVCache* cache, int64_t pos);
  CausalLMConfig c;
  CausalLinear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr}, qkv{nullptr};
};
TORCH_MODULE(CausalAttention);

class CausalMlpImpl : public torch::nn::Module {
 public:
  CausalMlpImpl(const CausalLMConfig& c, const at::TensorOptions& opts);
  at::Tensor forward(const at::Tensor& x);
  CausalLMConfig c;
  CausalLinear gate{nullptr}, up{nullptr}, down{nullptr};
};
TORCH_MODULE(CausalMlp);

class CausalBlockImpl : public torch::nn::Module {
 public:
  CausalBlockImpl(const CausalLMConfig& c, const at::TensorOptions& opts);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask, KVCache* cache, int64_t pos);
  CausalLMConfig c;
  CausalNorm norm1{nullptr}, norm2{nullptr};
  CausalAttention attention{nullptr};
  CausalMlp mlp{nullptr};
};
TORCH_MODULE(CausalBlock);

class CausalBackboneImpl : public torch::nn::Module {
 public:
  CausalBackboneImpl(const CausalLMConfig& c, const at::TensorOptions& opts);
  CausalLMConfig c;
  WeightOnly embed{nullptr};
  torch::nn::ModuleList layers{nullptr};
  std::vector<CausalBlock> blocks;
  CausalNorm norm{nullptr};
};
TORCH_MODULE(CausalBackbone);

class CausalLMImpl : public torch::nn::Module {
 public:
  // Parameters are allocated uninitialised (loadFrom fills them; createCausalLM calls initWeights).
  CausalLMImpl(CausalLMConfig config, const at::TensorOptions& opts);

  CausalLMConfig config;
  at::ScalarType dtype;
  at::Device device;
  CausalBackbone backbone{nullptr};
  CausalLinear head{nullptr};  // undefined when tied

  // Embedding rows of ids [B,T] int64 -> [B,T,D] in the model dtype.
  at::Tensor embed(const at::Tensor& ids);
  // Runs the blocks on x [B,n,D] (model dtype) at cache slots [pos, pos+n); positions [B,n] int64;
  // keyValid [B, pos+n] bool or undefined (all valid). caches: one per layer, or null (no cache:
  // pos must be 0). Returns the final-norm hidden states [B,n,D].
  at::Tensor hidden(const at::Tensor& x, const at::Tensor& positions, const at::Tensor& keyValid, std::vector<KVCache>* caches, int64_t pos);
  // hidden [.., D] -> float32 logits [.., V].
  at::Tensor project(const at::Tensor& h);
  // The whole sequence [prefix; embed(ids)]: logits [B, P+T, V] float32. mask [B,T] bool or
  // undefined; prefix [B,P,D] (any floating dtype) or undefined.
  at::Tensor logits(const at::Tensor& ids, const at::Tensor& mask, const at::Tensor& prefix);
  // Mean cross-entropy of the tokens ids[b, t] with lossMask[b, t] (each predicted from the
  // position before it; ids[:, 0] only when there is a prefix). 0 when nothing is selected.
  at::Tensor loss(const at::Tensor& ids, const at::Tensor& mask, const at::Tensor& prefix, const at::Tensor& lossMask);

  std::vector<KVCache> allocateCaches(int64_t rows, int64_t capacity) const;

  // Deterministic initialisation from `seed` (normal(0, 0.02) matrices and embeddings, norms 1, biases 0).
  void initWeights(uint64_t seed);
  // Every parameter by its Hugging Face name (LoRA included).
  std::vector<std::pair<std::string, at::Tensor>> namedWeights();
  // Copies the tensors of `files` into the parameters. Checks first, copies nothing on failure:
  // every parameter present exactly once, no unknown tensor (rotary inv_freq and the causal-mask
  // buffers of old exports are ignored; lm_head/embed_out of a tied model is ignored), shapes
  // equal. One ERR_INVALID_ARG lists every problem. Pages are released after each copy.
  void loadFrom(const std::vector<std::shared_ptr<SafetensorsFile>>& files);

  // LoRA (see the file comment). Returns the names of the adapted modules. Fails (nothing changed)
  // when a target matches no module, or adapters already exist.
  std::vector<std::string> addLora(const LoraOptions& o);
  void mergeLora();
  bool hasLora() const { return !loraModules_.empty(); }
  const LoraOptions& loraOptions() const { return lora_; }
  // Adapter parameters (+ trainModules' parameters) by name.
  std::vector<std::pair<std::string, at::Tensor>> adapterWeights();
  std::vector<at::Tensor> trainableParameters();

  // Grows the vocabulary to n rows (embedding and untied head): new rows are the mean of the old
  // ones. n must be >= vocabSize. Not with LoRA adapters on the head.
  void resizeVocab(int64_t n);

 private:
  std::vector<std::pair<std::string, CausalLinear>> linears();
  std::vector<std::string> loraModules_;
  LoraOptions lora_;
};
TORCH_MODULE(CausalLM);

// Creates a model with initialised weights on `opts`.
CausalLM createCausalLM(const CausalLMConfig& c, const at::TensorOptions& opts, uint64_t seed);

}  // namespace nn
}  // namespace radkit
