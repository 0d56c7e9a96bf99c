// Launchers of the large-batch FC1 (wgmma) and of the x reorder pass. Instantiation table: gated or not × 64, 128 or
// 160 rows per work tile.
#include <cuda_runtime.h>

#include "cuda/common/cuda_check.hpp"
#include "cuda/fc1/fc1_wgmma_kernel.cuh"
#include "cuda/gemm/persistent_grid.hpp"
#include "fp4moe/error.hpp"

namespace fp4moe::cuda {

namespace {

template <bool kGated, int kN>
void launch(const Fc1Params& p, cudaStream_t stream) {
  // Output groups of 64 (gated) or 128 columns, two per block group.
  const int64_t groups = p.intermediate / (kGated ? kWgmmaConsumerRows / 2 : kWgmmaConsumerRows);
  const int64_t block_groups = (groups + kWgmmaConsumers - 1) / kWgmmaConsumers;
  const dim3 grid(persistent_grid(p.max_tiles * block_groups));
  constexpr size_t kSmem = kWgmmaSmemBytes<Fc1Smem<kN>>;
  static_assert(kSmem + sizeof(RequantTable) <= kWgmmaSmemLimit, "FC1 wgmma shared memory (dynamic + static)");
  allow_dynamic_shared_memory<fc1_wgmma_kernel<kGated, kN>>(kSmem);
  launch_pdl(fc1_wgmma_kernel<kGated, kN>, grid, kWgmmaThreads, kSmem, stream, p);
}

template <bool kGated>
void launch_rows(const Fc1Params& p, cudaStream_t stream) {
  switch (p.tile_rows) {
    case 64: return launch<kGated, 64>(p, stream);
    case 128: return launch<kGated, 128>(p, stream);
    case 160: return launch<kGated, 160>(p, stream);
    default: FP4MOE_CHECK(false, "FC1 wgmma work tile rows must be 64, 128 or 160, got ", p.tile_rows);
  }
}

}  // namespace

void fc1_wgmma_launch(const Fc1Params& p, void* stream_ptr) {
  if (p.max_tiles == 0) return;
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  p.gated ? launch_rows<true>(p, stream) : launch_rows<false>(p, stream);
}

bool wgmma_path_available() {
  if (current_device_attribute(cudaDevAttrComputeCapabilityMajor) != 9 ||
      current_device_attribute(cudaDevAttrComputeCapabilityMinor) != 0) {
    return false;
  }
  // Code JIT-compiled from an older PTX target would have the empty kernel bodies; only sm_90a code has wgmma.
  // The loaded code is the same for every 9.0 device of the process, so it is looked up once.
  static const bool sm90a_code = [] {
    cudaFuncAttributes attr{};
    FP4MOE_CUDA_CHECK(cudaFuncGetAttributes(&attr, fc1_wgmma_kernel<true, 128>));
    return attr.binaryVersion == 90 && attr.ptxVersion >= 90;
  }();
  return sm90a_code;
}

}  // namespace fp4moe::cuda
