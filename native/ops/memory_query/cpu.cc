// CPU kernels of memoryQuery.
// Forward: per head, rows are processed in chunks and memory in tiles; each [rows, tile] score
// block is one BLAS GEMM into a fixed-size buffer, then every row merges the tile into its running
// top-k (kept sorted inside the output buffers; see mergeTile for the branchless candidate
// filter). Long memories in float32 are screened instead (screenedSelect: integer GEMMs of
// quantized codes, exact dot products only where a proven bound says a key can enter). Finally the weights and the weighted sum of value rows are computed per row, reading
// values in place (no gathered copy).
// Backward: per row, the weighting and similarity are differentiated over the k selected entries
// only and the query gradient is written; key and value gradients are then accumulated per memory
// row over a CSR index of the (row, slot) pairs that selected it, in a fixed order, so results are
// bit-identical across runs and thread counts (no atomics). The per-row loops are at the end of
// this file, compiled for the x86-64 baseline and for AVX2+FMA (picked at run time).
// core/cpu_simd_variants.inc reads this file twice more with RADKIT_SIMD_PASS defined: only the
// per-row loops (the #else branch at the end) are then compiled, into memory_query_cpu::base and
// memory_query_cpu::avx2.
#ifndef RADKIT_SIMD_PASS
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <type_traits>
#include <limits>
#include <stdexcept>
#include <vector>

#include "../../core/errors.h"
#include "../../core/cpu_simd.h"
#include "../../core/onednn_gemm.h"
#include "memory_query.h"

