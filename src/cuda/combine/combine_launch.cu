// Launcher of the combine kernel.
#include <cuda_runtime.h>

#include <algorithm>

#include "cuda/combine/combine_kernel.cuh"
#include "cuda/common/cuda_check.hpp"
#include "cuda/common/launch.cuh"

namespace fp4moe::cuda {

void combine_launch(const CombineParams& p, void* stream_ptr) {
  const int64_t total = p.tokens * p.hidden / 2;
  if (total == 0) return;
  constexpr int kThreads = 256;
  const unsigned grid = unsigned(std::clamp<int64_t>((total + kThreads - 1) / kThreads, 1, 16384));
  launch_pdl(combine_kernel, grid, kThreads, 0, static_cast<cudaStream_t>(stream_ptr), p);
}

}  // namespace fp4moe::cuda
