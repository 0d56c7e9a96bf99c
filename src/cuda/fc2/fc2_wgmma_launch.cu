// Launcher of the large-batch FC2 (wgmma). Instantiation table: 64, 128 or 160 rows per work tile.
#include <cuda_runtime.h>

#include "cuda/common/cuda_check.hpp"
#include "cuda/fc2/fc2_wgmma_kernel.cuh"
#include "cuda/gemm/persistent_grid.hpp"
#include "fp4moe/error.hpp"

namespace fp4moe::cuda {

namespace {

template <int kN>
void launch(const Fc2Params& p, cudaStream_t stream) {
  const dim3 grid(persistent_grid(p.max_tiles * ((p.hidden + kWgmmaRows - 1) / kWgmmaRows)));
  constexpr size_t kSmem = kWgmmaSmemBytes<Fc2Smem<kN>>;
  static_assert(kSmem <= kWgmmaSmemLimit, "FC2 wgmma shared memory");
  allow_dynamic_shared_memory<fc2_wgmma_kernel<kN>>(kSmem);
  const TmaMap h_map = kFc2HByTma<kN> ? bf16_rows_tma_map(p.h, p.h_rows, p.intermediate, p.intermediate,
                                                          kWgmmaTokenBoxRows)
                                      : TmaMap{};
  launch_pdl(fc2_wgmma_kernel<kN>, grid, kWgmmaThreads, kSmem, stream, p, h_map);
}

}  // namespace

void fc2_wgmma_launch(const Fc2Params& p, void* stream_ptr) {
  if (p.max_tiles == 0) return;
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  switch (p.tile_rows) {
    case 64: return launch<64>(p, stream);
    case 128: return launch<128>(p, stream);
    case 160: return launch<160>(p, stream);
    default: FP4MOE_CHECK(false, "FC2 wgmma work tile rows must be 64, 128 or 160, got ", p.tile_rows);
  }
}

}  // namespace fp4moe::cuda
