// Launcher of the FC2 kernel with 128 weight rows per block (the h tile shared by 4 output groups). Instantiation
// table: 8, 16, 24 or 32 rows per work tile.
#include <cuda_runtime.h>

#include "cuda/common/cuda_check.hpp"
#include "cuda/fc2/fc2_kernel.cuh"
#include "cuda/gemm/stream_tiles.hpp"
#include "fp4moe/error.hpp"

namespace fp4moe::cuda {

namespace {

template <int kNT>
void launch(const Fc2Params& p, cudaStream_t stream) {
  const int64_t groups = fc2_output_groups(p.hidden);
  const StreamGrid g =
      stream_grid(p.max_tiles, (groups + StreamShape::kWarps - 1) / StreamShape::kWarps, p.work.tile_ready != nullptr);
  constexpr size_t kSmem = kGroupSmemBytes<kNT>;
  prefer_shared_memory<fc2_group_kernel<kNT>>();
  allow_dynamic_shared_memory<fc2_group_kernel<kNT>>(kSmem);
  Fc2Params q = p;
  q.tile_major = g.tile_major;
  launch_pdl(fc2_group_kernel<kNT>, g.grid, StreamShape::kThreads, kSmem, stream, q);
}

}  // namespace

void fc2_group_launch(const Fc2Params& p, void* stream_ptr) {
  if (p.max_tiles == 0) return;
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  with_stream_tile(p.tile_rows, "FC2", [&](auto nt) { launch<nt()>(p, stream); });
}

}  // namespace fp4moe::cuda