namespace radkit {
namespace ops {
namespace memory_query_cpu {
constexpr double kNormEps = 1e-12;  // smallest norm used by cosine similarity
constexpr double kShift = 1e-6;     // normalized weighting: u = s - min(0, s_min) + kShift
#define RADKIT_SIMD_LOOPS "../ops/memory_query/cpu.cc"
#include "../../core/cpu_simd_variants.inc"
#if defined(__x86_64__) && defined(__GNUC__)
#define RADKIT_MQ_SIMD(call) (cpuHasAvx2Fma() ? memory_query_cpu::avx2::call : memory_query_cpu::base::call)
#else
#define RADKIT_MQ_SIMD(call) (memory_query_cpu::base::call)
#endif
}  // namespace memory_query_cpu

namespace detail {
namespace {

using memory_query_cpu::kNormEps;

struct Dims {
  int64_t B, L, D, S, Dv, H, dh, dvh, k, R;
};

Dims dimsOf(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& v, const MemoryQueryOptions& o) {
  Dims d;
  d.B = q.size(0);
  d.L = q.size(1);
  d.D = q.size(2);
  d.S = keys.size(0);
  d.Dv = v.size(1);
  d.H = o.heads;
  d.dh = d.D / d.H;
  d.dvh = d.Dv / d.H;
  d.k = o.k;
  d.R = d.B * d.L;
  return d;
}

// Per-vector scales (score = alpha * beta * (q . k)), head-major so a tile's betas are contiguous:
// alpha [H][R] for the queries, beta [H][S] for the keys. Dot: both 1; scaled-dot: alpha =
// 1/sqrt(D/H); cosine: inverse norms (at least 1e-12).
template <typename T>
struct Scales {
  std::vector<T> alpha, beta;
  bool perKey = false;  // beta differs from 1 (cosine)
};

// Inverse Euclidean norms 1 / max(|x|, 1e-12) of the head slices of n vectors, head-major [H][n]
// (cosine similarity); summed in double, 8 independent partial sums so the loop vectorises.
template <typename T>
void inverseHeadNorms(const T* x, int64_t n, const Dims& d, T* out) {
  at::parallel_for(0, n * d.H, 256, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      const int64_t h = o / n, i = o % n;
      const T* v = x + i * d.D + h * d.dh;
      double s[8] = {};
      int64_t j = 0;
      for (; j + 8 <= d.dh; j += 8)
        for (int u = 0; u < 8; ++u) s[u] += static_cast<double>(v[j + u]) * v[j + u];
      for (; j < d.dh; ++j) s[0] += static_cast<double>(v[j]) * v[j];
      const double sum = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
      out[o] = static_cast<T>(1.0 / std::max(std::sqrt(sum), kNormEps));
    }
  });
}

template <typename T>
Scales<T> scalesOf(const T* q, const T* keys, const Dims& d, Similarity sim) {
  Scales<T> sc;
  sc.alpha.assign(static_cast<size_t>(d.H * d.R), sim == Similarity::ScaledDot ? static_cast<T>(1.0 / std::sqrt(static_cast<double>(d.dh))) : T(1));
  sc.beta.assign(static_cast<size_t>(d.H * d.S), T(1));
  if (sim == Similarity::Cosine) {
    inverseHeadNorms(q, d.R, d, sc.alpha.data());
    inverseHeadNorms(keys, d.S, d, sc.beta.data());
    sc.perKey = true;
  }
  return sc;
}

// Exact selection: each [rows, tile] score block is computed by GEMMs into a fixed-size buffer,
// then every row merges the tile into its running top-k (mergeTile). top/idx/count: the running lists.
template <typename T>
void exactSelect(const at::Tensor& q2, const at::Tensor& keys, const bool* mp, const Scales<T>& sc, const Dims& d, T* top, int64_t* idx,
                 std::vector<int32_t>& count) {
  const int64_t Ts = std::min<int64_t>(d.S, 2048);
  const int64_t Rc = std::min<int64_t>(d.R, std::max<int64_t>(64, (int64_t{1} << 20) / Ts));  // <= 2^20 + 64*2048 scores per block
  const at::Tensor blockBuf = at::empty({Rc * Ts}, q2.options());
  // float32 GEMMs through oneDNN where LibTorch loads it (see onednn_gemm.h), else LibTorch's BLAS.
  const OnednnSgemm sgemm = onednnSgemm();
  // With oneDNN each thread scores its own rows (single-threaded GEMM inside the parallel region)
  // and merges them while they are in its cache; otherwise one BLAS call scores the whole block.
  const bool rowGemms = sgemm && std::is_same<T, float>::value;
  int64_t nonFinite = 0;
  for (int64_t h = 0; h < d.H; ++h) {
    const at::Tensor qh = q2.narrow(1, h * d.dh, d.dh);
    const at::Tensor kh = keys.narrow(1, h * d.dh, d.dh);
    for (int64_t r0 = 0; r0 < d.R; r0 += Rc) {
      const int64_t rc = std::min(Rc, d.R - r0);
      const at::Tensor qc = qh.narrow(0, r0, rc);
      for (int64_t s0 = 0, ts = 0; s0 < d.S; s0 += ts) {
        ts = std::min(Ts, d.S - s0);
        at::Tensor block = blockBuf.narrow(0, 0, rc * ts).view({rc, ts});
        T* bp = block.data_ptr<T>();
        if (!rowGemms) at::mm_out(block, qc, kh.narrow(0, s0, ts).t());
        std::vector<int64_t> bad(static_cast<size_t>(rc), 0);
        at::parallel_for(0, rc, rowGemms ? 32 : 16, [&](int64_t i0, int64_t i1) {
          if constexpr (std::is_same<T, float>::value) {
            if (rowGemms && sgemm('N', 'T', i1 - i0, ts, d.dh, 1.0f, qc.data_ptr<float>() + i0 * d.D, d.D, kh.data_ptr<float>() + s0 * d.D, d.D,
                                  0.0f, bp + i0 * ts, ts) != 0)
              throw std::runtime_error("memoryQuery: oneDNN's sgemm failed");
          }
          std::vector<int32_t> cand(static_cast<size_t>(ts));
          std::vector<T> groupMax(static_cast<size_t>(2 * d.k));
          for (int64_t i = i0; i < i1; ++i) {
            const int64_t r = r0 + i, oi = r * d.H + h;
            T* row = bp + i * ts;  // scaled in place
            bad[i] = RADKIT_MQ_SIMD(scaleScores(row, ts, sc.alpha[h * d.R + r], sc.perKey ? sc.beta.data() + h * d.S + s0 : nullptr));
            const bool* mrow = mp ? mp + (r / d.L) * d.S + s0 : nullptr;
            count[oi] = static_cast<int32_t>(RADKIT_MQ_SIMD(mergeTile(row, mrow, ts, s0, d.k, top + oi * d.k, idx + oi * d.k,
                                                                       static_cast<int64_t>(count[oi]), cand.data(), groupMax.data())));
          }
        });
        for (int64_t f : bad) nonFinite += f;
      }
    }
  }
  if (nonFinite)
    argError("ERR_NOT_FINITE", "query and keys must give finite similarity scores (found NaN or infinity in query or keys, or an overflow)");
}

// Screening of long memories with int8 GEMMs (float32 inputs, oneDNN's dnnl_gemm_u8s8s32): every
// query row and key (per head) is quantized to integer codes with one scale, x = s * c + e
// (quantizeRow: |c| <= 127, or 63 without VNNI so the GEMM cannot saturate), each memory tile is
// scored by one integer GEMM of the codes, and only keys whose estimate plus a proven error bound
// can reach a row's k-th score get an exact float32 dot product (screenTile). The selection is the
// top k of those float32 dot products: the bound is proven, not tuned (the exact path ranks GEMM
// entries instead, so the two can differ only where scores are within float32 rounding).
// The bound, for q = sq cq + eq and k = sk ck + ek: q . k - sq sk (cq . ck) = eq . k + sq (cq . ek),
// so by Cauchy-Schwarz it is within |eq||k| + sq|cq||ek| (quantizeRow rounds these norms up). The
// integer product is exact (int32, dh <= 16384); forming the estimate in float32 adds at most
// 3 * 2^-24 of it, and it is below 4.2 |q||k| (|cq sq| <= 2.02 |q| for levels >= 63, dh <= 16384);
// the exact float32 dot product is within 2.1 dh 2^-24 |q||k| of the true one; computing the bounds
// in float32 adds a few roundings of terms below 6 |q||k|. (2.1 dh + 48) 2^-24 |q||k| covers the
// last three. RADKIT_MQ_SCREEN=0 turns screening off, =1 on whatever the CPU (tests; slower
// without VNNI).
constexpr int64_t kScreenMaxDh = 16384;
constexpr int64_t kScreenTile = 1024;  // keys per integer GEMM
constexpr int64_t kScreenRows = 1024;  // query rows per chunk: the [rows, tile] int32 products stay at 4 MiB
constexpr int64_t kScreenMinS = 16384;  // shorter memories are not screened unless forced

bool screeningWanted(const Dims& d) {
  const char* env = std::getenv("RADKIT_MQ_SCREEN");
  if ((env && env[0] == '0') || d.dh > kScreenMaxDh || d.S <= kScreenTile || d.R == 0 || !onednnGemmU8S8S32()) return false;
  if (env && env[0] == '1') return true;
  // Measured on 1-2 threads (bench/RESULTS.md: 2.9x / 4.0x against matmul + topk at S = 100,000).
  // Every stage runs per thread, like the unscreened path's, so more threads are not excluded.
  return d.S >= kScreenMinS && cpuHasVnni();
}

// Per-vector results of quantizeRow, one entry per row or key.
struct QuantStats {
  std::vector<float> scale, norm, err, codeNorm;
  explicit QuantStats(int64_t n) : scale(n), norm(n), err(n), codeNorm(n) {}
};

// Quantizes rows [0, n) of x (row stride ld, dh values each) into codes [n, dh] and st. Returns the
// largest norm, infinity when some row is not finite.
float quantizeRows(const float* x, int64_t n, int64_t ld, int64_t dh, int levels, int offset, uint8_t* codes, QuantStats& st) {
  at::parallel_for(0, n, 64, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      RADKIT_MQ_SIMD(quantizeRow(x + i * ld, dh, levels, offset, codes + i * dh, st.scale[i], st.norm[i], st.err[i], st.codeNorm[i]));
  });
  float mx = 0;
  for (int64_t i = 0; i < n; ++i) mx = std::isfinite(st.norm[i]) ? std::max(mx, st.norm[i]) : std::numeric_limits<float>::infinity();
  return mx;
}

// Screened selection (see above) into the running lists top/idx/count. Returns false, with nothing
// decided, when some input is not finite or a score could overflow: the exact path then runs (and
// reports it).
bool screenedSelect(const at::Tensor& q2, const at::Tensor& keys, const bool* mp, const Scales<float>& sc, const Dims& d, float* top,
                    int64_t* idx, std::vector<int32_t>& count) {
  const OnednnGemmU8S8S32 gemm = onednnGemmU8S8S32();
  const float* qp = q2.data_ptr<float>();
  const float* kp = keys.data_ptr<float>();
  const int levels = cpuHasVnni() ? 127 : 63, offset = levels + 1;  // uint8 query codes c + offset
  const int64_t Rc = std::min(d.R, kScreenRows);
  // The large buffers come from LibTorch's allocator (radkit's caching one reuses them; fresh pages
  // are expensive to fault in).
  const at::Tensor qCodesBuf = at::empty({Rc * d.dh}, q2.options().dtype(at::kByte)), kCodesBuf = at::empty({kScreenTile * d.dh}, q2.options().dtype(at::kByte));
  const at::Tensor prodBuf = at::empty({Rc * kScreenTile}, q2.options().dtype(at::kInt));
  uint8_t* qCodes = qCodesBuf.data_ptr<uint8_t>();
  uint8_t* kCodes = kCodesBuf.data_ptr<uint8_t>();
  int32_t* prod = prodBuf.data_ptr<int32_t>();
  QuantStats qStats(Rc), kStats(kScreenTile);
  std::vector<float> errQ(static_cast<size_t>(Rc));
  const float slack = static_cast<float>((2.1 * static_cast<double>(d.dh) + 48) * 0x1p-24);
  for (int64_t h = 0; h < d.H; ++h) {
    for (int64_t r0 = 0; r0 < d.R; r0 += Rc) {
      const int64_t rc = std::min(Rc, d.R - r0);
      const float qMax = quantizeRows(qp + r0 * d.D + h * d.dh, rc, d.D, d.dh, levels, offset, qCodes, qStats);
      if (!std::isfinite(qMax)) return false;
      for (int64_t i = 0; i < rc; ++i) errQ[i] = qStats.err[i] + slack * qStats.norm[i];
      for (int64_t s0 = 0, ts = 0; s0 < d.S; s0 += ts) {
        ts = std::min(kScreenTile, d.S - s0);
        const float kMax = quantizeRows(kp + s0 * d.D + h * d.dh, ts, d.D, d.dh, levels, 0, kCodes, kStats);
        if (!(static_cast<double>(qMax) * kMax < 1e30)) return false;
        // Each thread scores its own rows, prod[i, t] = (qCodes[i] - offset) . kCodes[t] (exact in
        // int32; single-threaded inside the parallel region), and screens them while they are in its cache.
        at::parallel_for(0, rc, 32, [&](int64_t i0, int64_t i1) {
          const int32_t zero = 0;
          if (gemm('N', 'T', 'F', i1 - i0, ts, d.dh, 1.0f, qCodes + i0 * d.dh, d.dh, static_cast<uint8_t>(offset),
                   reinterpret_cast<const int8_t*>(kCodes), d.dh, 0, 0.0f, prod + i0 * ts, ts, &zero) != 0)
            throw std::runtime_error("memoryQuery: oneDNN's integer GEMM failed");
          std::vector<float> lows(static_cast<size_t>(ts));
          std::vector<uint8_t> flags(static_cast<size_t>(ts + 8));
          std::vector<int32_t> cand(static_cast<size_t>(ts));
          for (int64_t i = i0; i < i1; ++i) {
            const int64_t r = r0 + i, oi = r * d.H + h;
            count[oi] = static_cast<int32_t>(RADKIT_MQ_SIMD(screenTile(
                prod + i * ts, mp ? mp + (r / d.L) * d.S + s0 : nullptr, ts, s0, d.k, top + oi * d.k, idx + oi * d.k,
                static_cast<int64_t>(count[oi]), sc.alpha[h * d.R + r], sc.perKey ? sc.beta.data() + h * d.S + s0 : nullptr, qStats.scale[i],
                errQ[i], qStats.codeNorm[i], kStats.scale.data(), kStats.norm.data(), kStats.err.data(), qp + r * d.D + h * d.dh, kp + h * d.dh, d.D, d.dh,
                lows.data(), flags.data(), cand.data())));
          }
        });
      }
    }
  }
  return true;
}

template <typename T>
void forwardImpl(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values, const at::Tensor& mask,
                 const MemoryQueryOptions& o, const Dims& d, at::Tensor& response, at::Tensor& indices, at::Tensor& weights) {
  const T* qp = q.data_ptr<T>();
  const T* kp = keys.data_ptr<T>();
  const T* vp = values.data_ptr<T>();
  const bool* mp = mask.defined() ? mask.data_ptr<bool>() : nullptr;
  T* top = weights.data_ptr<T>();  // running top-k scores, turned into weights at the end
  int64_t* idx = indices.data_ptr<int64_t>();
  T* out = response.data_ptr<T>();
  const Scales<T> sc = scalesOf(qp, kp, d, o.similarity);
  std::vector<int32_t> count(static_cast<size_t>(d.R * d.H), 0);
  const at::Tensor q2 = q.view({d.R, d.D});
  bool screened = false;
  if constexpr (std::is_same<T, float>::value) screened = screeningWanted(d) && screenedSelect(q2, keys, mp, sc, d, top, idx, count);
  if (!screened) {
    std::fill(count.begin(), count.end(), 0);
    exactSelect(q2, keys, mp, sc, d, top, idx, count);
  }

  // Weights and responses.
  const int normalized = o.weighting == Weighting::Normalized;
  at::parallel_for(0, d.R * d.H, 8, [&](int64_t o0, int64_t o1) {
    for (int64_t oi = o0; oi < o1; ++oi) {
      const int64_t h = oi % d.H;
      RADKIT_MQ_SIMD(weighAndSum(top + oi * d.k, idx + oi * d.k, static_cast<int64_t>(count[oi]), d.k, normalized, vp + h * d.dvh, d.Dv, d.dvh,
                                 out + (oi / d.H) * d.Dv + h * d.dvh));
    }
  });
}

template <typename T>
void backwardImpl(const at::Tensor& gR, const at::Tensor& gW, const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
                  const at::Tensor& indices, const at::Tensor& weights, const MemoryQueryOptions& o, const Dims& d, at::Tensor& gq,
                  at::Tensor& gk, at::Tensor& gv) {
  const T* qp = q.data_ptr<T>();
  const T* kp = keys.data_ptr<T>();
  const T* vp = values.data_ptr<T>();
  const int64_t* ip = indices.data_ptr<int64_t>();
  const T* wp = weights.data_ptr<T>();
  const T* gRp = gR.defined() ? gR.data_ptr<T>() : nullptr;
  const T* gWp = gW.defined() ? gW.data_ptr<T>() : nullptr;
  T* gqp = gq.data_ptr<T>();
  T* gkp = gk.data_ptr<T>();
  T* gvp = gv.data_ptr<T>();
  const int cosine = o.similarity == Similarity::Cosine;
  const int normalized = o.weighting == Weighting::Normalized;
  const Scales<T> sc = scalesOf(qp, kp, d, o.similarity);
  const int64_t RH = d.R * d.H;
  std::vector<T> coefK(static_cast<size_t>(RH * d.k), T(0));

  // 1) Per (row, head): d weights -> d scores -> query gradient; key coefficients for step 3.
  at::parallel_for(0, RH, 8, [&](int64_t o0, int64_t o1) {
    std::vector<double> scratch(static_cast<size_t>(3 * d.k));
    for (int64_t oi = o0; oi < o1; ++oi) {
      const int64_t r = oi / d.H, h = oi % d.H;
      const int64_t* ti = ip + oi * d.k;
      int64_t c = 0;
      while (c < d.k && ti[c] >= 0) ++c;
      const T* betaH = sc.beta.data() + h * d.S;
      auto beta = [betaH](int64_t s) { return betaH[s]; };
      RADKIT_MQ_SIMD(backwardRow(qp + r * d.D + h * d.dh, kp + h * d.dh, d.D, vp + h * d.dvh, d.Dv, ti, wp + oi * d.k, c,
                                 gRp ? gRp + r * d.Dv + h * d.dvh : nullptr, gWp ? gWp + oi * d.k : nullptr, d.dh, d.dvh, sc.alpha[h * d.R + r],
                                 beta, normalized, cosine, gqp + r * d.D + h * d.dh, coefK.data() + oi * d.k, scratch.data()));
    }
  });

  // 2) CSR of (row, slot) entries per (memory row, head), in increasing row order.
  std::vector<int64_t> start(static_cast<size_t>(d.S * d.H + 1), 0);
  for (int64_t oi = 0; oi < RH; ++oi)
    for (int64_t t = 0; t < d.k && ip[oi * d.k + t] >= 0; ++t) start[ip[oi * d.k + t] * d.H + (oi % d.H) + 1]++;
  for (int64_t i = 0; i < d.S * d.H; ++i) start[i + 1] += start[i];
  std::vector<int64_t> entries(static_cast<size_t>(start[d.S * d.H]));
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t oi = 0; oi < RH; ++oi)
      for (int64_t t = 0; t < d.k && ip[oi * d.k + t] >= 0; ++t) entries[fill[ip[oi * d.k + t] * d.H + (oi % d.H)]++] = oi * d.k + t;
  }

  // 3) Key and value gradients per (memory row, head).
  at::parallel_for(0, d.S * d.H, 16, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t s = p / d.H, h = p % d.H;
      RADKIT_MQ_SIMD(memoryRowGrad(entries.data() + start[p], start[p + 1] - start[p], d.k, d.H, coefK.data(), wp, qp + h * d.dh, d.D,
                                   gRp ? gRp + h * d.dvh : nullptr, d.Dv, kp + s * d.D + h * d.dh, sc.beta[h * d.S + s], cosine, d.dh, d.dvh,
                                   gkp + s * d.D + h * d.dh, gvp + s * d.Dv + h * d.dvh));
    }
  });
}

