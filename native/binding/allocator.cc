// A caching CPU allocator for LibTorch: freed buffers of 64 KiB and more are kept per size and handed
// out again instead of going back to malloc. glibc serves such buffers with fresh pages (mmap, or a
// worker thread's own arena that it trims eagerly), so without a cache every training step re-faults
// its temporaries page by page: in this sandbox a 4 MiB temporary cost ~14 ms of page faults against
// ~0.2 ms reused, and a small AdaMatch forward ran 3x slower than with the cache (bench/RESULTS.md).
// The cache holds at most RADKIT_CPU_CACHE_MB (default 1024) of idle buffers; RADKIT_CPU_CACHE_MB=0
// turns it off. runtime.cpuCache() reports it and runtime.emptyCpuCache() returns idle memory.
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "allocator_compat.h"
#include "registry.h"

namespace radkit {
namespace {

constexpr size_t kMinCached = 64 << 10;  // smaller buffers stay with malloc (its bins reuse them well)
constexpr size_t kGranule = 16 << 10;    // sizes are rounded up to this so near-equal shapes share buffers

class CachingCpuAllocator final : public c10::Allocator {
 public:
  explicit CachingCpuAllocator(size_t limit) : limit_(limit) {}

  // Context == data and a raw deleter, as LibTorch's own CPU allocator: oneDNN uses raw_allocate.
  c10::DataPtr allocate(size_t n) RADKIT_ALLOCATE_CONST override {
    if (n < kMinCached) {
      void* p = n ? c10::alloc_cpu(n) : nullptr;
      return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
    }
    const size_t size = (n + kGranule - 1) / kGranule * kGranule;
    void* p = take(size);
    if (!p) {
      p = c10::alloc_cpu(size);
      std::lock_guard<std::mutex> g(mu_);
      sizes_[p] = size;
    }
    return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }
  RADKIT_ALLOCATOR_COPY_DATA

  struct Stats {
    size_t idleBytes, idleBuffers, hits, misses, limit;
  };
  Stats stats() {
    std::lock_guard<std::mutex> g(mu_);
    size_t buffers = 0;
    for (auto& [s, v] : free_) buffers += v.size();
    return {idle_, buffers, hits_, misses_, limit_};
  }
  void empty() {
    std::lock_guard<std::mutex> g(mu_);
    for (auto& [s, v] : free_)
      for (void* p : v) {
        sizes_.erase(p);
        c10::free_cpu(p);
      }
    free_.clear();
    idle_ = 0;
  }

 private:
  static void release(void* p);

  void* take(size_t size) const {
    std::lock_guard<std::mutex> g(mu_);
    auto it = free_.find(size);
    if (it == free_.end() || it->second.empty()) {
      ++misses_;
      return nullptr;
    }
    void* p = it->second.back();
    it->second.pop_back();
    idle_ -= size;
    ++hits_;
    return p;
  }
  // Keeps a cached-size buffer for reuse (or frees it past the limit); frees small ones.
  void give(void* p) {
    {
      std::lock_guard<std::mutex> g(mu_);
      auto it = sizes_.find(p);
      if (it != sizes_.end()) {
        const size_t size = it->second;
        if (idle_ + size <= limit_) {
          free_[size].push_back(p);
          idle_ += size;
          return;
        }
        sizes_.erase(it);
      }
    }
    c10::free_cpu(p);
  }

  size_t limit_;
  mutable std::mutex mu_;
  mutable std::unordered_map<size_t, std::vector<void*>> free_;  // idle buffers by size
  mutable std::unordered_map<void*, size_t> sizes_;              // every cached-size buffer, live or idle
  mutable size_t idle_ = 0, hits_ = 0, misses_ = 0;

  friend CachingCpuAllocator* cache();
};

CachingCpuAllocator* gCache = nullptr;  // intentionally leaked: tensors may be freed during exit

void CachingCpuAllocator::release(void* p) {
  if (p) gCache->give(p);
}

CachingCpuAllocator* cache() {
  static CachingCpuAllocator* c = []() -> CachingCpuAllocator* {
    const char* env = std::getenv("RADKIT_CPU_CACHE_MB");
    long mb = env ? std::strtol(env, nullptr, 10) : 1024;
    if (mb <= 0) return nullptr;
    gCache = new CachingCpuAllocator(static_cast<size_t>(mb) << 20);
    c10::SetCPUAllocator(gCache, /*priority*/ 10);
    return gCache;
  }();
  return c;
}

OpRegistrar reg("runtime:cpuCache", [](Napi::Env env, Napi::Object exports) {
  cache();  // installed when the addon loads, before any tensor exists
  exports.Set("cpuCache", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    Napi::Env e = info.Env();
    Napi::Object o = Napi::Object::New(e);
    CachingCpuAllocator* c = cache();
    o.Set("enabled", Napi::Boolean::New(e, c != nullptr));
    if (c) {
      auto s = c->stats();
      o.Set("idleBytes", Napi::Number::New(e, static_cast<double>(s.idleBytes)));
      o.Set("idleBuffers", Napi::Number::New(e, static_cast<double>(s.idleBuffers)));
      o.Set("hits", Napi::Number::New(e, static_cast<double>(s.hits)));
      o.Set("misses", Napi::Number::New(e, static_cast<double>(s.misses)));
      o.Set("limitBytes", Napi::Number::New(e, static_cast<double>(s.limit)));
    }
    return o;
  }, "cpuCache"));
  exports.Set("emptyCpuCache", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    if (CachingCpuAllocator* c = cache()) c->empty();
    return info.Env().Undefined();
  }, "emptyCpuCache"));
});

}  // namespace
}  // namespace radkit
