// FC2 of the fused MoE: for one work tile (up to 8·kNT sorted rows of one expert) and 32 outputs
// (two 16-row tiles of w2), streams the expert's w2 rows once against the tile's h rows (BF16; in W4A4 the exact
// dequantized values FC1 wrote) and writes y = alpha · (h · w2ᵀ) in fp32 per sorted row for the combine.
// Tile: rows 32j..32j+31 of w2 × 8·kNT tokens. fc2_kernel: one group per block, 4 warps split K = I
// (stream_gemm.cuh); grid max tiles × ceil(H/32), tile-major with the FC1 → FC2 handoff (stream_item_tile).
// fc2_group_kernel: 4 groups per block sharing the h tile (stream_group_gemm.cuh); grid max tiles × ceil(H/128).
// Roofline: w2 bytes of the hit experts once per work tile; writes 4·H bytes per routed row.
#pragma once

#include "cuda/fc2/fc2_launch.hpp"
#include "cuda/common/launch.cuh"
#include "cuda/gemm/stream_gemm.cuh"
#include "cuda/gemm/stream_group_gemm.cuh"
#include "cuda/route/work_tiles.cuh"

namespace fp4moe::cuda {

template <int kNT>
__device__ __forceinline__ StreamTokens<kNT> fc2_tokens(const Fc2Params& p, const RouteTile& tile) {
  const int lane = int(threadIdx.x) % 32;
  StreamTokens<kNT> x;
#pragma unroll
  for (int j = 0; j < kNT; ++j) {
    const int n = 8 * j + lane / 4;
    x.row[j] = n < tile.row_end - tile.row_begin ? p.h + (tile.row_begin + n) * p.intermediate + 16 * (lane % 4) : nullptr;
  }
  return x;
}

// One warp (the one holding the sums of output group `group`): y = alpha · acc (fp32).
template <int kNT>
__device__ void fc2_epilogue(const Fc2Params& p, const RouteTile& tile, int64_t group, const StreamAcc<kNT>& acc) {
  const float scale_2 = p.w2_scale_2[tile.expert];
  const float alpha = __fmul_rn(p.w4a4 ? __fdiv_rn(scale_2, p.gs2) : scale_2, kFragUnscale);
  const int rows = tile.row_end - tile.row_begin;
#pragma unroll
  for (int i = 0; i < StreamShape::kRowTiles; ++i) {
#pragma unroll
    for (int j = 0; j < kNT; ++j) {
#pragma unroll
      for (int f = 0; f < 4; ++f) {
        const int n = stream_token(j, f);
        const int64_t col = (2 * group + i) * 16 + stream_row(f);
        if (n < rows && col < p.hidden) p.y[(tile.row_begin + n) * p.hidden + col] = __fmul_rn(alpha, acc[i][j][f]);
      }
    }
  }
}

// Waits until the tile's h is stored: its FC1 groups' count (WorkTiles::tile_ready), else the whole FC1 grid. Then
// lets the combine launch. That is safe before this block's own griddep_wait (launch.cuh's rule otherwise): what
// the combine reads before its wait (positions, weights) was complete before FC1 let FC2 launch, and it reads y
// only after FC2 completed, which implies FC1 did, since every FC2 block calls fc2_finish before it exits.
__device__ __forceinline__ void fc2_wait_for_h(const Fc2Params& p, const RouteTile& tile) {
  if (p.work.tile_ready) {
    tile_ready_wait(p.work, tile);
  } else {
    griddep_wait();
  }
  griddep_launch_dependents();
}
__device__ __forceinline__ void fc2_finish(const Fc2Params& p) {
  if (p.work.tile_ready) griddep_wait();
}

// PDL order: FC1 lets FC2 launch only after FC1 waited for everything before it, so the routing tiles (or topk_ids)
// are complete and the weights are prefetched before FC2 waits for h, overlapping FC1; h is read after it.
template <int kNT, int kStages>
__global__ void __launch_bounds__(StreamShape::kThreads, kStreamMinBlocks<kNT, kStages>) fc2_kernel(Fc2Params p) {
  __shared__ StreamSmem<kNT, kStages> smem;
  RouteTile tile;
  if (!work_tile(p.work, stream_item_tile(p.tile_major), tile)) {  // the grid is sized for the worst case routing
    griddep_wait();
    return;
  }
  const int64_t group = stream_item_group_block(p.tile_major);
  const auto tokens = [&] {
    fc2_wait_for_h(p, tile);
    return fc2_tokens<kNT>(p, tile);
  };
  StreamAcc<kNT> acc;
  stream_block_gemm<kNT>(stream_weights(p.w2, tile.expert, 2 * group, 2 * group + 1), tokens, p.intermediate,
                         p.w2.k_tiles, smem, acc);
  if (threadIdx.x < 32) fc2_epilogue<kNT>(p, tile, group, acc);
  fc2_finish(p);
}

// The same work with the h tile shared by 4 groups of 32 outputs (stream_group_gemm.cuh): warp w computes group
// 4·b + w of its block b of groups; the same bits as fc2_kernel. Dynamic shared memory: kGroupSmemBytes<kNT>.
template <int kNT>
__global__ void __launch_bounds__(StreamShape::kThreads, kGroupMinBlocks<kNT>) fc2_group_kernel(Fc2Params p) {
  extern __shared__ __align__(128) uint8_t fc2_group_smem[];
  auto& smem = *reinterpret_cast<GroupSmem<kNT>*>(fc2_group_smem);
  static_assert(sizeof(GroupSmem<kNT>) <= kGroupSmemBytes<kNT>, "the launch gives this much");
  const int64_t groups = fc2_output_groups(p.hidden);
  RouteTile tile;
  if (!work_tile(p.work, stream_item_tile(p.tile_major), tile)) {
    griddep_wait();
    return;
  }
  const int64_t group = stream_item_group_block(p.tile_major) * StreamShape::kWarps + int(threadIdx.x) / 32;
  const bool active = group < groups;
  const int rows = tile.row_end - tile.row_begin;
  const auto tokens = [&] {
    fc2_wait_for_h(p, tile);
    return group_token_copier<kNT>(
        [&](int n) -> const uint16_t* { return n < rows ? p.h + (tile.row_begin + n) * p.intermediate : nullptr; },
        p.h);
  };
  StreamAcc<kNT> acc;
  stream_group_gemm<kNT>(stream_weights(p.w2, tile.expert, 2 * group, 2 * group + 1), active, tokens,
                         p.intermediate, p.w2.k_tiles, smem, acc);
  if (active) fc2_epilogue<kNT>(p, tile, group, acc);
  fc2_finish(p);
}

}  // namespace fp4moe::cuda