std::vector<int64_t> outShape(const Dims& d) {
  return d.H == 1 ? std::vector<int64_t>{d.B, d.L, d.k} : std::vector<int64_t>{d.B, d.L, d.H, d.k};
}

}  // namespace

MemoryQueryResult memoryQueryForwardCpu(const at::Tensor& query, const at::Tensor& keys, const at::Tensor& values, const at::Tensor& mask,
                                        const MemoryQueryOptions& o) {
  const at::Tensor q = query.contiguous(), k = keys.contiguous(), v = values.contiguous();
  const at::Tensor m = mask.defined() ? mask.contiguous() : mask;
  const Dims d = dimsOf(q, k, v, o);
  at::Tensor response = at::empty({d.B, d.L, d.Dv}, q.options());
  at::Tensor indices = at::empty(outShape(d), q.options().dtype(at::kLong));
  at::Tensor weights = at::empty(outShape(d), q.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "memory_query_cpu", [&] { forwardImpl<scalar_t>(q, k, v, m, o, d, response, indices, weights); });
  return {response, indices, weights};
}

std::array<at::Tensor, 3> memoryQueryBackwardCpu(const at::Tensor& gResponse, const at::Tensor& gWeights, const at::Tensor& query,
                                                 const at::Tensor& keys, const at::Tensor& values, const at::Tensor& indices,
                                                 const at::Tensor& weights, const MemoryQueryOptions& o) {
  const at::Tensor q = query.contiguous(), k = keys.contiguous(), v = values.contiguous();
  const at::Tensor gR = gResponse.defined() ? gResponse.to(q.scalar_type()).contiguous() : gResponse;
  const at::Tensor gW = gWeights.defined() ? gWeights.to(q.scalar_type()).contiguous() : gWeights;
  const Dims d = dimsOf(q, k, v, o);
  at::Tensor gq = at::empty_like(q), gk = at::empty_like(k), gv = at::empty_like(v);
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "memory_query_cpu_backward", [&] {
    backwardImpl<scalar_t>(gR, gW, q, k, v, indices.contiguous(), weights.contiguous(), o, d, gq, gk, gv);
  });
  return {gq, gk, gv};
}

}  // namespace detail
}  // namespace ops
}  // namespace radkit

