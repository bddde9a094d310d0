// CPU kernels of memoryQuery.
// Forward: per head, rows are processed in chunks and memory in tiles; each [rows, tile] score
// block is one BLAS GEMM into a fixed-size buffer, then every row merges the tile into its running
// top-k (kept sorted inside the output buffers; a candidate is only inserted when it beats the
// current k-th score). Finally the weights and the weighted sum of value rows are computed per
// row, reading values in place (no gathered copy).
// Backward: per row, scores of the selected entries are recomputed, the weighting and similarity
// are differentiated, and the query gradient is written; key and value gradients are then
// accumulated per memory row over a CSR index of the (row, slot) pairs that selected it, in a
// fixed order, so results are bit-identical across runs and thread counts (no atomics).
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "../../binding/errors.h"
#include "memory_query.h"

namespace radkit {
namespace ops {
namespace detail {
namespace {

constexpr double kNormEps = 1e-12;
constexpr double kShift = 1e-6;

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

// alpha [R*H] (query scale) and beta [S*H] (key scale): score = alpha * beta * (q . k).
template <typename T>
void scales(const T* q, const T* keys, const Dims& d, Similarity sim, T* alpha, T* beta) {
  const T a0 = sim == Similarity::ScaledDot ? static_cast<T>(1.0 / std::sqrt(static_cast<double>(d.dh))) : T(1);
  const bool cos = sim == Similarity::Cosine;
  at::parallel_for(0, d.R * d.H, 256, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      if (!cos) {
        alpha[o] = a0;
        continue;
      }
      const T* x = q + (o / d.H) * d.D + (o % d.H) * d.dh;
      double s = 0;
      for (int64_t i = 0; i < d.dh; ++i) s += static_cast<double>(x[i]) * x[i];
      alpha[o] = static_cast<T>(1.0 / std::max(std::sqrt(s), kNormEps));
    }
  });
  at::parallel_for(0, d.S * d.H, 256, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      if (!cos) {
        beta[o] = T(1);
        continue;
      }
      const T* x = keys + (o / d.H) * d.D + (o % d.H) * d.dh;
      double s = 0;
      for (int64_t i = 0; i < d.dh; ++i) s += static_cast<double>(x[i]) * x[i];
      beta[o] = static_cast<T>(1.0 / std::max(std::sqrt(s), kNormEps));
    }
  });
}

// Weights from the sorted selected scores s[0..c) (descending), into w[0..c).
template <typename T>
void weightsOf(const T* s, int64_t c, Weighting wt, T* w) {
  if (c == 0) return;
  if (wt == Weighting::Softmax) {
    double sum = 0;
    for (int64_t t = 0; t < c; ++t) sum += std::exp(static_cast<double>(s[t]) - static_cast<double>(s[0]));
    for (int64_t t = 0; t < c; ++t) w[t] = static_cast<T>(std::exp(static_cast<double>(s[t]) - static_cast<double>(s[0])) / sum);
  } else {
    const double m = std::min(0.0, static_cast<double>(s[c - 1]));
    double sum = 0;
    for (int64_t t = 0; t < c; ++t) sum += static_cast<double>(s[t]) - m + kShift;
    for (int64_t t = 0; t < c; ++t) w[t] = static_cast<T>((static_cast<double>(s[t]) - m + kShift) / sum);
  }
}

