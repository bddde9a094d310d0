#include "fused_optim.h"

#include "optim_state_key.h"
#include "../core/cpu_simd.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <cstdlib>
#include <sstream>
#include <string>
#include <type_traits>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace radkit {
namespace nn {
namespace {

constexpr int64_t kChunk = 4096;  // elements per task (and per float32 partial sum)

// A flat list of (tensor, element range) tasks over many tensors, for one at::parallel_for.
struct Chunk {
  size_t tensor;
  int64_t begin, end;
};

std::vector<Chunk> chunksOf(const std::vector<int64_t>& sizes) {
  std::vector<Chunk> out;
  for (size_t t = 0; t < sizes.size(); ++t)
    for (int64_t b = 0; b < sizes[t]; b += kChunk) out.push_back({t, b, std::min(sizes[t], b + kChunk)});
  return out;
}

template <typename T>
double sumSquares(const T* x, int64_t n) {
  // 16 independent lanes so the compiler vectorises without reassociating one accumulator.
  T acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l) acc[l] += x[i + l] * x[i + l];
  double s = 0;
  for (int l = 0; l < 16; ++l) s += static_cast<double>(acc[l]);
  for (; i < n; ++i) s += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  return s;
}

// RADKIT_STEP_BASELINE=1: the step as radkit did it before these kernels (LibTorch's per-tensor Adam,
// gradients converted to float64 for the norm), for before/after benchmarks in one run.
bool baseline() {
  static const bool on = std::getenv("RADKIT_STEP_BASELINE") != nullptr;
  return on;
}

bool fusable(const at::Tensor& t) {
  return t.device().is_cpu() && t.layout() == at::kStrided && t.is_contiguous() && (t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble);
}

// One parameter's update inputs.
struct AdamJob {
  at::Tensor p, g, m, v;
  double lr, b1, b2, eps, wd, bc1, bc2;
};

template <typename T>
void adamRange(const AdamJob& j, bool decoupled, int64_t begin, int64_t end) {
  T* __restrict p = j.p.data_ptr<T>();
  const T* __restrict g = j.g.data_ptr<T>();
  T* __restrict m = j.m.data_ptr<T>();
  T* __restrict v = j.v.data_ptr<T>();
  // Scalars as LibTorch passes them to a T kernel, in LibTorch's order of operations:
  //   Adam:  g' = g + wd p;  AdamW: p *= 1 - lr wd
  //   m = m b1 + g' (1 - b1);  v = v b2 + (1 - b2) g' g';  p += -(lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps)
  const T b1 = static_cast<T>(j.b1), c1 = static_cast<T>(1 - j.b1), b2 = static_cast<T>(j.b2), c2 = static_cast<T>(1 - j.b2);
  const T wd = static_cast<T>(j.wd), decay = static_cast<T>(1 - j.lr * j.wd), sqrtBc2 = static_cast<T>(std::sqrt(j.bc2));
  const T eps = static_cast<T>(j.eps), stepSize = static_cast<T>(-(j.lr / j.bc1));
  const bool l2 = !decoupled && j.wd != 0, shrink = decoupled && j.wd != 0;
  for (int64_t i = begin; i < end; ++i) {
    T gi = g[i];
    T pi = p[i];
    if (l2) gi = gi + wd * pi;
    if (shrink) pi = pi * decay;
    const T mi = m[i] * b1 + gi * c1;
    const T vi = v[i] * b2 + c2 * (gi * gi);
    m[i] = mi;
    v[i] = vi;
    p[i] = pi + stepSize * (mi / (std::sqrt(vi) / sqrtBc2 + eps));
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
// adamRange<float> eight lanes at a time (AVX2; the addon is built for baseline x86-64, where the
// scalar loop's sqrt and division do not vectorise). The same operations in the same order; the
// compiler may fuse a multiply and an add here, so results can differ from the scalar loop in the
// last bit of float32 (the float64 path is the scalar one).
__attribute__((target("avx2,fma"))) void adamFloatAvx2(const AdamJob& j, bool decoupled, int64_t begin, int64_t end) {
  float* __restrict p = j.p.data_ptr<float>();
  const float* __restrict g = j.g.data_ptr<float>();
  float* __restrict m = j.m.data_ptr<float>();
  float* __restrict v = j.v.data_ptr<float>();
  const bool l2 = !decoupled && j.wd != 0, shrink = decoupled && j.wd != 0;
  const __m256 b1 = _mm256_set1_ps(static_cast<float>(j.b1)), c1 = _mm256_set1_ps(static_cast<float>(1 - j.b1));
  const __m256 b2 = _mm256_set1_ps(static_cast<float>(j.b2)), c2 = _mm256_set1_ps(static_cast<float>(1 - j.b2));
  const __m256 wd = _mm256_set1_ps(static_cast<float>(j.wd)), decay = _mm256_set1_ps(static_cast<float>(1 - j.lr * j.wd));
  const __m256 sqrtBc2 = _mm256_set1_ps(static_cast<float>(std::sqrt(j.bc2))), eps = _mm256_set1_ps(static_cast<float>(j.eps));
  const __m256 stepSize = _mm256_set1_ps(static_cast<float>(-(j.lr / j.bc1)));
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    __m256 gi = _mm256_loadu_ps(g + i), pi = _mm256_loadu_ps(p + i);
    if (l2) gi = _mm256_add_ps(gi, _mm256_mul_ps(wd, pi));
    if (shrink) pi = _mm256_mul_ps(pi, decay);
    const __m256 mi = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(m + i), b1), _mm256_mul_ps(gi, c1));
    const __m256 vi = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(v + i), b2), _mm256_mul_ps(c2, _mm256_mul_ps(gi, gi)));
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
    const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), sqrtBc2), eps);
    _mm256_storeu_ps(p + i, _mm256_add_ps(pi, _mm256_mul_ps(stepSize, _mm256_div_ps(mi, denom))));
  }
  if (i < end) adamRange<float>(j, decoupled, i, end);
}
#endif

