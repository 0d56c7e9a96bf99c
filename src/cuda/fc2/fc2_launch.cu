// Launcher of the FC2 kernel. Instantiation table: 8, 16, 24 or 32 rows per work tile.
#include <cuda_runtime.h>

#include "cuda/common/cuda_check.hpp"
#include "cuda/fc2/fc2_kernel.cuh"
#include "cuda/gemm/stream_spread.hpp"
#include "fp4moe/error.hpp"

namespace fp4moe::cuda {

namespace {

template <int kNT>
void launch(const Fc2Params& p, cudaStream_t stream) {
  const dim3 grid(unsigned(p.max_tiles), unsigned(fc2_output_groups(p.hidden)));
  prefer_shared_memory<fc2_kernel<kNT>>();
  const size_t spread = spread_smem_bytes<fc2_kernel<kNT>>(int64_t(grid.x) * grid.y);
  launch_pdl(fc2_kernel<kNT>, grid, StreamShape::kThreads, spread, stream, p);
}

}  // namespace

void fc2_launch(const Fc2Params& p, void* stream_ptr) {
  if (p.max_tiles == 0) return;
  if (p.weight_rows_per_block == kGroupRows) return fc2_group_launch(p, stream_ptr);
  FP4MOE_CHECK(p.weight_rows_per_block == StreamShape::kRowTiles * format::kFragRows,
               "FC2 weight rows per block must be 32 or 128, got ", p.weight_rows_per_block);
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  switch (p.tile_rows) {
    case 8: return launch<1>(p, stream);
    case 16: return launch<2>(p, stream);
    case 24: return launch<3>(p, stream);
    case 32: return launch<4>(p, stream);
    default: FP4MOE_CHECK(false, "FC2 work tile rows must be 8, 16, 24 or 32, got ", p.tile_rows);
  }
}

}  // namespace fp4moe::cuda
