// CPU kernel of sinkhorn: one problem per task of at::parallel_for, everything in a per-thread
// workspace (the cost scaled by -1/epsilon, its transpose, the absorbed kernel and its transpose;
// the iterations are stabilised scaling, see the loops at the end), loops vectorised for AVX2+FMA when
// the CPU has them (runtime check), else for the x86-64 baseline. Deterministic: a problem's
// arithmetic never depends on the thread count or on the other problems.
// core/cpu_simd_variants.inc reads this file twice more with RADKIT_SIMD_PASS defined: only the
// per-problem loops (the #else branch at the end) are then compiled, into sinkhorn_cpu::base and
// sinkhorn_cpu::avx2.
#ifndef RADKIT_SIMD_PASS
#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../../core/cpu_simd.h"
#include "sinkhorn.h"

namespace radkit {
namespace ops {
namespace sinkhorn_cpu {
#define RADKIT_SIMD_LOOPS "../ops/sinkhorn/cpu.cc"
#define RADKIT_SIMD_NO_TRAPPING 1
#include "../../core/cpu_simd_variants.inc"
}  // namespace sinkhorn_cpu

namespace detail {

SinkhornResult sinkhornCpu(const at::Tensor& cost, const at::Tensor& a, const at::Tensor& b, const SinkhornOptions& o) {
  const at::Tensor C = cost.contiguous();
  const at::Tensor A = a.contiguous(), Bm = b.contiguous();
  const int64_t B = C.size(0), M = C.size(1), N = C.size(2);
  at::Tensor plan = at::mul(C, -1.0 / o.epsilon).contiguous();  // workspace: -C / eps, then the plan
  const at::Tensor la = A.log(), lb = Bm.log();
  at::Tensor distance = at::empty({B}, C.options());
  at::Tensor err = at::empty({B}, C.options());
  at::Tensor iters = at::empty({B}, C.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES(C.scalar_type(), "sinkhorn_cpu", [&] {
    using T = scalar_t;
    T* P = plan.data_ptr<T>();
    const T* Cp = C.data_ptr<T>();
    const T *ap = A.data_ptr<T>(), *bp = Bm.data_ptr<T>(), *lap = la.data_ptr<T>(), *lbp = lb.data_ptr<T>();
    T *dp = distance.data_ptr<T>(), *ep = err.data_ptr<T>();
    int64_t* ip = iters.data_ptr<int64_t>();
    const int64_t MN = std::max(M, N);
    at::parallel_for(0, B, 1, [&](int64_t p0, int64_t p1) {
      std::vector<T> ws(static_cast<size_t>(3 * M * N + 3 * M + 2 * N + 3 * MN));
      T* cst = ws.data();
      T* Kk = cst + M * N;
      T* KT = Kk + M * N;
      T* u = KT + M * N;
      T* v = u + M;
      T* acc = v + N;
      T* F = acc + MN;
      T* Fn = F + M;
      T* G = Fn + M;
      T* cmax = G + N;
      T* csum = cmax + MN;
      for (int64_t p = p0; p < p1; ++p) {
        auto args = std::make_tuple(P + p * M * N, cst, Kk, KT, u, v, acc, Cp + p * M * N, lap + p * M, lbp + p * N, ap + p * M, bp + p * N, M, N,
                                    o.maxIterations, o.tolerance, F, G, Fn, cmax, csum, dp + p, ip + p, ep + p);
#if defined(__x86_64__) && defined(__GNUC__)
        if (cpuHasAvx2Fma()) {
          std::apply([](auto&&... x) { sinkhorn_cpu::avx2::solveProblem<T>(x...); }, args);
          continue;
        }
#endif
        std::apply([](auto&&... x) { sinkhorn_cpu::base::solveProblem<T>(x...); }, args);
      }
    });
  });
  return {plan, distance, iters, err};
}

}  // namespace detail
}  // namespace ops
}  // namespace radkit

#else  // RADKIT_SIMD_PASS: the per-problem loops, compiled twice (see the top of this file)

// Log-domain Sinkhorn loops for one problem, compiled twice through core/cpu_simd_variants.inc (for
// the x86-64 baseline and for AVX2+FMA), so the inner loops (and the polynomial exp below) are
// auto-vectorised for the CPU the addon runs on. No includes here.

// exp(x) for float: Cephes-style range reduction + degree-6 polynomial (about 1 ulp), written
// without branches or library calls so the compiler vectorises loops calling it. exp(x) = 0 for
// x < -87.3 (the float denormal range is flushed), x is clamped at 88.
static inline __attribute__((always_inline)) float vexp(float x) {
  const float xc = x < -87.3f ? -87.3f : (x > 88.0f ? 88.0f : x);
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer held in the mantissa
  const float kn = xc * 1.44269504088896341f + magic;
  const float n = kn - magic;
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  const float y = p * r * r + r + 1.0f;
  int32_t kbits;
  __builtin_memcpy(&kbits, &kn, 4);
  const int32_t e = (kbits - 0x4B400000 + 127) << 23;
  float scale;
  __builtin_memcpy(&scale, &e, 4);
  return x < -87.3f ? 0.0f : y * scale;
}

// exp(x) for double: Cephes exp (Pade form), about 1e-16 relative; 0 below -708, clamped at 709.
static inline __attribute__((always_inline)) double vexp(double x) {
  const double xc = x < -708.0 ? -708.0 : (x > 709.0 ? 709.0 : x);
  const double magic = 6755399441055744.0;  // 1.5 * 2^52
  const double kn = xc * 1.4426950408889634073599 + magic;
  const double n = kn - magic;
  double r = xc - n * 6.93145751953125E-1;
  r = r - n * 1.42860682030941723212E-6;
  const double rr = r * r;
  const double px = r * ((1.26177193074810590878E-4 * rr + 3.02994407707441961300E-2) * rr + 9.99999999999999999910E-1);
  const double qx = ((3.00198505138664455042E-6 * rr + 2.52448340349684104192E-3) * rr + 2.27265548208155028766E-1) * rr +
                    2.00000000000000000009E0;
  const double y = 1.0 + 2.0 * (px / (qx - px));
  int64_t kbits;
  __builtin_memcpy(&kbits, &kn, 8);
  const int64_t e = (kbits - 0x4338000000000000LL + 1023) << 52;
  double scale;
  __builtin_memcpy(&scale, &e, 8);
  return x < -708.0 ? 0.0 : y * scale;
}

// out_c = lbase_c - LSE_r(vec_r + mat[r][c]) for a row-major [R][C] matrix, streaming rows and
// vectorised over c (no horizontal reductions, so no fast-math is needed to vectorise it).
template <typename T>
static inline void lseUpdate(const T* mat, const T* vec, const T* lbase, int64_t R, int64_t C, T* cmax, T* csum, T* out) {
  for (int64_t c = 0; c < C; ++c) {
    cmax[c] = -std::numeric_limits<T>::infinity();
    csum[c] = 0;
  }
  for (int64_t r = 0; r < R; ++r) {
    const T* row = mat + r * C;
    const T vr = vec[r];
    for (int64_t c = 0; c < C; ++c) {
      const T v = vr + row[c];
      cmax[c] = v > cmax[c] ? v : cmax[c];
    }
  }
  for (int64_t r = 0; r < R; ++r) {
    const T* row = mat + r * C;
    const T vr = vec[r];
    for (int64_t c = 0; c < C; ++c) csum[c] += vexp(vr + row[c] - cmax[c]);
  }
  for (int64_t c = 0; c < C; ++c) out[c] = lbase[c] - cmax[c] - std::log(csum[c]);
}

// K[i][j] = exp(F_i + G_j + cs[i][j]) into K [M*N] and its transpose KT [N*M].
template <typename T>
static inline void buildKernel(const T* cs, const T* F, const T* G, int64_t M, int64_t N, T* K, T* KT) {
  for (int64_t i = 0; i < M; ++i) {
    const T fi = F[i];
    const T* row = cs + i * N;
    T* krow = K + i * N;
    for (int64_t j = 0; j < N; ++j) krow[j] = vexp(fi + G[j] + row[j]);
  }
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) KT[j * M + i] = K[i * N + j];
}

