// CPU kernels of maxSimilarity.
//
// Forward: a fused "dot-product tile + max" kernel. For each task (image i, group of texts) the real
// patches of image i (rows) are compared with the real words of the group's texts (columns) in
// register tiles of 4 rows x 3 columns, each entry a dot product over D vectorised along D (AVX2+FMA
// when the CPU has it, chosen at run time; portable C++ otherwise). Each finished tile immediately
// updates the running row maxima (per patch and text) and column maxima (per word), so no similarity
// matrix is stored at all: the extra memory is the outputs plus O(N * texts-per-group) per thread.
// Rows are taken in chunks that stay in L1 while the group's columns stream past.
// Ties: rows and columns are visited in ascending order and a maximum is replaced only by a strictly
// larger value, so the lowest index wins. Every task is computed by one thread in a fixed order, so
// results are bit-identical across runs and thread counts.
//
// Forward for D >= 32 (the usual case): GEMM tiles, see forwardBlas below.
//
// Backward: gradients are routed to the arg-max elements only. grad_image is parallel over images and
// grad_text over texts; each task owns its output rows (no atomics, deterministic).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define RADKIT_X86_SIMD 1
#endif

#include "../../core/cpu_simd.h"
#include "../../core/onednn_gemm.h"
#include "max_similarity.h"