void runAdam(const std::vector<AdamJob>& jobs, bool decoupled) {
  std::vector<int64_t> sizes;
  for (auto& j : jobs) sizes.push_back(j.p.numel());
  const std::vector<Chunk> chunks = chunksOf(sizes);
  at::parallel_for(0, static_cast<int64_t>(chunks.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      const Chunk& k = chunks[c];
      const AdamJob& j = jobs[k.tensor];
      if (j.p.scalar_type() == at::kFloat) {
#if defined(__x86_64__) && defined(__GNUC__)
        if (cpuHasAvx2Fma()) {
          adamFloatAvx2(j, decoupled, k.begin, k.end);
          continue;
        }
#endif
        adamRange<float>(j, decoupled, k.begin, k.end);
      } else {
        adamRange<double>(j, decoupled, k.begin, k.end);
      }
    }
  });
}

// The fused step of FusedAdam (State = AdamParamState, Options = AdamOptions, Base = LibTorch's
// Adam, named explicitly: self.Base::step is then LibTorch's step, not this one) and FusedAdamW.
template <typename State, typename Options, typename Base, typename StateMap>
at::Tensor fusedStep(Base& self, std::vector<torch::optim::OptimizerParamGroup>& groups, StateMap& state, bool decoupled,
                     typename Base::LossClosure closure) {
  at::NoGradGuard noGrad;
  if (baseline()) return self.Base::step(closure);
  // Anything the fused loop does not cover goes to LibTorch's own step, unchanged.
  for (auto& group : groups) {
    auto& o = static_cast<Options&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      if (o.amsgrad() || !fusable(p) || !fusable(p.grad()) || p.grad().scalar_type() != p.scalar_type() || p.grad().is_sparse())
        return self.Base::step(closure);
    }
  }
  at::Tensor loss;
  if (closure) {
    at::AutoGradMode enable(true);
    loss = closure();
  }
  using Key = typename std::decay_t<decltype(state)>::key_type;
  std::vector<AdamJob> jobs;
  for (auto& group : groups) {
    auto& o = static_cast<Options&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      Key key = stateKey<Key>(p);
      auto it = state.find(key);
      if (it == state.end()) {
        auto s = std::make_unique<State>();
        s->step(0);
        s->exp_avg(at::zeros_like(p, at::MemoryFormat::Preserve));
        s->exp_avg_sq(at::zeros_like(p, at::MemoryFormat::Preserve));
        it = state.emplace(key, std::move(s)).first;
      }
      auto& s = static_cast<State&>(*it->second);
      if (!fusable(s.exp_avg()) || !fusable(s.exp_avg_sq()) || s.exp_avg().scalar_type() != p.scalar_type()) {
        // A state loaded in another layout or dtype: bring it to the parameter's (values unchanged).
        s.exp_avg(s.exp_avg().to(p.scalar_type()).contiguous());
        s.exp_avg_sq(s.exp_avg_sq().to(p.scalar_type()).contiguous());
      }
      s.step(s.step() + 1);
      const double b1 = std::get<0>(o.betas()), b2 = std::get<1>(o.betas());
      const double t = static_cast<double>(s.step());
      jobs.push_back({p, p.grad(), s.exp_avg(), s.exp_avg_sq(), o.lr(), b1, b2, o.eps(), o.weight_decay(), 1 - std::pow(b1, t), 1 - std::pow(b2, t)});
    }
  }
  runAdam(jobs, decoupled);
  return loss;
}

}  // namespace

