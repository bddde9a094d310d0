#include "resnet_config.h"

#include "../core/errors.h"

namespace radkit {

ResNetSpec readResNetSpec(const Config& c, const std::vector<int64_t>& widths, const std::vector<int64_t>& blocks, const std::string& who) {
  ResNetSpec s;
  s.widths = c.ints("resnetWidths", widths);
  s.blocks = c.ints("resnetBlocks", blocks);
  const std::string block = c.str("resnetBlock", "basic");
  if (s.widths.size() != 5) argError("ERR_INVALID_ARG", who, "config.resnetWidths must hold 5 widths (stem, then 4 stages), got ", s.widths.size());
  if (s.blocks.size() != 4) argError("ERR_INVALID_ARG", who, "config.resnetBlocks must hold 4 block counts, got ", s.blocks.size());
  for (int64_t w : s.widths)
    if (w < 1 || w > 65536) argError("ERR_INVALID_ARG", who, "config.resnetWidths must lie in [1, 65536], got ", w);
  for (int64_t b : s.blocks)
    if (b < 1 || b > 1024) argError("ERR_INVALID_ARG", who, "config.resnetBlocks must lie in [1, 1024], got ", b);
  if (block != "basic" && block != "bottleneck") argError("ERR_INVALID_ARG", who, "config.resnetBlock must be 'basic' or 'bottleneck', got '", block, "'");
  s.block = block == "bottleneck" ? nn::ResNetBlock::kBottleneck : nn::ResNetBlock::kBasic;
  return s;
}

}  // namespace radkit
