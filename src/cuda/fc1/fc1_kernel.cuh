// FC1 of the fused MoE: for one work tile (up to 8·kNT sorted rows of one expert) and one group of 16 outputs,
// streams the expert's w13 rows once (fragment tiles) against the tokens' x rows, scales by alpha, applies the
// activation and writes h per sorted row as BF16. W4A4: x arrives already quantized and dequantized
// (exact BF16 values e2m1·sf) and h is quantized per 16-column block with gs2 (spec §5.4) and stored dequantized,
// so FC2 reads BF16 either way.
// Tile: gated → gate rows 16j.. and up rows I+16j.. (each lane holds gate and up of the same output); non-gated →
// rows 32j..32j+31. fc1_kernel: one output group per block, 4 warps split K (stream_gemm.cuh); grid max tiles ×
// (I/16 gated or ceil(I/32)), tile-major with the FC1 → FC2 handoff (stream_item_tile). fc1_group_kernel: 4 output
// groups per block sharing the token tile (stream_group_gemm.cuh); grid max tiles × groups / 4 rounded up.
// Roofline: w13 bytes of the hit experts once per work tile (tiles of one expert run side by side, so repeats
// mostly hit L2); 2·rows·2I·H flops; x and h traffic is a few KB per token.
#pragma once

#include "cuda/fc1/activation.cuh"
#include "cuda/fc1/fc1_launch.hpp"
#include "cuda/fc1/requantize.cuh"
#include "cuda/common/launch.cuh"
#include "cuda/gemm/stream_gemm.cuh"
#include "cuda/gemm/stream_group_gemm.cuh"
#include "cuda/route/work_tiles.cuh"
#include "fp4moe/nvfp4.hpp"

namespace fp4moe::cuda {

// Token rows of the tile: x of the token of sorted row 8j + g, at k 16t.
template <int kNT>
__device__ __forceinline__ StreamTokens<kNT> fc1_tokens(const Fc1Params& p, const RouteTile& tile) {
  const int lane = int(threadIdx.x) % 32;
  StreamTokens<kNT> x;
#pragma unroll
  for (int j = 0; j < kNT; ++j) {
    const int n = 8 * j + lane / 4;
    const int64_t token = n < tile.row_end - tile.row_begin ? sorted_pair(p.work, tile.row_begin + n) / p.top_k : -1;
    x.row[j] = token >= 0 ? p.x + token * p.x_ld + 16 * (lane % 4) : nullptr;
  }
  return x;
}

// One warp (the one holding the sums of output group `group`): alpha, activation, (W4A4) requantization, BF16
// store of h.
template <bool kGated, int kNT>
__device__ void fc1_epilogue(const Fc1Params& p, const RouteTile& tile, int64_t group, const StreamAcc<kNT>& acc) {
  const float scale_2 = p.w13_scale_2[tile.expert];
  const float alpha = __fmul_rn(p.w4a4 ? __fdiv_rn(scale_2, p.gs1) : scale_2, kFragUnscale);
  const RequantScale gs2 = requant_scale(p.gs2);
  constexpr int kOutTiles = kGated ? 1 : 2;
  const int rows = tile.row_end - tile.row_begin;
#pragma unroll
  for (int j = 0; j < kNT; ++j) {
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      const int n = stream_token(j, c);
#pragma unroll
      for (int o = 0; o < kOutTiles; ++o) {
        float v[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const float gate = __fmul_rn(alpha, acc[o][j][2 * r + c]);
          const float up = kGated ? __fmul_rn(alpha, acc[1][j][2 * r + c]) : 0.0f;
          v[r] = apply_activation(p.activation, p.swiglu, gate, up);
        }
        if (p.w4a4) requantize_block(v, gs2);
        if (n >= rows) continue;
        uint16_t* dst = p.h + (tile.row_begin + n) * p.intermediate;
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const int64_t col = (kGated ? group : 2 * group + o) * 16 + stream_row(2 * r);
          if (col < p.intermediate) dst[col] = float_to_bf16(v[r]);
        }
      }
    }
  }
}

// The weight row tiles of output group `group`: gated → gate tile `group` and up tile I/16 + group; non-gated → tiles
// 2·group and 2·group + 1.
template <bool kGated>
__device__ __forceinline__ StreamWeights fc1_weights(const Fc1Params& p, const RouteTile& tile, int64_t group) {
  return kGated ? stream_weights(p.w13, tile.expert, group, p.intermediate / format::kFragRows + group)
                : stream_weights(p.w13, tile.expert, 2 * group, 2 * group + 1);
}

