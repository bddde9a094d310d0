// c10::Allocator changed shape in LibTorch 2.3: allocate() lost its const and copy_data() became a
// pure virtual. Allocators written here (the caching CPU allocator, the test suite's tracker) use
// these macros so one source builds against Debian's 1.13 and Python torch 2.x.
#pragma once
#include <c10/core/Allocator.h>
#include <torch/version.h>

#include <cstring>

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define RADKIT_ALLOCATE_CONST
#define RADKIT_ALLOCATOR_COPY_DATA \
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }
#else
#define RADKIT_ALLOCATE_CONST const
#define RADKIT_ALLOCATOR_COPY_DATA
#endif
