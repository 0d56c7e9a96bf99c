// fp4moe: NVFP4 element formats and block quantization (spec ../shared/spec/nvfp4-moe.md §1–§2).
//
// Everything here is inline and usable from host code and from CUDA device code, so the CPU reference and the
// GPU kernels run the very same definition. Floating-point steps use explicit round-to-nearest operations
// (no FMA contraction, IEEE division) because the spec fixes the arithmetic bit for bit.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define FP4MOE_HD __host__ __device__ __forceinline__
#else
#define FP4MOE_HD inline
#endif

namespace fp4moe {

inline constexpr int kBlockSize = 16;           // elements per E4M3 scale
inline constexpr float kE2M1Max = 6.0f;
inline constexpr float kE4M3Max = 448.0f;
inline constexpr float kFltMax = 3.402823466e+38f;

// ---- bit casts and IEEE round-to-nearest arithmetic -------------------------------------------------------------

FP4MOE_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

FP4MOE_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// a * b rounded once to nearest even; never fused with a neighbouring add.
FP4MOE_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

// a / b, IEEE-correct rounding.
FP4MOE_HD float div_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}

FP4MOE_HD bool is_nan(float f) { return (float_bits(f) & 0x7fffffffu) > 0x7f800000u; }

// Round to the nearest integer, ties to even (|v| < 2^23).
FP4MOE_HD float round_half_even(float v) {
  const float magic = 8388608.0f;  // 2^23: adding it leaves no fraction bits, so the FPU rounds to even
  const float a = v < 0 ? -v : v;
  const float r = (a + magic) - magic;
  return v < 0 ? -r : r;
}

// ---- BF16 -------------------------------------------------------------------------------------------------------

FP4MOE_HD float bf16_to_float(uint16_t b) { return bits_float(uint32_t(b) << 16); }

// fp32 → bf16, round to nearest even; NaN stays a (quiet) NaN of the same sign.
FP4MOE_HD uint16_t float_to_bf16(float f) {
  const uint32_t u = float_bits(f);
  if (is_nan(f)) return uint16_t((u >> 16) | 0x0040u);
  const uint32_t rounded = u + 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(rounded >> 16);
}

// ---- E4M3 (float8_e4m3fn) -----------------------------------------------------------------------------------------

FP4MOE_HD float e4m3_to_float(uint8_t b) {
  const uint32_t sign = (b & 0x80u) ? 0x80000000u : 0u;
  const uint32_t exp = (b >> 3) & 0xfu;
  const uint32_t man = b & 0x7u;
  float mag;
  if (exp == 0xfu && man == 0x7u) {
    mag = bits_float(0x7fc00000u);                      // NaN
  } else if (exp == 0) {
    mag = float(man) * 0.001953125f;                    // subnormal: man · 2^-9
  } else {
    mag = bits_float(((exp + 120u) << 23) | (man << 20));  // (1 + man/8) · 2^(exp-7)
  }
  return bits_float(float_bits(mag) | sign);
}

// fp32 → E4M3, round to nearest even, saturating to ±448 (Inf saturates too); NaN → 0x7F with the sign kept.
FP4MOE_HD uint8_t float_to_e4m3(float f) {
  const uint32_t u = float_bits(f);
  const uint8_t sign = uint8_t((u >> 24) & 0x80u);
  if (is_nan(f)) return uint8_t(sign | 0x7fu);
  const float a = bits_float(u & 0x7fffffffu);
  if (a < 0.015625f) {                                  // below 2^-6: subnormal grid of step 2^-9
    const float q = round_half_even(mul_rn(a, 512.0f)); // exact scaling, then ties-to-even integer 0..8
    return uint8_t(sign | uint8_t(q));                  // q == 8 encodes 2^-6, the smallest normal
  }
  if (a >= 464.0f) return uint8_t(sign | 0x7eu);        // 464 is the tie between 448 and (absent) 480
  const uint32_t ua = u & 0x7fffffffu;
  const uint32_t rounded = (ua + 0x7ffffu + ((ua >> 20) & 1u)) >> 20;  // keep 3 mantissa bits, RNE
  const uint32_t exp = (rounded >> 3) - 120u;           // rebias 127 → 7
  return uint8_t(sign | uint8_t((exp << 3) | (rounded & 0x7u)));
}

// ---- E2M1 ----------------------------------------------------------------------------------------------------------

// Code 0..7 → 0, 0.5, 1, 1.5, 2, 3, 4, 6; bit 3 is the sign.
FP4MOE_HD float e2m1_to_float(uint8_t code) {
  const uint32_t c = code & 0x7u;
  const float mag = c < 4 ? 0.5f * float(c) : (c < 6 ? float(c - 2) : (c == 6 ? 4.0f : 6.0f));
  return (code & 0x8u) ? -mag : mag;
}

