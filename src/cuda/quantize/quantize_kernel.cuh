// NVFP4 quantize kernel: BF16 [rows, K] → packed E2M1 [rows, K/2] + one E4M3 scale per 16 values (spec §2).
//
// Tile: one thread per 16-element block (two 16-byte loads in, one 8-byte store of codes and one scale byte out);
// consecutive threads take consecutive blocks of a row, so loads and stores coalesce. Grid-stride over all blocks.
// The arithmetic is fp4moe::quantize_block from nvfp4.hpp, the same function the CPU runs, so the result is
// bit-exact with the host quantizer.
// Roofline: 2 bytes read + 0.5625 bytes written per element, a few dozen ALU ops per element: memory-bound; at
// 2.97 TB/s a [16384, 7168] tensor floor is ~0.1 ms.
#pragma once

#include <cstdint>

#include "cuda/common/launch.cuh"
#include "cuda/quantize/quantize_launch.hpp"
#include "fp4moe/format.hpp"
#include "fp4moe/nvfp4.hpp"

namespace fp4moe::cuda {

__device__ __forceinline__ void load_block_bf16(const uint16_t* src, float (&x)[kBlockSize]) {
  const uint4 lo = reinterpret_cast<const uint4*>(src)[0];
  const uint4 hi = reinterpret_cast<const uint4*>(src)[1];
  const uint32_t words[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    x[2 * i] = __uint_as_float(words[i] << 16);
    x[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
  }
}

__device__ __forceinline__ void store_packed(uint8_t* dst, const uint8_t (&packed)[8]) {
  uint2 v;
  v.x = uint32_t(packed[0]) | uint32_t(packed[1]) << 8 | uint32_t(packed[2]) << 16 | uint32_t(packed[3]) << 24;
  v.y = uint32_t(packed[4]) | uint32_t(packed[5]) << 8 | uint32_t(packed[6]) << 16 | uint32_t(packed[7]) << 24;
  *reinterpret_cast<uint2*>(dst) = v;
}

// The 16 values of a quantized block as BF16 e2m1 · sf (exact), two 16-byte stores.
__device__ __forceinline__ void store_dequant(uint16_t* dst, const uint8_t (&packed)[8], uint8_t sf) {
  uint32_t w[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const uint32_t lo = float_to_bf16(dequant_unscaled(packed[i] & 0xf, sf));
    const uint32_t hi = float_to_bf16(dequant_unscaled(packed[i] >> 4, sf));
    w[i] = lo | hi << 16;
  }
  reinterpret_cast<uint4*>(dst)[0] = make_uint4(w[0], w[1], w[2], w[3]);
  reinterpret_cast<uint4*>(dst)[1] = make_uint4(w[4], w[5], w[6], w[7]);
}

__global__ void quantize_nvfp4_kernel(QuantizeParams p) {
  griddep_wait();  // x may come from the previous kernel
  griddep_launch_dependents();
  const int64_t blocks_per_row = p.k / kBlockSize;
  const int64_t total = p.rows * blocks_per_row;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / blocks_per_row;
    const int64_t blk = i - row * blocks_per_row;
    float x[kBlockSize];
    load_block_bf16(p.x + row * p.x_ld + blk * kBlockSize, x);
    uint8_t packed[8];
    const uint8_t sf = quantize_block(x, p.global_scale, packed);
    if (p.packed) store_packed(p.packed + row * (p.k / 2) + blk * 8, packed);
    if (p.scales) p.scales[p.swizzled ? swizzled_scale_offset(row, blk, blocks_per_row) : i] = sf;
    if (p.dequant) store_dequant(p.dequant + row * p.k + blk * kBlockSize, packed, sf);
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
