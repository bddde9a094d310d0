// A "system" is one trainable model of the package (XProNet, AdaMatch, ...): a torch::nn::Module
// with a training loss over a batch and (when it generates) a search over its decoder. The generic
// N-API model handle (native/binding/model.cc) trains, evaluates, generates and checkpoints any
// system through this interface, so the TypeScript trainer is not shaped by one model.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace radkit {

// Flat configuration read from a JS object: numbers (booleans as 0/1), strings, number arrays.
struct Config {
  std::map<std::string, double> numbers;
  std::map<std::string, std::string> strings;
  std::map<std::string, std::vector<double>> arrays;

  double num(const std::string& key, double fallback) const;
  int64_t integer(const std::string& key, int64_t fallback) const;
  bool flag(const std::string& key, bool fallback) const;
  std::string str(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> ints(const std::string& key, const std::vector<int64_t>& fallback) const;
};

// One training or evaluation batch. Unused fields stay undefined.
struct Batch {
  at::Tensor images;  // [B, V, 1, H, W] float, V views
  at::Tensor tokens;  // [B, T] int64: BOS, report tokens, EOS, then PAD
  at::Tensor labels;  // [B, 14] int64: 1 positive, 0 negative/absent, 2 uncertain (-1 unknown)
};

// What a forward pass reports besides the loss (named scalar parts for logs).
using LossParts = std::map<std::string, double>;

struct GenerateRequest {
  Batch batch;
  std::string method = "beam";
  int64_t beams = 3, maxLength = 60, minLength = 0, noRepeatNgram = 0, topK = 0;
  double lengthPenalty = 1.0, repetitionPenalty = 1.0, temperature = 1.0, topP = 1.0;
  bool hasSeed = false;
  uint64_t seed = 0;
  std::string labelSource;  // system-specific (XProNet: oracle | predicted | none); empty = the system's default
};

struct Generated {
  at::Tensor tokens;  // [B, L] int64 (PAD after EOS)
  at::Tensor scores;  // [B] float
  std::map<std::string, at::Tensor> extras;  // explanations (e.g. prototype indices per token)
};

class System : public torch::nn::Module {
 public:
  virtual std::string kind() const = 0;
  // Mean loss of the batch (training mode is set by the caller).
  virtual at::Tensor loss(const Batch& batch, LossParts& parts) = 0;
  virtual Generated generate(const GenerateRequest& request) = 0;
  // Parameter-name prefix of the visual extractor (its own learning rate); empty when none.
  virtual std::string visualPrefix() const { return ""; }
  // Data-driven initialisation before training (XProNet: k-means prototypes); may be a no-op.
  virtual void initializeFromData(const std::vector<Batch>& batches) {}
  // Embeddings and explanations of a batch (AdaMatch: patch and word embeddings, patch boxes) for
  // retrieval, keywords and pictures; systems without an embedding space refuse.
  virtual std::map<std::string, at::Tensor> encode(const Batch& batch);
};

using SystemFactory = std::function<std::shared_ptr<System>(const Config&)>;

std::map<std::string, SystemFactory>& systemRegistry();

struct SystemRegistrar {
  SystemRegistrar(const char* kind, SystemFactory f) { systemRegistry()[kind] = std::move(f); }
};

}  // namespace radkit
