// Launcher of the dense NVFP4 linear kernel (BF16 or NVFP4 activations).
#include <cuda_runtime.h>

#include "cuda/common/cuda_check.hpp"
#include "cuda/linear/linear_kernel.cuh"

namespace fp4moe::cuda {

void linear_launch(const LinearLaunch& p, void* stream_ptr) {
  if (p.m == 0 || p.n == 0) return;
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  const dim3 grid(unsigned((p.m + TileShape::kM - 1) / TileShape::kM), unsigned((p.n + TileShape::kN - 1) / TileShape::kN));
  if (p.x_fp4) {
    linear_kernel<true><<<grid, TileShape::kThreads, 0, stream>>>(p);
  } else {
    linear_kernel<false><<<grid, TileShape::kThreads, 0, stream>>>(p);
  }
  FP4MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace fp4moe::cuda
