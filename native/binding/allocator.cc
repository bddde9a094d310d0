// A caching CPU allocator for LibTorch: freed buffers of 64 KiB and more are kept per size and handed
// out again instead of going back to malloc. glibc serves such buffers with fresh pages (mmap, or a
// worker thread's own arena that it trims eagerly), so without a cache every training step re-faults
// its temporaries page by page: in this sandbox a 4 MiB temporary cost ~14 ms of page faults against
// ~0.2 ms reused, and a small AdaMatch forward ran 3x slower than with the cache (bench/RESULTS.md).
// Bounded overhead: idle memory never exceeds RADKIT_CPU_CACHE_MB (default 1024; the oldest idle
// buffers go first). RADKIT_CPU_CACHE_MB=0 turns the cache off. runtime.cpuCache() reports it and
// runtime.emptyCpuCache() returns all idle memory.
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <utility>
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
    std::vector<void*> evicted;
    void* p = take(size, evicted);
    for (void* q : evicted) c10::free_cpu(q);  // outside the lock
    if (!p) {
      p = c10::alloc_cpu(size);
      std::lock_guard<std::mutex> g(mu_);
      sizes_[p] = size;
      total_ += size;
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
        total_ -= s;
        c10::free_cpu(p);
      }
    free_.clear();
    order_.clear();
    idleSince_.clear();
    idle_ = 0;
  }

 private:
  static void release(void* p);

  // An idle buffer of `size`; or null, after moving to `evicted` (for the caller to free) the oldest
  // idle buffers beyond the slack: max(kMinSlack, live bytes / 8) once the new buffer is counted.
  void* take(size_t size, std::vector<void*>& evicted) const {
    std::lock_guard<std::mutex> g(mu_);
    auto it = free_.find(size);
    if (it == free_.end() || it->second.empty()) {
      // No eviction on a miss: a training step's sizes miss in turn, and freeing idle buffers of
      // other sizes here re-faulted them every step (XProNet small 35% slower, measured). Idle
      // memory is bounded by the limit alone; with it, peak RSS stays below the uncached run's.
      ++misses_;
      (void)evicted;
      return nullptr;
    }
    void* p = it->second.back();
    it->second.pop_back();
    idleSince_.erase(p);
    idle_ -= size;
    ++hits_;
    return p;
  }
  // Removes idle buffers, oldest first, until `bytes` are gone or none is left; they go to `out`.
  void evictLocked(size_t bytes, std::vector<void*>& out) const {
    size_t freed = 0;
    while (freed < bytes && !order_.empty()) {
      auto [p, stamp] = order_.front();
      order_.pop_front();
      auto s = idleSince_.find(p);
      if (s == idleSince_.end() || s->second != stamp) continue;  // reused since (a stale entry)
      idleSince_.erase(s);
      const size_t size = sizes_.at(p);
      auto& v = free_[size];
      for (size_t i = 0; i < v.size(); ++i)
        if (v[i] == p) {
          v[i] = v.back();
          v.pop_back();
          break;
        }
      sizes_.erase(p);
      total_ -= size;
      idle_ -= size;
      freed += size;
      out.push_back(p);
    }
  }
  // Keeps a cached-size buffer for reuse (older idle buffers go past the limit); frees small ones.
  void give(void* p) {
    std::vector<void*> evicted;
    bool keep = false;
    {
      std::lock_guard<std::mutex> g(mu_);
      auto it = sizes_.find(p);
      if (it != sizes_.end()) {
        const size_t size = it->second;
        if (size <= limit_) {
          if (idle_ + size > limit_) evictLocked(idle_ + size - limit_, evicted);
          free_[size].push_back(p);
          idleSince_[p] = ++stamp_;
          order_.emplace_back(p, stamp_);
          idle_ += size;
          keep = true;
        } else {
          sizes_.erase(it);
          total_ -= size;
        }
      }
      if (order_.size() > 4 * idleSince_.size() + 1024) compactLocked();
    }
    for (void* q : evicted) c10::free_cpu(q);
    if (!keep) c10::free_cpu(p);
  }
  // Drops stale entries from the age queue (it only grows otherwise while buffers are reused).
  void compactLocked() {
    std::deque<std::pair<void*, uint64_t>> live;
    for (auto& e : order_) {
      auto s = idleSince_.find(e.first);
      if (s != idleSince_.end() && s->second == e.second) live.push_back(e);
    }
    order_.swap(live);
  }

  size_t limit_;
  mutable std::mutex mu_;
  mutable std::unordered_map<size_t, std::vector<void*>> free_;  // idle buffers by size
  mutable std::unordered_map<void*, size_t> sizes_;              // every cached-size buffer, live or idle
  mutable std::unordered_map<void*, uint64_t> idleSince_;        // idle buffers: when each became idle
  mutable std::deque<std::pair<void*, uint64_t>> order_;          // (buffer, stamp), oldest first; stale entries skipped
  mutable size_t idle_ = 0, total_ = 0, hits_ = 0, misses_ = 0;  // total_: bytes of every cached-size buffer
  mutable uint64_t stamp_ = 0;

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
