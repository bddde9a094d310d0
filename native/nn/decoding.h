// Model-agnostic autoregressive search (greedy, beam search, sampling) over a StepModel, and the
// StepModel adapters for the transformers of transformer.h (cached and recompute modes).
//
// Row layout: a search over `batch` sources with `beams` hypotheses each uses rows = batch * beams;
// row b * beams + k is hypothesis k of source b. reorderCache() only ever moves rows within a source.
#pragma once
#include <ATen/ATen.h>

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "causal_lm.h"
#include "transformer.h"

namespace radkit {
namespace nn {

class StepModel {
 public:
  virtual ~StepModel() = default;
  virtual int64_t vocabSize() const = 0;
  virtual int64_t batchSize() const = 0;  // number of sources
  // Allocates per-row state for `rows` (a multiple of batchSize()) and at most `maxSteps` step() calls.
  virtual void initCache(int64_t rows, int64_t maxSteps) = 0;
  // The tokens the first step() is fed: BOS for an encoder-decoder, the last prompt token for a decoder-only model. [rows] int64 CPU.
  virtual at::Tensor startTokens() = 0;
  // Feeds one token per row ([rows] int64, any device) and returns the next-token logits [rows, V].
  virtual at::Tensor step(const at::Tensor& tokens) = 0;
  // Row i continues the hypothesis previously in row parents[i] ([rows] int64 CPU).
  virtual void reorderCache(const at::Tensor& parents) = 0;
  // Source attention of the last step ([rows, S], mean over heads of the last decoder layer), when
  // enabled before initCache(); undefined for models without a source.
  virtual void recordSourceAttention(bool on) {}
  virtual at::Tensor sourceAttention() { return {}; }
  virtual int64_t sourceLength() const { return 0; }
};

// How a transformer stepper reuses work across steps.
enum class CacheMode {
  Full,       // self-attention K/V cache (pre-allocated, one position per step) + cross K/V once per source
  CrossOnly,  // cross K/V once per source; the decoder re-runs over the whole prefix every step
  None,       // the decoder (self and cross projections included) re-runs over the whole prefix every step
};

class EncoderDecoderStepper : public StepModel {
 public:
  // source/sourceMask as EncoderDecoderImpl::encode; encodes at once (call under NoGradGuard).
  EncoderDecoderStepper(EncoderDecoder model, const at::Tensor& source, const at::Tensor& sourceMask, CacheMode mode);
  int64_t vocabSize() const override { return model_->config.vocabSize; }
  int64_t batchSize() const override { return memory_.size(0); }
  void initCache(int64_t rows, int64_t maxSteps) override;
  at::Tensor startTokens() override;
  at::Tensor step(const at::Tensor& tokens) override;
  void reorderCache(const at::Tensor& parents) override;
  void recordSourceAttention(bool on) override { record_ = on; }
  at::Tensor sourceAttention() override { return attention_; }
  int64_t sourceLength() const override { return memory_.size(1); }
  // Bytes held by the self-attention cache and the cross-attention keys/values (for benchmarks).
  int64_t cacheBytes() const;

 private:
  EncoderDecoder model_;
  CacheMode mode_;
  at::Tensor memory_, crossMask_;
  std::vector<LayerCache> caches_;
  at::Tensor history_;  // [rows, maxSteps] tokens fed so far (recompute modes)
  int64_t rows_ = 0, pos_ = 0;
  bool record_ = false;
  at::Tensor attention_;
};

class DecoderOnlyStepper : public StepModel {
 public:
  // prompt [B,P] int64, promptMask [B,P] bool (true = valid; pad on the left; every row has a valid last token).
  DecoderOnlyStepper(DecoderOnly model, const at::Tensor& prompt, const at::Tensor& promptMask, CacheMode mode);
  int64_t vocabSize() const override { return model_->config.vocabSize; }
  int64_t batchSize() const override { return prompt_.size(0); }
  void initCache(int64_t rows, int64_t maxSteps) override;
  at::Tensor startTokens() override;
  at::Tensor step(const at::Tensor& tokens) override;
  void reorderCache(const at::Tensor& parents) override;