template <typename T>
void forwardImpl(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values, const at::Tensor& mask,
                 const MemoryQueryOptions& o, const Dims& d, at::Tensor& response, at::Tensor& indices, at::Tensor& weights) {
  const T* qp = q.data_ptr<T>();
  const T* kp = keys.data_ptr<T>();
  const T* vp = values.data_ptr<T>();
  const bool* mp = mask.defined() ? mask.data_ptr<bool>() : nullptr;
  T* top = weights.data_ptr<T>();          // running top-k scores, turned into weights at the end
  int64_t* idx = indices.data_ptr<int64_t>();
  T* out = response.data_ptr<T>();
  std::vector<T> alpha(static_cast<size_t>(d.R * d.H)), beta(static_cast<size_t>(d.S * d.H));
  scales(qp, kp, d, o.similarity, alpha.data(), beta.data());
  std::vector<int32_t> count(static_cast<size_t>(d.R * d.H), 0);
  const bool scaled = o.similarity != Similarity::Dot;
  const T limit = std::numeric_limits<T>::max();
  bool nonFinite = false;

  const at::Tensor q2 = q.view({d.R, d.D});
  const int64_t Ts = std::min<int64_t>(d.S, 2048);
  const int64_t Rc = std::min<int64_t>(d.R, std::max<int64_t>(64, (int64_t{1} << 20) / Ts));  // <= 2^20 + 64*2048 scores per block
  for (int64_t h = 0; h < d.H; ++h) {
    const at::Tensor qh = q2.narrow(1, h * d.dh, d.dh);
    const at::Tensor kh = keys.narrow(1, h * d.dh, d.dh);
    for (int64_t r0 = 0; r0 < d.R; r0 += Rc) {
      const int64_t rc = std::min(Rc, d.R - r0);
      const at::Tensor qc = qh.narrow(0, r0, rc);
      for (int64_t s0 = 0; s0 < d.S; s0 += Ts) {
        const int64_t ts = std::min(Ts, d.S - s0);
        const at::Tensor block = at::mm(qc, kh.narrow(0, s0, ts).t()).contiguous();  // [rc, ts]
        const T* bp = block.data_ptr<T>();
        std::vector<uint8_t> bad(static_cast<size_t>(rc), 0);
        at::parallel_for(0, rc, 16, [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i) {
            const int64_t r = r0 + i, oi = r * d.H + h;
            const T* row = bp + i * ts;
            const bool* mrow = mp ? mp + (r / d.L) * d.S + s0 : nullptr;
            const T a = alpha[oi];
            const T* bt = beta.data() + s0 * d.H + h;
            T* tv = top + oi * d.k;
            int64_t* ti = idx + oi * d.k;
            int64_t c = count[oi];
            T thr = c < d.k ? -std::numeric_limits<T>::infinity() : tv[d.k - 1];
            uint8_t flag = 0;
            for (int64_t t = 0; t < ts; ++t) {
              const T v = scaled ? row[t] * a * bt[t * d.H] : row[t];
              flag |= !(std::fabs(v) <= limit);
              if (!(v > thr) || (mrow && !mrow[t])) continue;
              int64_t pos = c < d.k ? c : d.k - 1;
              while (pos > 0 && tv[pos - 1] < v) {
                tv[pos] = tv[pos - 1];
                ti[pos] = ti[pos - 1];
                --pos;
              }
              tv[pos] = v;
              ti[pos] = s0 + t;
              if (c < d.k) ++c;
              if (c == d.k) thr = tv[d.k - 1];
            }
            count[oi] = static_cast<int32_t>(c);
            bad[i] = flag;
          }
        });
        for (uint8_t f : bad) nonFinite |= f != 0;
      }
    }
  }
  if (nonFinite)
    argError("ERR_NOT_FINITE", "query and keys must give finite similarity scores (found NaN or infinity in query or keys, or an overflow)");

  // Weights and responses.
  at::parallel_for(0, d.R * d.H, 8, [&](int64_t o0, int64_t o1) {
    std::vector<T> w(static_cast<size_t>(d.k));
    for (int64_t oi = o0; oi < o1; ++oi) {
      const int64_t c = count[oi];
      T* tv = top + oi * d.k;
      int64_t* ti = idx + oi * d.k;
      weightsOf(tv, c, o.weighting, w.data());
      T* dst = out + (oi / d.H) * d.Dv + (oi % d.H) * d.dvh;
      for (int64_t j = 0; j < d.dvh; ++j) dst[j] = 0;
      for (int64_t t = 0; t < c; ++t) {
        const T wt = w[t];
        const T* src = vp + ti[t] * d.Dv + (oi % d.H) * d.dvh;
        for (int64_t j = 0; j < d.dvh; ++j) dst[j] += wt * src[j];
      }
      for (int64_t t = 0; t < c; ++t) tv[t] = w[t];
      for (int64_t t = c; t < d.k; ++t) {
        tv[t] = 0;
        ti[t] = -1;
      }
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
  const bool cos = o.similarity == Similarity::Cosine;
  std::vector<T> alpha(static_cast<size_t>(d.R * d.H)), beta(static_cast<size_t>(d.S * d.H));
  scales(qp, kp, d, o.similarity, alpha.data(), beta.data());
  const int64_t RH = d.R * d.H;
  std::vector<T> coefK(static_cast<size_t>(RH * d.k), T(0));

  // 1) Per row: d weights -> d scores -> query gradient; key coefficients for step 3.
  at::parallel_for(0, RH, 8, [&](int64_t o0, int64_t o1) {
    std::vector<double> s(static_cast<size_t>(d.k)), dw(static_cast<size_t>(d.k)), ds(static_cast<size_t>(d.k));
    std::vector<double> acc(static_cast<size_t>(d.dh));
    for (int64_t oi = o0; oi < o1; ++oi) {
      const int64_t h = oi % d.H;
      const T* qrow = qp + (oi / d.H) * d.D + h * d.dh;
      const int64_t* ti = ip + oi * d.k;
      const T* w = wp + oi * d.k;
      T* gqrow = gqp + (oi / d.H) * d.D + h * d.dh;
      int64_t c = 0;
      while (c < d.k && ti[c] >= 0) ++c;
      for (int64_t j = 0; j < d.dh; ++j) gqrow[j] = 0;
      if (c == 0) continue;
      const double a = alpha[oi];
      double wdw = 0;
      for (int64_t t = 0; t < c; ++t) {
        const T* krow = kp + ti[t] * d.D + h * d.dh;
        double dot = 0;
        for (int64_t j = 0; j < d.dh; ++j) dot += static_cast<double>(qrow[j]) * krow[j];
        s[t] = dot * a * static_cast<double>(beta[ti[t] * d.H + h]);
        double g = gWp ? static_cast<double>(gWp[oi * d.k + t]) : 0.0;
        if (gRp) {
          const T* vrow = vp + ti[t] * d.Dv + h * d.dvh;
          const T* grow = gRp + (oi / d.H) * d.Dv + h * d.dvh;
          double dv = 0;
          for (int64_t j = 0; j < d.dvh; ++j) dv += static_cast<double>(grow[j]) * vrow[j];
          g += dv;
        }
        dw[t] = g;
        wdw += static_cast<double>(w[t]) * g;
      }
      if (o.weighting == Weighting::Softmax) {
        for (int64_t t = 0; t < c; ++t) ds[t] = static_cast<double>(w[t]) * (dw[t] - wdw);
      } else {
        const double m = std::min(0.0, s[c - 1]);
        double U = 0;
        for (int64_t t = 0; t < c; ++t) U += s[t] - m + kShift;
        double sumdu = 0;
        for (int64_t t = 0; t < c; ++t) {
          ds[t] = (dw[t] - wdw) / U;
          sumdu += ds[t];
        }
        if (s[c - 1] < 0) ds[c - 1] -= sumdu;
      }
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t t = 0; t < c; ++t) {
        const double b = beta[ti[t] * d.H + h];
        const double f = ds[t] * b;
        const T* krow = kp + ti[t] * d.D + h * d.dh;
        for (int64_t j = 0; j < d.dh; ++j) acc[j] += f * krow[j];
        coefK[oi * d.k + t] = static_cast<T>(ds[t] * a * b);
      }
      for (int64_t j = 0; j < d.dh; ++j) acc[j] *= a;
      if (cos) {
        double qn = 0;
        for (int64_t j = 0; j < d.dh; ++j) qn += static_cast<double>(qrow[j]) * qrow[j];
        if (std::sqrt(qn) > kNormEps) {
          double proj = 0;
          for (int64_t j = 0; j < d.dh; ++j) proj += a * qrow[j] * acc[j];
          for (int64_t j = 0; j < d.dh; ++j) acc[j] -= a * qrow[j] * proj;
        }
      }
      for (int64_t j = 0; j < d.dh; ++j) gqrow[j] = static_cast<T>(acc[j]);
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
    std::vector<double> ak(static_cast<size_t>(d.dh)), av(static_cast<size_t>(d.dvh));
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t sIdx = p / d.H, h = p % d.H;
      std::fill(ak.begin(), ak.end(), 0.0);
      std::fill(av.begin(), av.end(), 0.0);
      for (int64_t e = start[p]; e < start[p + 1]; ++e) {
        const int64_t ent = entries[e], oi = ent / d.k;
        const double ck = coefK[ent];
        const T* qrow = qp + (oi / d.H) * d.D + h * d.dh;
        for (int64_t j = 0; j < d.dh; ++j) ak[j] += ck * qrow[j];
        if (gRp) {
          const double w = wp[ent];
          const T* grow = gRp + (oi / d.H) * d.Dv + h * d.dvh;
          for (int64_t j = 0; j < d.dvh; ++j) av[j] += w * grow[j];
        }
      }
      const T* krow = kp + sIdx * d.D + h * d.dh;
      if (cos && start[p + 1] > start[p]) {
        double kn = 0;
        for (int64_t j = 0; j < d.dh; ++j) kn += static_cast<double>(krow[j]) * krow[j];
        if (std::sqrt(kn) > kNormEps) {
          const double b = beta[p];
          double proj = 0;
          for (int64_t j = 0; j < d.dh; ++j) proj += b * krow[j] * ak[j];
          for (int64_t j = 0; j < d.dh; ++j) ak[j] -= b * krow[j] * proj;
        }
      }
      T* gkrow = gkp + sIdx * d.D + h * d.dh;
      for (int64_t j = 0; j < d.dh; ++j) gkrow[j] = static_cast<T>(ak[j]);
      T* gvrow = gvp + sIdx * d.Dv + h * d.dvh;
      for (int64_t j = 0; j < d.dvh; ++j) gvrow[j] = static_cast<T>(av[j]);
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
