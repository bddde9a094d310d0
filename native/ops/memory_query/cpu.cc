// CPU kernels of memoryQuery.
// Forward: per head, rows are processed in chunks and memory in tiles; each [rows, tile] score
// block is one BLAS GEMM into a fixed-size buffer, then every row merges the tile into its running
// top-k (kept sorted inside the output buffers; see mergeTile for the branchless candidate
// filter). Finally the weights and the weighted sum of value rows are computed per row, reading
// values in place (no gathered copy).
// Backward: per row, the weighting and similarity are differentiated over the k selected entries
// only and the query gradient is written; key and value gradients are then accumulated per memory
// row over a CSR index of the (row, slot) pairs that selected it, in a fixed order, so results are
// bit-identical across runs and thread counts (no atomics). The per-row loops live in
// cpu_loops.inc, compiled for the x86-64 baseline and for AVX2+FMA (picked at run time).
#include <ATen/Context.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <type_traits>
#include <limits>
#include <vector>

#include "../../binding/errors.h"
#include "../cpu_simd.h"
#include "memory_query.h"

namespace radkit {
namespace ops {
namespace memory_query_cpu {
constexpr double kNormEps = 1e-12;  // smallest norm used by cosine similarity
constexpr double kShift = 1e-6;     // normalized weighting: u = s - min(0, s_min) + kShift
#define RADKIT_SIMD_LOOPS "memory_query/cpu_loops.inc"
#include "../cpu_simd_variants.inc"
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

// Euclidean norms of the head slices of n vectors, head-major [H][n]: inverse = true gives
// 1 / max(norm, 1e-12) (cosine), false the norm rounded up (screening bounds).
template <typename T>
void headNorms(const T* x, int64_t n, const Dims& d, T* out, bool inverse) {
  at::parallel_for(0, n * d.H, 256, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      const int64_t h = o / n, i = o % n;
      const T* v = x + i * d.D + h * d.dh;
      double s = 0;
      for (int64_t j = 0; j < d.dh; ++j) s += static_cast<double>(v[j]) * v[j];
      out[o] = static_cast<T>(inverse ? 1.0 / std::max(std::sqrt(s), kNormEps) : std::sqrt(s) * (1 + 1e-6));
    }
  });
}

template <typename T>
Scales<T> scalesOf(const T* q, const T* keys, const Dims& d, Similarity sim) {
  Scales<T> sc;
  sc.alpha.assign(static_cast<size_t>(d.H * d.R), sim == Similarity::ScaledDot ? static_cast<T>(1.0 / std::sqrt(static_cast<double>(d.dh))) : T(1));
  sc.beta.assign(static_cast<size_t>(d.H * d.S), T(1));
  if (sim == Similarity::Cosine) {
    headNorms(q, d.R, d, sc.alpha.data(), true);
    headNorms(keys, d.S, d, sc.beta.data(), true);
    sc.perKey = true;
  }
  return sc;
}

// Screening of long memories with bfloat16 GEMMs (float32 inputs, CPUs with AVX512-BF16): each
// memory tile is scored by a bfloat16 GEMM, and only memory rows whose estimate plus its error
// bound can reach a row's k-th score get an exact float32 dot product (screenTile). The selection
// is the exact path's: the bound is proven, not tuned.
// Error of the estimate, with u = 2^-8 (bfloat16) and w = 2^-24 (float32): rounding q and k to
// bfloat16 moves each product by at most (2u + u^2)|q_i||k_i|; the GEMM sums in float32 (oneDNN's
// documented bf16 accumulation: at most dh*w*sum|q_i k_i|) and rounds the result to bfloat16
// (u|estimate|); the exact dot product itself is within dh*w*sum|q_i||k_i| of the true one. With
// sum|q_i||k_i| <= |q||k| the total is below (3u + u^2 + 2.1*dh*w)|q||k| <= 2^-6 |q||k| for
// dh <= 16384 (flushed subnormals add < 1e-30). RADKIT_MQ_SCREEN=0 turns screening off, =1 on
// whatever the CPU (tests; slow without BF16 hardware).
constexpr double kScreenErr = 1.0 / 64;
constexpr int64_t kScreenMaxDh = 16384;
constexpr int64_t kScreenTile = 2048;  // keys per bfloat16 GEMM

bool screeningWanted(const Dims& d) {
  const char* env = std::getenv("RADKIT_MQ_SCREEN");
  if ((env && env[0] == '0') || d.dh > kScreenMaxDh || d.S <= kScreenTile || d.R == 0) return false;
  if (env && env[0] == '1') return true;
  // oneDNN runs bf16 GEMMs on that hardware. It pays off on 1-2 threads only: measured on a 16-core
  // Xeon (S = 100,000), screened vs unscreened 360 / 406 ms on 1 thread, 271 / 313 on 2, 225 / 204
  // on 4, 174 / 127 on 16 (see bench/RESULTS.md).
  return d.S >= 8 * kScreenTile && cpuHasAvx512Bf16() && at::hasMKLDNN() && at::get_num_threads() <= 2;
}

// |q| per (head, row) and |k| per (head, key), rounded up, for the bounds; false when some input is
// not finite or a score could overflow (the exact path then reports it).
template <typename T>
bool screeningNorms(const T* q, const T* keys, const Dims& d, std::vector<T>& qn, std::vector<T>& kn) {
  qn.resize(static_cast<size_t>(d.H * d.R));
  kn.resize(static_cast<size_t>(d.H * d.S));
  headNorms(q, d.R, d, qn.data(), false);
  headNorms(keys, d.S, d, kn.data(), false);
  T qmax = 0, kmax = 0;
  for (T x : qn) qmax = std::isfinite(x) ? std::max(qmax, x) : std::numeric_limits<T>::infinity();
  for (T x : kn) kmax = std::isfinite(x) ? std::max(kmax, x) : std::numeric_limits<T>::infinity();
  if (!(static_cast<double>(qmax) * kmax < 1e30)) return false;
  for (T& x : qn) x = static_cast<T>(kScreenErr * x + 1e-15);  // errRow: |exact - estimate| <= errRow * kn
  for (T& x : kn) x += static_cast<T>(1e-15);
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
  int64_t nonFinite = 0;

  const at::Tensor q2 = q.view({d.R, d.D});
  const int64_t Ts = std::min<int64_t>(d.S, 2048);
  const int64_t Rc = std::min<int64_t>(d.R, std::max<int64_t>(64, (int64_t{1} << 20) / Ts));  // <= 2^20 + 64*2048 scores per block
  std::vector<T> errRow, kn;
  const bool screen = std::is_same<T, float>::value && screeningWanted(d) && screeningNorms(qp, kp, d, errRow, kn);
  const at::Tensor blockBuf = screen ? at::Tensor() : at::empty({Rc * Ts}, q.options());  // exact path's score blocks
  for (int64_t h = 0; h < d.H; ++h) {
    const at::Tensor qh = q2.narrow(1, h * d.dh, d.dh);
    const at::Tensor kh = keys.narrow(1, h * d.dh, d.dh);
    for (int64_t r0 = 0; r0 < d.R; r0 += Rc) {
      const int64_t rc = std::min(Rc, d.R - r0);
      const at::Tensor qc = qh.narrow(0, r0, rc);
      const at::Tensor qb = screen ? qc.to(at::kBFloat16) : at::Tensor();
      // Screening takes tiles of kScreenTile keys, the first one too (no float32 BLAS call, so
      // oneDNN's threads have the cores).
      for (int64_t s0 = 0, ts = 0; s0 < d.S; s0 += ts) {
        ts = std::min(screen ? kScreenTile : Ts, d.S - s0);
        if (screen) {
          const at::Tensor approx = at::mm(qb, kh.narrow(0, s0, ts).to(at::kBFloat16).t());  // [rc, ts] bfloat16
          const uint16_t* ap = reinterpret_cast<const uint16_t*>(approx.data_ptr<at::BFloat16>());
          at::parallel_for(0, rc, 16, [&](int64_t i0, int64_t i1) {
            std::vector<T> lows(static_cast<size_t>(ts));
            std::vector<uint8_t> flags(static_cast<size_t>(ts + 8));
            for (int64_t i = i0; i < i1; ++i) {
              const int64_t r = r0 + i, oi = r * d.H + h;
              count[oi] = static_cast<int32_t>(RADKIT_MQ_SIMD(screenTile(
                  ap + i * ts, mp ? mp + (r / d.L) * d.S + s0 : nullptr, ts, s0, d.k, top + oi * d.k, idx + oi * d.k, static_cast<int64_t>(count[oi]),
                  sc.alpha[h * d.R + r], sc.perKey ? sc.beta.data() + h * d.S + s0 : nullptr, kn.data() + h * d.S + s0, errRow[h * d.R + r],
                  qp + r * d.D + h * d.dh, kp + h * d.dh, d.D, d.dh, lows.data(), flags.data())));
            }
          });
          continue;
        }
        at::Tensor block = blockBuf.narrow(0, 0, rc * ts).view({rc, ts});
        at::mm_out(block, qc, kh.narrow(0, s0, ts).t());
        T* bp = block.data_ptr<T>();
        std::vector<int64_t> bad(static_cast<size_t>(rc), 0);
        at::parallel_for(0, rc, 16, [&](int64_t i0, int64_t i1) {
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
