// The NVFP4 quantize pass's per-thread work (spec §2), shared by quantize_nvfp4_kernel, by the routing kernel,
// which quantizes x for FC1 in its spare blocks (route_kernels.cuh), and by the x reorder (x_reorder_kernel.cuh).
// - quantize_nvfp4_blocks: one thread per 16-element block (two 16-byte loads in, 8 code bytes, a scale byte and/or
//   16 dequantized BF16 values out); the arithmetic is fp4moe::quantize_block from nvfp4.hpp, the same function the
//   CPU runs. The routing launch's spare blocks use it.
// - quantize_dequant_pieces, the pass where only the dequantized values are wanted (W4A4's x for FC1 at T = 1): two
//   threads per block, one 16-byte piece each, amax over both halves by one shuffle and e2m1_round instead of codes:
//   the same bits as store_dequant ∘ quantize_block, in about half the instructions per thread. At T = 1 the pass is
//   a few hundred blocks that precede FC1, so its latency is the layer's: 0.9-2.8 µs less per layer on the H100; in
//   the routing launch's spare blocks it measured 1 % slower at T = 256 and stays out (bench/NOTES.md, session 29).
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

// Only the dequantized output is written (the pieces form applies).
__host__ __device__ inline bool dequant_only(const QuantizeParams& p) {
  return p.dequant != nullptr && p.packed == nullptr && p.scales == nullptr;
}

// Work items of quantize_nvfp4_kernel: 16-byte pieces where only dequantized values are written, else 16-value
// blocks.
__host__ __device__ inline int64_t quantize_items(const QuantizeParams& p) {
  return p.rows * (p.k / (dequant_only(p) ? 8 : kBlockSize));
}

// The 8 BF16 values (4 words) of this thread's half of a 16-value block, quantized with gs and dequantized without
// it (e2m1·sf, exact in BF16): quantize_block's amax, scale and multiplier, then e2m1_round (= e2m1_to_float ∘
// float_to_e2m1) times the scale, as store_dequant has it. Lanes 2i and 2i + 1 hold the two halves of a block;
// every lane of the warp calls it.
__device__ __forceinline__ void quantize_half_block(uint32_t (&w)[4], float gs) {
  float x[8];
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    x[2 * e] = bf16_to_float(uint16_t(w[e] & 0xffffu));
    x[2 * e + 1] = bf16_to_float(uint16_t(w[e] >> 16));
  }
  float amax = 0.0f;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const float a = bits_float(float_bits(x[i]) & 0x7fffffffu);
    amax = a > amax ? a : amax;  // NaNs never win, as in quantize_block
  }
  const float other = __shfl_xor_sync(0xffffffffu, amax, 1);
  amax = other > amax ? other : amax;
  const uint8_t sf = block_scale_e4m3(amax, gs);
  const float inv = block_inverse_scale(sf, gs), sff = e4m3_to_float(sf);
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const uint32_t lo = float_to_bf16(mul_rn(e2m1_round(mul_rn(x[2 * e], inv)), sff));
    const uint32_t hi = float_to_bf16(mul_rn(e2m1_round(mul_rn(x[2 * e + 1], inv)), sff));
    w[e] = lo | hi << 16;
  }
}

// Pieces first, first + stride, ... of quantize_items(p), dequant_only(p). Called by all 32 lanes of a warp
// together, with first ≡ lane (mod 32) and stride a multiple of 32: the loop stays warp-uniform for the shuffle, and
// since a row has an even number of pieces, lanes 2i and 2i + 1 always hold the two halves of one block.
__device__ __forceinline__ void quantize_dequant_pieces(const QuantizeParams& p, int64_t first, int64_t stride) {
  const int64_t pieces_per_row = p.k / 8, total = p.rows * pieces_per_row;
  const int lane = int(threadIdx.x % 32);
  for (int64_t i = first; i - lane < total; i += stride) {
    const bool valid = i < total;
    // Contiguous rows (the usual x) need no division.
    const int64_t src = p.x_ld == p.k ? i * 8 : i / pieces_per_row * p.x_ld + i % pieces_per_row * 8;
    const uint4 v = valid ? *reinterpret_cast<const uint4*>(p.x + src) : make_uint4(0, 0, 0, 0);
    uint32_t w[4] = {v.x, v.y, v.z, v.w};
    quantize_half_block(w, p.global_scale);
    if (valid) reinterpret_cast<uint4*>(p.dequant)[i] = make_uint4(w[0], w[1], w[2], w[3]);
  }
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