 private:
  DecoderOnly model_;
  CacheMode mode_;
  at::Tensor prompt_, promptMask_;
  at::Tensor rowsPrompt_, keyMask_, validCount_;  // per row
  bool padded_ = false;
  std::vector<LayerCache> caches_;
  at::Tensor history_;  // [rows, P + maxSteps] (recompute modes)
  int64_t rows_ = 0, pos_ = 0;
};

// A decoder-only causal LM (causal_lm.h) over left-padded prompts, optionally after an embedding
// prefix: the sequence of row b is [prefix[b]; prompt[b]] (the prefix always valid). Full mode keeps
// a key/value cache per layer ([rows, kvHeads, P + T + maxSteps, headDim], filled by one prefill of
// all but the last prompt token, once per source, then copied to the source's beams); None
// recomputes the whole sequence every step (the baseline the cache must equal).
class CausalLMStepper : public StepModel {
 public:
  // prompt [B,T] int64 (T >= 1), promptMask [B,T] bool (left-padded: the last token of each row
  // valid) or undefined (all valid), prefix [B,P,D] or undefined.
  CausalLMStepper(CausalLM model, const at::Tensor& prompt, const at::Tensor& promptMask, const at::Tensor& prefix, CacheMode mode);
  int64_t vocabSize() const override { return model_->config.vocabSize; }
  int64_t batchSize() const override { return prompt_.size(0); }
  void initCache(int64_t rows, int64_t maxSteps) override;
  at::Tensor startTokens() override;
  at::Tensor step(const at::Tensor& tokens) override;
  void reorderCache(const at::Tensor& parents) override;
  int64_t cacheBytes() const;

 private:
  CausalLM model_;
  CacheMode mode_;
  at::Tensor prompt_, prefix_;
  at::Tensor valid_;        // [B, P+T] bool
  at::Tensor rowsValid_;    // [rows, capacity] bool
  at::Tensor lastPosition_;  // [rows, 1] position of the last prompt token
  at::Tensor baseEmbeds_;   // None mode: [rows, P+T-1, D] (prefix and all prompt tokens but the last)
  at::Tensor history_;      // None mode: [rows, maxSteps] tokens fed so far
  bool padded_ = false;
  std::vector<KVCache> caches_;
  int64_t rows_ = 0, len_ = 0, step_ = 0;
};

// Copies, for every row i with parents[i] != i, the filled prefix [0, filled) of dim 2 of `buffer`
// ([rows, H, capacity, dh]) from row parents[i]. Rows that keep their own hypothesis are not touched.
void reorderRows(at::Tensor& buffer, const at::Tensor& parents, int64_t filled, int64_t dim);

struct SearchOptions {
  std::string method = "greedy";  // greedy | beam | sample
  int64_t beams = 1;
  int64_t maxLength = 60;  // generated tokens, EOS included
  int64_t minLength = 0;   // EOS is blocked until this many tokens were generated
  double lengthPenalty = 1.0;  // beam score = sum log p / length^lengthPenalty
  bool earlyStopping = false;  // beam: stop a source once `beams` hypotheses finished (else: when none can win)
  int64_t noRepeatNgram = 0;   // > 0: no n-gram occurs twice in a hypothesis
  double repetitionPenalty = 1.0;  // CTRL: logits of tokens already generated in the row are divided (>0) / multiplied (<0)
  double temperature = 1.0;
  int64_t topK = 0;    // 0 = off
  double topP = 1.0;   // 1 = off
  bool hasSeed = false;
  uint64_t seed = 0;
  bool returnAttention = false;
  int64_t eosId = 2, padId = 0;
  std::vector<int64_t> stopIds;  // more tokens that end a hypothesis like eosId (blocked before minLength too)
  // Constrained decoding: when not empty, only ids in these [begin, end) ranges (and the stop
  // tokens) may be chosen; the distribution is renormalised over them.
  std::vector<std::pair<int64_t, int64_t>> allowedRanges;
  bool stops(int64_t token) const;
};

struct StepEvent {
  int64_t step = 0;
  std::vector<int64_t> tokens;     // per source: the token just chosen (beam: of the best running hypothesis), -1 when finished
  std::vector<uint8_t> finished;   // per source
};
// Return false to stop the search after this step.
using StepCallback = std::function<bool(const StepEvent&)>;

struct SearchResult {
  std::vector<std::vector<int64_t>> tokens;  // per source, EOS included when emitted
  std::vector<double> scores;                // greedy/sample: sum log p; beam: length-penalised
  std::vector<uint8_t> finished;             // EOS emitted
  at::Tensor attention;                      // [B, longest, S] float CPU (zeros past each length), on request
  int64_t steps = 0;                         // step() calls made
};

SearchResult search(StepModel& model, const SearchOptions& options, const StepCallback& onStep = {});

}  // namespace nn
}  // namespace radkit
