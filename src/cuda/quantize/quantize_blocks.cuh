// The NVFP4 quantize pass's per-thread work (spec §2), shared by quantize_nvfp4_kernel and by the routing kernel,
// which quantizes x for FC1 in its spare blocks (route_kernels.cuh). One thread per 16-element block (two 16-byte
// loads in, 8 code bytes, a scale byte and/or 16 dequantized BF16 values out); the arithmetic is
// fp4moe::quantize_block from nvfp4.hpp, the same function the CPU runs.
#pragma once

#include <cstdint>

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

// Blocks first, first + stride, ... of the rows · k/16 blocks.
__device__ __forceinline__ void quantize_nvfp4_blocks(const QuantizeParams& p, int64_t first, int64_t stride) {
  const int64_t blocks_per_row = p.k / kBlockSize;
  const int64_t total = p.rows * blocks_per_row;
  for (int64_t i = first; i < total; i += stride) {
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

}  // namespace fp4moe::cuda
