#include "generate_options.h"

#include <algorithm>

#include "errors.h"
#include "tensor.h"

namespace radkit {

namespace {
constexpr int64_t kMaxSafe = 9007199254740991LL;  // Number.MAX_SAFE_INTEGER
constexpr const char* kSearchKeys[] = {"method", "beams", "maxLength", "minLength", "lengthPenalty", "earlyStopping", "noRepeatNgram",
                                       "repetitionPenalty", "temperature", "topK", "topP", "seed", "returnAttention", "eosId"};
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
  s.maxLength = optInt(o, "maxLength", "options.maxLength", std::min<int64_t>(60, limits.maxLength), 1, limits.maxLength);
  s.minLength = optInt(o, "minLength", "options.minLength", 0, 0, s.maxLength);
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
  return s;
}

}  // namespace radkit
