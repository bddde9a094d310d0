// Seeded image augmentations; see augment.h.
#include "augment.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "../core/errors.h"

namespace radkit {
namespace nn {
namespace {

constexpr double kPi = 3.14159265358979323846;

// splitmix64: a tiny, well-mixed generator; one stream per transform so that switching one
// transform on or off leaves the others' draws as they were.
struct Stream {
  uint64_t s;
  Stream(uint64_t seed, uint64_t salt) : s(seed ^ (salt * 0xD1B54A32D192ED03ull)) { next(); }
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double a, double b) { return a + (b - a) * uniform(); }
};

// 2 x 3 affine maps (row-major [a b c; d e f]: x' = a x + b y + c, y' = d x + e y + f).
struct Affine {
  double m[6] = {1, 0, 0, 0, 1, 0};
};

Affine compose(const Affine& outer, const Affine& inner) {  // outer(inner(p))
  const double* a = outer.m;
  const double* b = inner.m;
  Affine r;
  r.m[0] = a[0] * b[0] + a[1] * b[3];
  r.m[1] = a[0] * b[1] + a[1] * b[4];
  r.m[2] = a[0] * b[2] + a[1] * b[5] + a[2];
  r.m[3] = a[3] * b[0] + a[4] * b[3];
  r.m[4] = a[3] * b[1] + a[4] * b[4];
  r.m[5] = a[3] * b[2] + a[4] * b[5] + a[5];
  return r;
}

void checkRange(const char* name, double lo, double hi, double min, double max) {
  if (!(lo >= min && hi <= max && lo <= hi)) argError("ERR_INVALID_ARG", "augmentImages: ", name, " must satisfy ", min, " <= min <= max <= ", max, ", got [", lo, ", ", hi, "]");
}
void checkProb(const char* name, double p) {
  if (!(p >= 0 && p <= 1)) argError("ERR_INVALID_ARG", "augmentImages: ", name, " must be a probability in [0, 1], got ", p);
}

at::Tensor gaussianKernel(double sigma, int64_t radius, const at::TensorOptions& opts) {
  std::vector<double> g(2 * radius + 1);
  double sum = 0;
  for (int64_t j = -radius; j <= radius; j++) sum += g[j + radius] = std::exp(-0.5 * (j * j) / (sigma * sigma));
  for (double& v : g) v /= sum;
  return at::tensor(g, at::TensorOptions().dtype(at::kDouble)).to(opts);
}

// One sample [C, H, W] -> a new [C, H, W].
at::Tensor augmentOne(const at::Tensor& x, const AugmentParams& p) {
  const int64_t C = x.size(0), H = x.size(1), W = x.size(2);
  at::Tensor y = x.unsqueeze(0);  // [1, C, H, W]
  if (p.geometric) {
    at::Tensor theta = at::tensor(std::vector<double>(p.theta, p.theta + 6), at::TensorOptions().dtype(at::kDouble)).to(x.options()).view({1, 2, 3});
    at::Tensor grid = at::affine_grid_generator(theta, {1, C, H, W}, /*align_corners=*/false);
    y = at::grid_sampler(y, grid, /*bilinear*/ 0, /*zeros*/ 0, /*align_corners=*/false);
  }
  if (p.sigma > 0) {
    int64_t radius = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(3 * p.sigma)));
    radius = std::min<int64_t>(radius, std::min(H, W) - 1);  // reflection needs pad < size
    if (radius >= 1) {
      at::Tensor k = gaussianKernel(p.sigma, radius, x.options());
      at::Tensor z = y.reshape({C, 1, H, W});
      z = at::conv2d(at::reflection_pad2d(z, {radius, radius, 0, 0}), k.view({1, 1, 1, 2 * radius + 1}));
      z = at::conv2d(at::reflection_pad2d(z, {0, 0, radius, radius}), k.view({1, 1, 2 * radius + 1, 1}));
      y = z.reshape({1, C, H, W});
    }
  }
  if (p.brightness != 1) y = (y * p.brightness).clamp(0, 1);
  if (p.contrast != 1) {
    at::Tensor mean = y.mean();
    y = (mean + (y - mean) * p.contrast).clamp(0, 1);
  }
  return y.squeeze(0);
}

