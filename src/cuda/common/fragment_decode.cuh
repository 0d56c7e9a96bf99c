// Device side of the fragment-tile weight layout (format/fragment_layout.hpp): FP4 codes → BF16 MMA operands.
//
// A lane's 4-byte word holds the 8 codes of one m16n8k16 A fragment; frag_decode_word turns it into 4 BF16 pairs
// with 1-4 integer ops each (value e2m1 · 2^-126), and one BF16 multiply by the block scale taken as |sf| · 2^117
// (made from the tile's scale code with one integer multiply-add, frag_scale_pair) gives e2m1 · sf · 2^-9: exact (at
// most 6 significant bits, far from the BF16 range ends; the scale's sign is in the codes). Kernels that feed these
// operands to the MMA multiply the fp32 result by 2^9, which is exact, so the dot products equal those of the exactly
// dequantized weights (spec §4) up to the fp32 summation order.
// In the wgmma kernels the consumers' decode is bound by instruction issue, most of it integer ops: the scale
// codes took about 20 of the 170-180 instructions a warp spent per chunk (bench/NOTES.md, session 22). Doing r[3]'s
// shift as a multiply (mul.hi, off the ALU pipe) was slower, and made ptxas serialize the 64-row gated FC1's wgmmas.
#pragma once

#include <cstdint>

#include "cuda/common/frag_matrix.hpp"
#include "format/fragment_layout.hpp"

namespace fp4moe::cuda {

inline constexpr float kFragUnscale = 512.0f;  // 2^9: undoes the 2^-9 carried by decoded operands

// The four BF16 pairs (raw, value · 2^-126) of one fragment word: regs (row g, k+0/1), (row g+8, k+0/1),
// (row g, k+2/3), (row g+8, k+2/3).
__device__ __forceinline__ void frag_decode_word(uint32_t w, uint32_t (&r)[4]) {
  constexpr uint32_t kMask = format::kFragMask;
  r[0] = w & kMask;
  r[1] = (w << 3) & kMask;
  r[2] = (w << 6) & kMask;
  r[3] = (((w >> 7) & 0x00D800D8u) * 0x821u) & kMask;
}

// Elementwise BF16 product, round to nearest (exact for the operands used here).
__device__ __forceinline__ uint32_t bf16x2_mul(uint32_t a, uint32_t b) {
  uint32_t r;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm("mul.rn.bf16x2 %0, %1, %2;\n" : "=r"(r) : "r"(a), "r"(b));
#else
  asm("fma.rn.bf16x2 %0, %1, %2, %3;\n" : "=r"(r) : "r"(a), "r"(b), "r"(0x80008000u));
#endif
  return r;
}

// A scale code (format::frag_scale_code) as the BF16 pair (|sf| · 2^117, |sf| · 2^117): the code times 16 is the
// BF16's exponent field less 224 and its top three mantissa bits, so one multiply-add builds both halves (where the
// E4M3 byte took masks, shifts, two fp32 multiplies and a conversion).
__device__ __forceinline__ uint32_t frag_scale_pair(uint32_t code) { return code * 0x00100010u + 0x70007000u; }

// Scales of a lane in one tile: row g and row g+8 (low and high byte of `two`, a 16-bit load of scale codes) as
// BF16 pairs.
struct FragScale {
  uint32_t row_lo, row_hi;
};
__device__ __forceinline__ FragScale frag_scale(uint32_t two) {
  return {frag_scale_pair(two & 0xffu), frag_scale_pair(two >> 8)};
}

// A fragment (4 regs) of one MMA step from a lane's word: e2m1 · sf · 2^-9 in BF16.
__device__ __forceinline__ void frag_a_operand(uint32_t word, const FragScale& s, uint32_t (&a)[4]) {
  uint32_t r[4];
  frag_decode_word(word, r);
  a[0] = bf16x2_mul(r[0], s.row_lo);
  a[1] = bf16x2_mul(r[1], s.row_hi);
  a[2] = bf16x2_mul(r[2], s.row_lo);
  a[3] = bf16x2_mul(r[3], s.row_hi);
}

}  // namespace fp4moe::cuda
