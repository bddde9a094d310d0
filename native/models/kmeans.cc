#include "kmeans.h"

#include <ATen/CPUGeneratorImpl.h>

namespace radkit {

at::Tensor kmeans(const at::Tensor& pointsIn, int64_t k, int64_t iterations, uint64_t seed) {
  at::Tensor x = pointsIn.to(at::kCPU, at::kDouble).contiguous();
  const int64_t n = x.size(0), d = x.size(1);
  at::Generator gen = at::detail::createCPUGenerator(seed);
  if (n == 0) return at::randn({k, d}, gen, x.options()).mul_(0.01).to(pointsIn.options());
  if (n <= k) {
    at::Tensor idx = at::arange(k, x.options().dtype(at::kLong)).remainder(n);
    at::Tensor c = x.index_select(0, idx);
    at::Tensor noise = at::randn({k, d}, gen, x.options()) * (x.std().item<double>() * 0.01 + 1e-6);
    return (c + noise).to(pointsIn.options());
  }
  // k-means++ seeding.
  std::vector<int64_t> chosen;
  chosen.push_back(at::randint(n, {1}, gen, x.options().dtype(at::kLong)).item<int64_t>());
  at::Tensor dist = (x - x[chosen[0]]).pow(2).sum(1);
  for (int64_t c = 1; c < k; ++c) {
    at::Tensor p = dist / dist.sum().clamp_min(1e-30);
    int64_t next = at::multinomial(p, 1, false, gen).item<int64_t>();
    chosen.push_back(next);
    dist = at::minimum(dist, (x - x[next]).pow(2).sum(1));
  }
  at::Tensor centroids = x.index_select(0, at::tensor(chosen, x.options().dtype(at::kLong)));
  for (int64_t it = 0; it < iterations; ++it) {
    at::Tensor assign = at::cdist(x, centroids).argmin(1);
    at::Tensor sums = at::zeros({k, d}, x.options()).index_add_(0, assign, x);
    at::Tensor counts = at::zeros({k}, x.options()).index_add_(0, assign, at::ones({n}, x.options()));
    at::Tensor empty = counts.eq(0);
    at::Tensor updated = sums / counts.clamp_min(1).unsqueeze(1);
    // An emptied cluster keeps its previous centroid.
    updated = at::where(empty.unsqueeze(1), centroids, updated);
    bool moved = !at::allclose(updated, centroids, 1e-9, 1e-12);
    centroids = updated;
    if (!moved) break;
  }
  return centroids.to(pointsIn.options());
}

}  // namespace radkit
