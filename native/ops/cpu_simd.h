// Runtime CPU feature check shared by the CPU kernels. Their hot loops are compiled twice, for the
// x86-64 baseline and under `#pragma GCC target("avx2,fma")` (a prebuilt addon cannot assume
// AVX2), and each call picks one with this.
#pragma once

namespace radkit {
namespace ops {

inline bool cpuHasAvx2Fma() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
#else
  return false;
#endif
}

// AVX512-BF16 dot products (vdpbf16ps): oneDNN's bfloat16 GEMMs then run at about twice the float32 rate.
inline bool cpuHasAvx512Bf16() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has = __builtin_cpu_supports("avx512bf16");
  return has;
#else
  return false;
#endif
}

}  // namespace ops
}  // namespace radkit
