// FC2 of the fused MoE for large batches (sm_90a, wgmma): for one work tile (up to kN = 64, 128 or 160 sorted rows of
// one expert) and 256 outputs (w2 rows 256j..256j+255, 128 per consumer warpgroup), streams those w2 rows
// (fragment tiles) against the tile's h rows (BF16 in the MMA k order, as fc1_wgmma_kernel.cuh writes them; I a
// multiple of 64; by tensor copies for 128- and 160-row tiles, else by cp.async as the weights) and writes
// y = alpha · (h · w2ᵀ) in fp32 per sorted row for the combine.
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

// One consumer's outputs alpha · acc staged for kFc2StageTokens tokens at a time: a token's 128 columns in one row
// (padded to 132 floats: the 4 tokens 2t a warp writes at once land 8 banks apart; rows stay 16-byte aligned).
inline constexpr int kFc2StageTokens = 64;
inline constexpr int kFc2StagePitch = kWgmmaConsumerRows + 4;
struct Fc2Stage {
  float v[kFc2StageTokens][kFc2StagePitch];
};
template <int kN>
using Fc2Smem = WgmmaSmem<kN, Fc2Stage>;

// FC2's h rows of a work tile are contiguous (sorted rows row_begin..), so 128- and 160-row tiles bring them by tensor
// copies of h_map (kWgmmaTokenBoxRows rows × 64 columns per box; rows past P arrive as zeros and feed no output):
// 0-3 % off the layer at T ≥ 4096, 6 % at gpt-oss-120b (bench/NOTES.md, session 20). 64-row tiles (32 rows per
// expert: deepseek-v3 and gpt-oss-120b at T = 1024) were 1-3 % slower that way, so they gather h by cp.async through
// the row table.
template <int kN>
inline constexpr bool kFc2HByTma = kN >= 128;

// Producer warpgroup, one item: the row table of the tile (cp.async: its h rows, in 16-byte units), then the pipeline.
template <int kN>
__device__ __forceinline__ void fc2_wgmma_produce(const Fc2Params& p, const TmaMap& h_map, const RouteTile& tile,
                                                  int64_t block_group, Fc2Smem<kN>& smem,
                                                  WgmmaRing& ring FP4MOE_PROF_ARG) {
  if constexpr (!kFc2HByTma<kN>) {
    named_barrier_sync(kWgmmaBarProducer, 128);  // the previous item's copies are issued: its rows are free
    for (int r = wgmma_thread(); r < kN; r += 128) {
      const int row = r < tile.row_end - tile.row_begin ? r : 0;  // rows past the tile: the first (wgmma_sources)
      smem.rows[r] = uint32_t((tile.row_begin + row) * p.intermediate / 8);
    }
    named_barrier_sync(kWgmmaBarProducer, 128);
  }
  const int64_t first_group = kWgmmaConsumers * block_group;
  const auto row_tile = [&](int consumer, int h) { return wgmma_row_tile(first_group + consumer, h); };
  const WgmmaWeights w = wgmma_weights(p.w2, tile.expert, row_tile, p.weights_evict_first);
  wgmma_produce<kFc2HByTma<kN>>(smem, w, p.h, &h_map, int(tile.row_begin), p.w2.k_tiles, tile.row_end - tile.row_begin,
                                ring FP4MOE_PROF_PASS);
}

// One pass of the epilogue: alpha · acc staged (a token's 128 columns in one row, half h at 64h), then stored. Where
// the group's 128 columns lie inside H (and H is a multiple of 4, so rows stay 16-byte aligned), a thread per token
// row sends its 512 bytes to y by one bulk copy and the consumer moves on: the copies drain while it stages the next
// pass or runs the next item's main loop (the staging waits only for their reads). A warp storing the rows from
// registers (LDS + STG per 16 bytes) made the consumers wait for the y stores: without them the layer ran 9 % faster
// at qwen3-30b-a3b, and the bulk copies took 1-4 % off it (bench/NOTES.md, session 17). Elsewhere (the last group of
// an H that is not a multiple of 128) a warp stores kFc2RowsAtOnce rows per iteration from registers, per element
// past H.
inline constexpr int kFc2RowsAtOnce = 4;

