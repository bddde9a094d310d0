// "testing-probe": a two-parameter System that reports what reached it (batch rows, extras, label
// states, the training position) as loss parts, so tests can check the model contract (unpaired
// batches, extras, 4-state labels, freeze, staged weights, setTrainingProgress) without a real model.
#include <c10/util/Exception.h>
#include <torch/nn/module.h>

#include <atomic>

#include "../binding/errors.h"
#include "../binding/registry.h"
#include "../binding/tensor.h"
#include "../core/errors.h"
#include "../models/system.h"

namespace radkit {
namespace {

// testing.probeOutOfMemoryAbove(rows): from now on a testing-probe training or evaluation pass over
// more than `rows` images runs out of memory the way LibTorch reports it (c10::OutOfMemoryError),
// after it has changed a buffer and drawn random numbers as a real forward pass would; -1 turns
// it off. Simulates a CUDA out-of-memory for the failed-step path on machines without a GPU.
std::atomic<int64_t> oomAboveRows{-1};

// One weight vector (and optionally a buffer), so parameters get dotted names like real layers.
struct Vector : torch::nn::Module {
  Vector(int64_t n, bool withBuffer) {
    weight = register_parameter("weight", at::zeros({n}));
    if (withBuffer) register_buffer("count", at::zeros({1}));
  }
  at::Tensor weight;
};

class ProbeSystem : public System {
 public:
  explicit ProbeSystem(const Config& c) : target_(c.num("target", 1.0)) {
    head = register_module("head", std::make_shared<Vector>(2, false))->weight;
    body = register_module("body", std::make_shared<Vector>(3, true))->weight;
  }
  std::string kind() const override { return "testing-probe"; }

  at::Tensor loss(const Batch& b, LossParts& parts) override {
    const int64_t limit = oomAboveRows.load();
    if (limit >= 0 && b.images.defined() && b.images.size(0) > limit) {
      {
        at::NoGradGuard ng;
        named_buffers()["body.count"].add_(1);
      }
      at::rand({4});
      TORCH_CHECK_WITH(OutOfMemoryError, false, "CUDA out of memory. Tried to allocate 2.00 GiB (simulated by testing.probeOutOfMemoryAbove)");
    }
    parts["imageRows"] = b.images.defined() ? static_cast<double>(b.images.size(0)) : -1;
    parts["tokenRows"] = b.tokens.defined() ? static_cast<double>(b.tokens.size(0)) : -1;
    parts["paired"] = b.paired ? 1 : 0;
    parts["extras"] = static_cast<double>(b.extras.size());
    if (b.extras.count("weights")) parts["extraSum"] = b.extra("weights", kind()).sum().item<double>();
    if (b.labels.defined())
      for (int64_t s = kAbsent; s <= kUncertain; ++s) parts["state" + std::to_string(s)] = b.labels.eq(s).sum().item<double>();
    parts["step"] = static_cast<double>(step_);
    parts["totalSteps"] = static_cast<double>(totalSteps_);
    // Pulls every weight towards `target`.
    return (head - target_).pow(2).sum() + (body - target_).pow(2).sum();
  }

  Generated generate(const GenerateRequest& r) override {
    Generated g;
    const int64_t B = r.batch.images.size(0);
    for (int64_t i = 0; i < B; ++i) g.tokens.push_back(std::vector<int64_t>(static_cast<size_t>(std::min<int64_t>(i + 1, r.search.maxLength)), 7));
    g.scores.assign(static_cast<size_t>(B), 0.0);
    return g;
  }

  void setTrainingProgress(int64_t step, int64_t totalSteps) override {
    step_ = step;
    totalSteps_ = totalSteps;
  }

  at::Tensor head, body;

 private:
  double target_;
  int64_t step_ = -1, totalSteps_ = -1;
};

SystemRegistrar reg("testing-probe", [](const Config& c) { return std::make_shared<ProbeSystem>(c); });

OpRegistrar oomHook("testing:probe-oom", [](Napi::Env env, Napi::Object exports) {
  testingExports(env, exports).Set("probeOutOfMemoryAbove", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    return guarded(info, "testing.probeOutOfMemoryAbove", [&]() -> Napi::Value {
      oomAboveRows = intArg(info[0], "testing.probeOutOfMemoryAbove", "rows", -1, int64_t(1) << 40);
      return info.Env().Undefined();
    });
  }, "probeOutOfMemoryAbove"));
});

}  // namespace
}  // namespace radkit
