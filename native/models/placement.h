// Where a System computes and in which precision, free of N-API: moving a batch to the model's
// device (pinned host buffers and a copy stream on CUDA; uint8 images widened there), moving an
// optimizer's state with its parameters, saving weights from CPU copies (checkpoints do not depend
// on the device that trained them), autocast for mixed precision and the dynamic loss scale of
// float16 training. The generic model handle (native/binding/model.cc) uses these for every system.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>

#include <optional>
#include <string>
#include <vector>

#include "system.h"

namespace radkit {

// The device and floating dtype of a system's parameters (CPU / float32 for a system without any).
at::Device deviceOf(const torch::nn::Module& m);
at::ScalarType floatDtypeOf(const torch::nn::Module& m);

// The batch on `device`: every tensor (images, tokens, labels, extras) moved there; uint8 images
// become `imageDtype` scaled by 1/255 on the device (a quarter of the bytes cross the bus), floating
// images are converted to `imageDtype` when they differ. Tensors already there are shared, not
// copied. On CUDA, CPU tensors are staged through pinned host memory and copied on a side stream
// that the current stream then waits for.
Batch batchTo(const Batch& b, at::Device device, at::ScalarType imageDtype);

// Moves (and, with `dtype`, converts the floating tensors of) an optimizer's per-parameter state.
void optimizerStateTo(torch::optim::Optimizer& opt, at::Device device, std::optional<at::ScalarType> dtype = std::nullopt);

// Module::save with every tensor written as a CPU copy (the archive is the same as Module::save's
// for a CPU module).
void saveOnCpu(const torch::nn::Module& m, torch::serialize::OutputArchive& a);

// Training precision: float32 (autocast off), bfloat16 or float16 autocast (float32 master weights
// and optimizer state either way).
enum class Precision { Float32, BFloat16, Float16 };
bool parsePrecision(const std::string& s, Precision* out);
const char* precisionName(Precision p);
at::ScalarType autocastDtype(Precision p);
// ERR_INVALID_ARG when `p` cannot run on `device` with parameters of `paramDtype` (float16 needs
// CUDA; mixed precision needs float32 master weights).
void checkPrecision(Precision p, at::Device device, at::ScalarType paramDtype, const std::string& system);

// Autocast to `p`'s dtype on `device` for the scope's lifetime (nothing for float32); the previous
// autocast state is restored and the cast cache cleared on exit. Thread-local, as LibTorch's autocast.
class AutocastScope {
 public:
  AutocastScope(at::Device device, Precision p);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  bool cuda_ = false;
  bool previousEnabled_ = false;
  at::ScalarType previousDtype_ = at::kFloat;
};

// Dynamic loss scaling for float16 (PyTorch's GradScaler policy): the loss is multiplied by
// `scale` before backward; gradients are divided by it before clipping; a step whose gradients
// overflow is skipped and halves the scale; `growthInterval` good steps in a row double it.
struct LossScaler {
  double scale = 65536.0;
  int64_t goodSteps = 0;
  double growth = 2.0, backoff = 0.5;
  int64_t growthInterval = 2000;
  // Divides the gradients by the scale; false when one of them is not finite.
  bool unscale(const std::vector<at::Tensor>& params) const;
  // After a step: overflowed (skipped) or applied.
  void update(bool overflowed);
};

// "images [16, 2, 1, 224, 224] float32, tokens [16, 60] int64, ..." for messages (out of memory).
std::string describeBatch(const Batch& b);

// Returns the CUDA caching allocator's idle blocks to the driver after a CUDA out-of-memory (a
// no-op without CUDA), so a smaller retry has the memory.
void releaseCachedDeviceMemory(at::Device device);

}  // namespace radkit
