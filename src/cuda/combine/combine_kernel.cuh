// Weighted combine (spec §5.6), deterministic: each thread owns two adjacent output columns of one token and adds
// the slots in order k = 0..K-1 with explicit round-to-nearest fp32 operations (acc = acc + w·y; then + out with
// accumulate), rounding once to BF16 — the same order as the CPU reference, with no atomics.
// A token with no local slot gets +0, or keeps out[t] untouched with accumulate.
// Roofline: reads K·H·4 bytes of y per token (local slots) and writes H·2 bytes: memory-bound, small.
#pragma once

#include "cuda/combine/combine_launch.hpp"
#include "cuda/common/ptx.cuh"
#include "fp4moe/nvfp4.hpp"

namespace fp4moe::cuda {

__global__ void combine_kernel(CombineParams p) {
  const int64_t pairs_per_row = p.hidden / 2;
  const int64_t total = p.tokens * pairs_per_row;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / pairs_per_row;
    const int64_t col = (i - t * pairs_per_row) * 2;
    float acc0 = 0.0f, acc1 = 0.0f;
    bool any = false;
    for (int64_t k = 0; k < p.top_k; ++k) {
      const int32_t pos = p.position[t * p.top_k + k];
      if (pos < 0) continue;
      const float w = p.topk_weights[t * p.top_k + k];
      const float2 y = *reinterpret_cast<const float2*>(p.y + int64_t(pos) * p.hidden + col);
      acc0 = __fadd_rn(acc0, __fmul_rn(w, y.x));
      acc1 = __fadd_rn(acc1, __fmul_rn(w, y.y));
      any = true;
    }
    uint16_t* dst = p.out + t * p.out_ld + col;
    if (p.accumulate) {
      if (!any) continue;
      acc0 = __fadd_rn(acc0, bf16_to_float(dst[0]));
      acc1 = __fadd_rn(acc1, bf16_to_float(dst[1]));
    }
    dst[0] = float_to_bf16(acc0);
    dst[1] = float_to_bf16(acc1);
  }
}

}  // namespace fp4moe::cuda