#else  // RADKIT_SIMD_PASS: the per-row loops, compiled twice (see the top of this file)

// Per-row loops of the memoryQuery CPU kernel, compiled twice through core/cpu_simd_variants.inc:
// for the x86-64 baseline and for AVX2+FMA. Everything here works on one
// (query row, head) or one (memory row, head) at a time; the code above owns the GEMMs, the threads and the
// buffers. Sums use T (like the composite's float GEMMs) with 8 independent partial sums in a fixed
// order, so they vectorise and stay bit-identical across runs and thread counts. No includes here.

template <typename T>
static inline T dotN(const T* a, const T* b, int64_t n) {
  T s[8] = {};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int u = 0; u < 8; ++u) s[u] += a[j + u] * b[j + u];
  T r = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
  for (; j < n; ++j) r += a[j] * b[j];
  return r;
}

template <typename T>
static inline void axpyN(T alpha, const T* x, T* y, int64_t n) {
  for (int64_t j = 0; j < n; ++j) y[j] += alpha * x[j];
}

// Scales one row of a tile in place: sc[t] *= a * beta[t] (beta null: * a only).
// Returns the number of scores that are NaN or larger in magnitude than the dtype's maximum.
template <typename T>
static int64_t scaleScores(T* sc, int64_t ts, T a, const T* beta) {
  const T limit = std::numeric_limits<T>::max();
  int64_t bad = 0;
  if (beta) {
    for (int64_t t = 0; t < ts; ++t) sc[t] *= a * beta[t];
  } else {
    for (int64_t t = 0; t < ts; ++t) sc[t] *= a;
  }
  for (int64_t t = 0; t < ts; ++t) bad += !(std::fabs(sc[t]) <= limit);
  return bad;
}

