// W4A4 requantization of h in the FC1 epilogues (spec §5.4), one 16-column block of h per 8 lanes.
#pragma once

#include "fp4moe/nvfp4.hpp"

namespace fp4moe::cuda {

// W4A4: v quantized with gs2 in its 16-output block, returned dequantized without the global scale (e2m1 · sf,
// exact in BF16). The block is the 8 lanes that differ only in the bits kLaneStride, 2·kLaneStride, 4·kLaneStride
// of the lane index, 2 values each: stride 4 for the MMA fragments (rows g and g+8 of the lanes sharing lane % 4),
// stride 1 for 8 consecutive lanes. Every lane of the warp must call it.
template <int kLaneStride = 4>
__device__ __forceinline__ void requantize_block(float (&v)[2], float gs2) {
  float amax = fmaxf(fabsf(v[0]), fabsf(v[1]));
#pragma unroll
  for (int m = kLaneStride; m < 8 * kLaneStride; m *= 2) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, m));
  const uint8_t sf = block_scale_e4m3(amax, gs2);
  const float inv = block_inverse_scale(sf, gs2);
#pragma unroll
  for (int r = 0; r < 2; ++r) v[r] = dequant_unscaled(float_to_e2m1(__fmul_rn(v[r], inv)), sf);
}

}  // namespace fp4moe::cuda
