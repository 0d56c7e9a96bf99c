// Host-side interface of the FC1 kernel (gather x → stream FP4 w13 → alpha → activation → h).
#pragma once

#include <cstdint>

#include "cuda/common/frag_matrix.hpp"
#include "cuda/fc1/x_reorder_launch.hpp"
#include "cuda/route/route_launch.hpp"
#include "fp4moe/config.hpp"

namespace fp4moe::cuda {

struct Fc1Params {
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
  bool weights_evict_first = false;  // wgmma path: w13 copied as first to evict from the L2 (plan_weights_evict_first)
  int64_t top_k = 0;
  // The tiles (or topk_ids, for pair tiles) were complete before FC1's predecessor let it launch (a quantize pass
  // sits between them and FC1), so FC1 reads them and prefetches weights before waiting.
  bool tiles_ready_early = false;
  // x rows gathered by token, BF16 (W4A4: the exact BF16 values e2m1·sf of x quantized with gs1); wgmma path: in
  // the MMA k order
  const uint16_t* x = nullptr;
  int64_t x_ld = 0;
  bool w4a4 = false;  // alpha = w13_scale_2 / gs1, and h is quantized with gs2
  float gs1 = 1.0f;
  float gs2 = 1.0f;
  // w13 [E_local] × fc1_rows (gate-up) × H in fragment tiles, w13_scale_2 [E_local]
  FragMatrix w13;
  const float* w13_scale_2 = nullptr;
  int64_t hidden = 0, intermediate = 0;
  bool gated = true;
  Activation activation = Activation::kSilu;
  SwigluParams swiglu{};
  // h per sorted row, BF16 [P, I] (W4A4: quantized per 16-column block with gs2, stored as e2m1·sf); wgmma path:
  // in the MMA k order
  uint16_t* h = nullptr;
};

// Output groups of the streaming FC1 kernels: 16 outputs gated (a gate and an up row tile), 32 non-gated (two row
// tiles); one group per block (fc1_kernel) or per warp (fc1_group_kernel).
constexpr int64_t fc1_output_groups(int64_t intermediate, bool gated) {
  return gated ? intermediate / 16 : (intermediate + 31) / 32;
}

void fc1_launch(const Fc1Params& params, void* stream);

// fc1_launch's kernels with 128 weight rows per block (fc1_group_kernel; fc1_group_launch.cu).
void fc1_group_launch(const Fc1Params& params, void* stream);

// The large-batch path (fc1_wgmma_kernel.cuh, sm_90a): tile_rows 64, 128 or 160, x rows in the MMA k order
// (x_reorder_launch), h written in that order for fc2_wgmma_launch. Only where wgmma_path_available().
void fc1_wgmma_launch(const Fc1Params& params, void* stream);

// Whether the current device runs the wgmma path: compute capability 9.0 and this build's sm_90a code loaded.
bool wgmma_path_available();

}  // namespace fp4moe::cuda
