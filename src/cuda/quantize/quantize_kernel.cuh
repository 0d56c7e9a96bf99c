// NVFP4 quantize kernel: BF16 [rows, K] → packed E2M1 [rows, K/2] + one E4M3 scale per 16 values (spec §2).
//
// Tile: one thread per 16-element block (two 16-byte loads in, one 8-byte store of codes and one scale byte out);
// consecutive threads take consecutive blocks of a row, so loads and stores coalesce. Grid-stride over all blocks.
// The arithmetic is fp4moe::quantize_block from nvfp4.hpp, the same function the CPU runs, so the result is
// bit-exact with the host quantizer. Where only the dequantized values are wanted (W4A4's x for FC1), two threads
// per block instead, one 16-byte piece in and out each (quantize_dequant_pieces), with the same bits.
// Roofline: 2 bytes read + 0.5625 bytes written per element, a few dozen ALU ops per element: memory-bound; at
// 2.97 TB/s a [16384, 7168] tensor floor is ~0.1 ms.
#pragma once

#include <cstdint>

#include "cuda/common/launch.cuh"
#include "cuda/quantize/quantize_blocks.cuh"
#include "cuda/quantize/quantize_launch.hpp"
#include "fp4moe/format.hpp"
#include "fp4moe/nvfp4.hpp"

namespace fp4moe::cuda {

__global__ void quantize_nvfp4_kernel(QuantizeParams p) {
  griddep_wait();  // x may come from the previous kernel
  griddep_launch_dependents();
  const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  if (dequant_only(p)) {
    quantize_dequant_pieces(p, first, stride);
  } else {
    quantize_nvfp4_blocks(p, first, stride);
  }
}

// One thread per 16-element block: 8 code bytes + 1 scale in, 16 BF16 values out.
__global__ void dequantize_nvfp4_kernel(DequantizeParams p) {
  griddep_wait();
  griddep_launch_dependents();
  const int64_t total = p.rows * (p.k / kBlockSize);
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const uint32_t* src = reinterpret_cast<const uint32_t*>(p.packed + i * 8);  // pre-quantized x: 4-byte aligned
    const uint2 v = make_uint2(src[0], src[1]);
    const uint8_t packed[8] = {uint8_t(v.x), uint8_t(v.x >> 8), uint8_t(v.x >> 16), uint8_t(v.x >> 24),
                               uint8_t(v.y), uint8_t(v.y >> 8), uint8_t(v.y >> 16), uint8_t(v.y >> 24)};
    store_dequant(p.out + i * kBlockSize, packed, p.scales[i]);
  }
}

}  // namespace fp4moe::cuda
