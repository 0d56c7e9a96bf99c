// Launcher of the FC2 kernel: BF16 or NVFP4 intermediate, grid sized for the worst case routing.
#include <cuda_runtime.h>

#include "cuda/common/cuda_check.hpp"
#include "cuda/fc2/fc2_kernel.cuh"

namespace fp4moe::cuda {

void fc2_launch(const Fc2Params& p, void* stream_ptr) {
  if (p.max_tiles == 0) return;
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  const dim3 grid(unsigned(p.max_tiles), unsigned((p.hidden + TileShape::kN - 1) / TileShape::kN));
  if (p.h_fp4) {
    fc2_kernel<true><<<grid, TileShape::kThreads, 0, stream>>>(p);
  } else {
    fc2_kernel<false><<<grid, TileShape::kThreads, 0, stream>>>(p);
  }
  FP4MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace fp4moe::cuda
