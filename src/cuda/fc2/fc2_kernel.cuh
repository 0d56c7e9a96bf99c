// FC2 of the fused MoE: for one 64-row work tile (sorted rows of one expert), y = alpha · h · w2ᵀ in fp32, with h
// read as BF16 or as NVFP4 dequantized exactly on load, and w2 dequantized exactly on load.
// Tile: 64 rows × 64 output columns (of H). Grid: (max tiles, H / 64). Output y [P, H] fp32 feeds the combine.
// Roofline: reads w2 (H·I/2 bytes per expert per 64 rows) and h; writes 4·H bytes per routed row.
#pragma once

#include "cuda/fc2/fc2_launch.hpp"
#include "cuda/gemm/tile_gemm.cuh"

namespace fp4moe::cuda {

// A rows: h of the tile's sorted rows (contiguous).
template <bool kFp4A>
__device__ __forceinline__ auto fc2_a_loader(const Fc2Params& p, const RouteTile& tile) {
  const RowSource src{p.h, p.intermediate, p.h_fp4, p.h_scale, p.intermediate};
  return make_row_loader<kFp4A>(src, [&](int r) -> int64_t {
    return r < tile.row_end - tile.row_begin ? tile.row_begin + r : -1;
  });
}

// B rows: rows n0.. of the expert's w2.
__device__ __forceinline__ Fp4Rows fc2_b_loader(const Fc2Params& p, int64_t expert, int64_t n0) {
  const RowSource src{nullptr, 0, p.w2, p.w2_scale, p.intermediate};
  return make_row_loader<true>(src, [&](int r) -> int64_t { return n0 + r < p.hidden ? expert * p.hidden + n0 + r : -1; });
}

template <bool kFp4A>
__global__ void __launch_bounds__(TileShape::kThreads) fc2_kernel(Fc2Params p) {
  __shared__ TileSmem smem;
  if (int64_t(blockIdx.x) >= *p.num_tiles) return;  // the grid is sized for the worst case routing
  const RouteTile tile = p.tiles[blockIdx.x];
  const int64_t n0 = int64_t(blockIdx.y) * TileShape::kN;
  Accum acc;
  tile_mainloop(fc2_a_loader<kFp4A>(p, tile), fc2_b_loader(p, tile.expert, n0), p.intermediate, smem, acc);
  const float scale_2 = p.w2_scale_2[tile.expert];
  const float alpha = kFp4A ? __fdiv_rn(scale_2, p.gs2) : scale_2;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const FragCoord c = frag_coord(i, j, 2 * half);
        const int64_t col = n0 + c.col;
        if (c.row < tile.row_end - tile.row_begin && col < p.hidden) {
          const float2 v = make_float2(__fmul_rn(alpha, acc[i][j][2 * half]), __fmul_rn(alpha, acc[i][j][2 * half + 1]));
          *reinterpret_cast<float2*>(p.y + (tile.row_begin + c.row) * p.hidden + col) = v;
        }
      }
    }
  }
}

}  // namespace fp4moe::cuda