double globalGradNorm(const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> grads;
  std::vector<int64_t> sizes;
  double rest = 0;  // gradients the fused pass does not read (other devices, layouts, dtypes)
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    const at::Tensor& g = p.grad();
    if (fusable(g)) {
      grads.push_back(g);
      sizes.push_back(g.numel());
    } else {
      const double n = g.detach().norm().item<double>();
      rest += n * n;
    }
  }
  const std::vector<Chunk> chunks = chunksOf(sizes);
  std::vector<double> partial(chunks.size());
  at::parallel_for(0, static_cast<int64_t>(chunks.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      const Chunk& k = chunks[c];
      const at::Tensor& g = grads[k.tensor];
      partial[c] = g.scalar_type() == at::kFloat ? sumSquares(g.data_ptr<float>() + k.begin, k.end - k.begin)
                                                 : sumSquares(g.data_ptr<double>() + k.begin, k.end - k.begin);
    }
  });
  double total = rest;
  for (double s : partial) total += s;  // fixed order: the same result on any thread count
  return std::sqrt(total);
}

double clipGradNorm(const std::vector<at::Tensor>& params, double maxNorm) {
  if (baseline()) {
    double total = 0;
    for (auto& p : params)
      if (p.grad().defined()) total += p.grad().detach().to(at::kDouble).pow(2).sum().item<double>();
    total = std::sqrt(total);
    if (maxNorm > 0 && total > maxNorm)
      for (auto& p : params)
        if (p.grad().defined()) p.grad().detach().mul_(maxNorm / (total + 1e-6));
    return total;
  }
  const double norm = globalGradNorm(params);
  if (maxNorm > 0 && std::isfinite(norm)) {
    const double coef = maxNorm / (norm + 1e-6);
    if (coef < 1) {
      at::NoGradGuard noGrad;
      std::vector<at::Tensor> grads;
      for (const auto& p : params)
        if (p.grad().defined()) grads.push_back(p.grad());
      at::_foreach_mul_(grads, coef);
    }
  }
  return norm;
}

at::Tensor FusedAdam::step(LossClosure closure) {
  return fusedStep<torch::optim::AdamParamState, torch::optim::AdamOptions, torch::optim::Adam>(*this, param_groups_, state_, false, closure);
}

at::Tensor FusedAdamW::step(LossClosure closure) {
  return fusedStep<torch::optim::AdamWParamState, torch::optim::AdamWOptions, torch::optim::AdamW>(*this, param_groups_, state_, true, closure);
}

}  // namespace nn
}  // namespace radkit