// Inserts score v (memory row `index`) into a list tv/ti of c entries sorted by descending score,
// after any equal scores (callers insert in index order, so ties keep the lower index first); a
// full list (c == k) drops its last entry. Returns the new count.
template <typename T>
static inline int64_t insertSorted(T* tv, int64_t* ti, int64_t c, int64_t k, T v, int64_t index) {
  int64_t pos = c < k ? c : k - 1;
  while (pos > 0 && tv[pos - 1] < v) {
    tv[pos] = tv[pos - 1];
    ti[pos] = ti[pos - 1];
    --pos;
  }
  tv[pos] = v;
  ti[pos] = index;
  return c < k ? c + 1 : c;
}

// Merges one row's tile of scores sc[0..ts) (memory rows s0..s0+ts, eligibility m or null) into
// its running top-k: tv/ti hold c entries sorted by descending score, ties to the lower index.
// Returns the new count. Only candidates that can still enter are inserted, found by a branchless
// filter against a lower bound: the current k-th score (strictly), and, for long tiles, the k-th
// largest of the maxima of 2k disjoint groups (k elements of the tile are at least that, so
// nothing below it can enter). cand: scratch of ts entries; groupMax: scratch of 2k.
template <typename T>
static int64_t mergeTile(const T* sc, const bool* m, int64_t ts, int64_t s0, int64_t k, T* tv, int64_t* ti, int64_t c,
                         int32_t* cand, T* groupMax) {
  const T inf = std::numeric_limits<T>::infinity();
  T lo = c == k ? std::nextafter(tv[k - 1], inf) : -inf;
  if (ts >= 4 * k) {
    // Group g holds the elements t = g (mod G): the maxima are element-wise maxima of contiguous
    // chunks of G scores, which vectorise.
    const int64_t G = 2 * k;
    for (int64_t g = 0; g < G; ++g) groupMax[g] = -inf;
    for (int64_t t0 = 0; t0 < ts; t0 += G) {
      const int64_t n = std::min(G, ts - t0);
      const T* x = sc + t0;
      if (m) {
        const bool* mm = m + t0;
        for (int64_t g = 0; g < n; ++g) groupMax[g] = std::max(groupMax[g], mm[g] ? x[g] : -inf);
      } else {
        for (int64_t g = 0; g < n; ++g) groupMax[g] = std::max(groupMax[g], x[g]);
      }
    }
    std::nth_element(groupMax, groupMax + (k - 1), groupMax + G, [](T x, T y) { return x > y; });
    lo = std::max(lo, groupMax[k - 1]);
  }
  int64_t n = 0;
  if (m) {
    for (int64_t t = 0; t < ts; ++t) {
      cand[n] = static_cast<int32_t>(t);
      n += (sc[t] >= lo) & m[t];
    }
  } else {
    for (int64_t t = 0; t < ts; ++t) {
      cand[n] = static_cast<int32_t>(t);
      n += sc[t] >= lo;
    }
  }
  T thr = c < k ? -inf : tv[k - 1];
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = cand[i];
    const T v = sc[t];
    if (!(v > thr)) continue;
    c = insertSorted(tv, ti, c, k, v, s0 + t);
    if (c == k) thr = tv[k - 1];
  }
  return c;
}

