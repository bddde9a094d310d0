// The one reader of generation options from JS (Model.generate and nn.generate both use it): every
// search field, its default and its range are defined here and in nn::SearchOptions, nowhere else.
#pragma once
#include <napi.h>

#include <initializer_list>
#include <string>

#include "../nn/decoding.h"

namespace radkit {

// Optional fields of a JS options object: undefined or null -> fallback; otherwise checked.
bool has(const Napi::Object& o, const char* key);
int64_t optInt(const Napi::Object& o, const char* key, const char* name, int64_t fallback, int64_t min, int64_t max);
double optNumber(const Napi::Object& o, const char* key, const char* name, double fallback);
std::string optString(const Napi::Object& o, const char* key, const char* name, const std::string& fallback,
                      std::initializer_list<const char*> allowed);

// What the caller's model allows.
struct SearchLimits {
  int64_t maxLength;        // most tokens one search may generate (position table room)
  int64_t vocabSize;        // topK and eosId are checked against it
  int64_t eosId;            // the model's end token, unless options.eosId overrides it
  int64_t padId;
  bool sourceAttention;     // whether options.returnAttention is possible
};

// Reads method, beams, maxLength, minLength, lengthPenalty, earlyStopping, noRepeatNgram,
// repetitionPenalty, temperature, topK, topP, seed, returnAttention and eosId (all optional).
nn::SearchOptions parseSearchOptions(const Napi::Object& o, const SearchLimits& limits);

// The keys parseSearchOptions reads (callers reject others).
bool isSearchOption(const std::string& key);

// { tokens: number[][], scores, finished, steps, attention? } of a search.
Napi::Object searchResultToJs(Napi::Env env, const nn::SearchResult& r);

}  // namespace radkit
