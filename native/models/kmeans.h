// Seeded k-means (k-means++ seeding, Lloyd iterations) for prototype initialisation.
#pragma once
#include <ATen/ATen.h>

namespace radkit {

// points [n, d] float -> centroids [k, d]. With n < k, the missing centroids are points repeated
// with small seeded noise. Deterministic for a given seed.
at::Tensor kmeans(const at::Tensor& points, int64_t k, int64_t iterations, uint64_t seed);

}  // namespace radkit
