// Launcher of the NVFP4 quantize kernel: grid sizing and the padding memset of the 128x4 scale layout.
#include <cuda_runtime.h>

#include <algorithm>

#include "cuda/common/cuda_check.hpp"
#include "cuda/quantize/quantize_kernel.cuh"

namespace fp4moe::cuda {

namespace {

unsigned grid_for_items(int64_t items, int threads) {
  return unsigned(std::min<int64_t>((items + threads - 1) / threads, int64_t(1) << 20));
}

// Threads per block of the pass. Dequantized only (W4A4's x, a few hundred pieces at T = 1): blocks of two warps, so
// that x's 16-byte pieces spread over more SMs, where FC1's blocks, launched as soon as the pass starts, share them.
constexpr int kQuantizeThreads = 256;
constexpr int kDequantOnlyThreads = 64;

}  // namespace

unsigned quantize_grid(const QuantizeParams& p, int threads) {
  return grid_for_items(p.rows * (p.k / kBlockSize), threads);
}

void launch_quantize_nvfp4(const QuantizeParams& p, void* stream_ptr) {
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  if (p.swizzled && p.scales) {
    // The kernel writes only real scales; the 128x4 padding must read as 0 (spec §3).
    const int64_t bytes = round_up(p.rows, 128) * round_up(p.k / kBlockSize, 4);
    FP4MOE_CUDA_CHECK(cudaMemsetAsync(p.scales, 0, size_t(bytes), stream));
  }
  const int64_t items = quantize_items(p);
  if (items == 0) return;
  const int threads = dequant_only(p) ? kDequantOnlyThreads : kQuantizeThreads;
  launch_pdl(quantize_nvfp4_kernel, grid_for_items(items, threads), threads, 0, stream, p);
}

void launch_dequantize_nvfp4(const DequantizeParams& p, void* stream_ptr) {
  const int64_t blocks = p.rows * (p.k / kBlockSize);
  if (blocks == 0) return;
  constexpr int kThreads = 256;
  const int64_t grid = std::min<int64_t>((blocks + kThreads - 1) / kThreads, int64_t(1) << 20);
  launch_pdl(dequantize_nvfp4_kernel, unsigned(grid), kThreads, 0, static_cast<cudaStream_t>(stream_ptr), p);
}

}  // namespace fp4moe::cuda
