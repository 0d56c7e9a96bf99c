// Launcher of the combine kernel.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cuda/combine/combine_kernel.cuh"
#include "cuda/common/cuda_check.hpp"
#include "cuda/common/launch.cuh"
#include "fp4moe/error.hpp"

namespace fp4moe::cuda {

void combine_launch(const CombineParams& p, void* stream_ptr) {
  FP4MOE_CHECK(p.hidden % kCombineCols == 0 && reinterpret_cast<uintptr_t>(p.y) % 16 == 0,
               "combine: y rows must be 16-byte aligned (H a multiple of 4, y from the workspace)");
  const int64_t total = p.tokens * p.hidden / kCombineCols;
  if (total == 0) return;
  constexpr int kThreads = 256;
  const unsigned grid = unsigned(std::clamp<int64_t>((total + kThreads - 1) / kThreads, 1, 16384));
  // 8-byte stores of 4 BF16 outputs where every row start is 8-byte aligned (out itself has no alignment contract).
  const bool vec_out = reinterpret_cast<uintptr_t>(p.out) % 8 == 0 && p.out_ld % 4 == 0;
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  if (vec_out) {
    launch_pdl(combine_kernel<true>, grid, kThreads, 0, stream, p);
  } else {
    launch_pdl(combine_kernel<false>, grid, kThreads, 0, stream, p);
  }
}

}  // namespace fp4moe::cuda
