// Weighted combine (spec §5.6), deterministic: each thread owns kCombineCols adjacent output columns of one token and
// adds the slots in order k = 0..K-1 with explicit round-to-nearest fp32 operations (acc = acc + w·y; then + out with
// accumulate), rounding once to BF16 — the same order as the CPU reference, with no atomics.
// A token with no local slot gets +0, or keeps out[t] untouched with accumulate.
// 4 columns per thread: 16-byte y loads (H is a multiple of 16, y rows 16-byte aligned) and, where out allows it
// (kVecOut: 8-byte aligned rows), one 8-byte store; 2 columns per thread with 8-byte loads streamed y at ~2.5 TB/s
// (bench/NOTES.md, session 16).
// Roofline: reads K·H·4 bytes of y per token (local slots) and writes H·2 bytes: memory-bound, small.
#pragma once

#include "cuda/combine/combine_launch.hpp"
#include "cuda/common/launch.cuh"
#include "cuda/common/ptx.cuh"
#include "cuda/route/work_tiles.cuh"
#include "fp4moe/nvfp4.hpp"

namespace fp4moe::cuda {

constexpr int kCombineSlotBatch = 8;
constexpr int kCombineCols = 4;

// PDL order: positions (routing, or topk_ids for pair tiles) and topk_weights were complete before FC2 let this
// kernel launch (launch.cuh), so a thread loads its first slots' positions and weights before griddep_wait and only
// the y loads wait for FC2: one memory round trip fewer after FC2 ends.
template <bool kVecOut>
__global__ void combine_kernel(CombineParams p) {
  bool waited = false;
  const auto wait_once = [&] {  // y comes from FC2; out (written here, read with accumulate) from the caller
    if (!waited) griddep_wait();
    waited = true;
  };
  const int64_t groups_per_row = p.hidden / kCombineCols;
  const int64_t total = p.tokens * groups_per_row;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / groups_per_row;
    const int64_t col = (i - t * groups_per_row) * kCombineCols;
    float acc[kCombineCols] = {0.0f, 0.0f, 0.0f, 0.0f};
    bool any = false;
    // Slots in batches: the position and weight loads of a batch, then its y loads, are independent of each other,
    // so a token waits for two memory round trips per batch rather than two per slot.
    for (int64_t k0 = 0; k0 < p.top_k; k0 += kCombineSlotBatch) {
      int32_t pos[kCombineSlotBatch];
      float w[kCombineSlotBatch];
      float4 y[kCombineSlotBatch];
#pragma unroll
      for (int j = 0; j < kCombineSlotBatch; ++j) {
        const bool slot = k0 + j < p.top_k;
        pos[j] = slot ? pair_position(p.work, t * p.top_k + k0 + j) : -1;
        w[j] = slot ? p.topk_weights[t * p.top_k + k0 + j] : 0.0f;
      }
      wait_once();
#pragma unroll
      for (int j = 0; j < kCombineSlotBatch; ++j) {
        y[j] = pos[j] >= 0 ? *reinterpret_cast<const float4*>(p.y + int64_t(pos[j]) * p.hidden + col)
                           : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      }
#pragma unroll
      for (int j = 0; j < kCombineSlotBatch; ++j) {
        if (pos[j] < 0) continue;
        const float v[kCombineCols] = {y[j].x, y[j].y, y[j].z, y[j].w};
#pragma unroll
        for (int c = 0; c < kCombineCols; ++c) acc[c] = __fadd_rn(acc[c], __fmul_rn(w[j], v[c]));
        any = true;
      }
    }
    wait_once();
    uint16_t* dst = p.out + t * p.out_ld + col;
    if (p.accumulate) {
      if (!any) continue;
#pragma unroll
      for (int c = 0; c < kCombineCols; ++c) acc[c] = __fadd_rn(acc[c], bf16_to_float(dst[c]));
    }
    uint16_t b[kCombineCols];
#pragma unroll
    for (int c = 0; c < kCombineCols; ++c) b[c] = float_to_bf16(acc[c]);
    if constexpr (kVecOut) {
      *reinterpret_cast<uint2*>(dst) = make_uint2(b[0] | uint32_t(b[1]) << 16, b[2] | uint32_t(b[3]) << 16);
    } else {
#pragma unroll
      for (int c = 0; c < kCombineCols; ++c) dst[c] = b[c];
    }
  }
  wait_once();  // every thread waits before it exits (launch.cuh)
}

}  // namespace fp4moe::cuda