// fp32 → E2M1 code, nearest with ties to the even mantissa, saturating to ±6; the sign is kept (−0 → 8).
// The magnitude code counts the rounding thresholds at or below |f|: ">" where the tie goes down (to an even
// code), ">=" where it goes up. Branch-free, so it vectorizes on the CPU and does not diverge on the GPU.
// NaN gives an unspecified code (here: ±0).
FP4MOE_HD uint8_t float_to_e2m1(float f) {
  const uint8_t sign = (float_bits(f) & 0x80000000u) ? 8 : 0;
  const float a = bits_float(float_bits(f) & 0x7fffffffu);
  const int c = int(a > 0.25f) + int(a >= 0.75f) + int(a > 1.25f) + int(a >= 1.75f) + int(a > 2.5f) +
                int(a >= 3.5f) + int(a > 5.0f);
  return uint8_t(sign | c);
}

// The E2M1 value nearest to f, as e2m1_to_float(float_to_e2m1(f)) gives it for every f (ties to the even mantissa,
// saturating to ±6, sign kept, NaN → ±0), without the code: the grid step of |f|'s binade (0.5 below 2, 1 below 4,
// 2 above) times 2^23, added and subtracted, rounds |f| half-even to that step, exact at these magnitudes. From 8 up
// the step stops growing (the result saturates to 6 there anyway). About a third of the operations of the code round
// trip, without branches or selects per binade; the GPU requantization of h uses it.
FP4MOE_HD float e2m1_round(float f) {
  const uint32_t mag = float_bits(f) & 0x7fffffffu;
  const uint32_t raw_binade = mag >> 23;  // biased exponent of |f|
  const uint32_t binade = raw_binade < 127u ? 127u : raw_binade > 130u ? 130u : raw_binade;
  const float magic = bits_float((binade + 22u) << 23);  // 2^23 · step: 2^22 below 2, 2^23 below 4, 2^24 below 8
  const float a = bits_float(mag);
  const float r = (a + magic) - magic;
  const float q = mag > 0x7f800000u ? 0.0f : (r < kE2M1Max ? r : kE2M1Max);
  return bits_float(float_bits(q) | (float_bits(f) & 0x80000000u));
}

// Element i of a packed FP4 row (element 2j in the low nibble of byte j, 2j+1 in the high nibble).
FP4MOE_HD uint8_t fp4_get(const uint8_t* packed, int64_t i) {
  const uint8_t byte = packed[i >> 1];
  return (i & 1) ? uint8_t(byte >> 4) : uint8_t(byte & 0xfu);
}

FP4MOE_HD uint8_t fp4_pack(uint8_t lo, uint8_t hi) { return uint8_t((lo & 0xfu) | ((hi & 0xfu) << 4)); }

// ---- block quantization (spec §2) -----------------------------------------------------------------------------------

// gs · R6, the factor block_scale_e4m3 applies to amax (computed once where many blocks share gs).
FP4MOE_HD float block_scale_factor(float gs) {
  const float r6 = 1.0f / 6.0f;
  return mul_rn(gs, r6);
}

// Scale byte for a block with max magnitude `amax` under global scale `gs`.
FP4MOE_HD uint8_t block_scale_e4m3(float amax, float gs) { return float_to_e4m3(mul_rn(amax, block_scale_factor(gs))); }

// Multiplier that maps block values onto the E2M1 grid, for the stored scale byte `sf`, from inv_gs = div_rn(1, gs)
// (computed once where many blocks share gs).
FP4MOE_HD float block_inverse_scale_from(uint8_t sf, float inv_gs) {
  const float sff = e4m3_to_float(sf);
  if (sff == 0.0f) return 0.0f;
  const float inv = div_rn(1.0f, mul_rn(sff, inv_gs));
  return inv < kFltMax ? inv : kFltMax;
}

// The same from gs.
FP4MOE_HD float block_inverse_scale(uint8_t sf, float gs) { return block_inverse_scale_from(sf, div_rn(1.0f, gs)); }

// Quantizes 16 consecutive fp32 values: writes 8 packed bytes, returns the E4M3 scale byte.
FP4MOE_HD uint8_t quantize_block(const float* x, float gs, uint8_t* packed) {
  float amax = 0.0f;
  for (int i = 0; i < kBlockSize; ++i) {
    const float a = bits_float(float_bits(x[i]) & 0x7fffffffu);
    amax = a > amax ? a : amax;
  }
  const uint8_t sf = block_scale_e4m3(amax, gs);
  const float inv = block_inverse_scale(sf, gs);
  for (int i = 0; i < kBlockSize; i += 2) {
    packed[i / 2] = fp4_pack(float_to_e2m1(mul_rn(x[i], inv)), float_to_e2m1(mul_rn(x[i + 1], inv)));
  }
  return sf;
}

// Dequantized value of one element without the global scale: e2m1(q) · sf. Exact in fp32 and in BF16.
FP4MOE_HD float dequant_unscaled(uint8_t code, uint8_t sf) { return e2m1_to_float(code) * e4m3_to_float(sf); }

// Global scale from a ModelOpt-style stored inverse (input_scale or weight_scale_2 = 1/gs).
FP4MOE_HD float global_scale_from_inverse(float inverse) { return div_rn(1.0f, inverse); }

}  // namespace fp4moe
