// Runtime CPU feature check shared by the CPU kernels. Their hot loops are compiled twice, for the
// x86-64 baseline and under `#pragma GCC target("avx2,fma")` (a prebuilt addon cannot assume
// AVX2), and each call picks one with this.
#pragma once

namespace radkit {

inline bool cpuHasAvx2Fma() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
#else
  return false;
#endif
}

// AVX-512 Foundation (512-bit float compares and masked blends; maxSimilarity's scan).
inline bool cpuHasAvx512f() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
#else
  return false;
#endif
}

// VNNI byte dot products (vpdpbusd): oneDNN's integer GEMMs then accumulate uint8 x int8 products
// exactly in int32 at about four times the float32 rate. Without VNNI they go through vpmaddubsw,
// whose int16 pair sums saturate unless the uint8 operand stays below 128.
inline bool cpuHasVnni() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has = __builtin_cpu_supports("avx512vnni") || __builtin_cpu_supports("avxvnni");
  return has;
#else
  return false;
#endif
}

}  // namespace radkit
