#include "system.h"

#include <unistd.h>

#include <cmath>

#include "../core/checks.h"
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
  markRead(key);
  auto it = numbers.find(key);
  return it == numbers.end() ? fallback : it->second;
}

namespace {
constexpr double kMaxExact = 9007199254740992.0;  // 2^53: every whole double up to here is exact

int64_t wholeNumber(double d, const std::string& key) {
  if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > kMaxExact)
    argError("ERR_INVALID_ARG", "config.", key, " must be a whole number, got ", d);
  return static_cast<int64_t>(d);
}
}  // namespace

int64_t Config::integer(const std::string& key, int64_t fallback) const {
  markRead(key);
  auto it = numbers.find(key);
  return it == numbers.end() ? fallback : wholeNumber(it->second, key);
}

int64_t Config::integerIn(const std::string& key, int64_t fallback, int64_t lo, int64_t hi) const {
  const int64_t v = integer(key, fallback);
  if (v < lo || v > hi) argError("ERR_INVALID_ARG", "config.", key, " must be in [", lo, ", ", hi, "], got ", v);
  return v;
}

bool Config::flag(const std::string& key, bool fallback) const { return num(key, fallback ? 1.0 : 0.0) != 0.0; }

std::string Config::str(const std::string& key, const std::string& fallback) const {
  markRead(key);
  auto it = strings.find(key);
  return it == strings.end() ? fallback : it->second;
}

std::vector<int64_t> Config::ints(const std::string& key, const std::vector<int64_t>& fallback) const {
  markRead(key);
  auto it = arrays.find(key);
  if (it == arrays.end()) return fallback;
  std::vector<int64_t> out;
  for (double d : it->second) out.push_back(wholeNumber(d, key + "[]"));
  return out;
}

std::vector<std::string> Config::unread() const {
  std::vector<std::string> out;
  for (auto& [k, v] : numbers)
    if (!read.count(k)) out.push_back(k);
  for (auto& [k, v] : strings)
    if (!read.count(k)) out.push_back(k);
  for (auto& [k, v] : arrays)
    if (!read.count(k)) out.push_back(k);
  return out;
}

void checkModelSize(const std::string& kind, double parameters) {
  static const double physical = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE));
  const double bytes = parameters * 4.0 * 4.0;  // float32 weights, gradients and two Adam moments
  if (!(bytes <= physical))
    fail(ErrorKind::OutOfMemory, "ERR_OUT_OF_MEMORY", "this ", kind, " configuration has about ", parameters / 1e6, " million parameters: with gradients and optimizer state about ",
         bytes / 1073741824.0, " GiB, more than this machine's ", physical / 1073741824.0, " GiB of memory; choose smaller sizes (nothing was allocated)");
}

void checkTokenIds(const at::Tensor& tokens, int64_t vocab, int64_t maxLength, const std::string& system, const char* field) {
  if (!tokens.defined() || tokens.numel() == 0) return;
  const int64_t lo = tokens.min().item<int64_t>(), hi = tokens.max().item<int64_t>();
  if (lo < 0 || hi >= vocab)
    argError("ERR_INVALID_ARG", field, " holds token id ", lo < 0 ? lo : hi, " but this ", system, " model's vocabulary has ", vocab, " ids (0..", vocab - 1,
             "): encode the reports with the tokenizer the model was built with (its checkpoint's tokenizer)");
  if (maxLength > 0 && tokens.size(1) > maxLength)
    argError("ERR_SHAPE", field, " has ", tokens.size(1), " positions but this ", system, " model takes at most ", maxLength, " (config.maxPositions); truncate the reports (tokenizer maxLength)");
}

}  // namespace radkit
