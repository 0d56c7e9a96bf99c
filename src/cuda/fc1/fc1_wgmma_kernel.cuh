// FC1 of the fused MoE for large batches (sm_90a, wgmma): for one work tile (up to kN = 64 or 128 sorted rows of
// one expert) and 64 outputs (gated: gate rows 64j.. and up rows I + 64j..; non-gated: rows 128j..128j+127), streams
// those w13 rows (fragment tiles) against the tile's x rows, scales by alpha, applies the activation and writes h per
// sorted row as BF16 in the MMA k order of each 64-column chunk (format::fragment_k_slot), which is how FC2's
// wgmma path reads it. W4A4: h is quantized per 16-column block with gs2 (spec §5.4), as in fc1_kernel.cuh.
// Inputs: x rows in the MMA k order (x_reorder_kernel.cuh; H a multiple of 64). Tile: 128 weight rows × kN tokens,
// one warpgroup (wgmma_gemm.cuh). Grid: (max tiles, I/64 gated or I/128).
// Roofline: 2·rows·2I·H flops at the BF16 tensor-core peak; w13 bytes once per work tile (tiles of one expert run
// side by side, so repeats mostly hit L2); x rows re-read from L2 once per output group.
#pragma once

#include "cuda/common/launch.cuh"
#include "cuda/fc1/activation.cuh"
#include "cuda/fc1/fc1_launch.hpp"
#include "cuda/fc1/requantize.cuh"
#include "cuda/gemm/wgmma_gemm.cuh"
#include "cuda/route/work_tiles.cuh"

namespace fp4moe::cuda {

// Fragment row tile of half h for this warp: gated → gate tile 4j + w (h = 0) and up tile I/16 + 4j + w (h = 1);
// non-gated → the block's 128 consecutive rows (wgmma_row_tile).
template <bool kGated>
__device__ __forceinline__ int64_t fc1_wgmma_row_tile(const Fc1Params& p, int64_t group, int h) {
  if constexpr (kGated) return (h == 0 ? 0 : p.intermediate / format::kFragRows) + 4 * group + int(threadIdx.x) / 32;
  return wgmma_row_tile(group, h);
}

// Row table of the tile: x of the token of each sorted row.
template <int kN>
__device__ __forceinline__ void fc1_wgmma_rows(const Fc1Params& p, const RouteTile& tile, WgmmaSmem<kN>& smem) {
  for (int r = int(threadIdx.x); r < kN; r += kWgmmaThreads) {
    const bool in = r < tile.row_end - tile.row_begin;
    smem.rows[r] = in ? p.x + int64_t(sorted_pair(p.work, tile.row_begin + r) / p.top_k) * p.x_ld : nullptr;
  }
}

// FC1 outputs of the tile staged in shared memory (the token slots are free once the mainloop is done): alpha · acc
// per (token, output column), gate and up apart (non-gated: the two halves' columns side by side).
// Rows padded to 68 floats: the 4 tokens a warp writes at once (2t) land 8 banks apart.
template <int kN>
struct Fc1Stage {
  float v[kWgmmaHalves][kN][68];
};
static_assert(sizeof(Fc1Stage<128>) <= sizeof(WgmmaSmem<128>::tokens), "the stage fits in the token slots");
static_assert(sizeof(Fc1Stage<64>) <= sizeof(WgmmaSmem<64>::tokens), "the stage fits in the token slots");

// Stage alpha · acc: half h, column 16·warp + row, token n.
template <int kN>
__device__ __forceinline__ void fc1_stage_acc(const WgmmaAcc<kN>& acc, float alpha, Fc1Stage<kN>& stage) {
  const int warp = int(threadIdx.x) / 32;
#pragma unroll
  for (int h = 0; h < kWgmmaHalves; ++h) {
#pragma unroll
    for (int i = 0; i < kN / 2; ++i) stage.v[h][wgmma_token(i)][16 * warp + wgmma_row(i)] = __fmul_rn(alpha, acc[h][i]);
  }
}

// alpha, activation, (W4A4) requantization, BF16 store of h. The accumulators go through shared memory, so the
// activation runs in one rolled loop (compact code: the unrolled form overflowed the instruction cache) and a warp
// stores 64 columns of one token row (128 contiguous bytes in the MMA k order).
template <bool kGated, int kN>
__device__ void fc1_wgmma_epilogue(const Fc1Params& p, const RouteTile& tile, int64_t group, const WgmmaAcc<kN>& acc,
                                   WgmmaSmem<kN>& smem) {
  const float scale_2 = p.w13_scale_2[tile.expert];
  const float alpha = __fmul_rn(p.w4a4 ? __fdiv_rn(scale_2, p.gs1) : scale_2, kFragUnscale);
  Fc1Stage<kN>& stage = *reinterpret_cast<Fc1Stage<kN>*>(smem.tokens);
  __syncthreads();  // every warp's wgmmas are done with the token slots
  fc1_stage_acc<kN>(acc, alpha, stage);
  __syncthreads();
  const int rows = tile.row_end - tile.row_begin;
  constexpr int kOuts = kGated ? 1 : kWgmmaHalves;
  const int lane = int(threadIdx.x) % 32;
#pragma unroll 1
  for (int n = int(threadIdx.x) / 32; n < kN; n += kWgmmaThreads / 32) {
#pragma unroll 1
    for (int o = 0; o < kOuts; ++o) {
      float v[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int col = 2 * lane + r;
        const float gate = stage.v[o][n][col];
        v[r] = apply_activation(p.activation, p.swiglu, gate, kGated ? stage.v[1][n][col] : 0.0f);
      }
      if (p.w4a4) requantize_block<1>(v, p.gs2);
      if (n >= rows) continue;
      const int64_t chunk = (kGated ? group : 2 * group + o) * format::kFragK;
      uint16_t* dst = p.h + (tile.row_begin + n) * p.intermediate + chunk + format::fragment_k_slot(2 * lane);
      *reinterpret_cast<uint32_t*>(dst) = pack_bf16x2(v[0], v[1]);
    }
  }
}

// PDL: waits first (x, or the quantize pass, and the routing), then lets FC2 launch into the SMs this grid frees.
template <bool kGated, int kN>
__global__ void __launch_bounds__(kWgmmaThreads, 2) fc1_wgmma_kernel(Fc1Params p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ uint8_t fc1_smem_raw[];
  WgmmaSmem<kN>& smem = wgmma_smem<kN>(fc1_smem_raw);
  griddep_wait();
  griddep_launch_dependents();
  RouteTile tile;
  if (!work_tile(p.work, blockIdx.x, tile)) return;  // the grid is sized for the worst case routing
  const int64_t group = blockIdx.y;
  fc1_wgmma_rows<kN>(p, tile, smem);
  const WgmmaWeights w =
      wgmma_weights(p.w13, tile.expert, [&](int h) { return fc1_wgmma_row_tile<kGated>(p, group, h); });
  __syncthreads();
  WgmmaAcc<kN> acc;
  wgmma_block_gemm<kN>(smem, w, p.w13.k_tiles, acc);
  fc1_wgmma_epilogue<kGated, kN>(p, tile, group, acc, smem);
#else
  griddep_wait();  // never launched off sm_90a (wgmma_path_available)
#endif
}

}  // namespace fp4moe::cuda
