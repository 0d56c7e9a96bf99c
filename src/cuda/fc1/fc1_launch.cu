// Launcher of the FC1 kernel. Instantiation table: gated or not × 8, 16, 24 or 32 rows per work tile; 8-row tiles
// also with 2 weight stages (small grids, heuristics.hpp: plan_weight_stages).
#include <cuda_runtime.h>

#include "cuda/common/cuda_check.hpp"
#include "cuda/fc1/fc1_kernel.cuh"
#include "cuda/gemm/stream_tiles.hpp"
#include "fp4moe/error.hpp"

namespace fp4moe::cuda {

namespace {

template <bool kGated, int kNT, int kStages>
void launch_stages(const Fc1Params& p, const StreamGrid& g, cudaStream_t stream) {
  Fc1Params q = p;
  q.tile_major = g.tile_major;
  prefer_shared_memory<fc1_kernel<kGated, kNT, kStages>>();
  launch_pdl(fc1_kernel<kGated, kNT, kStages>, g.grid, StreamShape::kThreads, 0, stream, q);
}

template <bool kGated, int kNT>
void launch(const Fc1Params& p, cudaStream_t stream) {
  const StreamGrid g =
      stream_grid(p.max_tiles, fc1_output_groups(p.intermediate, kGated), p.work.tile_ready != nullptr);
  if constexpr (kNT == 1) {
    if (p.weight_stages == 2) return launch_stages<kGated, kNT, 2>(p, g, stream);
  }
  launch_stages<kGated, kNT, 1>(p, g, stream);
}

}  // namespace

void fc1_launch(const Fc1Params& p, void* stream_ptr) {
  if (p.max_tiles == 0) return;
  FP4MOE_CHECK(p.weight_stages == 1 || (p.weight_stages == 2 && p.tile_rows == 8 &&
                                        p.weight_rows_per_block == StreamShape::kRowTiles * format::kFragRows),
               "FC1 weight stages must be 1, or 2 with 8-row tiles and 32-row blocks, got ", p.weight_stages);
  if (p.weight_rows_per_block == kGroupRows) return fc1_group_launch(p, stream_ptr);
  FP4MOE_CHECK(p.weight_rows_per_block == StreamShape::kRowTiles * format::kFragRows,
               "FC1 weight rows per block must be 32 or 128, got ", p.weight_rows_per_block);
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  with_stream_tile(p.tile_rows, "FC1", [&](auto nt) {
    p.gated ? launch<true, nt()>(p, stream) : launch<false, nt()>(p, stream);
  });
}

}  // namespace fp4moe::cuda
