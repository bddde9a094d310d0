// Seeded image augmentations (MedRAT: crop, blur, affine, contrast), compute code only (ATen, no
// N-API). Sample i of a batch is transformed as its own 64-bit seed decides, whatever the batch,
// thread or device: the parameters come from a splitmix64 stream of the seed, and every step works
// on one sample's pixels. Geometry (random resized crop, then rotation / scale / translation about
// the centre, then an optional horizontal flip) is one affine map applied by affine_grid +
// grid_sample (bilinear, zeros outside, align_corners = false); then a Gaussian blur (separable,
// reflected borders, radius ceil(3 sigma)), brightness (x * b) and contrast (mean + c (x - mean),
// mean of the sample), each clamped to [0, 1]. Inputs are expected in [0, 1].
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace radkit {
namespace nn {

struct AugmentConfig {
  double cropP = 0;  // probability of a random resized crop
  double cropScaleMin = 0.75, cropScaleMax = 1.0;  // area fraction of the crop
  double cropRatioMin = 0.9, cropRatioMax = 1.1;   // aspect ratio (width / height), log-uniform
  double affineP = 0;
  double degrees = 10;     // rotation in [-degrees, degrees]
  double translate = 0.05; // translation in [-t, t] of the width / height
  double scaleMin = 0.95, scaleMax = 1.05;
  double blurP = 0;
  double sigmaMin = 0.1, sigmaMax = 1.5;  // pixels
  double brightness = 0;  // factor in [1 - b, 1 + b]
  double contrast = 0;    // factor in [1 - c, 1 + c]
  double hflip = 0;       // probability; off by default (laterality)
};

// The parameters one seed gives for an H x W image.
struct AugmentParams {
  bool geometric = false;
  double theta[6] = {1, 0, 0, 0, 1, 0};  // output -> input, normalised coordinates (affine_grid's theta)
  double sigma = 0;                      // 0: no blur
  double brightness = 1;
  double contrast = 1;
};

// Checks a configuration (probabilities in [0, 1], ordered ranges); RadkitFailure ERR_INVALID_ARG.
void checkAugmentConfig(const AugmentConfig& c);

AugmentParams drawAugmentParams(uint64_t seed, int64_t height, int64_t width, const AugmentConfig& c);

// images [N, C, H, W] float32/float64 (CPU or CUDA), seeds one per sample; returns a new tensor.
// CPU tensors go through plain loops; `reference` (and CUDA) through ATen's affine_grid,
// grid_sample, reflection_pad2d and conv2d, the definition the loops are tested against.
at::Tensor augmentImages(const at::Tensor& images, const std::vector<uint64_t>& seeds, const AugmentConfig& c, bool reference = false);

}  // namespace nn
}  // namespace radkit
