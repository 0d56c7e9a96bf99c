// Launcher of the FC1 kernel with 128 weight rows per block (the token tile shared by 4 output groups). Instantiation
// table: gated or not × 8, 16, 24 or 32 rows per work tile.
#include <cuda_runtime.h>

#include "cuda/common/cuda_check.hpp"
#include "cuda/fc1/fc1_kernel.cuh"
#include "fp4moe/error.hpp"

namespace fp4moe::cuda {

namespace {

template <bool kGated, int kNT>
void launch(const Fc1Params& p, cudaStream_t stream) {
  const int64_t groups = fc1_output_groups(p.intermediate, kGated);
  const dim3 grid(unsigned(p.max_tiles), unsigned((groups + StreamShape::kWarps - 1) / StreamShape::kWarps));
  constexpr size_t kSmem = kGroupSmemBytes<kNT>;
  prefer_shared_memory<fc1_group_kernel<kGated, kNT>>();
  allow_dynamic_shared_memory<fc1_group_kernel<kGated, kNT>>(kSmem);
  launch_pdl(fc1_group_kernel<kGated, kNT>, grid, StreamShape::kThreads, kSmem, stream, p);
}

template <bool kGated>
void launch_rows(const Fc1Params& p, cudaStream_t stream) {
  switch (p.tile_rows) {
    case 8: return launch<kGated, 1>(p, stream);
    case 16: return launch<kGated, 2>(p, stream);
    case 24: return launch<kGated, 3>(p, stream);
    case 32: return launch<kGated, 4>(p, stream);
    default: FP4MOE_CHECK(false, "FC1 work tile rows must be 8, 16, 24 or 32, got ", p.tile_rows);
  }
}

}  // namespace

void fc1_group_launch(const Fc1Params& p, void* stream_ptr) {
  if (p.max_tiles == 0) return;
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  p.gated ? launch_rows<true>(p, stream) : launch_rows<false>(p, stream);
}

}  // namespace fp4moe::cuda
