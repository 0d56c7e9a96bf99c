// W4A4 requantization of h in the FC1 epilogues (spec §5.4), one 16-column block of h per 8 or 4 lanes. The arithmetic
// is nvfp4.hpp's (block_scale_e4m3, block_inverse_scale, float_to_e2m1 then e2m1_to_float), bit for bit, in fewer
// operations: the scale byte by the hardware E4M3 conversion (sm_89+), 1/gs2 once per epilogue, and the E2M1 value
// without its code (e2m1_round). The GPU test RequantizeGpu.* checks both shortcuts against the portable forms on
// every fp32 input.
#pragma once

#include <cstdint>

#include "fp4moe/nvfp4.hpp"

namespace fp4moe::cuda {

// float_to_e4m3(v) for v ≥ 0 or NaN (the scale of a block: amax · gs / 6): one cvt (round to nearest even,
// saturating to 448) where the hardware has it, else the portable form.
__device__ __forceinline__ uint8_t e4m3_of_nonnegative(float v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  uint16_t pair;
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(pair) : "f"(0.0f), "f"(v));
  return uint8_t(pair & 0xffu);
#else
  return float_to_e4m3(v);
#endif
}

// The call's gs2 and what every block derives from it.
struct RequantScale {
  float gs_r6;   // block_scale_e4m3's factor
  float inv_gs;  // block_inverse_scale's 1/gs2
};

__device__ __forceinline__ RequantScale requant_scale(float gs2) {
  return {block_scale_factor(gs2), div_rn(1.0f, gs2)};
}

// A block's scale byte as {its E4M3 value, block_inverse_scale_from's multiplier}.
__device__ __forceinline__ float2 requant_factors(uint8_t sf, const RequantScale& gs) {
  return make_float2(e4m3_to_float(sf), block_inverse_scale_from(sf, gs.inv_gs));
}

// requant_factors of every scale byte a block can get (0 .. 0x7F: amax · gs_r6 is non-negative or NaN, and a NaN
// scale gives a NaN block whatever its byte's sign). Epilogues that requantize many blocks fill it once per kernel
// and look the factors up: the E4M3 decode and the division per block were most of the requantization's
// instructions (bench/NOTES.md, session 16).
inline constexpr int kRequantTableSize = 128;
struct RequantTable {
  float2 factors[kRequantTableSize];
};

// Threads `thread` = 0 .. threads-1 of the caller fill the table; a barrier must follow before any lookup.
__device__ __forceinline__ void requant_table_fill(RequantTable& t, const RequantScale& gs, int thread,
                                                   int threads) {
  for (int i = thread; i < kRequantTableSize; i += threads) t.factors[i] = requant_factors(uint8_t(i), gs);
}

// W4A4: v quantized with gs2 in its 16-output block, returned dequantized without the global scale (e2m1 · sf,
// exact in BF16). The block is the 16 / kValues lanes that differ only in the bits kLaneStride, 2·kLaneStride, ...
// of the lane index, kValues values each: stride 4 and 2 values for the MMA fragments (rows g and g+8 of the lanes
// sharing lane % 4), stride 1 and 2 values for 8 consecutive lanes, stride 8 and 4 values for lanes 8s + r (the wgmma
// FC1 store pass: 4 consecutive values per lane). The factors come from `table` where given (filled for gs), else
// are computed. Every lane of the warp must call it.
template <int kLaneStride = 4, int kValues = 2>
__device__ __forceinline__ void requantize_block(float (&v)[kValues], const RequantScale& gs,
                                                 const RequantTable* table = nullptr) {
  static_assert(kValues == 2 || kValues == 4, "a block is 8 lanes of 2 values or 4 lanes of 4");
  constexpr int kLanes = 16 / kValues;
  static_assert(kLanes * kLaneStride <= 32, "the block's lanes lie in one warp");
  float amax = fabsf(v[0]);  // fmaxf drops NaN unless both are: a NaN amax means the block is all NaN
#pragma unroll
  for (int r = 1; r < kValues; ++r) amax = fmaxf(amax, fabsf(v[r]));
#pragma unroll
  for (int m = kLaneStride; m < kLanes * kLaneStride; m *= 2) {
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, m));
  }
  const uint8_t sf = e4m3_of_nonnegative(__fmul_rn(amax, gs.gs_r6));
  const float2 f = table ? table->factors[sf % kRequantTableSize] : requant_factors(sf, gs);
#pragma unroll
  for (int r = 0; r < kValues; ++r) v[r] = __fmul_rn(e2m1_round(__fmul_rn(v[r], f.y)), f.x);
}

}  // namespace fp4moe::cuda
