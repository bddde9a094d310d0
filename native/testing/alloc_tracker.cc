// exports.testing.allocTrackerReset / allocTrackerRead: a tracking LibTorch CPU allocator (installed
// on first use, in front of the default one) counting the bytes of every CPU tensor allocation, for
// the peak-memory figures of tests and benchmarks. Not public API.
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <atomic>

#include "../binding/allocator_compat.h"
#include "../binding/registry.h"
#include "../binding/tensor.h"

namespace radkit {
namespace {

std::atomic<int64_t> gCurrent{0}, gPeak{0};

struct TrackedCtx {
  c10::DataPtr inner;
  int64_t bytes;
};

void trackedDelete(void* p) {
  auto* ctx = static_cast<TrackedCtx*>(p);
  gCurrent -= ctx->bytes;
  delete ctx;
}

struct TrackingAllocator final : public c10::Allocator {
  c10::Allocator* base = nullptr;
  c10::DataPtr allocate(size_t n) RADKIT_ALLOCATE_CONST override {
    c10::DataPtr inner = base->allocate(n);
    void* data = inner.get();
    auto* ctx = new TrackedCtx{std::move(inner), static_cast<int64_t>(n)};
    int64_t now = gCurrent += static_cast<int64_t>(n);
    int64_t peak = gPeak.load();
    while (now > peak && !gPeak.compare_exchange_weak(peak, now)) {
    }
    return c10::DataPtr(data, ctx, &trackedDelete, c10::Device(c10::DeviceType::CPU));
  }
  c10::DeleterFnPtr raw_deleter() const override { return nullptr; }
  RADKIT_ALLOCATOR_COPY_DATA
};

TrackingAllocator* tracker() {
  static TrackingAllocator* t = [] {
    auto* a = new TrackingAllocator();
    a->base = c10::GetCPUAllocator();
    c10::SetCPUAllocator(a, /*priority*/ 100);
    return a;
  }();
  return t;
}

// allocTracker(): installs the tracking CPU allocator (once) and resets the peak to the current level.
Napi::Value AllocTrackerReset(const Napi::CallbackInfo& info) {
  tracker();
  gPeak = gCurrent.load();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("current", Napi::Number::New(info.Env(), static_cast<double>(gCurrent.load())));
  return o;
}

Napi::Value AllocTrackerRead(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("current", Napi::Number::New(info.Env(), static_cast<double>(gCurrent.load())));
  o.Set("peak", Napi::Number::New(info.Env(), static_cast<double>(gPeak.load())));
  return o;
}

OpRegistrar reg("testing:alloc_tracker", [](Napi::Env env, Napi::Object exports) {
  Napi::Object t = testingExports(env, exports);
  t.Set("allocTrackerReset", Napi::Function::New(env, AllocTrackerReset));
  t.Set("allocTrackerRead", Napi::Function::New(env, AllocTrackerRead));
});

}  // namespace
}  // namespace radkit
