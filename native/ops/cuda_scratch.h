// Scratch size of the CUDA ops that stream a large score matrix through cuBLAS in blocks
// (maxSimilarity's similarity blocks, memoryQuery's memory chunks): 16M elements, 64 MiB in
// float32. A fixed floor keeps each GEMM large enough to fill the GPU (one image per block left
// an H100 mostly idle) while the peak stays bounded whatever the batch or memory size.
#pragma once
#include <cstdint>

namespace radkit {
namespace ops {
constexpr int64_t kCudaScratchElements = int64_t(1) << 24;
}  // namespace ops
}  // namespace radkit
