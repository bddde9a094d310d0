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
// bit-identical across runs and thread counts (no atomics). The per-row loops live in
// cpu_loops.inc, compiled for the x86-64 baseline and for AVX2+FMA (picked at run time).
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
#define RADKIT_SIMD_LOOPS "../ops/memory_query/cpu_loops.inc"
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
