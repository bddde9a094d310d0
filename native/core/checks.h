// Names and argument checks shared by compute code and bindings, free of N-API: how dtypes, devices
// and shapes are written in messages, the dtypes radkit's ops take, and the allocation guard.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "errors.h"

namespace radkit {

// Dtype and device names as the TypeScript API writes them ("float32", "cuda:0").
bool parseDtypeName(const std::string& s, at::ScalarType* out);
bool parseDeviceName(const std::string& s, at::Device* out);
std::string dtypeName(at::ScalarType t);
std::string deviceName(const at::Device& d);
std::string shapeString(at::IntArrayRef shape);

// The floating dtypes the ops take: float32 and float64 everywhere, float16 and bfloat16 on CUDA.
bool isOpDtype(const at::Tensor& t);
// Those dtypes in words, for the device of `t`.
const char* opDtypesFor(const at::Tensor& t);

// `t` (called `name` in the message) must be on the device of `ref` (ERR_DEVICE) / have its dtype
// (ERR_DTYPE): "boxes must be on the device of features (cpu), got cuda:0".
void checkSameDevice(const at::Tensor& t, const char* name, const at::Tensor& ref, const char* refName);
void checkSameDtype(const at::Tensor& t, const char* name, const at::Tensor& ref, const char* refName);

// Refuses allocations whose byte size overflows or exceeds physical memory before LibTorch tries
// (ERR_OUT_OF_MEMORY).
void checkAllocation(const std::vector<int64_t>& shape, at::ScalarType dtype, const char* fn);

// Before converting `src` to an integer or bool dtype: refuses (ERR_INVALID_ARG, naming `what`, the
// first offending element and the target's range) values that the cast would wrap around or make
// up: NaN, infinities and numbers outside the target's range. With `wholeOnly` fractions are refused
// too (data handed in as-is, where truncation would be silent). bool means non-zero, as in PyTorch.
void checkIntegerCast(const at::Tensor& src, at::ScalarType dst, const std::string& what, bool wholeOnly);

}  // namespace radkit
