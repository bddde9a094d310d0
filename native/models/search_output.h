// A search's token lists as a system's Generated: each row cut at its first EOS (which is dropped),
// with the search scores. Shared by the encoder-decoder report generators.
#pragma once
#include <utility>
#include <vector>

#include "../nn/decoding.h"
#include "system.h"

namespace radkit {

inline Generated generatedUntilEos(const nn::SearchResult& result, int64_t eosId) {
  Generated g;
  for (auto& t : result.tokens) {
    std::vector<int64_t> row;
    for (int64_t id : t) {
      if (id == eosId) break;
      row.push_back(id);
    }
    g.tokens.push_back(std::move(row));
  }
  g.scores = result.scores;
  return g;
}

}  // namespace radkit
