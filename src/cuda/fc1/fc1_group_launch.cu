// Launcher of the FC1 kernel with 128 weight rows per block (the token tile shared by 4 output groups). Instantiation
// table: gated or not × 8, 16, 24 or 32 rows per work tile.
#include <cuda_runtime.h>

#include "cuda/common/cuda_check.hpp"
#include "cuda/fc1/fc1_kernel.cuh"
#include "cuda/gemm/stream_tiles.hpp"
#include "fp4moe/error.hpp"

namespace fp4moe::cuda {

namespace {

template <bool kGated, int kNT>
void launch(const Fc1Params& p, cudaStream_t stream) {
  const int64_t groups = fc1_output_groups(p.intermediate, kGated);
  const StreamGrid g =
      stream_grid(p.max_tiles, (groups + StreamShape::kWarps - 1) / StreamShape::kWarps, p.work.tile_ready != nullptr);
  constexpr size_t kSmem = kGroupSmemBytes<kNT>;
  prefer_shared_memory<fc1_group_kernel<kGated, kNT>>();
  allow_dynamic_shared_memory<fc1_group_kernel<kGated, kNT>>(kSmem);
  Fc1Params q = p;
  q.tile_major = g.tile_major;
  launch_pdl(fc1_group_kernel<kGated, kNT>, g.grid, StreamShape::kThreads, kSmem, stream, q);
}

}  // namespace

void fc1_group_launch(const Fc1Params& p, void* stream_ptr) {
  if (p.max_tiles == 0) return;
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  with_stream_tile(p.tile_rows, "FC1", [&](auto nt) {
    p.gated ? launch<true, nt()>(p, stream) : launch<false, nt()>(p, stream);
  });
}

}  // namespace fp4moe::cuda