template <int kPass>
__device__ __forceinline__ void fc2_wgmma_store_rows(const Fc2Params& p, const RouteTile& tile, int64_t group,
                                                     const Fc2Stage& stage) {
  const int rows = tile.row_end - tile.row_begin, lane = int(threadIdx.x) % 32;
  const int64_t col = group * kWgmmaConsumerRows + 4 * lane;
#pragma unroll 1
  for (int n0 = wgmma_warp(); n0 < kFc2StageTokens; n0 += 4 * kFc2RowsAtOnce) {
    float4 v[kFc2RowsAtOnce];
#pragma unroll
    for (int u = 0; u < kFc2RowsAtOnce; ++u) v[u] = *reinterpret_cast<const float4*>(&stage.v[n0 + 4 * u][4 * lane]);
#pragma unroll
    for (int u = 0; u < kFc2RowsAtOnce; ++u) {
      const int token = kPass * kFc2StageTokens + n0 + 4 * u;
      if (token >= rows) break;
      float* y = p.y + (tile.row_begin + token) * p.hidden + col;
      const float e[4] = {v[u].x, v[u].y, v[u].z, v[u].w};
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        if (col + j < p.hidden) y[j] = e[j];
      }
    }
  }
}

template <int kN, int kPass>
__device__ __forceinline__ void fc2_wgmma_epilogue_pass(const Fc2Params& p, const RouteTile& tile, int64_t group,
                                                        const WgmmaAcc<kN>& acc, float alpha, Fc2Stage& stage) {
  const int64_t col0 = group * kWgmmaConsumerRows;
  const bool bulk = col0 + kWgmmaConsumerRows <= p.hidden && p.hidden % 4 == 0;
  bulk_wait_read();  // this thread's copies of the previous pass or item have read the stage
  wgmma_stage_acc<kN, kPass, kFc2StageTokens, true>(acc, alpha,
                                                     [&](int h, int n, int r, float v) { stage.v[n][64 * h + r] = v; });
  if (!bulk) {
    fc2_wgmma_store_rows<kPass>(p, tile, group, stage);
    return;
  }
  const int n = wgmma_thread(), token = kPass * kFc2StageTokens + n;
  if (n < kFc2StageTokens && token < tile.row_end - tile.row_begin) {
    bulk_copy_to_global(p.y + (tile.row_begin + token) * p.hidden + col0, &stage.v[n][0],
                        kWgmmaConsumerRows * sizeof(float));
  }
  bulk_commit();
}

// y = alpha · acc for the rows and columns of this consumer's output group inside the tile and the matrix.
template <int kN>
__device__ __forceinline__ void fc2_wgmma_epilogue(const Fc2Params& p, const RouteTile& tile, int64_t group,
                                                   const WgmmaAcc<kN>& acc, Fc2Smem<kN>& smem) {
  const float scale_2 = p.w2_scale_2[tile.expert];
  const float alpha = __fmul_rn(p.w4a4 ? __fdiv_rn(scale_2, p.gs2) : scale_2, kFragUnscale);
  Fc2Stage& stage = smem.stage[wgmma_consumer()];
  wgmma_epilogue_passes<kN, kFc2StageTokens>(tile.row_end - tile.row_begin, [&](auto pass) {
    fc2_wgmma_epilogue_pass<kN, decltype(pass)::value>(p, tile, group, acc, alpha, stage);
  });
}

// Persistent (wgmma_schedule.cuh). PDL: waits first (h comes from FC1, a finished grid, so the tensor copies see its
// stores), then lets the combine launch; its blocks take the SMs this grid frees. Block group j: output groups 2j
// and 2j + 1 of 128 columns, one per consumer. h_map: the [P, I] BF16 h where kFc2HByTma (fc2_wgmma_launch.cu encodes
// it per launch; a __grid_constant__ parameter, as tensor copies need).
template <int kN>
__global__ void __launch_bounds__(kWgmmaThreads, 1)
    fc2_wgmma_kernel(const __grid_constant__ Fc2Params p, const __grid_constant__ TmaMap h_map) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ uint8_t fc2_smem_raw[];
  Fc2Smem<kN>& smem = wgmma_smem<Fc2Smem<kN>>(fc2_smem_raw);
  griddep_wait();
  griddep_launch_dependents();
  wgmma_persistent_block(
      smem, p.work, (p.hidden + kWgmmaRows - 1) / kWgmmaRows, p.w2.k_tiles,
      [&](const RouteTile& tile, int64_t block_group, WgmmaRing& ring FP4MOE_PROF_ARG) {
        fc2_wgmma_produce<kN>(p, h_map, tile, block_group, smem, ring FP4MOE_PROF_PASS);
      },
      [&](const RouteTile& tile, int64_t group, const WgmmaAcc<kN>& acc) {
        fc2_wgmma_epilogue<kN>(p, tile, group, acc, smem);
      });
  bulk_wait();  // y written (the stage stays in place until the copies have read it)
#else
  griddep_wait();  // never launched off sm_90a (wgmma_path_available)
#endif
}

}  // namespace fp4moe::cuda
