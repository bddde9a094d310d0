// The visual ResNet of a system from its configuration keys (resnetWidths, resnetBlocks,
// resnetBlock), read and checked in one place for every kind that has one (xpronet, medrat, ircp,
// diseasenet, otdrg). Compute code only (no N-API).
#pragma once
#include <string>
#include <vector>

#include "../nn/resnet.h"
#include "system.h"

namespace radkit {

struct ResNetSpec {
  std::vector<int64_t> widths, blocks;
  nn::ResNetBlock block = nn::ResNetBlock::kBasic;
  nn::ResNet build() const { return nn::ResNet(widths, blocks, 1, block); }  // grey input
  double parameters() const { return nn::resnetParameters(widths, blocks, 1, block); }
  int64_t outChannels() const { return widths.back() * (block == nn::ResNetBlock::kBottleneck ? nn::BottleneckImpl::kExpansion : 1); }
};

// resnetWidths (5: stem, then 4 stages), resnetBlocks (4) and resnetBlock ('basic' or
// 'bottleneck'), with the kind's defaults; an ERR_INVALID_ARG names the key, after `who` ("" or
// "ircp: ").
ResNetSpec readResNetSpec(const Config& c, const std::vector<int64_t>& widths, const std::vector<int64_t>& blocks, const std::string& who);

}  // namespace radkit