// acc_c = sum_r mat[r][c] * vec[r] for a row-major [R][C] matrix (vectorised over c).
template <typename T>
static inline void matVec(const T* mat, const T* vec, int64_t R, int64_t C, T* acc) {
  for (int64_t c = 0; c < C; ++c) acc[c] = 0;
  for (int64_t r = 0; r < R; ++r) {
    const T* row = mat + r * C;
    const T vr = vec[r];
    for (int64_t c = 0; c < C; ++c) acc[c] += row[c] * vr;
  }
}

// Solves one problem. All potentials are divided by epsilon: F = f / eps, G = g / eps.
//   cs  [M*N]  -C / eps on entry, the plan on exit;  cst [N*M] scratch (its transpose)
//   K, KT [M*N] scratch: the absorbed kernel and its transpose;  u [M], v [N], acc [max(M, N)]
//   cost [M*N] the cost (for the distance); la, lb = log a, log b; a, b the marginals
//   F [M], G [N], Fn [M], cmax, csum [max(M, N)] scratch
// Iteration = one F update then one G update (Algorithm 1: alpha first, then beta), exactly the
// log-domain updates F'_i = log a_i - LSE_j(G_j - C_ij / eps) (and G likewise), computed by
// stabilised scaling (Schmitzer 2019, absorption): with absorbed potentials (F, G) and
// K = exp(F_i + G_j - C_ij / eps), the iterates are F + log u, G + log v with u = a / (K v),
// v = b / (K^T u): two matrix-vector products per iteration instead of two passes of exps. When a
// scaling leaves [1e-10, 1e10] the scalings are absorbed into (F, G) and K is rebuilt; an update
// that underflows (a zero kernel row or column at small epsilon) is redone in the log domain.
// Before iteration t >= 1 applies its F update, the row-marginal L1 error of the current plan is
//   sum_i a_i |u_i / u'_i - 1|   (the column marginals are exact right after a G update),
// and the problem stops when it is below `tol`.
template <typename T>
void solveProblem(T* cs, T* cst, T* K, T* KT, T* u, T* v, T* acc, const T* cost, const T* la, const T* lb, const T* a,
                  const T* b, int64_t M, int64_t N, int64_t maxIter, double tol, T* F, T* G, T* Fn, T* cmax, T* csum,
                  T* distanceOut, int64_t* itersOut, T* errOut) {
  const T lo = T(1e-10), hi = T(1e10);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) cst[j * M + i] = cs[i * N + j];
  for (int64_t j = 0; j < N; ++j) G[j] = 0;
  auto absorb = [&]() {
    for (int64_t i = 0; i < M; ++i) {
      if (u[i] != T(1)) F[i] += std::log(u[i]);
      u[i] = 1;
    }
    for (int64_t j = 0; j < N; ++j) {
      if (v[j] != T(1)) G[j] += std::log(v[j]);
      v[j] = 1;
    }
    buildKernel(cs, F, G, M, N, K, KT);
  };
  // Scaling update s_k = m_k / acc_k (s_k = 0 where m_k = 0). Returns 0: fine, 1: outside [lo, hi]
  // (absorb), 2: not finite (redo in the log domain).
  auto scale = [&](const T* m, const T* sums, int64_t n, T* s) {
    int status = 0;
    for (int64_t k = 0; k < n; ++k) {
      if (m[k] == T(0)) {
        s[k] = 0;
        continue;
      }
      const T x = m[k] / sums[k];
      s[k] = x;
      if (!(x <= hi)) status = std::isfinite(x) ? std::max(status, 1) : 2;
      else if (x < lo) status = std::max(status, 1);
    }
    return status;
  };
  int64_t it = 0;
  if (maxIter > 0) {
    // Iteration 0's F update in the log domain: exp(-C / eps) alone may underflow at small epsilon.
    lseUpdate(cst, G, la, N, M, cmax, csum, F);
    for (int64_t i = 0; i < M; ++i) u[i] = 1;
    for (int64_t j = 0; j < N; ++j) v[j] = 1;
    buildKernel(cs, F, G, M, N, K, KT);
    for (;;) {
      // G update: v_j = b_j / (K^T u)_j
      matVec(K, u, M, N, acc);
      int st = scale(b, acc, N, v);
      if (st == 2) {
        for (int64_t j = 0; j < N; ++j) v[j] = 1;
        absorb();
        lseUpdate(cs, F, lb, M, N, cmax, csum, G);
        buildKernel(cs, F, G, M, N, K, KT);
      } else if (st == 1) {
        absorb();
      }
      if (++it >= maxIter) break;
      // F update: u'_i = a_i / (K v)_i
      matVec(KT, v, N, M, acc);
      st = scale(a, acc, M, Fn);
      if (st == 2) {
        absorb();  // the current scalings into (F, G), then the exact log-domain update into Fn
        lseUpdate(cst, G, la, N, M, cmax, csum, Fn);
        if (tol > 0) {
          double err = 0;
          for (int64_t i = 0; i < M; ++i)
            if (a[i] > 0) err += static_cast<double>(a[i]) * std::fabs(std::expm1(static_cast<double>(F[i]) - static_cast<double>(Fn[i])));
          if (err < tol) break;
        }
        for (int64_t i = 0; i < M; ++i) F[i] = Fn[i];
        buildKernel(cs, F, G, M, N, K, KT);
        continue;
      }
      if (tol > 0) {
        double err = 0;
        for (int64_t i = 0; i < M; ++i)
          if (a[i] > 0) err += static_cast<double>(a[i]) * std::fabs(static_cast<double>(u[i]) / static_cast<double>(Fn[i]) - 1.0);
        if (err < tol) break;
      }
      for (int64_t i = 0; i < M; ++i) u[i] = Fn[i];
      if (st == 1) absorb();
    }
    for (int64_t i = 0; i < M; ++i) if (u[i] != T(1)) F[i] += std::log(u[i]);
    for (int64_t j = 0; j < N; ++j) if (v[j] != T(1)) G[j] += std::log(v[j]);
  } else {
    for (int64_t i = 0; i < M; ++i) F[i] = 0;
  }
  // Plan (in place over cs), distance, and the L1 row + column marginal error of the plan.
  for (int64_t j = 0; j < N; ++j) {
    csum[j] = 0;
    cmax[j] = 0;  // per-column partial distance
  }
  double rowErr = 0;
  for (int64_t i = 0; i < M; ++i) {
    T* row = cs + i * N;
    const T* crow = cost + i * N;
    const T fi = F[i];
    for (int64_t j = 0; j < N; ++j) {
      const T p = vexp(fi + G[j] + row[j]);
      row[j] = p;
      csum[j] += p;
      cmax[j] += p * crow[j];
    }
    double rs = 0;
    for (int64_t j = 0; j < N; ++j) rs += row[j];
    rowErr += std::fabs(rs - static_cast<double>(a[i]));
  }
  double colErr = 0, dist = 0;
  for (int64_t j = 0; j < N; ++j) {
    colErr += std::fabs(static_cast<double>(csum[j]) - static_cast<double>(b[j]));
    dist += cmax[j];
  }
  *distanceOut = static_cast<T>(dist);
  *itersOut = it;
  *errOut = static_cast<T>(rowErr + colErr);
}

#endif  // RADKIT_SIMD_PASS
