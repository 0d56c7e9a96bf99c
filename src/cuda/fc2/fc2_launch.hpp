// Host-side interface of the FC2 kernel (h × FP4 w2 → alpha → y per sorted row, fp32).
#pragma once

#include <cstdint>

#include "cuda/common/frag_matrix.hpp"
#include "cuda/route/route_launch.hpp"

namespace fp4moe::cuda {

struct Fc2Params {
  // Routing: work tiles of tile_rows (8, 16, 24 or 32; wgmma path 64, 128 or 160) sorted rows of one expert each,
  // or pair tiles
  WorkTiles work;
  int64_t max_tiles = 0;
  int tile_rows = 0;
  // Streaming kernels: weight rows per block, 32 (one output group, K split over the 4 warps) or 128 (4 output
  // groups sharing one copy of the token tile, stream_group_gemm.cuh); the same bits either way
  int weight_rows_per_block = 32;
  // Streaming kernels, sm_90+: bulk stages of 4 weight chunks each warp keeps in flight, 1 or (8-row tiles with
  // 32-row blocks, for small grids) 2; the same bits either way
  int weight_stages = 1;
  bool tile_major = false;  // streaming kernels: the grid's layout, set by the launchers (stream_grid)
  bool weights_evict_first = false;  // wgmma path: w2 copied as first to evict from the L2 (plan_weights_evict_first)
  // h per sorted row, BF16 [P, I] (W4A4: exact e2m1·sf values; alpha = w2_scale_2 / gs2); wgmma path: in the MMA
  // k order
  const uint16_t* h = nullptr;
  int64_t h_rows = 0;  // rows of h (P): the extent of the wgmma path's tensor map of h
  bool w4a4 = false;
  float gs2 = 1.0f;
  // w2 [E_local] × H × I in fragment tiles, w2_scale_2 [E_local]
  FragMatrix w2;
  const float* w2_scale_2 = nullptr;
  int64_t hidden = 0, intermediate = 0;
  float* y = nullptr;  // [P, H]
};

// Output groups of the streaming FC2 kernels: 32 outputs (two row tiles of w2); one group per block (fc2_kernel) or
// per warp (fc2_group_kernel).
constexpr int64_t fc2_output_groups(int64_t hidden) { return (hidden + 31) / 32; }

void fc2_launch(const Fc2Params& params, void* stream);

// fc2_launch's kernels with 128 weight rows per block (fc2_group_kernel; fc2_group_launch.cu).
void fc2_group_launch(const Fc2Params& params, void* stream);

// The large-batch path (fc2_wgmma_kernel.cuh, sm_90a): tile_rows 64, 128 or 160, h in the MMA k order as
// fc1_wgmma_launch writes it. Only where wgmma_path_available() (fc1_launch.hpp).
void fc2_wgmma_launch(const Fc2Params& params, void* stream);

}  // namespace fp4moe::cuda
