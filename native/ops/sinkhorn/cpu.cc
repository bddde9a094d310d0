// CPU kernel of sinkhorn: one problem per task of at::parallel_for, everything in a per-thread
// workspace (the cost scaled by -1/epsilon, its transpose, the absorbed kernel and its transpose;
// the iterations are stabilised scaling, see cpu_loops.inc), loops vectorised for AVX2+FMA when
// the CPU has them (runtime check), else for the x86-64 baseline. Deterministic: a problem's
// arithmetic never depends on the thread count or on the other problems.
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
#define RADKIT_SIMD_LOOPS "../ops/sinkhorn/cpu_loops.inc"
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
