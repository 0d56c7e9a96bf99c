// Weighted combine (spec §5.6), deterministic: each thread owns two adjacent output columns of one token and adds
// the slots in order k = 0..K-1 with explicit round-to-nearest fp32 operations (acc = acc + w·y; then + out with
// accumulate), rounding once to BF16 — the same order as the CPU reference, with no atomics.
// A token with no local slot gets +0, or keeps out[t] untouched with accumulate.
// Roofline: reads K·H·4 bytes of y per token (local slots) and writes H·2 bytes: memory-bound, small.
#pragma once

#include "cuda/combine/combine_launch.hpp"
#include "cuda/common/launch.cuh"
#include "cuda/common/ptx.cuh"
#include "cuda/route/work_tiles.cuh"
#include "fp4moe/nvfp4.hpp"

namespace fp4moe::cuda {

constexpr int kCombineSlotBatch = 8;

// PDL order: positions (routing, or topk_ids for pair tiles) and topk_weights were complete before FC2 let this
// kernel launch (launch.cuh), so a thread loads its first slots' positions and weights before griddep_wait and only
// the y loads wait for FC2: one memory round trip fewer after FC2 ends.
__global__ void combine_kernel(CombineParams p) {
  bool waited = false;
  const auto wait_once = [&] {  // y comes from FC2; out (written here, read with accumulate) from the caller
    if (!waited) griddep_wait();
    waited = true;
  };
  const int64_t pairs_per_row = p.hidden / 2;
  const int64_t total = p.tokens * pairs_per_row;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / pairs_per_row;
    const int64_t col = (i - t * pairs_per_row) * 2;
    float acc0 = 0.0f, acc1 = 0.0f;
    bool any = false;
    // Slots in batches: the position and weight loads of a batch, then its y loads, are independent of each other,
    // so a token waits for two memory round trips per batch rather than two per slot.
    for (int64_t k0 = 0; k0 < p.top_k; k0 += kCombineSlotBatch) {
      int32_t pos[kCombineSlotBatch];
      float w[kCombineSlotBatch];
      float2 y[kCombineSlotBatch];
#pragma unroll
      for (int j = 0; j < kCombineSlotBatch; ++j) {
        const bool slot = k0 + j < p.top_k;
        pos[j] = slot ? pair_position(p.work, t * p.top_k + k0 + j) : -1;
        w[j] = slot ? p.topk_weights[t * p.top_k + k0 + j] : 0.0f;
      }
      wait_once();
#pragma unroll
      for (int j = 0; j < kCombineSlotBatch; ++j) {
        y[j] = pos[j] >= 0 ? *reinterpret_cast<const float2*>(p.y + int64_t(pos[j]) * p.hidden + col) : make_float2(0, 0);
      }
#pragma unroll
      for (int j = 0; j < kCombineSlotBatch; ++j) {
        if (pos[j] < 0) continue;
        acc0 = __fadd_rn(acc0, __fmul_rn(w[j], y[j].x));
        acc1 = __fadd_rn(acc1, __fmul_rn(w[j], y[j].y));
        any = true;
      }
    }
    wait_once();
    uint16_t* dst = p.out + t * p.out_ld + col;
    if (p.accumulate) {
      if (!any) continue;
      acc0 = __fadd_rn(acc0, bf16_to_float(dst[0]));
      acc1 = __fadd_rn(acc1, bf16_to_float(dst[1]));
    }
    dst[0] = float_to_bf16(acc0);
    dst[1] = float_to_bf16(acc1);
  }
  wait_once();  // every thread waits before it exits (launch.cuh)
}

}  // namespace fp4moe::cuda
