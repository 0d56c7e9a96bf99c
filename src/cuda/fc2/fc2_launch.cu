// Launcher of the FC2 kernel. Instantiation table: 8, 16, 24 or 32 rows per work tile; 8-row tiles also with 2
// weight stages (small grids, heuristics.hpp: plan_weight_stages).
#include <cuda_runtime.h>

#include "cuda/common/cuda_check.hpp"
#include "cuda/fc2/fc2_kernel.cuh"
#include "cuda/gemm/stream_spread.hpp"
#include "cuda/gemm/stream_tiles.hpp"
#include "fp4moe/error.hpp"

namespace fp4moe::cuda {

namespace {

template <int kNT, int kStages>
void launch_stages(const Fc2Params& p, const StreamGrid& g, cudaStream_t stream) {
  Fc2Params q = p;
  q.tile_major = g.tile_major;
  prefer_shared_memory<fc2_kernel<kNT, kStages>>();
  const size_t spread = spread_smem_bytes<fc2_kernel<kNT, kStages>>(int64_t(g.grid.x) * g.grid.y);
  launch_pdl(fc2_kernel<kNT, kStages>, g.grid, StreamShape::kThreads, spread, stream, q);
}

template <int kNT>
void launch(const Fc2Params& p, cudaStream_t stream) {
  const StreamGrid g = stream_grid(p.max_tiles, fc2_output_groups(p.hidden), p.work.tile_ready != nullptr);
  if constexpr (kNT == 1) {
    if (p.weight_stages == 2) return launch_stages<kNT, 2>(p, g, stream);
  }
  launch_stages<kNT, 1>(p, g, stream);
}

}  // namespace

void fc2_launch(const Fc2Params& p, void* stream_ptr) {
  if (p.max_tiles == 0) return;
  FP4MOE_CHECK(p.weight_stages == 1 || (p.weight_stages == 2 && p.tile_rows == 8 &&
                                        p.weight_rows_per_block == StreamShape::kRowTiles * format::kFragRows),
               "FC2 weight stages must be 1, or 2 with 8-row tiles and 32-row blocks, got ", p.weight_stages);
  if (p.weight_rows_per_block == kGroupRows) return fc2_group_launch(p, stream_ptr);
  FP4MOE_CHECK(p.weight_rows_per_block == StreamShape::kRowTiles * format::kFragRows,
               "FC2 weight rows per block must be 32 or 128, got ", p.weight_rows_per_block);
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  with_stream_tile(p.tile_rows, "FC2", [&](auto nt) { launch<nt()>(p, stream); });
}

}  // namespace fp4moe::cuda
