// Launcher of the FC1 kernel: picks the instantiation (gated × A format) and sizes the grid for the worst case.
#include <cuda_runtime.h>

#include "cuda/common/cuda_check.hpp"
#include "cuda/fc1/fc1_kernel.cuh"

namespace fp4moe::cuda {

namespace {

template <bool kGated, bool kFp4A>
void launch(const Fc1Params& p, cudaStream_t stream) {
  const int64_t col_blocks = (p.intermediate + Fc1Columns<kGated>::kOut - 1) / Fc1Columns<kGated>::kOut;
  const dim3 grid(unsigned(p.max_tiles), unsigned(col_blocks));
  fc1_kernel<kGated, kFp4A><<<grid, TileShape::kThreads, 0, stream>>>(p);
  FP4MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void fc1_launch(const Fc1Params& p, void* stream_ptr) {
  if (p.max_tiles == 0) return;
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  const bool fp4_a = p.x_fp4 != nullptr;
  // The instantiation table: gated (silu, gelu_tanh, swiglu_clamped) or not (relu2) × BF16 or NVFP4 activations.
  if (p.gated) {
    fp4_a ? launch<true, true>(p, stream) : launch<true, false>(p, stream);
  } else {
    fp4_a ? launch<false, true>(p, stream) : launch<false, false>(p, stream);
  }
}

}  // namespace fp4moe::cuda
