// One expert-stacked weight matrix in fragment tiles (format/fragment_layout.hpp), as kernels address it.
// Plain C++: shared by host launchers and device code.
#pragma once

#include <cstdint>

namespace fp4moe::cuda {

// Tile (expert, row tile, k tile) sits at index (expert · row_tiles + row_tile) · k_tiles + k_tile, with 512 code
// bytes and 64 scale bytes per tile.
struct FragMatrix {
  const uint8_t* codes = nullptr;
  const uint8_t* scales = nullptr;
  int64_t row_tiles = 0;  // per expert (padded)
  int64_t k_tiles = 0;    // ceil(K / 64)
  constexpr int64_t first_tile(int64_t expert, int64_t row_tile) const { return (expert * row_tiles + row_tile) * k_tiles; }
};

}  // namespace fp4moe::cuda
