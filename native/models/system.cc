#include "system.h"

#include "../core/errors.h"

namespace radkit {

std::map<std::string, SystemFactory>& systemRegistry() {
  static std::map<std::string, SystemFactory> registry;
  return registry;
}

const at::Tensor& Batch::extra(const std::string& name, const std::string& system) const {
  auto it = extras.find(name);
  if (it == extras.end() || !it->second.defined()) {
    std::string have;
    for (auto& [k, t] : extras) have += (have.empty() ? "" : ", ") + k;
    argError("ERR_INVALID_ARG", system, " needs batch.extras.", name, " (the batch has: ", have.empty() ? "no extras" : have, ")");
  }
  return it->second;
}

std::map<std::string, at::Tensor> System::encode(const Batch&) {
  argError("ERR_UNSUPPORTED", kind(), " has no embedding space to encode into (encode() serves alignment models such as AdaMatch)");
}

double Config::num(const std::string& key, double fallback) const {
  auto it = numbers.find(key);
  return it == numbers.end() ? fallback : it->second;
}

int64_t Config::integer(const std::string& key, int64_t fallback) const { return static_cast<int64_t>(num(key, static_cast<double>(fallback))); }

bool Config::flag(const std::string& key, bool fallback) const { return num(key, fallback ? 1.0 : 0.0) != 0.0; }

std::string Config::str(const std::string& key, const std::string& fallback) const {
  auto it = strings.find(key);
  return it == strings.end() ? fallback : it->second;
}

std::vector<int64_t> Config::ints(const std::string& key, const std::vector<int64_t>& fallback) const {
  auto it = arrays.find(key);
  if (it == arrays.end()) return fallback;
  std::vector<int64_t> out;
  for (double d : it->second) out.push_back(static_cast<int64_t>(d));
  return out;
}

}  // namespace radkit