// The CPU path: the same transform as augmentOne in plain loops over one sample's pixels (about
// 20x faster than the per-sample ATen calls on 224 px images). Bilinear sampling with zeros outside
// and align_corners = false exactly as grid_sample computes it; blur with reflected borders as
// reflection_pad2d; tested against augmentOne (test/native/data-augment.test.ts).
template <typename T>
void augmentOneCpu(const T* in, T* out, int64_t C, int64_t H, int64_t W, const AugmentParams& p, std::vector<T>& scratch) {
  const int64_t HW = H * W;
  if (p.geometric) {
    const double* t = p.theta;
    // The source position is affine in the output column: step it instead of recomputing it.
    const double dx = t[0], dy = t[3] * H / W;
    for (int64_t i = 0; i < H; i++) {
      const double yn = (2.0 * i + 1) / H - 1, xn0 = 1.0 / W - 1;
      double ix = ((t[0] * xn0 + t[1] * yn + t[2] + 1) * W - 1) / 2;
      double iy = ((t[3] * xn0 + t[4] * yn + t[5] + 1) * H - 1) / 2;
      for (int64_t j = 0; j < W; j++, ix += dx, iy += dy) {
        int64_t x0 = static_cast<int64_t>(ix), y0 = static_cast<int64_t>(iy);
        x0 -= ix < x0;  // floor without a libm call
        y0 -= iy < y0;
        const T ax = static_cast<T>(ix - x0), ay = static_cast<T>(iy - y0);
        const T w00 = (1 - ax) * (1 - ay), w01 = ax * (1 - ay), w10 = (1 - ax) * ay, w11 = ax * ay;
        T* o = out + i * W + j;
        if (x0 >= 0 && y0 >= 0 && x0 + 1 < W && y0 + 1 < H) {
          for (int64_t c = 0; c < C; c++) {
            const T* q = in + c * HW + y0 * W + x0;
            o[c * HW] = w00 * q[0] + w01 * q[1] + w10 * q[W] + w11 * q[W + 1];
          }
        } else if (x0 + 1 < 0 || y0 + 1 < 0 || x0 >= W || y0 >= H) {
          for (int64_t c = 0; c < C; c++) o[c * HW] = 0;
        } else {
          const bool xa = x0 >= 0, xb = x0 + 1 < W, ya = y0 >= 0, yb = y0 + 1 < H;
          for (int64_t c = 0; c < C; c++) {
            const T* src = in + c * HW;
            T v = 0;
            if (xa && ya) v += w00 * src[y0 * W + x0];
            if (xb && ya) v += w01 * src[y0 * W + x0 + 1];
            if (xa && yb) v += w10 * src[(y0 + 1) * W + x0];
            if (xb && yb) v += w11 * src[(y0 + 1) * W + x0 + 1];
            o[c * HW] = v;
          }
        }
      }
    }
  } else {
    std::copy(in, in + C * HW, out);
  }
  if (p.sigma > 0) {
    int64_t r = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(3 * p.sigma)));
    r = std::min<int64_t>(r, std::min(H, W) - 1);
    if (r >= 1) {
      std::vector<T> g(2 * r + 1);
      double sum = 0;
      for (int64_t k = -r; k <= r; k++) sum += std::exp(-0.5 * (k * k) / (p.sigma * p.sigma));
      for (int64_t k = -r; k <= r; k++) g[k + r] = static_cast<T>(std::exp(-0.5 * (k * k) / (p.sigma * p.sigma)) / sum);
      auto reflect = [](int64_t i, int64_t n) { return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i); };
      scratch.resize(HW);
      for (int64_t c = 0; c < C; c++) {
        T* img = out + c * HW;
        T* tmp = scratch.data();
        for (int64_t i = 0; i < H; i++) {
          const T* row = img + i * W;
          T* o = tmp + i * W;
          for (int64_t j = 0; j < W; j++) o[j] = 0;
          for (int64_t k = -r; k <= r; k++) {  // interior columns: one tap at a time over the row
            const T gk = g[k + r];
            for (int64_t j = r; j < W - r; j++) o[j] += gk * row[j + k];
          }
          for (int64_t j = 0; j < W; j++) {
            if (j >= r && j < W - r) continue;
            T acc = 0;
            for (int64_t k = -r; k <= r; k++) acc += g[k + r] * row[reflect(j + k, W)];
            o[j] = acc;
          }
        }
        for (int64_t i = 0; i < H; i++) {
          T* o = img + i * W;
          for (int64_t j = 0; j < W; j++) o[j] = 0;
          for (int64_t k = -r; k <= r; k++) {
            const T* src = tmp + reflect(i + k, H) * W;
            const T gk = g[k + r];
            for (int64_t j = 0; j < W; j++) o[j] += gk * src[j];
          }
        }
      }
    }
  }
  const int64_t n = C * HW;
  if (p.brightness != 1) {
    const T b = static_cast<T>(p.brightness);
    for (int64_t k = 0; k < n; k++) out[k] = std::min<T>(1, std::max<T>(0, out[k] * b));
  }
  if (p.contrast != 1) {
    double m = 0;
    for (int64_t k = 0; k < n; k++) m += out[k];
    const T mean = static_cast<T>(m / n), c = static_cast<T>(p.contrast);
    for (int64_t k = 0; k < n; k++) out[k] = std::min<T>(1, std::max<T>(0, mean + (out[k] - mean) * c));
  }
}

}  // namespace

