// Host side of the weight-streaming kernels: their instantiation table and grid. A work tile of 8, 16, 24 or 32
// sorted rows is kNT = 1..4 tiles of 8 tokens (the MMA's n8 side); every launcher of FC1 and FC2, in both block
// shapes, picks its instantiation and grid here.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "fp4moe/error.hpp"

namespace fp4moe::cuda {

// Calls fn(std::integral_constant<int, kNT>{}) for a work tile of `tile_rows` rows; `gemm` names the caller in the
// error for any other size.
template <class Fn>
void with_stream_tile(int tile_rows, const char* gemm, Fn&& fn) {
  switch (tile_rows) {
    case 8: return fn(std::integral_constant<int, 1>{});
    case 16: return fn(std::integral_constant<int, 2>{});
    case 24: return fn(std::integral_constant<int, 3>{});
    case 32: return fn(std::integral_constant<int, 4>{});
    default: FP4MOE_CHECK(false, gemm, " work tile rows must be 8, 16, 24 or 32, got ", tile_rows);
  }
}

// The grid of `tiles` work tiles × `group_blocks` blocks of output groups: tile-major (x = group block, y = tile;
// with the FC1 → FC2 handoff, WorkTiles::tile_ready) or x = tile.
inline constexpr int64_t kTileMajorMaxTiles = 65535;  // the grid's y limit
struct StreamGrid {
  dim3 grid;
  bool tile_major;
};
inline StreamGrid stream_grid(int64_t tiles, int64_t group_blocks, bool tile_major) {
  if (tile_major) {
    FP4MOE_CHECK(tiles <= kTileMajorMaxTiles, "a tile-major streaming grid takes at most ", kTileMajorMaxTiles,
                 " work tiles, got ", tiles);
    return {dim3(unsigned(group_blocks), unsigned(tiles)), true};
  }
  return {dim3(unsigned(tiles), unsigned(group_blocks)), false};
}

}  // namespace fp4moe::cuda