// PDL order: the tiles come from the routing (pair tiles: from topk_ids, the caller's). When a quantize pass runs
// between them and FC1 (W4A4), that pass waited before it let FC1 launch, so the tiles can be read and the weights
// prefetched before griddep_wait; otherwise FC1 waits first (launch.cuh has the rule that makes this safe). With
// WorkTiles::tile_ready, the block counts its output group for the tile once its h is stored.
template <bool kGated, int kNT, int kStages>
__global__ void __launch_bounds__(StreamShape::kThreads, kStreamMinBlocks<kNT, kStages>) fc1_kernel(Fc1Params p) {
  __shared__ StreamSmem<kNT, kStages> smem;
  if (!p.tiles_ready_early) griddep_wait();
  RouteTile tile;
  if (!work_tile(p.work, stream_item_tile(p.tile_major), tile)) {  // the grid is sized for the worst case routing
    griddep_wait();
    return;
  }
  const int64_t group = stream_item_group_block(p.tile_major);
  const auto tokens = [&] {
    griddep_wait();  // x (W4A4: the quantize pass) and the sorted pairs
    griddep_launch_dependents();
    return fc1_tokens<kNT>(p, tile);
  };
  StreamAcc<kNT> acc;
  stream_block_gemm<kNT>(fc1_weights<kGated>(p, tile, group), tokens, p.hidden, p.w13.k_tiles, smem, acc);
  if (threadIdx.x < 32) {
    fc1_epilogue<kGated, kNT>(p, tile, group, acc);
    __syncwarp();  // the warp's h stores come before lane 0's release
    if (p.work.tile_ready && threadIdx.x == 0) tile_ready_add(p.work, tile, 1);
  }
}

// The same work with the token tile shared by 4 output groups (stream_group_gemm.cuh): warp w computes group
// 4·b + w of its block b of groups; the same bits as fc1_kernel. Dynamic shared memory: kGroupSmemBytes<kNT>.
template <bool kGated, int kNT>
__global__ void __launch_bounds__(StreamShape::kThreads, kGroupMinBlocks<kNT>) fc1_group_kernel(Fc1Params p) {
  extern __shared__ __align__(128) uint8_t fc1_group_smem[];
  auto& smem = *reinterpret_cast<GroupSmem<kNT>*>(fc1_group_smem);
  static_assert(sizeof(GroupSmem<kNT>) <= kGroupSmemBytes<kNT>, "the launch gives this much");
  if (!p.tiles_ready_early) griddep_wait();
  const int64_t groups = fc1_output_groups(p.intermediate, kGated);
  RouteTile tile;
  if (!work_tile(p.work, stream_item_tile(p.tile_major), tile)) {
    griddep_wait();
    return;
  }
  const int64_t first_group = stream_item_group_block(p.tile_major) * StreamShape::kWarps;
  const int64_t group = first_group + int(threadIdx.x) / 32;
  const bool active = group < groups;
  const int rows = tile.row_end - tile.row_begin;
  const auto tokens = [&] {
    griddep_wait();  // x (W4A4: the quantize pass) and the sorted pairs
    griddep_launch_dependents();
    return group_token_copier<kNT>(
        [&](int n) -> const uint16_t* {
          return n < rows ? p.x + (sorted_pair(p.work, tile.row_begin + n) / p.top_k) * p.x_ld : nullptr;
        },
        p.x);
  };
  StreamAcc<kNT> acc;
  stream_group_gemm<kNT>(fc1_weights<kGated>(p, tile, group), active, tokens, p.hidden, p.w13.k_tiles, smem, acc);
  if (active) fc1_epilogue<kGated, kNT>(p, tile, group, acc);
  if (p.work.tile_ready) {
    __syncthreads();  // every warp's h stores come before thread 0's release
    const int32_t block_groups = int32_t(groups - first_group < StreamShape::kWarps ? groups - first_group
                                                                                     : StreamShape::kWarps);
    if (threadIdx.x == 0) tile_ready_add(p.work, tile, block_groups);
  }
}

}  // namespace fp4moe::cuda
