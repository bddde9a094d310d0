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
#include <set>
#include <string>
#include <vector>

#include "../nn/decoding.h"
#include "../nn/distributed.h"

namespace radkit {

// Flat configuration read from a JS object: numbers (booleans as 0/1), strings, number arrays.
struct Config {
  std::map<std::string, double> numbers;
  std::map<std::string, std::string> strings;
  std::map<std::string, std::vector<double>> arrays;

  double num(const std::string& key, double fallback) const;
  // A whole number; a fraction, or a value outside +-2^53, is an ERR_INVALID_ARG naming the key
  // (no silent truncation).
  int64_t integer(const std::string& key, int64_t fallback) const;
  // integer() that must also lie in [lo, hi] (an ERR_INVALID_ARG naming the key and the range).
  int64_t integerIn(const std::string& key, int64_t fallback, int64_t lo, int64_t hi) const;
  bool flag(const std::string& key, bool fallback) const;
  std::string str(const std::string& key, const std::string& fallback) const;
  // Whole numbers, checked like integer().
  std::vector<int64_t> ints(const std::string& key, const std::vector<int64_t>& fallback) const;

  // Every key asked for through the accessors above, present or not. A system reads its whole
  // configuration in its constructor, so after construction the keys never read are ones it does
  // not know: createModel refuses them (a misspelt option is otherwise ignored silently).
  mutable std::set<std::string> read;
  void markRead(const std::string& key) const { read.insert(key); }
  std::vector<std::string> unread() const;
};

// CheXpert observations per study, and the label states every system receives (encoded once, in
// the loader): 0 absent (not mentioned), 1 positive, 2 negative, 3 uncertain. A system that wants
// another mapping (XProNet: positive vs the rest) derives it from these.
constexpr int64_t kObservations = 14;
enum LabelState : int64_t { kAbsent = 0, kPositive = 1, kNegative = 2, kUncertain = 3 };

// One training or evaluation batch. Unused fields stay undefined. A paired batch has one row per
// study everywhere; an unpaired one (systems trained from separate image and report sets) may hold
// images and reports with different row counts: `labels` then describe the reports (rows of
// `tokens`) and image-side tensors travel in `extras`.
struct Batch {
  at::Tensor images;  // [Bi, V, 1, H, W] float, V views
  at::Tensor tokens;  // [Bt, T] int64: BOS, report tokens, EOS, then PAD
  at::Tensor labels;  // [Bt, 14] int64 LabelState (or [Bi, 14] when there are no tokens)
  std::map<std::string, at::Tensor> extras;  // named system-specific tensors (masks, indices, ...)
  bool paired = true;

  // The extra called `name`; an ERR_INVALID_ARG naming it (and the system) when the batch lacks it.
  const at::Tensor& extra(const std::string& name, const std::string& system) const;
};

// What a forward pass reports besides the loss (named scalar parts for logs).
using LossParts = std::map<std::string, double>;

// A generation call: the one search contract (nn::SearchOptions, parsed and defaulted in one place,
// native/binding/generate_options.cc) plus switches only one system understands (XProNet:
// labelSource), which the system validates itself.
struct GenerateRequest {
  Batch batch;
  nn::SearchOptions search;
  Config systemOptions;
};

struct Generated {
  std::vector<std::vector<int64_t>> tokens;  // per study: generated ids, EOS and padding excluded
  std::vector<double> scores;
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
  // Called before every training step with the global step (0-based) and the run's total steps,
  // for loss schedules (e.g. a weight ramped over training); the default ignores it.
  virtual void setTrainingProgress(int64_t step, int64_t totalSteps) {}
  // Checks a batch against this system before anything runs (token ids inside the vocabulary,
  // sequence lengths, ...), so a batch the system cannot use fails with a message and changes no
  // state. The binding has already checked what every system shares (non-empty, finite images of
  // the parameters' dtype, label states). The default checks nothing more.
  virtual void checkBatch(const Batch& batch) const {}
  // Embeddings and explanations of a batch (AdaMatch: patch and word embeddings, patch boxes) for
  // retrieval, keywords and pictures; systems without an embedding space refuse.
  virtual std::map<std::string, at::Tensor> encode(const Batch& batch);
  // Data-parallel training: while a distributed training step runs, nn::currentDistributed() is the
  // process group; loss code gathers cross-sample terms through nn::gatherRows / nn::globalSum and
  // batch norms through nn::batchNorm (nn/distributed.h). What this system's terms see, in words
  // (recorded by the trainer):
  virtual std::string distributedTerms() const { return "not declared: cross-sample terms (contrastive losses, batch norm) see this rank's rows only"; }
};

// Refuses a configuration whose weights, gradients and optimizer state (about 4 x 4 bytes per
// parameter) would not fit in this machine's memory, before anything is allocated (ERR_OUT_OF_MEMORY).
void checkModelSize(const std::string& kind, double parameters);

// A token id tensor [B, T] against a vocabulary of `vocab` ids and `maxLength` positions: an
// ERR_INVALID_ARG in words (the id, the vocabulary, the likely cause) instead of an index error.
void checkTokenIds(const at::Tensor& tokens, int64_t vocab, int64_t maxLength, const std::string& system, const char* field = "batch.tokens");

using SystemFactory = std::function<std::shared_ptr<System>(const Config&)>;

std::map<std::string, SystemFactory>& systemRegistry();

struct SystemRegistrar {
  SystemRegistrar(const char* kind, SystemFactory f) { systemRegistry()[kind] = std::move(f); }
};

}  // namespace radkit
