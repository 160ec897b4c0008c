// unet/geometry.h — the size arithmetic of a U-Net: which input tile sizes are valid (every 2×2
// max-pool must see an even size, every size must stay positive), the output size for an input,
// the context border the overlap-tile strategy needs, and the nearest valid sizes to suggest
// when a user asks for an invalid one.
//
// One level with "valid" (unpadded) 3×3 convolutions: s -> s-4 -> (s-4)/2 on the way down;
// the bottom level s -> s-4; on the way up s -> 2s -> 2s-4. With "same" padding the convolutions
// keep the size, so the input must be divisible by 2^depth and the output equals the input.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/conv2d.h"  // Padding

namespace unet {

struct UNetGeometry {
  int depth = 4;                   // number of max-pool down-steps (the paper: 4)
  Padding padding = Padding::Valid;
  int convs_per_level = 2;         // 3×3 convolutions per level (the paper: 2)

  // Output size for an input size, or -1 if the input is not valid.
  int64_t output_size(int64_t input) const;
  bool is_valid_input(int64_t input) const { return output_size(input) > 0; }
  // Throws ShapeError naming the nearest valid sizes below and above if `input` is invalid.
  void require_valid_input(int64_t input, const std::string& what = "input tile size") const;
  // Nearest valid input size <= s (or -1 if none) and >= s.
  int64_t valid_input_at_most(int64_t s) const;
  int64_t valid_input_at_least(int64_t s) const;
  // The smallest input size that gives an output of at least `output` pixels.
  int64_t input_for_output(int64_t output) const;
  // Pixels of context lost per side: (input - output) / 2, the same for every valid input.
  int64_t context_border() const;
  // Spatial size after each stage, for documentation and tests: down-level outputs (the skip
  // tensors), the bottom, and up-level outputs.
  std::vector<int64_t> skip_sizes(int64_t input) const;
};

}  // namespace unet
