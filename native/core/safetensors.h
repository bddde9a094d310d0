// safetensors files, memory-mapped (napi-free; compute code and bindings both use it).
//
// Layout: 8-byte little-endian header length n, n bytes of JSON
//   { "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, ..., "__metadata__": { "k": "v" } }
// then the data; offsets are relative to the first byte after the header.
//
// SafetensorsFile::open validates the whole header before any tensor is made: the length (at most
// kMaxHeaderBytes and inside the file), strict JSON (no duplicate keys, bounded nesting), each
// entry's fields (exactly dtype, shape, data_offsets), a known dtype, shape x dtype size equal to the
// byte range (no overflow), every range inside the file, no two ranges overlapping, and string-only
// metadata. Any failure is an ERR_INVALID_ARG naming the file and the entry. Nothing past the end of
// the file is ever read: the mapping is the file's size and every range is checked against it.
//
// Tensors are copied out of the mapping (copyInto / read); the mapping itself is private and
// read-only. release() hands a tensor's pages back to the kernel after its copy, so loading a large
// checkpoint holds about one copy of the weights, not two.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace radkit {

constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull * 1024 * 1024;

struct SafetensorsEntry {
  std::string name;
  at::ScalarType dtype = at::kFloat;
  std::string dtypeCode;  // "F32", "BF16", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // absolute byte offsets in the file
};

class SafetensorsFile {
 public:
  // Opens, maps and validates `path`. Throws ERR_INVALID_ARG (unreadable, malformed) or ERR_DTYPE.
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t fileSize() const { return size_; }
  // Entries in file order (by begin offset).
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const SafetensorsEntry* find(const std::string& name) const;

  // Copies the tensor into `dst` (same shape; any dtype/device: converted as copy_ does).
  void copyInto(const SafetensorsEntry& e, at::Tensor& dst) const;
  // A new CPU tensor with the stored bytes, converted to `dtype` when it is not Undefined.
  at::Tensor read(const SafetensorsEntry& e, at::ScalarType dtype = at::ScalarType::Undefined) const;
  // Drops the entry's mapped pages from memory (they are read again from the file if needed).
  void release(const SafetensorsEntry& e) const;
  // Maps the entry's pages in one call (MADV_POPULATE_READ where the kernel has it, else WILLNEED).
  void prefault(const SafetensorsEntry& e) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  int fd_ = -1;
  void* map_ = nullptr;
  uint64_t size_ = 0;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Asks for transparent huge pages on the 2 MiB-aligned part of [data, data + bytes) (a hint; no-op
// where unsupported).
void adviseHugePages(void* data, size_t bytes);

// The safetensors dtype code of a scalar type ("F32", "BF16", ...); throws ERR_DTYPE for others.
std::string safetensorsDtypeCode(at::ScalarType t);

// Writes `tensors` (any device; copied to CPU, contiguous) with `metadata` to `path` atomically: a
// temporary file in the same folder, flushed, then renamed over `path`. Names must be unique.
void writeSafetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata);

}  // namespace radkit