// Upper bound of the Euclidean norm from a float32 sum of n squares in 8 partial sums: each
// product and addition is off by at most 2^-24 relative and every term is non-negative, so the
// computed sum is within (n + 16) * 2^-24 of the true one; 1e-16 covers squares lost to underflow.
static inline float normUp(float sumSquares, int64_t n) {
  return std::sqrt(sumSquares * (1.0f + static_cast<float>(n + 16) * 0x1p-23f)) * (1.0f + 0x1p-22f) + 1e-16f;
}

// Quantizes one float32 vector x[0..n) to integer codes c in [-levels, levels] with one scale
// (scale = max|x| / levels), stored as bytes c + offset (offset 128 or 64: uint8 GEMM operand; 0:
// int8). Outputs scale, norm = |x|, err = |x - scale * c| and codeNorm = scale * |c|, the norms
// rounded up (normUp); the rounding error of each x - scale * c is below 2^-24 |x_i|, hence the
// + 2^-23 |x| term in err.
// A vector with a non-finite entry gives non-finite norms (the caller then leaves screening).
static void quantizeRow(const float* x, int64_t n, int levels, int offset, uint8_t* code, float& scaleOut, float& normOut, float& errOut,
                        float& codeNormOut) {
  // GCC vector types: 8 lanes = the 8 partial sums, one AVX register in the avx2 build. max |x|
  // goes through the bits with the sign cleared (integer maxima; a NaN gives bits above
  // infinity's, and a NaN norm below).
  typedef float f8 __attribute__((vector_size(32)));
  typedef int32_t i8v __attribute__((vector_size(32)));
  typedef uint32_t u8v __attribute__((vector_size(32)));
  typedef uint8_t b8 __attribute__((vector_size(8)));
  const int64_t n8 = n & ~int64_t{7};
  u8v mb = {};
  f8 sx = {};
  for (int64_t j = 0; j < n8; j += 8) {
    f8 v;
    __builtin_memcpy(&v, x + j, sizeof v);
    const u8v bits = reinterpret_cast<u8v>(v) & 0x7fffffffu;
    mb = mb > bits ? mb : bits;
    sx += v * v;
  }
  uint32_t mbits = 0;
  for (int u = 0; u < 8; ++u) mbits = std::max(mbits, static_cast<uint32_t>(mb[u]));
  for (int64_t j = n8; j < n; ++j) {
    uint32_t bits;
    __builtin_memcpy(&bits, x + j, sizeof bits);
    mbits = std::max(mbits, bits & 0x7fffffffu);
    sx[0] += x[j] * x[j];
  }
  float m;
  __builtin_memcpy(&m, &mbits, sizeof m);
  auto total = [](const f8& v) -> float { return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])); };
  const float norm = normUp(total(sx), n);
  if (!(m >= 1e-30f) || !std::isfinite(m)) {  // zero or tiny: all codes zero, the error is x itself (non-finite: norm says so)
    for (int64_t j = 0; j < n; ++j) code[j] = static_cast<uint8_t>(offset);
    scaleOut = 0;
    normOut = errOut = norm;
    codeNormOut = 0;
    return;
  }
  const float scale = m / static_cast<float>(levels), inv = static_cast<float>(levels) / m;
  const float lim = static_cast<float>(levels), magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  f8 sd = {}, sc = {};
  int64_t j0 = 0;
