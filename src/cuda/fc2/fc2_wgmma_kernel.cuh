// FC2 of the fused MoE for large batches (sm_90a, wgmma): for one work tile (up to kN = 64 or 128 sorted rows of
// one expert) and 256 outputs (w2 rows 256j..256j+255, 128 per consumer warpgroup), streams those w2 rows
// (fragment tiles) against the tile's h rows (BF16 in the MMA k order, as fc1_wgmma_kernel.cuh writes them; I a
// multiple of 64) and writes y = alpha · (h · w2ᵀ) in fp32 per sorted row for the combine.
// Tile: 256 weight rows × kN tokens, a producer and two consumer warpgroups (wgmma_gemm.cuh). Persistent grid
// (wgmma_schedule.cuh) over work tiles × ceil(H/256) block groups.
// Roofline: 2·rows·H·I flops at the BF16 tensor-core peak; w2 bytes once per work tile; writes 4·H bytes per
// routed row.
#pragma once

#include "cuda/common/launch.cuh"
#include "cuda/fc2/fc2_launch.hpp"
#include "cuda/gemm/wgmma_gemm.cuh"
#include "cuda/gemm/wgmma_schedule.cuh"
#include "cuda/route/work_tiles.cuh"

namespace fp4moe::cuda {

struct Fc2NoStage {};
template <int kN>
using Fc2Smem = WgmmaSmem<kN, Fc2NoStage>;  // the epilogue writes from registers

// Producer warpgroup, one item: the row table of the tile (its h rows), then the pipeline.
template <int kN>
__device__ __forceinline__ void fc2_wgmma_produce(const Fc2Params& p, const RouteTile& tile, int64_t block_group,
                                                  Fc2Smem<kN>& smem, int64_t& chunk) {
  named_barrier_sync(kWgmmaBarProducer, 128);  // the previous item's copies are issued: its rows are free
  for (int r = wgmma_thread(); r < kN; r += 128) {
    smem.rows[r] = r < tile.row_end - tile.row_begin ? p.h + (tile.row_begin + r) * p.intermediate : nullptr;
  }
  named_barrier_sync(kWgmmaBarProducer, 128);
  const int64_t first_group = kWgmmaConsumers * block_group;
  const WgmmaWeights w =
      wgmma_weights(p.w2, tile.expert, [&](int consumer, int h) { return wgmma_row_tile(first_group + consumer, h); });
  wgmma_produce(smem, w, p.w2.k_tiles, chunk);
}

// y = alpha · acc for the rows and columns of this consumer's output group inside the tile and the matrix.
// Accumulator 4j + f of a half is token 8j + 2t + f % 2, row g + 8 · (f / 2) of the warp's tile; one pointer walks
// the tokens (few live registers next to the 128 accumulators).
template <int kN>
__device__ void fc2_wgmma_epilogue(const Fc2Params& p, const RouteTile& tile, int64_t group, const WgmmaAcc<kN>& acc) {
  const float scale_2 = p.w2_scale_2[tile.expert];
  const float alpha = __fmul_rn(p.w4a4 ? __fdiv_rn(scale_2, p.gs2) : scale_2, kFragUnscale);
  const int rows = tile.row_end - tile.row_begin, lane = int(threadIdx.x) % 32, t = lane % 4, g = lane / 4;
#pragma unroll
  for (int h = 0; h < kWgmmaHalves; ++h) {
    const int64_t col = wgmma_row_tile(group, h) * format::kFragRows + g;
    const bool lo = col < p.hidden, hi = col + 8 < p.hidden;
    float* y = p.y + (tile.row_begin + 2 * t) * p.hidden + col;
#pragma unroll
    for (int j = 0; j < kN / 8; ++j, y += 8 * p.hidden) {
#pragma unroll
      for (int f = 0; f < 4; ++f) {
        const bool in = 8 * j + 2 * t + f % 2 < rows && (f < 2 ? lo : hi);
        if (in) y[(f % 2) * p.hidden + 8 * (f / 2)] = __fmul_rn(alpha, acc[h][4 * j + f]);
      }
    }
  }
}

// Persistent (wgmma_schedule.cuh). PDL: waits first (h comes from FC1), then lets the combine launch; its blocks
// take the SMs this grid frees. Block group j: output groups 2j and 2j + 1 of 128 columns, one per consumer.
template <int kN>
__global__ void __launch_bounds__(kWgmmaThreads, 1) fc2_wgmma_kernel(Fc2Params p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ uint8_t fc2_smem_raw[];
  Fc2Smem<kN>& smem = wgmma_smem<Fc2Smem<kN>>(fc2_smem_raw);
  griddep_wait();
  griddep_launch_dependents();
  wgmma_persistent_block(
      smem, p.work, (p.hidden + kWgmmaRows - 1) / kWgmmaRows, p.w2.k_tiles,
      [&](const RouteTile& tile, int64_t block_group, int64_t& chunk) {
        fc2_wgmma_produce<kN>(p, tile, block_group, smem, chunk);
      },
      [&](const RouteTile& tile, int64_t group, const WgmmaAcc<kN>& acc) {
        fc2_wgmma_epilogue<kN>(p, tile, group, acc);
      });
#else
  griddep_wait();  // never launched off sm_90a (wgmma_path_available)
#endif
}

}  // namespace fp4moe::cuda
