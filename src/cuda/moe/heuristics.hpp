// Work-tile selection of the CUDA fused MoE (host only), from the call's shape alone (no host synchronization, so
// never from the actual routing). The FC1/FC2 kernels stream each hit expert's weights once per work tile of
// `tile_rows` sorted rows; small tiles keep the MMA narrow when few tokens hit an expert, large tiles cut the
// number of times an expert's weights pass through L2 when many do. Every tile size sums in the same order, so
// the choice never changes results. Thresholds from `fp4moe bench` on the H100 (bench/NOTES.md).
#pragma once

#include <cstdint>

#include "fp4moe/config.hpp"

namespace fp4moe::cuda {

inline constexpr int kTileRowChoices[] = {8, 16, 32};

// Whether `rows` is one of kTileRowChoices.
bool is_tile_rows_choice(int rows);

// Whether a call of `tokens` tokens skips the routing launch and runs each (token, slot) pair as its own one-row
// tile (WorkTiles): one token, unless a tile size other than 8 rows is forced.
bool plan_pair_tiles(int64_t tokens, int force_rows = 0);

// Rows of one routing work tile for `tokens` tokens. force_rows > 0 (a validated choice) picks that size.
int plan_tile_rows(const MoeConfig& config, int64_t tokens, int force_rows = 0);

}  // namespace fp4moe::cuda
