// Device side of the fragment-tile weight layout (format/fragment_layout.hpp): FP4 codes → BF16 MMA operands.
//
// A lane's 4-byte word holds the 8 codes of one m16n8k16 A fragment; frag_decode_word turns it into 4 BF16 pairs
// with 1-4 integer ops each (value e2m1 · 2^-126), and one BF16 multiply by the block scale taken as sf · 2^117
// gives e2m1 · sf · 2^-9: exact (at most 6 significant bits, far from the BF16 range ends). Kernels that feed these
// operands to the MMA multiply the fp32 result by 2^9, which is exact, so the dot products equal those of the
// exactly dequantized weights (spec §4) up to the fp32 summation order.
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

// An E4M3 scale byte as fp32 sf · 2^117 (exact: the byte's bits placed in an fp32 give sf · 2^-120, subnormal
// scales included, and two power-of-two multiplies move it up without rounding).
__device__ __forceinline__ float frag_scale_value(uint32_t byte) {
  const float raw = __uint_as_float(((byte & 0x7Fu) << 20) | ((byte & 0x80u) << 24));
  return __fmul_rn(__fmul_rn(raw, 0x1p118f), 0x1p119f);
}

// Both halves = v (exact: v has at most 4 significant bits).
__device__ __forceinline__ uint32_t bf16x2_splat(float v) {
  uint32_t r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %1;\n" : "=r"(r) : "f"(v));
  return r;
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

// Scales of a lane in one tile: row g and row g+8 (low and high byte of `two`) as BF16 pairs sf · 2^117.
struct FragScale {
  uint32_t row_lo, row_hi;
};
__device__ __forceinline__ FragScale frag_scale(uint32_t two) {
  return {bf16x2_splat(frag_scale_value(two & 0xffu)), bf16x2_splat(frag_scale_value((two >> 8) & 0xffu))};
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