#if RADKIT_SIMD_AVX2
  // 32 values per step, so the int32 -> uint8 narrowing is two packs and one permute.
  const __m256 vinv = _mm256_set1_ps(inv), vscale = _mm256_set1_ps(scale), vlim = _mm256_set1_ps(lim), vneg = _mm256_set1_ps(-lim);
  const __m256i voff = _mm256_set1_epi32(offset), order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (; j0 + 32 <= n; j0 += 32) {
    __m256i ci[4];
    for (int b = 0; b < 4; ++b) {
      const __m256 v = _mm256_loadu_ps(x + j0 + 8 * b);
      __m256 c = _mm256_round_ps(_mm256_mul_ps(v, vinv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      c = _mm256_min_ps(_mm256_max_ps(c, vneg), vlim);
      const __m256 e = _mm256_fnmadd_ps(vscale, c, v);
      sd = _mm256_fmadd_ps(e, e, sd);
      sc = _mm256_fmadd_ps(c, c, sc);
      ci[b] = _mm256_add_epi32(_mm256_cvtps_epi32(c), voff);
    }
    const __m256i lo = _mm256_packs_epi32(ci[0], ci[1]), hi = _mm256_packs_epi32(ci[2], ci[3]);
    // uint8 codes c + offset in [0, 255] or int8 codes in [-127, 127]: both packs are exact.
    const __m256i bytes = offset ? _mm256_packus_epi16(lo, hi) : _mm256_packs_epi16(lo, hi);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(code + j0), _mm256_permutevar8x32_epi32(bytes, order));
  }
#endif
  for (int64_t j = j0; j < n8; j += 8) {
    f8 v;
    __builtin_memcpy(&v, x + j, sizeof v);
    f8 c = (v * inv + magic) - magic;
    c = c < -lim ? -lim : c;
    c = c > lim ? lim : c;
    const f8 e = v - scale * c;
    sd += e * e;
    sc += c * c;
    const b8 bytes = __builtin_convertvector(__builtin_convertvector(c, i8v) + offset, b8);
    __builtin_memcpy(code + j, &bytes, sizeof bytes);
  }
  for (int64_t j = n8; j < n; ++j) {
    const float c = std::min(std::max((x[j] * inv + magic) - magic, -lim), lim);
    const float e = x[j] - scale * c;
    sd[0] += e * e;
    sc[0] += c * c;
    code[j] = static_cast<uint8_t>(static_cast<int32_t>(c) + offset);
  }
  scaleOut = scale;
  normOut = norm;
  errOut = normUp(total(sd), n) + 0x1p-23f * norm;
  codeNormOut = scale * normUp(total(sc), n) * (1.0f + 0x1p-22f);
}

// Screened merge of one row's tile, float32 only. prod[t] is the exact integer dot product of the
// row's codes with key s0 + t's codes, so the raw dot product q . k lies within
// errQ * kn[t] + codeQ * errK[t] of the estimate rowScale * keyScale[t] * prod[t] (the bound is
// derived in cpu.cc), and every exact score within that, times scale, of the estimate's.
// Only keys whose upper end reaches the gate get an exact dot product (dotN) and are inserted, in
// index order as in mergeTile. The gate is the current k-th score once the list is full, and,
// while it is not, the k-th largest lower end of the tile (k keys of the tile are at least that).
// scale = a * beta (beta null: a); lows: scratch of ts, flags: of ts + 8. Returns the new count.
template <typename T>
static int64_t screenTile(const int32_t* prod, const bool* m, int64_t ts, int64_t s0, int64_t k, T* tv, int64_t* ti, int64_t c, T a,
                          const T* beta, T rowScale, T errQ, T codeQ, const T* keyScale, const T* kn, const T* errK, const T* q,
                          const T* keys, int64_t ldk, int64_t dh, T* lows, uint8_t* flags, int32_t* cand) {
  const T inf = std::numeric_limits<T>::infinity();
  auto estimate = [&](int64_t t) { return rowScale * (keyScale[t] * static_cast<T>(prod[t])); };
  auto bound = [&](int64_t t) { return errQ * kn[t] + codeQ * errK[t]; };
  T thr = c == k ? tv[k - 1] : -inf, gate = thr;
  if (c < k) {
    int64_t n = 0;
    for (int64_t t = 0; t < ts; ++t)
      if (!m || m[t]) lows[n++] = (estimate(t) - bound(t)) * (beta ? a * beta[t] : a);
    if (n >= k) {
      std::nth_element(lows, lows + (k - 1), lows + n, [](T x, T y) { return x > y; });
      gate = lows[k - 1];
    }
  }
  // Pre-filter against the gate at the start of the tile (it only rises below): one flag byte per
  // key in a loop that vectorises, then the flags are read 8 at a time (candidates are rare).
  if (beta) {
    for (int64_t t = 0; t < ts; ++t) flags[t] = (estimate(t) + bound(t)) * (a * beta[t]) >= gate;  // scale > 0
  } else {
    for (int64_t t = 0; t < ts; ++t) flags[t] = (estimate(t) + bound(t)) * a >= gate;
  }
  for (int64_t t = ts; t < ((ts + 7) & ~int64_t{7}); ++t) flags[t] = 0;
  int64_t n = 0;
  for (int64_t t0 = 0; t0 < ts; t0 += 8) {
    uint64_t word;
    __builtin_memcpy(&word, flags + t0, sizeof word);
    for (; word; word &= word - 1) {
      const int64_t t = t0 + __builtin_ctzll(word) / 8;
      cand[n] = static_cast<int32_t>(t);
      n += !m || m[t];
    }
  }
  // The candidates' key rows are rarely in cache: fetch two candidates ahead.
  auto prefetchRow = [&](int64_t i) {
    if (i >= n) return;
    const char* row = reinterpret_cast<const char*>(keys + (s0 + cand[i]) * ldk);
    for (int64_t b = 0; b < dh * static_cast<int64_t>(sizeof(T)); b += 64) __builtin_prefetch(row + b);
  };
  prefetchRow(0);
  prefetchRow(1);
  for (int64_t i = 0; i < n; ++i) {
    prefetchRow(i + 2);
    const int64_t t = cand[i];
    const T scale = beta ? a * beta[t] : a;
    if (!((estimate(t) + bound(t)) * scale >= gate)) continue;
    const T v = dotN(q, keys + (s0 + t) * ldk, dh) * scale;
    if (!(v > thr)) continue;
    c = insertSorted(tv, ti, c, k, v, s0 + t);
    if (c == k) gate = std::max(gate, thr = tv[k - 1]);
  }
  return c;
}

