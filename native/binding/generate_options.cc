#include "generate_options.h"

#include <algorithm>

#include "errors.h"
#include "tensor.h"

namespace radkit {

namespace {
constexpr int64_t kMaxSafe = 9007199254740991LL;  // Number.MAX_SAFE_INTEGER
constexpr const char* kSearchKeys[] = {"method", "beams", "maxLength", "minLength", "lengthPenalty", "earlyStopping", "noRepeatNgram",
                                       "repetitionPenalty", "temperature", "topK", "topP", "seed", "returnAttention", "eosId",
                                       "maxNewTokens", "minNewTokens", "stopIds", "allowedTokens"};

// `a` or its synonym `b` (maxLength / maxNewTokens): both may be given only with the same value.
const char* synonym(const Napi::Object& o, const char* a, const char* b) {
  if (has(o, a) && has(o, b) && !o.Get(a).StrictEquals(o.Get(b)))
    argError("ERR_INVALID_ARG", "options.", a, " and options.", b, " name the same limit; give one (got ", describeJs(o.Get(a)), " and ", describeJs(o.Get(b)), ")");
  return has(o, b) ? b : a;
}
}  // namespace

bool has(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return !v.IsUndefined() && !v.IsNull();
}

int64_t optInt(const Napi::Object& o, const char* key, const char* name, int64_t fallback, int64_t min, int64_t max) {
  return has(o, key) ? intArg(o.Get(key), "", name, min, max) : fallback;
}

double optNumber(const Napi::Object& o, const char* key, const char* name, double fallback) {
  return has(o, key) ? numberArg(o.Get(key), "", name) : fallback;
}

std::string optString(const Napi::Object& o, const char* key, const char* name, const std::string& fallback,
                      std::initializer_list<const char*> allowed) {
  if (!has(o, key)) return fallback;
  Napi::Value v = o.Get(key);
  std::string choices;
  for (const char* a : allowed) choices += std::string(choices.empty() ? "" : ", ") + "'" + a + "'";
  if (!v.IsString()) argError("ERR_INVALID_ARG", name, " must be one of ", choices, ", got ", describeJs(v));
  std::string s = v.As<Napi::String>().Utf8Value();
  for (const char* a : allowed)
    if (s == a) return s;
  argError("ERR_INVALID_ARG", name, " must be one of ", choices, ", got '", s, "'");
}

bool isSearchOption(const std::string& key) {
  return std::find(std::begin(kSearchKeys), std::end(kSearchKeys), key) != std::end(kSearchKeys);
}

nn::SearchOptions parseSearchOptions(const Napi::Object& o, const SearchLimits& limits) {
  nn::SearchOptions s;
  if (limits.maxLength < 1) argError("ERR_SHAPE", "the model leaves no room to generate (at most ", limits.maxLength, " new tokens)");
  s.beams = optInt(o, "beams", "options.beams", 1, 1, 4096);
  s.method = optString(o, "method", "options.method", s.beams > 1 ? "beam" : "greedy", {"greedy", "beam", "sample"});
  if (s.method != "beam" && s.beams > 1) argError("ERR_INVALID_ARG", "options.beams > 1 needs method 'beam', got method '", s.method, "'");
  const char* maxKey = synonym(o, "maxLength", "maxNewTokens");
  const char* minKey = synonym(o, "minLength", "minNewTokens");
  s.maxLength = optInt(o, maxKey, (std::string("options.") + maxKey).c_str(), std::min<int64_t>(60, limits.maxLength), 1, limits.maxLength);
  s.minLength = optInt(o, minKey, (std::string("options.") + minKey).c_str(), 0, 0, s.maxLength);
  s.lengthPenalty = optNumber(o, "lengthPenalty", "options.lengthPenalty", 1.0);
  s.earlyStopping = has(o, "earlyStopping") && boolArg(o.Get("earlyStopping"), "", "options.earlyStopping", false);
  s.noRepeatNgram = optInt(o, "noRepeatNgram", "options.noRepeatNgram", 0, 0, 1000);
  s.repetitionPenalty = optNumber(o, "repetitionPenalty", "options.repetitionPenalty", 1.0);
  if (s.repetitionPenalty <= 0) argError("ERR_INVALID_ARG", "options.repetitionPenalty must be > 0, got ", s.repetitionPenalty);
  s.temperature = optNumber(o, "temperature", "options.temperature", 1.0);
  if (s.temperature <= 0) argError("ERR_INVALID_ARG", "options.temperature must be > 0, got ", s.temperature);
  s.topK = optInt(o, "topK", "options.topK", 0, 0, limits.vocabSize);
  s.topP = optNumber(o, "topP", "options.topP", 1.0);
  if (s.topP <= 0 || s.topP > 1) argError("ERR_INVALID_ARG", "options.topP must be in (0, 1], got ", s.topP);
  if (has(o, "seed")) {
    s.hasSeed = true;
    s.seed = static_cast<uint64_t>(intArg(o.Get("seed"), "", "options.seed", 0, kMaxSafe));
  }
  s.returnAttention = has(o, "returnAttention") && boolArg(o.Get("returnAttention"), "", "options.returnAttention", false);
  if (s.returnAttention && !limits.sourceAttention)
    argError("ERR_INVALID_ARG", "options.returnAttention needs an encoder-decoder model (this one has no source attention)");
  s.eosId = optInt(o, "eosId", "options.eosId", limits.eosId, 0, limits.vocabSize - 1);
  s.padId = limits.padId;
  if (has(o, "stopIds")) {
    Napi::Value v = o.Get("stopIds");
    if (!v.IsArray()) argError("ERR_INVALID_ARG", "options.stopIds must be an array of token ids, got ", describeJs(v));
    Napi::Array a = v.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i)
      s.stopIds.push_back(intArg(a.Get(i), "", ("options.stopIds[" + std::to_string(i) + "]").c_str(), 0, limits.vocabSize - 1));
  }
  if (has(o, "allowedTokens")) {
    Napi::Value v = o.Get("allowedTokens");
    if (!v.IsArray()) argError("ERR_INVALID_ARG", "options.allowedTokens must be an array of [begin, end) id ranges, got ", describeJs(v));
    Napi::Array a = v.As<Napi::Array>();
    if (a.Length() == 0) argError("ERR_INVALID_ARG", "options.allowedTokens must hold at least one [begin, end) range");
    for (uint32_t i = 0; i < a.Length(); ++i) {
      const std::string name = "options.allowedTokens[" + std::to_string(i) + "]";
      Napi::Value r = a.Get(i);
      if (!r.IsArray() || r.As<Napi::Array>().Length() != 2) argError("ERR_INVALID_ARG", name, " must be a [begin, end) pair, got ", describeJs(r));
      const int64_t lo = intArg(r.As<Napi::Array>().Get(0u), "", (name + "[0]").c_str(), 0, limits.vocabSize - 1);
      const int64_t hi = intArg(r.As<Napi::Array>().Get(1u), "", (name + "[1]").c_str(), lo + 1, limits.vocabSize);
      s.allowedRanges.emplace_back(lo, hi);
    }
  }
  return s;
}

Napi::Object searchResultToJs(Napi::Env env, const nn::SearchResult& r) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Array tokens = Napi::Array::New(env, r.tokens.size());
  Napi::Array scores = Napi::Array::New(env, r.scores.size());
  Napi::Array finished = Napi::Array::New(env, r.finished.size());
  for (size_t b = 0; b < r.tokens.size(); ++b) {
    Napi::Array row = Napi::Array::New(env, r.tokens[b].size());
    for (size_t t = 0; t < r.tokens[b].size(); ++t) row.Set(static_cast<uint32_t>(t), static_cast<double>(r.tokens[b][t]));
    tokens.Set(static_cast<uint32_t>(b), row);
    scores.Set(static_cast<uint32_t>(b), r.scores[b]);
    finished.Set(static_cast<uint32_t>(b), r.finished[b] != 0);
  }
  o.Set("tokens", tokens);
  o.Set("scores", scores);
  o.Set("finished", finished);
  o.Set("steps", static_cast<double>(r.steps));
  if (r.attention.defined()) o.Set("attention", NativeTensor::Wrap(env, r.attention));
  return o;
}

}  // namespace radkit