namespace radkit {
namespace ops {
namespace detail {
namespace {

constexpr int MR = 4;  // rows per register tile
constexpr int NR = 3;  // columns per register tile

// out[r * NR + c] = <a[r], b[c]> over D.
template <typename T>
void tileGeneric(const T* const* a, const T* const* b, int64_t D, T* out) {
  T acc[MR][NR] = {};
  for (int64_t d = 0; d < D; ++d) {
    const T b0 = b[0][d], b1 = b[1][d], b2 = b[2][d];
    for (int r = 0; r < MR; ++r) {
      const T av = a[r][d];
      acc[r][0] += av * b0;
      acc[r][1] += av * b1;
      acc[r][2] += av * b2;
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) out[r * NR + c] = acc[r][c];
}

#ifdef RADKIT_X86_SIMD
__attribute__((target("avx2,fma"))) inline float hsum8(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  __m128 s = _mm_add_ps(lo, hi);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
  return _mm_cvtss_f32(s);
}
__attribute__((target("avx2,fma"))) inline double hsum4(__m256d v) {
  __m128d lo = _mm256_castpd256_pd128(v), hi = _mm256_extractf128_pd(v, 1);
  __m128d s = _mm_add_pd(lo, hi);
  s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}

__attribute__((target("avx2,fma"))) void tileAvx2(const float* const* a, const float* const* b, int64_t D, float* out) {
  __m256 acc[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) acc[r][c] = _mm256_setzero_ps();
  int64_t d = 0;
  for (; d + 8 <= D; d += 8) {
    const __m256 b0 = _mm256_loadu_ps(b[0] + d), b1 = _mm256_loadu_ps(b[1] + d), b2 = _mm256_loadu_ps(b[2] + d);
    for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_loadu_ps(a[r] + d);
      acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
      acc[r][2] = _mm256_fmadd_ps(av, b2, acc[r][2]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) {
      float s = hsum8(acc[r][c]);
      for (int64_t e = d; e < D; ++e) s += a[r][e] * b[c][e];
      out[r * NR + c] = s;
    }
}

__attribute__((target("avx2,fma"))) void tileAvx2(const double* const* a, const double* const* b, int64_t D, double* out) {
  __m256d acc[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) acc[r][c] = _mm256_setzero_pd();
  int64_t d = 0;
  for (; d + 4 <= D; d += 4) {
    const __m256d b0 = _mm256_loadu_pd(b[0] + d), b1 = _mm256_loadu_pd(b[1] + d), b2 = _mm256_loadu_pd(b[2] + d);
    for (int r = 0; r < MR; ++r) {
      const __m256d av = _mm256_loadu_pd(a[r] + d);
      acc[r][0] = _mm256_fmadd_pd(av, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_pd(av, b1, acc[r][1]);
      acc[r][2] = _mm256_fmadd_pd(av, b2, acc[r][2]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) {
      double s = hsum4(acc[r][c]);
      for (int64_t e = d; e < D; ++e) s += a[r][e] * b[c][e];
      out[r * NR + c] = s;
    }
}

#endif

template <typename T>
inline void tile(bool simd, const T* const* a, const T* const* b, int64_t D, T* out) {
#ifdef RADKIT_X86_SIMD
  if (simd) return tileAvx2(a, b, D, out);
#endif
  tileGeneric(a, b, D, out);
}

// Real-token index lists from an optional mask [B, L].
std::vector<std::vector<int32_t>> realIndices(const at::Tensor& mask, int64_t B, int64_t L) {
  std::vector<std::vector<int32_t>> out(B);
  at::Tensor m;
  if (mask.defined()) m = mask.to(at::kBool).contiguous();
  const bool* mp = m.defined() ? m.data_ptr<bool>() : nullptr;
  for (int64_t b = 0; b < B; ++b) {
    out[b].reserve(L);
    for (int64_t l = 0; l < L; ++l)
      if (!mp || mp[b * L + l]) out[b].push_back(static_cast<int32_t>(l));
  }
  return out;
}

template <typename T>
void forwardKernel(const T* img, const T* txt, int64_t Bi, int64_t N, int64_t Bt, int64_t K, int64_t D,
                   const std::vector<std::vector<int32_t>>& rows, const std::vector<std::vector<int32_t>>& words,
                   T* i2t, T* t2i, int64_t* argN2K, int64_t* argK2N) {
  using acc_t = double;
  const T ninf = -std::numeric_limits<T>::infinity();
  bool simd = false;
#ifdef RADKIT_X86_SIMD
  simd = cpuHasAvx2Fma();
#endif
  // Columns: the real words of all texts, text-major. Texts are grouped so that each group holds
  // about kGroupCols columns; a task is (image, group).
  constexpr int64_t kGroupCols = 384;
  std::vector<int64_t> groupStart{0};  // first text of each group
  {
    int64_t cols = 0;
    for (int64_t j = 0; j < Bt; ++j) {
      cols += static_cast<int64_t>(words[j].size());
      if (cols >= kGroupCols && j + 1 < Bt) {
        groupStart.push_back(j + 1);
        cols = 0;
      }
    }
    groupStart.push_back(Bt);
  }
  const int64_t G = static_cast<int64_t>(groupStart.size()) - 1;
  const int64_t chunkRows = std::max<int64_t>(MR, (16384 / std::max<int64_t>(1, D * int64_t(sizeof(T)))) / MR * MR);

  at::parallel_for(0, Bi * G, 1, [&](int64_t begin, int64_t end) {
    std::vector<const T*> colPtr;
    std::vector<int32_t> colText, colWord;
    std::vector<T> rowBest, colBest;
    std::vector<int32_t> rowArg, colArg;
    std::vector<const T*> rowPtr;
    T tileOut[MR * NR];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t i = task / G, g = task % G;
      const int64_t j0 = groupStart[g], j1 = groupStart[g + 1], J = j1 - j0;
      const auto& R = rows[i];
      const int64_t nr = static_cast<int64_t>(R.size());
      colPtr.clear();
      colText.clear();
      colWord.clear();
      for (int64_t j = j0; j < j1; ++j)
        for (int32_t k : words[j]) {
          colPtr.push_back(txt + (j * K + k) * D);
          colText.push_back(static_cast<int32_t>(j - j0));
          colWord.push_back(k);
        }
      const int64_t nc = static_cast<int64_t>(colPtr.size());
      rowPtr.resize(nr);
      for (int64_t r = 0; r < nr; ++r) rowPtr[r] = img + (i * N + R[r]) * D;
      rowBest.assign(nr * J, ninf);
      rowArg.assign(nr * J, -1);
      colBest.assign(nc, ninf);
      colArg.assign(nc, -1);
      for (int64_t r0 = 0; r0 < nr; r0 += chunkRows) {
        const int64_t r1 = std::min(nr, r0 + chunkRows);
        for (int64_t c0 = 0; c0 < nc; c0 += NR) {
          const int64_t cn = std::min<int64_t>(NR, nc - c0);
          const T* bp[NR];
          for (int c = 0; c < NR; ++c) bp[c] = colPtr[c0 + std::min<int64_t>(c, cn - 1)];
          for (int64_t rt = r0; rt < r1; rt += MR) {
            const int64_t rn = std::min<int64_t>(MR, r1 - rt);
            const T* ap[MR];
            for (int r = 0; r < MR; ++r) ap[r] = rowPtr[rt + std::min<int64_t>(r, rn - 1)];
            tile<T>(simd, ap, bp, D, tileOut);
            for (int64_t r = 0; r < rn; ++r) {
              const int64_t row = rt + r;
              for (int64_t c = 0; c < cn; ++c) {
                const T v = tileOut[r * NR + c];
                const int64_t col = c0 + c;
                const int64_t rb = row * J + colText[col];
                if (v > rowBest[rb]) {
                  rowBest[rb] = v;
                  rowArg[rb] = colWord[col];
                }
                if (v > colBest[col]) {
                  colBest[col] = v;
                  colArg[col] = R[row];
                }
              }
            }
          }
        }
      }
      // Means and arg-max outputs of this (image, group).
      int64_t colOffset = 0;
      for (int64_t jl = 0; jl < J; ++jl) {
        const int64_t j = j0 + jl;
        const int64_t kj = static_cast<int64_t>(words[j].size());
        acc_t s1 = 0, s2 = 0;
        int64_t* a1 = argN2K + (i * Bt + j) * N;
        int64_t* a2 = argK2N + (i * Bt + j) * K;
        if (kj > 0)
          for (int64_t r = 0; r < nr; ++r) {
            s1 += acc_t(rowBest[r * J + jl]);
            a1[R[r]] = rowArg[r * J + jl];
          }
        if (nr > 0)
          for (int64_t c = 0; c < kj; ++c) {
            s2 += acc_t(colBest[colOffset + c]);
            a2[colWord[colOffset + c]] = colArg[colOffset + c];
          }
        i2t[i * Bt + j] = (kj > 0 && nr > 0) ? T(s1 / acc_t(nr)) : T(0);
        t2i[i * Bt + j] = (kj > 0 && nr > 0) ? T(s2 / acc_t(kj)) : T(0);
        colOffset += kj;
      }
    }
  });
}

template <typename T>
inline void axpy(T* __restrict y, const T* __restrict x, T a, int64_t D) {
  for (int64_t d = 0; d < D; ++d) y[d] += a * x[d];
}

template <typename T>
void backwardKernel(const T* c1, const T* c2, const T* img, const T* txt, const int64_t* argN2K, const int64_t* argK2N,
                    int64_t Bi, int64_t N, int64_t Bt, int64_t K, int64_t D, T* gimg, T* gtxt) {
  if (gimg)
    at::parallel_for(0, Bi, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        T* gi = gimg + i * N * D;
        for (int64_t j = 0; j < Bt; ++j) {
          const T a = c1[i * Bt + j], b = c2[i * Bt + j];
          const int64_t* a1 = argN2K + (i * Bt + j) * N;
          const int64_t* a2 = argK2N + (i * Bt + j) * K;
          const T* tj = txt + j * K * D;
          if (a != T(0))
            for (int64_t n = 0; n < N; ++n)
              if (a1[n] >= 0) axpy(gi + n * D, tj + a1[n] * D, a, D);
          if (b != T(0))
            for (int64_t k = 0; k < K; ++k)
              if (a2[k] >= 0) axpy(gi + a2[k] * D, tj + k * D, b, D);
        }
      }
    });
  if (gtxt)
    at::parallel_for(0, Bt, 1, [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) {
        T* gt = gtxt + j * K * D;
        for (int64_t i = 0; i < Bi; ++i) {
          const T a = c1[i * Bt + j], b = c2[i * Bt + j];
          const int64_t* a1 = argN2K + (i * Bt + j) * N;
          const int64_t* a2 = argK2N + (i * Bt + j) * K;
          const T* im = img + i * N * D;
          if (a != T(0))
            for (int64_t n = 0; n < N; ++n)
              if (a1[n] >= 0) axpy(gt + a1[n] * D, im + n * D, a, D);
          if (b != T(0))
            for (int64_t k = 0; k < K; ++k)
              if (a2[k] >= 0) axpy(gt + k * D, im + a2[k] * D, b, D);
        }
      }
    });
}

// Scans the [N, K] similarities of image i and text j (element (n, k) at sp[n * ld + k]) for the
// row and column maxima with the same tie rule as the fused kernel (ascending visits, strictly
// larger replaces) and writes the pair's two scores and arg-maxima. colBest/colArg: scratch of K.
template <typename T>
void scanPair(const T* sp, int64_t ld, int64_t i, int64_t j, int64_t Bt, int64_t N, int64_t K, const std::vector<int32_t>& R,
              const std::vector<int32_t>& W, T* i2t, T* t2i, int64_t* argN2K, int64_t* argK2N, T* colBest, int32_t* colArg) {
  using acc_t = double;
  const T ninf = -std::numeric_limits<T>::infinity();
  const int64_t nr = static_cast<int64_t>(R.size()), kj = static_cast<int64_t>(W.size());
  int64_t* a1 = argN2K + (i * Bt + j) * N;
  int64_t* a2 = argK2N + (i * Bt + j) * K;
  if (nr == 0 || kj == 0) return;  // zeros and -1 are already in place
  std::fill(colBest, colBest + kj, ninf);
  acc_t s1 = 0;
  for (int64_t r = 0; r < nr; ++r) {
    const T* row = sp + R[r] * ld;
    T best = ninf;
    int32_t arg = -1;
    for (int64_t c = 0; c < kj; ++c) {
      const T v = row[W[c]];
      if (v > best) {
        best = v;
        arg = W[c];
      }
      if (v > colBest[c]) {
        colBest[c] = v;
        colArg[c] = R[r];
      }
    }
    s1 += acc_t(best);
    a1[R[r]] = arg;
  }
  acc_t s2 = 0;
  for (int64_t c = 0; c < kj; ++c) {
    s2 += acc_t(colBest[c]);
    a2[W[c]] = colArg[c];
  }
  i2t[i * Bt + j] = T(s1 / acc_t(nr));
  t2i[i * Bt + j] = T(s2 / acc_t(kj));
}

#ifdef RADKIT_X86_SIMD
// scanPair for float32 without masks (every row and column real), 16 columns at a time: column
// maxima by strict-greater masked blends (the earliest row keeps a tie), each row's maximum by a
// vector max and then its first position by an equality mask (the lowest column wins a tie): the
// same values and arg-maxima as the scalar scan, without its unpredictable branches.
__attribute__((target("avx512f"))) void scanPairDenseAvx512(const float* sp, int64_t ld, int64_t i, int64_t j, int64_t Bt, int64_t N, int64_t K,
                                                             float* i2t, float* t2i, int64_t* argN2K, int64_t* argK2N, float* colBest,
                                                             int32_t* colArg) {
  int64_t* a1 = argN2K + (i * Bt + j) * N;
  int64_t* a2 = argK2N + (i * Bt + j) * K;
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  const int64_t full = K / 16 * 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (K - full)) - 1u);
  for (int64_t c = 0; c < K; c += 16) {
    const __mmask16 m = c < full ? __mmask16(0xFFFF) : tail;
    _mm512_mask_storeu_ps(colBest + c, m, ninf);
    _mm512_mask_storeu_epi32(colArg + c, m, _mm512_set1_epi32(-1));
  }
  double s1 = 0;
  for (int64_t r = 0; r < N; ++r) {
    const float* row = sp + r * ld;
    const __m512i rv = _mm512_set1_epi32(static_cast<int32_t>(r));
    __m512 rmax = ninf;
    for (int64_t c = 0; c < K; c += 16) {
      const __mmask16 m = c < full ? __mmask16(0xFFFF) : tail;
      const __m512 v = _mm512_mask_loadu_ps(ninf, m, row + c);
      rmax = _mm512_max_ps(rmax, v);
      const __m512 cb = _mm512_mask_loadu_ps(ninf, m, colBest + c);
      const __mmask16 gt = _mm512_mask_cmp_ps_mask(m, v, cb, _CMP_GT_OQ);
      _mm512_mask_storeu_ps(colBest + c, gt, v);
      _mm512_mask_storeu_epi32(colArg + c, gt, rv);
    }
    const float best = _mm512_reduce_max_ps(rmax);
    const __m512 bv = _mm512_set1_ps(best);
    int64_t arg = -1;
    for (int64_t c = 0; c < K; c += 16) {
      const __mmask16 m = c < full ? __mmask16(0xFFFF) : tail;
      const __mmask16 eq = _mm512_mask_cmp_ps_mask(m, _mm512_mask_loadu_ps(ninf, m, row + c), bv, _CMP_EQ_OQ);
      if (eq) {
        arg = c + __builtin_ctz(static_cast<unsigned>(eq));
        break;
      }
    }
    s1 += double(best);
    a1[r] = arg;
  }
  double s2 = 0;
  for (int64_t c = 0; c < K; ++c) {
    s2 += double(colBest[c]);
    a2[c] = colArg[c];
  }
  i2t[i * Bt + j] = float(s1 / double(N));
  t2i[i * Bt + j] = float(s2 / double(K));
}
#endif

// scanPair, or its vectorised twin where it applies (float32, no masked rows or columns, AVX-512).
template <typename T>
inline void scanPairFast(bool dense512, const T* sp, int64_t ld, int64_t i, int64_t j, int64_t Bt, int64_t N, int64_t K, const std::vector<int32_t>& R,
                         const std::vector<int32_t>& W, T* i2t, T* t2i, int64_t* argN2K, int64_t* argK2N, T* colBest, int32_t* colArg) {
#ifdef RADKIT_X86_SIMD
  if constexpr (std::is_same<T, float>::value) {
    if (dense512 && static_cast<int64_t>(R.size()) == N && static_cast<int64_t>(W.size()) == K && N > 0 && K > 0)
      return scanPairDenseAvx512(sp, ld, i, j, Bt, N, K, i2t, t2i, argN2K, argK2N, colBest, colArg);
  }
#endif
  scanPair(sp, ld, i, j, Bt, N, K, R, W, i2t, t2i, argN2K, argK2N, colBest, colArg);
}

// Forward through GEMMs, for D >= kBlasMinD: the similarities of an image and a few texts come from
// one GEMM, then each (image, text) pair is scanned (scanPair).
// With oneDNN (float32, see onednn_gemm.h) every thread runs its own single-threaded GEMMs for its
// (image, text group) tasks into a private buffer of at most 64K floats that stays in its cache, so
// nothing waits between tiles. Otherwise, for a block of images and a block of texts, one BLAS GEMM
// gives the [images * N, texts * K] similarities, scanned in parallel pair by pair; that scratch
// holds at most 8 MiB of float32 and at most an eighth of the outputs' size (so within the contract's
// O(Bi Bt (N + K))), but always one whole (image, text) block. RADKIT_MAXSIM_KERNEL = tiles | blas
// forces the register tiles or this path (benchmarks).
template <typename T>
void forwardBlas(const at::Tensor& img, const at::Tensor& txt, int64_t Bi, int64_t N, int64_t Bt, int64_t K, int64_t D,
                 const std::vector<std::vector<int32_t>>& rows, const std::vector<std::vector<int32_t>>& words,
                 T* i2t, T* t2i, int64_t* argN2K, int64_t* argK2N) {
  const OnednnSgemm sgemm = std::is_same<T, float>::value ? onednnSgemm() : nullptr;
  const bool dense512 = cpuHasAvx512f() && std::getenv("RADKIT_MAXSIM_SCAN") == nullptr;  // RADKIT_MAXSIM_SCAN=scalar: benchmarks
  if (sgemm) {
    static const int64_t tileFloats = std::getenv("RADKIT_MAXSIM_TILE") ? std::max(1L, std::atol(std::getenv("RADKIT_MAXSIM_TILE"))) : 65536;  // benchmarks
    const int64_t group = std::max<int64_t>(1, std::min<int64_t>(Bt, tileFloats / std::max<int64_t>(1, N * K)));  // texts per GEMM
    const int64_t groups = (Bt + group - 1) / group;
    const float* ip = reinterpret_cast<const float*>(img.data_ptr<T>());
    const float* tp = reinterpret_cast<const float*>(txt.data_ptr<T>());
    at::parallel_for(0, Bi * groups, 1, [&](int64_t begin, int64_t end) {
      std::vector<T> S(static_cast<size_t>(N * group * K)), colBest(static_cast<size_t>(K));
      std::vector<int32_t> colArg(static_cast<size_t>(K));
      for (int64_t task = begin; task < end; ++task) {
        const int64_t i = task / groups, j0 = (task % groups) * group, nj = std::min(group, Bt - j0);
        if (sgemm('N', 'T', N, nj * K, D, 1.0f, ip + i * N * D, D, tp + j0 * K * D, D, 0.0f, reinterpret_cast<float*>(S.data()), nj * K) != 0)
          throw std::runtime_error("maxSimilarity: oneDNN's sgemm failed");
        for (int64_t jl = 0; jl < nj; ++jl)
          scanPairFast(dense512, S.data() + jl * K, nj * K, i, j0 + jl, Bt, N, K, rows[i], words[j0 + jl], i2t, t2i, argN2K, argK2N, colBest.data(), colArg.data());
      }
    });
    return;
  }
  const int64_t kTileFloats = std::max<int64_t>(N * K, std::min<int64_t>(int64_t(1) << 21, Bi * Bt * (N + K) / 8));
  const int64_t ct = std::max<int64_t>(1, std::min<int64_t>(Bt, kTileFloats / std::max<int64_t>(1, N * K)));
  const int64_t ci = std::max<int64_t>(1, std::min<int64_t>(Bi, kTileFloats / std::max<int64_t>(1, N * ct * K)));
  const at::Tensor img2 = img.reshape({Bi * N, D}), txt2 = txt.reshape({Bt * K, D});
  for (int64_t i0 = 0; i0 < Bi; i0 += ci) {
    const int64_t ni = std::min(ci, Bi - i0);
    for (int64_t j0 = 0; j0 < Bt; j0 += ct) {
      const int64_t nj = std::min(ct, Bt - j0);
      const at::Tensor S = at::mm(img2.narrow(0, i0 * N, ni * N), txt2.narrow(0, j0 * K, nj * K).t()).contiguous();
      const T* sp = S.data_ptr<T>();
      const int64_t ld = nj * K;
      at::parallel_for(0, ni * nj, 1, [&](int64_t begin, int64_t end) {
        std::vector<T> colBest(K);
        std::vector<int32_t> colArg(K);
        for (int64_t task = begin; task < end; ++task) {
          const int64_t il = task / nj, jl = task % nj;
          scanPairFast(dense512, sp + il * N * ld + jl * K, ld, i0 + il, j0 + jl, Bt, N, K, rows[i0 + il], words[j0 + jl], i2t, t2i, argN2K, argK2N,
                       colBest.data(), colArg.data());
        }
      });
    }
  }
}

}  // namespace

// D below this stays on the fused register tiles (a GEMM call per tile costs more than it saves).
constexpr int64_t kBlasMinD = 32;

MaxSimilarityResult max_similarity_forward_cpu(const at::Tensor& image, const at::Tensor& text,
                                               const at::Tensor& imageMask, const at::Tensor& textMask) {
  const int64_t Bi = image.size(0), N = image.size(1), D = image.size(2);
  const int64_t Bt = text.size(0), K = text.size(1);
  at::Tensor img = image.contiguous(), txt = text.contiguous();
  auto rows = realIndices(imageMask, Bi, N);
  auto words = realIndices(textMask, Bt, K);
  MaxSimilarityResult r;
  r.imageToText = at::zeros({Bi, Bt}, image.options());
  r.textToImage = at::zeros({Bi, Bt}, image.options());
  auto lopt = image.options().dtype(at::kLong);
  r.imageToTextArgmax = at::full({Bi, Bt, N}, -1, lopt);
  r.textToImageArgmax = at::full({Bi, Bt, K}, -1, lopt);
  if (Bi == 0 || Bt == 0) return r;
  const char* kernel = std::getenv("RADKIT_MAXSIM_KERNEL");  // "tiles" | "blas": benchmarks compare both
  const bool blas = kernel ? std::strcmp(kernel, "blas") == 0 : D >= kBlasMinD;
  AT_DISPATCH_FLOATING_TYPES(image.scalar_type(), "maxSimilarity", [&] {
    if (blas)
      forwardBlas<scalar_t>(img, txt, Bi, N, Bt, K, D, rows, words, r.imageToText.data_ptr<scalar_t>(),
                            r.textToImage.data_ptr<scalar_t>(), r.imageToTextArgmax.data_ptr<int64_t>(),
                            r.textToImageArgmax.data_ptr<int64_t>());
    else
      forwardKernel<scalar_t>(img.data_ptr<scalar_t>(), txt.data_ptr<scalar_t>(), Bi, N, Bt, K, D, rows, words,
                              r.imageToText.data_ptr<scalar_t>(), r.textToImage.data_ptr<scalar_t>(),
                              r.imageToTextArgmax.data_ptr<int64_t>(), r.textToImageArgmax.data_ptr<int64_t>());
  });
  return r;
}

std::tuple<at::Tensor, at::Tensor> max_similarity_backward_cpu(const at::Tensor& c1, const at::Tensor& c2,
                                                               const at::Tensor& image, const at::Tensor& text,
                                                               const at::Tensor& argN2K, const at::Tensor& argK2N,
                                                               bool need_image, bool need_text) {
  const int64_t Bi = image.size(0), N = image.size(1), D = image.size(2);
  const int64_t Bt = text.size(0), K = text.size(1);
  at::Tensor img = image.contiguous(), txt = text.contiguous();
  at::Tensor a1 = argN2K.contiguous(), a2 = argK2N.contiguous();
  at::Tensor cc1 = c1.to(image.scalar_type()).contiguous(), cc2 = c2.to(image.scalar_type()).contiguous();
  at::Tensor gi, gt;
  if (need_image) gi = at::zeros_like(img);
  if (need_text) gt = at::zeros_like(txt);
  if (Bi == 0 || Bt == 0 || D == 0) return {gi, gt};
  AT_DISPATCH_FLOATING_TYPES(image.scalar_type(), "maxSimilarity.backward", [&] {
    backwardKernel<scalar_t>(cc1.data_ptr<scalar_t>(), cc2.data_ptr<scalar_t>(), img.data_ptr<scalar_t>(),
                             txt.data_ptr<scalar_t>(), a1.data_ptr<int64_t>(), a2.data_ptr<int64_t>(), Bi, N, Bt, K,
                             D, need_image ? gi.data_ptr<scalar_t>() : nullptr,
                             need_text ? gt.data_ptr<scalar_t>() : nullptr);
  });
  return {gi, gt};
}

}  // namespace detail
}  // namespace ops
}  // namespace radkit