void checkAugmentConfig(const AugmentConfig& c) {
  checkProb("cropP", c.cropP);
  checkProb("affineP", c.affineP);
  checkProb("blurP", c.blurP);
  checkProb("hflip", c.hflip);
  checkRange("crop scale", c.cropScaleMin, c.cropScaleMax, 1e-4, 1);
  checkRange("crop ratio", c.cropRatioMin, c.cropRatioMax, 1e-3, 1e3);
  checkRange("affine scale", c.scaleMin, c.scaleMax, 1e-3, 1e3);
  checkRange("blur sigma", c.sigmaMin, c.sigmaMax, 0, 1e3);
  checkRange("degrees", 0, c.degrees, 0, 180);
  checkRange("translate", 0, c.translate, 0, 1);
  checkRange("brightness", 0, c.brightness, 0, 1);
  checkRange("contrast", 0, c.contrast, 0, 1);
}

AugmentParams drawAugmentParams(uint64_t seed, int64_t height, int64_t width, const AugmentConfig& c) {
  AugmentParams p;
  const double H = static_cast<double>(height), W = static_cast<double>(width);
  // Pixel coordinates from the image centre; all maps go from output to input (sampling).
  Affine T;  // identity
  {
    Stream r(seed, 1);
    if (r.uniform() < c.cropP) {
      // torchvision's RandomResizedCrop: ten tries at a box of the drawn area and aspect, else the whole image
      for (int attempt = 0; attempt < 10; attempt++) {
        double area = H * W * r.uniform(c.cropScaleMin, c.cropScaleMax);
        double ratio = std::exp(r.uniform(std::log(c.cropRatioMin), std::log(c.cropRatioMax)));
        double cw = std::sqrt(area * ratio), ch = std::sqrt(area / ratio);
        if (cw <= W && ch <= H) {
          double x0 = r.uniform(0, W - cw), y0 = r.uniform(0, H - ch);
          Affine crop;
          crop.m[0] = cw / W;
          crop.m[2] = x0 + cw / 2 - W / 2;
          crop.m[4] = ch / H;
          crop.m[5] = y0 + ch / 2 - H / 2;
          T = crop;
          p.geometric = true;
          break;
        }
      }
    }
  }
  {
    Stream r(seed, 2);
    if (r.uniform() < c.affineP) {
      double a = r.uniform(-c.degrees, c.degrees) * kPi / 180;
      double s = r.uniform(c.scaleMin, c.scaleMax);
      double tx = r.uniform(-c.translate, c.translate) * W, ty = r.uniform(-c.translate, c.translate) * H;
      // forward q -> s R(a) q + t; sampling needs its inverse p -> R(-a) (p - t) / s
      double ca = std::cos(a) / s, sa = std::sin(a) / s;
      Affine inv;
      inv.m[0] = ca;
      inv.m[1] = sa;
      inv.m[3] = -sa;
      inv.m[4] = ca;
      inv.m[2] = -(ca * tx + sa * ty);
      inv.m[5] = -(-sa * tx + ca * ty);
      T = compose(T, inv);
      p.geometric = true;
    }
  }
  {
    Stream r(seed, 3);
    if (r.uniform() < c.hflip) {
      Affine flip;
      flip.m[0] = -1;
      T = compose(T, flip);
      p.geometric = true;
    }
  }
  // normalised theta = D^-1 T D with D = diag(W/2, H/2)
  p.theta[0] = T.m[0];
  p.theta[1] = T.m[1] * H / W;
  p.theta[2] = T.m[2] * 2 / W;
  p.theta[3] = T.m[3] * W / H;
  p.theta[4] = T.m[4];
  p.theta[5] = T.m[5] * 2 / H;
  {
    Stream r(seed, 4);
    if (r.uniform() < c.blurP) p.sigma = r.uniform(c.sigmaMin, c.sigmaMax);
  }
  {
    Stream r(seed, 5);
    double b = r.uniform(1 - c.brightness, 1 + c.brightness);
    double k = r.uniform(1 - c.contrast, 1 + c.contrast);
    if (c.brightness > 0) p.brightness = b;
    if (c.contrast > 0) p.contrast = k;
  }
  return p;
}

