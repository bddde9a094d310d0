// safetensors reading (mmap) and writing: see safetensors.h.
#include "safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

#include "checks.h"
#include "errors.h"

namespace radkit {

namespace {

// ---- a strict JSON reader (RFC 8259) for headers: objects keep their key order, numbers keep their text.
struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool boolean = false;
  std::string text;  // String: the decoded string; Number: the literal
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;
};

class JsonParser {
 public:
  JsonParser(const char* s, size_t n, const std::string& file) : s_(s), n_(n), file_(file) {}

  Json document() {
    skipSpace();
    Json v = value(0);
    skipSpace();
    if (i_ != n_) bad("unexpected text after the JSON value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;
  const char* s_;
  size_t n_, i_ = 0;
  const std::string& file_;

  [[noreturn]] void bad(const char* what) const {
    argError("ERR_INVALID_ARG", file_, ": malformed safetensors header: ", what, " at byte ", i_, " of the JSON header");
  }
  void skipSpace() {
    while (i_ < n_ && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool eat(char c) {
    if (i_ < n_ && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  void literal(const char* word) {
    size_t len = std::strlen(word);
    if (n_ - i_ < len || std::memcmp(s_ + i_, word, len) != 0) bad("invalid literal");
    i_ += len;
  }

  Json value(int depth) {
    if (depth > kMaxDepth) bad("nesting too deep");
    if (i_ >= n_) bad("unexpected end");
    Json v;
    const char c = s_[i_];
    if (c == '{') {
      v.kind = Json::Object;
      ++i_;
      skipSpace();
      if (eat('}')) return v;
      std::set<std::string> seen;
      for (;;) {
        skipSpace();
        if (i_ >= n_ || s_[i_] != '"') bad("expected a string key");
        std::string key = string();
        if (!seen.insert(key).second) argError("ERR_INVALID_ARG", file_, ": malformed safetensors header: duplicate key '", key, "'");
        skipSpace();
        if (!eat(':')) bad("expected ':'");
        skipSpace();
        Json member = value(depth + 1);
        v.members.emplace_back(std::move(key), std::move(member));
        skipSpace();
        if (eat(',')) continue;
        if (eat('}')) return v;
        bad("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v.kind = Json::Array;
      ++i_;
      skipSpace();
      if (eat(']')) return v;
      for (;;) {
        skipSpace();
        v.items.push_back(value(depth + 1));
        skipSpace();
        if (eat(',')) continue;
        if (eat(']')) return v;
        bad("expected ',' or ']'");
      }
    }
    if (c == '"') {
      v.kind = Json::String;
      v.text = string();
      return v;
    }
    if (c == 't') {
      literal("true");
      v.kind = Json::Bool;
      v.boolean = true;
      return v;
    }
    if (c == 'f') {
      literal("false");
      v.kind = Json::Bool;
      return v;
    }
    if (c == 'n') {
      literal("null");
      return v;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = Json::Number;
      const size_t start = i_;
      eat('-');
      if (eat('0')) {
      } else if (i_ < n_ && s_[i_] >= '1' && s_[i_] <= '9') {
        while (i_ < n_ && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      } else {
        bad("invalid number");
      }
      if (eat('.')) {
        if (!(i_ < n_ && s_[i_] >= '0' && s_[i_] <= '9')) bad("invalid number");
        while (i_ < n_ && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      }
      if (i_ < n_ && (s_[i_] == 'e' || s_[i_] == 'E')) {
        ++i_;
        if (!eat('+')) eat('-');
        if (!(i_ < n_ && s_[i_] >= '0' && s_[i_] <= '9')) bad("invalid number");
        while (i_ < n_ && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      }
      v.text.assign(s_ + start, i_ - start);
      return v;
    }
    bad("unexpected character");
  }

  unsigned hex4() {
    if (n_ - i_ < 4) bad("truncated \\u escape");
    unsigned x = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      x <<= 4;
      if (c >= '0' && c <= '9') x |= c - '0';
      else if (c >= 'a' && c <= 'f') x |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') x |= c - 'A' + 10;
      else bad("invalid \\u escape");
    }
    return x;
  }

  static void utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string string() {
    ++i_;  // the opening quote
    std::string out;
    for (;;) {
      if (i_ >= n_) bad("unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return out;
      if (c < 0x20) bad("control character in a string");
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      if (i_ >= n_) bad("unterminated escape");
      const char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (!(eat('\\') && eat('u'))) bad("unpaired surrogate");
            unsigned lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) bad("unpaired surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            bad("unpaired surrogate");
          }
          utf8(out, cp);
          break;
        }
        default: bad("invalid escape");
      }
    }
  }
};

// A non-negative integer literal that fits in uint64 (no fraction, no exponent).
bool toUint(const Json& v, uint64_t* out) {
  if (v.kind != Json::Number || v.text.empty() || v.text[0] == '-') return false;
  uint64_t x = 0;
  for (char c : v.text) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (x > (UINT64_MAX - d) / 10) return false;
    x = x * 10 + d;
  }
  *out = x;
  return true;
}

struct DtypeCode {
  const char* code;
  at::ScalarType type;
};
constexpr DtypeCode kDtypes[] = {{"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf}, {"BF16", at::kBFloat16},
                                 {"I64", at::kLong},   {"I32", at::kInt},   {"I16", at::kShort}, {"I8", at::kChar},
                                 {"U8", at::kByte},    {"BOOL", at::kBool}};

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else out += static_cast<char>(c);
  }
  return out + "\"";
}

std::string errnoText() { return std::strerror(errno); }

}  // namespace

std::string safetensorsDtypeCode(at::ScalarType t) {
  for (const auto& d : kDtypes)
    if (d.type == t) return d.code;
  argError("ERR_DTYPE", "safetensors cannot store dtype ", c10::toString(t));
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  f->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f->fd_ < 0) argError("ERR_INVALID_ARG", "cannot read ", path, ": ", errnoText());
  struct stat st;
  if (fstat(f->fd_, &st) != 0) argError("ERR_INVALID_ARG", "cannot stat ", path, ": ", errnoText());
  if (!S_ISREG(st.st_mode)) argError("ERR_INVALID_ARG", path, " is not a regular file");
  f->size_ = static_cast<uint64_t>(st.st_size);
  if (f->size_ < 8) argError("ERR_INVALID_ARG", path, ": ", f->size_, " bytes is too short to be a safetensors file (no 8-byte header length)");
  f->map_ = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, f->fd_, 0);
  if (f->map_ == MAP_FAILED) {
    f->map_ = nullptr;
    argError("ERR_INVALID_ARG", "cannot map ", path, ": ", errnoText());
  }
  const unsigned char* bytes = static_cast<const unsigned char*>(f->map_);
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | bytes[k];
  if (n > f->size_ - 8) argError("ERR_INVALID_ARG", path, ": safetensors header length ", n, " exceeds the file (", f->size_, " bytes)");
  if (n > kMaxSafetensorsHeaderBytes)
    argError("ERR_INVALID_ARG", path, ": safetensors header length ", n, " exceeds the limit of ", kMaxSafetensorsHeaderBytes, " bytes");
  if (n < 2) argError("ERR_INVALID_ARG", path, ": safetensors header of ", n, " bytes cannot hold a JSON object");
  const char* text = reinterpret_cast<const char*>(bytes + 8);
  if (text[0] != '{') argError("ERR_INVALID_ARG", path, ": malformed safetensors header: it must start with '{'");
  Json header = JsonParser(text, n, path).document();
  if (header.kind != Json::Object) argError("ERR_INVALID_ARG", path, ": malformed safetensors header: not a JSON object");
  const uint64_t base = 8 + n, dataBytes = f->size_ - base;
  for (auto& [name, info] : header.members) {
    if (name == "__metadata__") {
      if (info.kind != Json::Object) argError("ERR_INVALID_ARG", path, ": __metadata__ must be an object of strings");
      for (auto& [k, v] : info.members) {
        if (v.kind != Json::String) argError("ERR_INVALID_ARG", path, ": __metadata__['", k, "'] must be a string");
        f->metadata_[k] = v.text;
      }
      continue;
    }
    auto where = [&]() { return path + ": tensor '" + name + "'"; };
    if (name.empty()) argError("ERR_INVALID_ARG", path, ": a tensor has an empty name");
    if (info.kind != Json::Object) argError("ERR_INVALID_ARG", where(), ": entry must be an object {dtype, shape, data_offsets}");
    const Json *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
    for (auto& [k, v] : info.members) {
      if (k == "dtype") dtype = &v;
      else if (k == "shape") shape = &v;
      else if (k == "data_offsets") offsets = &v;
      else argError("ERR_INVALID_ARG", where(), ": unknown field '", k, "' (expected dtype, shape, data_offsets)");
    }
    if (!dtype || !shape || !offsets) argError("ERR_INVALID_ARG", where(), ": entry needs dtype, shape and data_offsets");
    SafetensorsEntry e;
    e.name = name;
    if (dtype->kind != Json::String) argError("ERR_INVALID_ARG", where(), ": dtype must be a string");
    bool known = false;
    for (const auto& d : kDtypes)
      if (dtype->text == d.code) e.dtype = d.type, e.dtypeCode = d.code, known = true;
    if (!known) argError("ERR_DTYPE", where(), ": unsupported dtype '", dtype->text, "' (radkit reads F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
    if (shape->kind != Json::Array || shape->items.size() > 16) argError("ERR_INVALID_ARG", where(), ": shape must be an array of at most 16 non-negative integers");
    uint64_t numel = 1;
    bool overflow = false;
    for (auto& d : shape->items) {
      uint64_t x;
      if (!toUint(d, &x) || x > static_cast<uint64_t>(INT64_MAX)) argError("ERR_INVALID_ARG", where(), ": shape must hold non-negative integers");
      e.shape.push_back(static_cast<int64_t>(x));
      if (x != 0 && numel > UINT64_MAX / x) overflow = true;
      else numel *= x;
    }
    if (std::find(e.shape.begin(), e.shape.end(), 0) != e.shape.end()) numel = 0, overflow = false;
    uint64_t b, en;
    if (offsets->kind != Json::Array || offsets->items.size() != 2 || !toUint(offsets->items[0], &b) || !toUint(offsets->items[1], &en))
      argError("ERR_INVALID_ARG", where(), ": data_offsets must be [begin, end] with non-negative integers");
    if (b > en) argError("ERR_INVALID_ARG", where(), ": data_offsets [", b, ", ", en, "] has begin > end");
    const uint64_t elem = c10::elementSize(e.dtype);
    if (overflow || numel > UINT64_MAX / elem || numel * elem != en - b)
      argError("ERR_INVALID_ARG", where(), ": shape ", shapeString(e.shape), " of ", e.dtypeCode, " needs ", overflow ? std::string("more than 2^64") : std::to_string(numel * elem),
               " bytes but data_offsets [", b, ", ", en, "] span ", en - b);
    if (en > dataBytes) argError("ERR_INVALID_ARG", where(), ": data_offsets [", b, ", ", en, "] lie outside the file (", dataBytes, " data bytes)");
    e.begin = base + b;
    e.end = base + en;
    f->entries_.push_back(std::move(e));
  }
  std::stable_sort(f->entries_.begin(), f->entries_.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  // The format's rule (as Hugging Face's reader enforces it): the tensors tile the data section
  // exactly, in offset order, with no overlap, no hole between them and nothing after the last.
  uint64_t expected = base;
  const SafetensorsEntry* prev = nullptr;
  for (const auto& c : f->entries_) {
    if (c.begin < expected && prev)
      argError("ERR_INVALID_ARG", path, ": tensors '", prev->name, "' and '", c.name, "' overlap (bytes [", prev->begin - base, ", ", prev->end - base,
               ") and [", c.begin - base, ", ", c.end - base, "))");
    if (c.begin != expected)
      argError("ERR_INVALID_ARG", path, ": tensor '", c.name, "' starts at data byte ", c.begin - base, " but ",
               prev ? "the previous tensor '" + prev->name + "' ends" : std::string("the data section starts"), " at ", expected - base,
               " (the tensors must follow one another without holes)");
    expected = c.end;
    prev = &c;
  }
  if (expected != f->size_)
    argError("ERR_INVALID_ARG", path, ": the tensors end at data byte ", expected - base, " but the file holds ", dataBytes,
             " data bytes (", f->size_ - expected, " bytes belong to no tensor)");
  for (size_t k = 0; k < f->entries_.size(); ++k) f->index_[f->entries_[k].name] = k;
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) munmap(map_, size_);
  if (fd_ >= 0) ::close(fd_);
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

void SafetensorsFile::copyInto(const SafetensorsEntry& e, at::Tensor& dst) const {
  if (dst.sizes() != at::IntArrayRef(e.shape))
    argError("ERR_SHAPE", path_, ": tensor '", e.name, "' is ", shapeString(e.shape), " but its destination is ", shapeString(dst.sizes()));
  const char* src = static_cast<const char*>(map_) + e.begin;
  const size_t bytes = e.end - e.begin;
  prefault(e);
  if (dst.device().is_cpu() && dst.scalar_type() == e.dtype && dst.is_contiguous()) {
    if (bytes) {
      adviseHugePages(dst.data_ptr(), bytes);
      std::memcpy(dst.data_ptr(), src, bytes);
    }
    return;
  }
  at::Tensor tmp = at::empty(e.shape, at::TensorOptions().dtype(e.dtype));
  if (bytes) std::memcpy(tmp.data_ptr(), src, bytes);
  at::NoGradGuard g;
  dst.copy_(tmp);
}

at::Tensor SafetensorsFile::read(const SafetensorsEntry& e, at::ScalarType dtype) const {
  at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(e.dtype));
  if (e.end > e.begin) std::memcpy(t.data_ptr(), static_cast<const char*>(map_) + e.begin, e.end - e.begin);
  return dtype == at::ScalarType::Undefined || dtype == e.dtype ? t : t.to(dtype);
}

void SafetensorsFile::prefault(const SafetensorsEntry& e) const {
  // Map the whole range in one call instead of one page fault per 4 KiB (page faults dominate
  // copies out of the page cache on virtual machines).
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t lo = e.begin / page * page;
  if (e.end > lo) {
#ifdef MADV_POPULATE_READ
    if (madvise(static_cast<char*>(map_) + lo, e.end - lo, MADV_POPULATE_READ) == 0) return;
#endif
    madvise(static_cast<char*>(map_) + lo, e.end - lo, MADV_WILLNEED);
  }
}

void adviseHugePages(void* data, size_t bytes) {
#ifdef MADV_HUGEPAGE
  // Large destination buffers fault in 2 MiB at a time where transparent huge pages are in
  // madvise mode (fresh 4 KiB page faults are the cost of loading a checkpoint otherwise).
  const uintptr_t huge = 2u << 20;
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(data) + huge - 1) / huge * huge, hi = (reinterpret_cast<uintptr_t>(data) + bytes) / huge * huge;
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
#endif
}

void SafetensorsFile::release(const SafetensorsEntry& e) const {
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t lo = (e.begin + page - 1) / page * page, hi = e.end / page * page;  // whole pages inside the range only
  if (hi > lo) madvise(static_cast<char*>(map_) + lo, hi - lo, MADV_DONTNEED);
}

void writeSafetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::set<std::string> names;
  std::vector<at::Tensor> data;
  std::string json = "{";
  uint64_t offset = 0;
  for (auto& [name, t] : tensors) {
    if (name == "__metadata__" || name.empty()) argError("ERR_INVALID_ARG", "safetensors: '", name, "' is not a valid tensor name");
    if (!names.insert(name).second) argError("ERR_INVALID_ARG", "safetensors: tensor name '", name, "' appears twice");
    const std::string code = safetensorsDtypeCode(t.scalar_type());
    at::Tensor c = t.detach().to(at::kCPU).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(c.numel()) * c.element_size();
    if (json.size() > 1) json += ",";
    json += quoted(name) + ":{\"dtype\":\"" + code + "\",\"shape\":[";
    for (int64_t d = 0; d < c.dim(); ++d) json += (d ? "," : "") + std::to_string(c.size(d));
    json += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
    offset += bytes;
    data.push_back(c);
  }
  if (!metadata.empty()) {
    json += std::string(json.size() > 1 ? "," : "") + "\"__metadata__\":{";
    bool first = true;
    for (auto& [k, v] : metadata) {
      json += (first ? "" : ",") + quoted(k) + ":" + quoted(v);
      first = false;
    }
    json += "}";
  }
  json += "}";
  while ((json.size() + 8) % 8) json += ' ';  // data starts 8-byte aligned
  const std::string tmp = path + ".tmp-" + std::to_string(getpid());
  FILE* out = std::fopen(tmp.c_str(), "wb");
  if (!out) argError("ERR_INVALID_ARG", "cannot write ", tmp, ": ", errnoText());
  auto failWrite = [&]() {
    const std::string why = errnoText();
    std::fclose(out);
    std::remove(tmp.c_str());
    argError("ERR_INVALID_ARG", "cannot write ", path, ": ", why);
  };
  unsigned char len[8];
  uint64_t n = json.size();
  for (int k = 0; k < 8; ++k) len[k] = static_cast<unsigned char>(n >> (8 * k));
  if (std::fwrite(len, 1, 8, out) != 8 || std::fwrite(json.data(), 1, json.size(), out) != json.size()) failWrite();
  for (auto& c : data) {
    const size_t bytes = static_cast<size_t>(c.numel()) * c.element_size();
    if (bytes && std::fwrite(c.data_ptr(), 1, bytes, out) != bytes) failWrite();
  }
  if (std::fflush(out) != 0 || fsync(fileno(out)) != 0) failWrite();
  if (std::fclose(out) != 0) {
    std::remove(tmp.c_str());
    argError("ERR_INVALID_ARG", "cannot write ", path, ": ", errnoText());
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = errnoText();
    std::remove(tmp.c_str());
    argError("ERR_INVALID_ARG", "cannot move ", tmp, " to ", path, ": ", why);
  }
}

}  // namespace radkit
