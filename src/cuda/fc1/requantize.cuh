// W4A4 requantization of h in the FC1 epilogues (spec §5.4), one 16-column block of h per 8 lanes. The arithmetic
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

// W4A4: v quantized with gs2 in its 16-output block, returned dequantized without the global scale (e2m1 · sf,
// exact in BF16). The block is the 8 lanes that differ only in the bits kLaneStride, 2·kLaneStride, 4·kLaneStride
// of the lane index, 2 values each: stride 4 for the MMA fragments (rows g and g+8 of the lanes sharing lane % 4),
// stride 1 for 8 consecutive lanes. Every lane of the warp must call it.
template <int kLaneStride = 4>
__device__ __forceinline__ void requantize_block(float (&v)[2], const RequantScale& gs) {
  float amax = fmaxf(fabsf(v[0]), fabsf(v[1]));
#pragma unroll
  for (int m = kLaneStride; m < 8 * kLaneStride; m *= 2) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, m));
  const uint8_t sf = e4m3_of_nonnegative(__fmul_rn(amax, gs.gs_r6));
  const float inv = block_inverse_scale_from(sf, gs.inv_gs);
  const float sff = e4m3_to_float(sf);
#pragma unroll
  for (int r = 0; r < 2; ++r) v[r] = __fmul_rn(e2m1_round(__fmul_rn(v[r], inv)), sff);
}

}  // namespace fp4moe::cuda