at::Tensor augmentImages(const at::Tensor& images, const std::vector<uint64_t>& seeds, const AugmentConfig& c, bool reference) {
  if (!images.defined() || images.dim() != 4) argError("ERR_SHAPE", "augmentImages: images must be [N, C, H, W], got ", images.defined() ? images.dim() : 0, " dimensions");
  if (images.scalar_type() != at::kFloat && images.scalar_type() != at::kDouble) argError("ERR_DTYPE", "augmentImages: images must be float32 or float64, got ", images.scalar_type());
  const int64_t N = images.size(0), H = images.size(2), W = images.size(3);
  if (static_cast<int64_t>(seeds.size()) != N) argError("ERR_SHAPE", "augmentImages: ", seeds.size(), " seeds for ", N, " images");
  if (H < 2 || W < 2) argError("ERR_SHAPE", "augmentImages: images must be at least 2 x 2, got ", H, " x ", W);
  checkAugmentConfig(c);
  at::Tensor x = images.contiguous();
  at::Tensor out = at::empty_like(x);
  std::vector<AugmentParams> params(N);
  for (int64_t i = 0; i < N; i++) params[i] = drawAugmentParams(seeds[i], H, W, c);
  // One sample at a time (same shapes whatever the batch, so the same bits); samples in parallel on
  // the CPU, through plain loops (reference = true: through ATen's affine_grid / grid_sample / conv2d).
  if (x.is_cuda() || reference) {
    auto run = [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; i++) out[i].copy_(augmentOne(x[i], params[i]));
    };
    if (x.is_cuda())
      run(0, N);
    else
      at::parallel_for(0, N, 1, run);
  } else {
    const int64_t C = x.size(1);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "augmentImages", [&] {
      const scalar_t* in = x.data_ptr<scalar_t>();
      scalar_t* o = out.data_ptr<scalar_t>();
      at::parallel_for(0, N, 1, [&](int64_t b, int64_t e) {
        std::vector<scalar_t> scratch;
        for (int64_t i = b; i < e; i++) augmentOneCpu<scalar_t>(in + i * C * H * W, o + i * C * H * W, C, H, W, params[i], scratch);
      });
    });
  }
  return out;
}

}  // namespace nn
}  // namespace radkit
