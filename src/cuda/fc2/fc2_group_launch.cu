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
  const dim3 grid(unsigned(p.max_tiles), unsigned((groups + StreamShape::kWarps - 1) / StreamShape::kWarps));
  constexpr size_t kSmem = kGroupSmemBytes<kNT>;
  prefer_shared_memory<fc2_group_kernel<kNT>>();
  allow_dynamic_shared_memory<fc2_group_kernel<kNT>>(kSmem);
  launch_pdl(fc2_group_kernel<kNT>, grid, StreamShape::kThreads, kSmem, stream, p);
}

}  // namespace

void fc2_group_launch(const Fc2Params& p, void* stream_ptr) {
  if (p.max_tiles == 0) return;
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  with_stream_tile(p.tile_rows, "FC2", [&](auto nt) { launch<nt()>(p, stream); });
}

}  // namespace fp4moe::cuda