// Turns the c selected scores tv (descending) into weights in place, pads to k (index -1, weight
// 0) and writes the weighted sum of the selected value slices (row stride ldv) into dst[0..dvh).
template <typename T>
static void weighAndSum(T* tv, int64_t* ti, int64_t c, int64_t k, int normalized, const T* values, int64_t ldv, int64_t dvh, T* dst) {
  for (int64_t j = 0; j < dvh; ++j) dst[j] = 0;
  if (c > 0) {
    double sum = 0;
    if (!normalized) {
      const T top = tv[0];
      for (int64_t t = 0; t < c; ++t) {
        tv[t] = std::exp(tv[t] - top);
        sum += tv[t];
      }
    } else {
      const T mn = std::min(T(0), tv[c - 1]);
      for (int64_t t = 0; t < c; ++t) {
        tv[t] = static_cast<T>(static_cast<double>(tv[t]) - mn + kShift);
        sum += tv[t];
      }
    }
    const T inv = static_cast<T>(1.0 / sum);
    for (int64_t t = 0; t < c; ++t) {
      tv[t] *= inv;
      axpyN(tv[t], values + ti[t] * ldv, dst, dvh);
    }
  }
  for (int64_t t = c; t < k; ++t) {
    tv[t] = 0;
    ti[t] = -1;
  }
}

// Backward of one (query row, head): from the response gradient g (dvh, or null) and the weight
// gradient gw (c, or null), the score gradients, the query gradient gq[0..dh) and the key
// coefficients coefK[t] (d loss / d (q . k_t) as seen from the key side). a: the query's scale,
// beta(s): the key scale of memory row s. s: scratch of 3k.
template <typename T, typename Beta>
static void backwardRow(const T* q, const T* keys, int64_t ldk, const T* values, int64_t ldv, const int64_t* ti, const T* w, int64_t c,
                        const T* g, const T* gw, int64_t dh, int64_t dvh, T a, Beta beta, int normalized, int cosine, T* gq, T* coefK,
                        double* s) {
  for (int64_t j = 0; j < dh; ++j) gq[j] = 0;
  if (c == 0) return;
  double* dw = s + c;
  double* ds = dw + c;
  double wdw = 0;
  for (int64_t t = 0; t < c; ++t) {
    double x = gw ? static_cast<double>(gw[t]) : 0.0;
    if (g) x += dotN(g, values + ti[t] * ldv, dvh);
    dw[t] = x;
    wdw += static_cast<double>(w[t]) * x;
  }
  if (!normalized) {
    for (int64_t t = 0; t < c; ++t) ds[t] = static_cast<double>(w[t]) * (dw[t] - wdw);
  } else {
    // u_t = s_t - m + kShift with m = min(0, s_min): the scores themselves are needed (recomputed).
    for (int64_t t = 0; t < c; ++t) s[t] = static_cast<double>(dotN(q, keys + ti[t] * ldk, dh)) * a * beta(ti[t]);
    const double mn = std::min(0.0, s[c - 1]);
    double U = 0, sumds = 0;
    for (int64_t t = 0; t < c; ++t) U += s[t] - mn + kShift;
    for (int64_t t = 0; t < c; ++t) {
      ds[t] = (dw[t] - wdw) / U;
      sumds += ds[t];
    }
    if (s[c - 1] < 0) ds[c - 1] -= sumds;
  }
  for (int64_t t = 0; t < c; ++t) {
    const T f = static_cast<T>(ds[t] * a * beta(ti[t]));
    coefK[t] = f;
    axpyN(f, keys + ti[t] * ldk, gq, dh);
  }
  if (cosine && std::sqrt(static_cast<double>(dotN(q, q, dh))) > kNormEps) {
    // d/dq of (q / |q|): remove the radial part.
    const T proj = a * dotN(q, gq, dh);
    axpyN(-a * proj, q, gq, dh);
  }
}

// Key and value gradient of one (memory row, head) from the (query row, slot) entries that
// selected it: gk = sum coefK * q_row, gv = sum w * g_row, then (cosine) the key's radial part
// removed. entries are (row * H + head) * k + slot.
template <typename T>
static void memoryRowGrad(const int64_t* entries, int64_t n, int64_t k, int64_t H, const T* coefK, const T* w, const T* q, int64_t ldq,
                          const T* g, int64_t ldg, const T* key, T b, int cosine, int64_t dh, int64_t dvh, T* gk, T* gv) {
  for (int64_t j = 0; j < dh; ++j) gk[j] = 0;
  for (int64_t j = 0; j < dvh; ++j) gv[j] = 0;
  for (int64_t e = 0; e < n; ++e) {
    const int64_t ent = entries[e], row = ent / k / H;
    axpyN(coefK[ent], q + row * ldq, gk, dh);
    if (g) axpyN(w[ent], g + row * ldg, gv, dvh);
  }
  if (cosine && n > 0 && std::sqrt(static_cast<double>(dotN(key, key, dh))) > kNormEps) {
    const T proj = b * dotN(key, gk, dh);
    axpyN(-b * proj, key, gk, dh);
  }
}

#endif  // RADKIT_SIMD_PASS
