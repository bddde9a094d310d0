// Search over a StepModel and the transformer steppers: see decoding.h.
//
// Beam reordering: the self-attention cache is pre-allocated [rows, H, maxSteps, dh] per layer and
// filled one position per step. When beams are re-ranked, only rows whose parent differs from
// themselves are rewritten, and only their filled prefix [0, t): one index_select of those rows'
// prefixes into a temporary, then index_copy_ back. Rows that keep their hypothesis (always, in
// greedy and sampling; often, in beam search) are never copied, and nothing past the prefix is
// touched. The alternative (parent pointers + gathering the keys of every ancestor at every
// attention) trades the copy for a gather of the same size inside every layer and every step, so
// it is not cheaper on CPU. Cross-attention keys/values are stored once per source [B, H, S, dh]
// (not per beam) and never move: beams of one image share them.
#include "decoding.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace radkit {
namespace nn {

namespace {
constexpr double kNegInf = -std::numeric_limits<double>::infinity();

at::Tensor longCpu(const std::vector<int64_t>& v) {
  return at::from_blob(const_cast<int64_t*>(v.data()), {static_cast<int64_t>(v.size())}, at::kLong).clone();
}

std::vector<LayerCache> allocateSelfCaches(DecoderStackImpl& dec, std::vector<LayerCache> caches, int64_t rows, int64_t capacity,
                                           const at::TensorOptions& opts) {
  caches.resize(dec.layers.size());
  const int64_t h = dec.config.numHeads, dh = dec.config.dModel / dec.config.numHeads;
  for (auto& c : caches) {
    c.selfK = at::empty({rows, h, capacity, dh}, opts);
    c.selfV = at::empty({rows, h, capacity, dh}, opts);
  }
  return caches;
}
}  // namespace

void reorderRows(at::Tensor& buffer, const at::Tensor& parents, int64_t filled, int64_t dim) {
  if (filled == 0) return;
  const int64_t* p = parents.data_ptr<int64_t>();
  std::vector<int64_t> dst, src;
  for (int64_t i = 0; i < parents.numel(); ++i)
    if (p[i] != i) dst.push_back(i), src.push_back(p[i]);
  if (dst.empty()) return;
  at::Tensor prefix = buffer.narrow(dim, 0, filled);
  at::Tensor d = longCpu(dst).to(buffer.device()), s = longCpu(src).to(buffer.device());
  at::Tensor moved = prefix.index_select(0, s);  // a copy: sources are read before any row is overwritten
  prefix.index_copy_(0, d, moved);
}

// ---- EncoderDecoderStepper
EncoderDecoderStepper::EncoderDecoderStepper(EncoderDecoder model, const at::Tensor& source, const at::Tensor& sourceMask, CacheMode mode)
    : model_(std::move(model)), mode_(mode) {
  memory_ = model_->encode(source, sourceMask);
  crossMask_ = sourceMask.view({sourceMask.size(0), 1, 1, sourceMask.size(1)});
}

void EncoderDecoderStepper::initCache(int64_t rows, int64_t maxSteps) {
  TORCH_CHECK(rows % batchSize() == 0, "initCache: ", rows, " rows is not a multiple of the batch ", batchSize());
  rows_ = rows;
  pos_ = 0;
  auto& dec = *model_->decoder;
  caches_.clear();
  history_ = at::Tensor();
  if (mode_ != CacheMode::None) caches_ = dec.projectMemory(memory_);
  if (mode_ == CacheMode::Full) {
    caches_ = allocateSelfCaches(dec, std::move(caches_), rows, maxSteps, memory_.options());
  } else {
    history_ = at::empty({rows, maxSteps}, at::TensorOptions().dtype(at::kLong).device(memory_.device()));
  }
}

at::Tensor EncoderDecoderStepper::startTokens() { return at::full({rows_}, model_->config.bosId, at::kLong); }

at::Tensor EncoderDecoderStepper::step(const at::Tensor& tokens) {
  auto& dec = *model_->decoder;
  at::Tensor t = tokens.to(memory_.device()).view({rows_, 1});
  at::Tensor w, logits;
  if (mode_ == CacheMode::Full) {
    logits = dec.step(t, {}, caches_, pos_, {}, crossMask_, record_ ? &w : nullptr);
  } else {
    TORCH_CHECK(pos_ < history_.size(1), "step: the cache holds ", history_.size(1), " steps");
    history_.narrow(1, pos_, 1).copy_(t);
    at::Tensor prefix = history_.narrow(1, 0, pos_ + 1);
    std::vector<LayerCache> cross = mode_ == CacheMode::None ? dec.projectMemory(memory_) : caches_;
    logits = dec.forward(prefix, {}, causalMask(pos_ + 1, prefix.device()), cross, crossMask_, true, record_ ? &w : nullptr);
    if (record_) w = w.narrow(2, pos_, 1);
  }
  if (record_) attention_ = w.squeeze(2).mean(1);  // [rows, S]
  ++pos_;
  return logits;
}

void EncoderDecoderStepper::reorderCache(const at::Tensor& parents) {
  if (mode_ == CacheMode::Full) {
    for (auto& c : caches_) {
      reorderRows(c.selfK, parents, pos_, 2);
      reorderRows(c.selfV, parents, pos_, 2);
    }
  } else {
    reorderRows(history_, parents, pos_, 1);
  }
}

int64_t EncoderDecoderStepper::cacheBytes() const {
  int64_t n = 0;
  for (auto& c : caches_)
    for (const at::Tensor* t : {&c.selfK, &c.selfV, &c.crossK, &c.crossV})
      if (t->defined()) n += t->numel() * t->element_size();
  return n;
}

// ---- DecoderOnlyStepper
DecoderOnlyStepper::DecoderOnlyStepper(DecoderOnly model, const at::Tensor& prompt, const at::Tensor& promptMask, CacheMode mode)
    : model_(std::move(model)), mode_(mode), prompt_(prompt), promptMask_(promptMask) {
  padded_ = !promptMask.all().item<bool>();
}

void DecoderOnlyStepper::initCache(int64_t rows, int64_t maxSteps) {
  const int64_t b = batchSize(), p = prompt_.size(1);
  TORCH_CHECK(rows % b == 0, "initCache: ", rows, " rows is not a multiple of the batch ", b);
  rows_ = rows;
  const int64_t beams = rows / b, capacity = p + maxSteps;
  auto dev = prompt_.device();
  rowsPrompt_ = prompt_.repeat_interleave(beams, 0);
  at::Tensor rowsMask = promptMask_.repeat_interleave(beams, 0);
  keyMask_ = at::ones({rows, capacity}, at::TensorOptions().dtype(at::kBool).device(dev));
  keyMask_.narrow(1, 0, p).copy_(rowsMask);
  validCount_ = rowsMask.to(at::kLong).sum(1, true);  // [rows, 1]
  caches_.clear();
  history_ = at::Tensor();
  auto& dec = *model_->decoder;
  at::TensorOptions opts = dec.out->weight.options();
  if (mode_ == CacheMode::Full) {
    caches_ = allocateSelfCaches(dec, {}, rows, capacity, opts);
    if (p > 1) {  // prefill every prompt token but the last one
      const int64_t n = p - 1;
      at::Tensor eye = at::eye(n, at::TensorOptions().dtype(at::kBool).device(dev)).view({1, 1, n, n});
      at::Tensor mask = causalMask(n, dev).logical_and(keyMask_.narrow(1, 0, n).view({rows, 1, 1, n})).logical_or(eye);
      at::Tensor positions = positionsFromMask(rowsMask).narrow(1, 0, n);
      dec.step(rowsPrompt_.narrow(1, 0, n), positions, caches_, 0, mask, {});
    }
  } else {
    history_ = at::empty({rows, capacity}, at::TensorOptions().dtype(at::kLong).device(dev));
    history_.narrow(1, 0, p).copy_(rowsPrompt_);
  }
  pos_ = p - 1;
}

at::Tensor DecoderOnlyStepper::startTokens() { return rowsPrompt_.select(1, prompt_.size(1) - 1).to(at::kCPU); }

at::Tensor DecoderOnlyStepper::step(const at::Tensor& tokens) {
  auto& dec = *model_->decoder;
  const int64_t p = prompt_.size(1);
  at::Tensor t = tokens.to(prompt_.device()).view({rows_, 1});
  if (mode_ == CacheMode::Full) {
    at::Tensor positions = validCount_ + (pos_ - p);  // the last prompt token sits at validCount - 1
    at::Tensor mask = padded_ ? keyMask_.narrow(1, 0, pos_ + 1).view({rows_, 1, 1, pos_ + 1}) : at::Tensor();
    at::Tensor logits = dec.step(t, positions, caches_, pos_, mask, {});
    ++pos_;
    return logits;
  }
  TORCH_CHECK(pos_ < history_.size(1), "step: the cache holds ", history_.size(1), " positions");
  history_.narrow(1, pos_, 1).copy_(t);
  const int64_t n = pos_ + 1;
  at::Tensor valid = keyMask_.narrow(1, 0, n);
  at::Tensor eye = at::eye(n, at::TensorOptions().dtype(at::kBool).device(t.device())).view({1, 1, n, n});
  at::Tensor mask = causalMask(n, t.device()).logical_and(valid.view({rows_, 1, 1, n})).logical_or(eye);
  at::Tensor logits = dec.forward(history_.narrow(1, 0, n), positionsFromMask(valid), mask, {}, {}, true);
  ++pos_;
  return logits;
}

void DecoderOnlyStepper::reorderCache(const at::Tensor& parents) {
  // Rows of one prompt share its mask and positions; only the generated part differs.
  if (mode_ == CacheMode::Full) {
    for (auto& c : caches_) {
      reorderRows(c.selfK, parents, pos_, 2);
      reorderRows(c.selfV, parents, pos_, 2);
    }
  } else {
    reorderRows(history_, parents, pos_, 1);
  }
}

// ---- CausalLMStepper
CausalLMStepper::CausalLMStepper(CausalLM model, const at::Tensor& prompt, const at::Tensor& promptMask, const at::Tensor& prefix, CacheMode mode)
    : model_(std::move(model)), mode_(mode), prompt_(prompt), prefix_(prefix) {
  const int64_t b = prompt.size(0), p = prefix.defined() ? prefix.size(1) : 0;
  auto bopts = at::TensorOptions().dtype(at::kBool).device(prompt.device());
  at::Tensor mask = promptMask.defined() ? promptMask.to(at::kBool) : at::ones(prompt.sizes(), bopts);
  valid_ = p > 0 ? at::cat({at::ones({b, p}, bopts), mask}, 1) : mask;
  padded_ = !mask.all().item<bool>();
  len_ = p + prompt.size(1);
}

void CausalLMStepper::initCache(int64_t rows, int64_t maxSteps) {
  const int64_t b = batchSize();
  TORCH_CHECK(rows % b == 0, "initCache: ", rows, " rows is not a multiple of the batch ", b);
  rows_ = rows;
  step_ = 0;
  const int64_t beams = rows / b, capacity = len_ + maxSteps;
  auto dev = prompt_.device();
  rowsValid_ = at::ones({rows, capacity}, at::TensorOptions().dtype(at::kBool).device(dev));
  rowsValid_.narrow(1, 0, len_).copy_(valid_.repeat_interleave(beams, 0));
  lastPosition_ = valid_.to(at::kLong).sum(1, true).sub_(1).repeat_interleave(beams, 0);  // [rows, 1]
  // Everything before the last prompt token, once per source.
  at::Tensor before = model_->embed(prompt_.narrow(1, 0, prompt_.size(1) - 1));
  if (prefix_.defined()) before = at::cat({prefix_.to(before.scalar_type()), before}, 1);
  caches_.clear();
  history_ = baseEmbeds_ = at::Tensor();
  if (mode_ == CacheMode::Full) {
    caches_ = model_->allocateCaches(b, capacity);
    const int64_t n = len_ - 1;
    if (n > 0) {
      at::Tensor v = valid_.narrow(1, 0, n);
      model_->hidden(before, positionsFromMask(v), padded_ ? v : at::Tensor(), &caches_, 0);
    }
    if (beams > 1)
      for (auto& c : caches_) {
        c.k = c.k.repeat_interleave(beams, 0);
        c.v = c.v.repeat_interleave(beams, 0);
      }
  } else {
    baseEmbeds_ = before.repeat_interleave(beams, 0);
    history_ = at::empty({rows, maxSteps}, at::TensorOptions().dtype(at::kLong).device(dev));
  }
}

at::Tensor CausalLMStepper::startTokens() {
  return prompt_.select(1, prompt_.size(1) - 1).repeat_interleave(rows_ / batchSize(), 0).to(at::kCPU);
}

at::Tensor CausalLMStepper::step(const at::Tensor& tokens) {
  at::Tensor t = tokens.to(prompt_.device()).view({rows_, 1});
  const int64_t slot = len_ - 1 + step_;
  at::Tensor logits;
  if (mode_ == CacheMode::Full) {
    TORCH_CHECK(slot < caches_[0].k.size(2), "step: the cache holds ", caches_[0].k.size(2), " positions");
    at::Tensor keyValid = padded_ ? rowsValid_.narrow(1, 0, slot + 1) : at::Tensor();
    at::Tensor h = model_->hidden(model_->embed(t), lastPosition_ + step_, keyValid, &caches_, slot);
    logits = model_->project(h.select(1, 0));
  } else {
    TORCH_CHECK(step_ < history_.size(1), "step: the history holds ", history_.size(1), " steps");
    history_.narrow(1, step_, 1).copy_(t);
    at::Tensor x = at::cat({baseEmbeds_, model_->embed(history_.narrow(1, 0, step_ + 1))}, 1);
    at::Tensor v = rowsValid_.narrow(1, 0, slot + 1);
    at::Tensor h = model_->hidden(x, positionsFromMask(v), padded_ ? v : at::Tensor(), nullptr, 0);
    logits = model_->project(h.select(1, slot));
  }
  ++step_;
  return logits;
}

void CausalLMStepper::reorderCache(const at::Tensor& parents) {
  if (mode_ == CacheMode::Full) {
    for (auto& c : caches_) {
      reorderRows(c.k, parents, len_ - 1 + step_, 2);
      reorderRows(c.v, parents, len_ - 1 + step_, 2);
    }
  } else {
    reorderRows(history_, parents, step_, 1);
  }
}

int64_t CausalLMStepper::cacheBytes() const {
  int64_t n = 0;
  for (auto& c : caches_) n += (c.k.numel() + c.v.numel()) * c.k.element_size();
  return n;
}

bool SearchOptions::stops(int64_t token) const {
  return token == eosId || std::find(stopIds.begin(), stopIds.end(), token) != stopIds.end();
}

// ---- search
namespace {

struct Hypothesis {
  double score;
  std::vector<int64_t> tokens;
  at::Tensor attention;  // [len, S]
};

// logits [rows, V] -> processed log-probabilities (double, CPU).
at::Tensor processLogits(const at::Tensor& rawLogits, const std::vector<std::vector<int64_t>>& hist, int64_t t, const SearchOptions& o,
                         bool sampling) {
  at::Tensor l = rawLogits.to(at::kCPU, at::kDouble).contiguous();
  const int64_t rows = l.size(0), v = l.size(1);
  if (o.repetitionPenalty != 1.0) {
    auto a = l.accessor<double, 2>();
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<int64_t> seen(hist[r]);
      std::sort(seen.begin(), seen.end());
      seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
      for (int64_t tok : seen) {
        double& x = a[r][tok];
        x = x > 0 ? x / o.repetitionPenalty : x * o.repetitionPenalty;
      }
    }
  }
  if (!o.allowedRanges.empty()) {
    at::Tensor banned = at::ones({v}, at::kBool);
    for (auto& [lo, hi] : o.allowedRanges) banned.narrow(0, std::min(lo, v), std::max<int64_t>(0, std::min(hi, v) - std::min(lo, v))).fill_(false);
    if (o.eosId >= 0 && o.eosId < v) banned[o.eosId] = false;
    for (int64_t s : o.stopIds)
      if (s >= 0 && s < v) banned[s] = false;
    l.masked_fill_(banned.view({1, v}), kNegInf);
  }
  if (sampling && o.temperature != 1.0) l.div_(o.temperature);
  at::Tensor lp = at::log_softmax(l, 1).contiguous();
  auto a = lp.accessor<double, 2>();
  if (t < o.minLength) {
    for (int64_t r = 0; r < rows; ++r) {
      if (o.eosId >= 0 && o.eosId < v) a[r][o.eosId] = kNegInf;
      for (int64_t s : o.stopIds)
        if (s >= 0 && s < v) a[r][s] = kNegInf;
    }
  }
  const int64_t n = o.noRepeatNgram;
  if (n > 0) {
    for (int64_t r = 0; r < rows; ++r) {
      const auto& h = hist[r];
      const int64_t len = static_cast<int64_t>(h.size());
      if (len < n - 1) continue;
      if (n == 1) {
        for (int64_t tok : h) a[r][tok] = kNegInf;
        continue;
      }
      // every earlier occurrence of the last n-1 tokens bans the token that followed it
      for (int64_t i = 0; i + n - 1 <= len - 1; ++i) {
        bool match = true;
        for (int64_t j = 0; j < n - 1 && match; ++j) match = h[i + j] == h[len - (n - 1) + j];
        if (match) a[r][h[i + n - 1]] = kNegInf;
      }
    }
  }
  return lp;
}

at::Generator makeGenerator(const SearchOptions& o) {
  return o.hasSeed ? at::detail::createCPUGenerator(o.seed) : at::detail::getDefaultCPUGenerator();
}

SearchResult greedyOrSample(StepModel& model, const SearchOptions& o, const StepCallback& onStep) {
  const bool sampling = o.method == "sample";
  const int64_t b = model.batchSize();
  model.recordSourceAttention(o.returnAttention);
  model.initCache(b, o.maxLength);
  at::Tensor tokens = model.startTokens();
  std::vector<std::vector<int64_t>> hist(b);
  std::vector<double> score(b, 0.0);
  std::vector<uint8_t> done(b, 0);
  at::Tensor att;
  if (o.returnAttention) att = at::zeros({b, o.maxLength, model.sourceLength()}, at::kFloat);
  at::Generator gen = sampling ? makeGenerator(o) : at::Generator();
  SearchResult res;
  for (int64_t t = 0; t < o.maxLength; ++t) {
    at::Tensor logits = model.step(tokens);
    res.steps++;
    if (o.returnAttention) att.select(1, t).copy_(model.sourceAttention().to(at::kCPU, at::kFloat));
    at::Tensor lp = processLogits(logits, hist, t, o, sampling);
    std::vector<int64_t> chosen(b);
    if (sampling) {
      at::Tensor f = lp.clone();
      const int64_t v = f.size(1);
      if (o.topK > 0 && o.topK < v) {
        at::Tensor kth = std::get<0>(f.topk(o.topK, 1, true, true)).narrow(1, o.topK - 1, 1);
        f.masked_fill_(f < kth, kNegInf);
      }
      if (o.topP < 1.0) {
        auto sorted = f.sort(1, true);
        at::Tensor vals = std::get<0>(sorted), idx = std::get<1>(sorted);
        at::Tensor probs = at::softmax(vals, 1);
        at::Tensor before = probs.cumsum(1) - probs;  // mass of the strictly more likely tokens
        vals.masked_fill_(before >= o.topP, kNegInf);
        f = at::empty_like(f).scatter_(1, idx, vals);
      }
      at::Tensor probs = at::softmax(f, 1);
      // rows with nothing allowed (finished rows, or everything banned) get a harmless distribution
      at::Tensor bad = probs.isnan().any(1, true);
      probs = at::where(bad, at::ones_like(probs), probs);
      at::Tensor draw = at::multinomial(probs, 1, false, gen).view({b});
      for (int64_t r = 0; r < b; ++r) chosen[r] = draw[r].item<int64_t>();
    } else {
      at::Tensor am = lp.argmax(1);
      for (int64_t r = 0; r < b; ++r) chosen[r] = am[r].item<int64_t>();
    }
    auto a = lp.accessor<double, 2>();
    StepEvent ev;
    ev.step = t;
    std::vector<int64_t> next(b, o.padId);
    for (int64_t r = 0; r < b; ++r) {
      if (done[r]) {
        ev.tokens.push_back(-1);
        continue;
      }
      int64_t tok = chosen[r];
      if (a[r][tok] == kNegInf) tok = o.eosId;  // nothing allowed: end the sequence
      score[r] += a[r][tok];
      hist[r].push_back(tok);
      next[r] = tok;
      ev.tokens.push_back(tok);
      if (o.stops(tok)) done[r] = 1;
    }
    ev.finished = done;
    tokens = longCpu(next);
    bool all = std::all_of(done.begin(), done.end(), [](uint8_t d) { return d != 0; });
    bool go = onStep ? onStep(ev) : true;
    if (all || !go) break;
  }
  res.tokens = hist;
  res.scores = score;
  res.finished = done;
  if (o.returnAttention) {
    int64_t longest = 0;
    for (auto& h : hist) longest = std::max<int64_t>(longest, h.size());
    res.attention = att.narrow(1, 0, longest).clone();
    for (int64_t r = 0; r < b; ++r) res.attention[r].narrow(0, hist[r].size(), longest - hist[r].size()).zero_();
  }
  return res;
}

SearchResult beamSearch(StepModel& model, const SearchOptions& o, const StepCallback& onStep) {
  const int64_t b = model.batchSize(), k = o.beams, n = b * k;
  model.recordSourceAttention(o.returnAttention);
  model.initCache(n, o.maxLength);
  const int64_t v = model.vocabSize();
  at::Tensor tokens = model.startTokens();
  std::vector<double> beamScore(n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    if (i % k) beamScore[i] = kNegInf;  // the first step expands beam 0 only
  std::vector<std::vector<int64_t>> hist(n);
  at::Tensor att;
  const int64_t s = model.sourceLength();
  if (o.returnAttention) att = at::zeros({n, o.maxLength, s}, at::kFloat);
  std::vector<std::vector<Hypothesis>> finished(b);
  std::vector<uint8_t> done(b, 0);
  auto lengthNorm = [&](double x, int64_t len) { return o.lengthPenalty == 0 ? x : x / std::pow(static_cast<double>(len), o.lengthPenalty); };
  auto addFinished = [&](int64_t img, double sc, std::vector<int64_t> toks, int64_t row, int64_t len) {
    Hypothesis h{sc, std::move(toks), o.returnAttention ? att[row].narrow(0, 0, len).clone() : at::Tensor()};
    auto& f = finished[img];
    auto it = std::upper_bound(f.begin(), f.end(), h.score, [](double x, const Hypothesis& y) { return x > y.score; });
    f.insert(it, std::move(h));
    if (static_cast<int64_t>(f.size()) > k) f.pop_back();
  };
  SearchResult res;
  for (int64_t t = 0; t < o.maxLength; ++t) {
    at::Tensor logits = model.step(tokens);
    res.steps++;
    if (o.returnAttention) att.select(1, t).copy_(model.sourceAttention().to(at::kCPU, at::kFloat));
    at::Tensor lp = processLogits(logits, hist, t, o, false);
    at::Tensor cand = (lp + at::from_blob(beamScore.data(), {n, 1}, at::kDouble)).view({b, k * v});
    const int64_t take = std::min<int64_t>(2 * k, k * v);
    auto top = cand.topk(take, 1, true, true);
    auto vals = std::get<0>(top).accessor<double, 2>();
    auto idxs = std::get<1>(top).accessor<int64_t, 2>();
    std::vector<int64_t> parents(n), nextTok(n, o.padId);
    std::vector<double> nextScore(n, kNegInf);
    const bool last = t == o.maxLength - 1;
    for (int64_t img = 0; img < b; ++img) {
      int64_t filled = 0;
      if (!done[img]) {
        for (int64_t j = 0; j < take && filled < k; ++j) {
          const double sc = vals[img][j];
          if (sc == kNegInf) break;
          const int64_t idx = idxs[img][j], beam = idx / v, tok = idx % v, row = img * k + beam;
          if (o.stops(tok)) {
            if (j < k) {
              std::vector<int64_t> toks(hist[row]);
              toks.push_back(tok);
              addFinished(img, lengthNorm(sc, t + 1), std::move(toks), row, t + 1);
            }
            continue;
          }
          const int64_t slot = img * k + filled++;
          parents[slot] = row;
          nextTok[slot] = tok;
          nextScore[slot] = sc;
        }
      }
      for (int64_t slot = img * k + filled; slot < (img + 1) * k; ++slot) parents[slot] = slot;  // dead (or finished source)
      if (done[img]) continue;
      if (last) {
        for (int64_t slot = img * k; slot < img * k + filled; ++slot) {
          std::vector<int64_t> toks(hist[parents[slot]]);
          toks.push_back(nextTok[slot]);
          addFinished(img, lengthNorm(nextScore[slot], t + 1), std::move(toks), parents[slot], t + 1);
        }
        done[img] = 1;
      } else if (filled == 0) {
        done[img] = 1;
      } else if (static_cast<int64_t>(finished[img].size()) == k) {
        if (o.earlyStopping) {
          done[img] = 1;
        } else {
          // the best any running hypothesis can still reach: its log-prob only falls; the length
          // penalty favours the longest (lengthPenalty > 0) or the shortest (< 0) possible ending
          const double best = nextScore[img * k];
          const double bound = o.lengthPenalty > 0 ? lengthNorm(best, o.maxLength) : lengthNorm(best, t + 2);
          if (bound <= finished[img].back().score) done[img] = 1;
        }
      }
    }
    // move hypotheses to their new rows
    std::vector<std::vector<int64_t>> newHist(n);
    for (int64_t i = 0; i < n; ++i) {
      if (nextScore[i] == kNegInf) continue;
      newHist[i] = hist[parents[i]];
      newHist[i].push_back(nextTok[i]);
    }
    hist.swap(newHist);
    at::Tensor parentsT = longCpu(parents);
    if (o.returnAttention) reorderRows(att, parentsT, t + 1, 1);
    beamScore = nextScore;
    StepEvent ev;
    ev.step = t;
    for (int64_t img = 0; img < b; ++img) ev.tokens.push_back(done[img] ? -1 : nextTok[img * k]);
    ev.finished = done;
    bool all = std::all_of(done.begin(), done.end(), [](uint8_t d) { return d != 0; });
    bool go = onStep ? onStep(ev) : true;
    if (!go && !all) {  // stopped by the caller: keep the running hypotheses as they are
      for (int64_t img = 0; img < b; ++img) {
        if (done[img]) continue;
        for (int64_t slot = img * k; slot < (img + 1) * k; ++slot)
          if (beamScore[slot] != kNegInf) addFinished(img, lengthNorm(beamScore[slot], t + 1), hist[slot], slot, t + 1);
      }
    }
    if (all || !go) break;
    model.reorderCache(parentsT);
    tokens = longCpu(nextTok);
  }
  res.tokens.resize(b);
  res.scores.assign(b, kNegInf);
  res.finished.assign(b, 0);
  int64_t longest = 0;
  for (int64_t img = 0; img < b; ++img) {
    if (finished[img].empty()) continue;
    const Hypothesis& h = finished[img].front();
    res.tokens[img] = h.tokens;
    res.scores[img] = h.score;
    res.finished[img] = !h.tokens.empty() && o.stops(h.tokens.back());
    longest = std::max<int64_t>(longest, h.tokens.size());
  }
  if (o.returnAttention) {
    res.attention = at::zeros({b, longest, s}, at::kFloat);
    for (int64_t img = 0; img < b; ++img)
      if (!finished[img].empty()) res.attention[img].narrow(0, 0, finished[img].front().attention.size(0)).copy_(finished[img].front().attention);
  }
  return res;
}

}  // namespace

SearchResult search(StepModel& model, const SearchOptions& o, const StepCallback& onStep) {
  TORCH_CHECK(o.maxLength >= 1, "maxLength must be >= 1");
  if (o.method == "beam") return beamSearch(model, o, onStep);
  TORCH_CHECK(o.method == "greedy" || o.method == "sample", "method must be greedy, beam or sample, got ", o.method);
  return greedyOrSample(model, o, onStep);
}

}  // namespace nn
}  // namespace radkit
