// FC1 of the fused MoE for large batches (sm_90a, wgmma): for one work tile (up to kN = 64, 128 or 160 sorted rows of
// one expert) and two output groups (gated: 64 outputs each, gate rows 64g.. and up rows I + 64g..; non-gated: 128
// outputs each, rows 128g..128g+127), streams those w13 rows (fragment tiles) against the tile's x rows, scales by
// alpha, applies the activation and writes h per sorted row as BF16 in the MMA k order of each 64-column chunk
// (format::fragment_k_slot), which is how FC2's wgmma path reads it. W4A4: h is quantized per 16-column block with
// gs2 (spec §5.4), as in fc1_kernel.cuh.
// Inputs: x rows in the MMA k order (x_reorder_kernel.cuh; H a multiple of 64). Tile: 256 weight rows × kN tokens,
// a producer and two consumer warpgroups (wgmma_gemm.cuh). Persistent grid (wgmma_schedule.cuh) over work tiles ×
// ceil(I/128) gated or ceil(I/256) block groups.
// Roofline: 2·rows·2I·H flops at the BF16 tensor-core peak; w13 bytes once per work tile (tiles of one expert run
// side by side, so repeats mostly hit L2); x rows re-read from L2 once per block group.
#pragma once

#include "cuda/common/launch.cuh"
#include "cuda/fc1/activation.cuh"
#include "cuda/fc1/fc1_launch.hpp"
#include "cuda/fc1/requantize.cuh"
#include "cuda/gemm/wgmma_gemm.cuh"
#include "cuda/gemm/wgmma_schedule.cuh"
#include "cuda/route/work_tiles.cuh"

namespace fp4moe::cuda {

// Output groups of 64 columns (gated: gate and up) or 128 rows (non-gated), one per consumer.
template <bool kGated>
__device__ __forceinline__ int64_t fc1_wgmma_groups(const Fc1Params& p) {
  return p.intermediate / (kGated ? kWgmmaConsumerRows / 2 : kWgmmaConsumerRows);
}

// Fragment row tile of half h of output group `group` for this warp: gated → gate tile 4·group + w (h = 0) and up
// tile I/16 + 4·group + w (h = 1); non-gated → the group's 128 consecutive rows (wgmma_row_tile). Past the last
// group: row_tiles (no weights; the epilogue writes nothing).
template <bool kGated>
__device__ __forceinline__ int64_t fc1_wgmma_row_tile(const Fc1Params& p, int64_t group, int h) {
  if (group >= fc1_wgmma_groups<kGated>(p)) return p.w13.row_tiles;
  if constexpr (kGated) return (h == 0 ? 0 : p.intermediate / format::kFragRows) + 4 * group + wgmma_warp();
  return wgmma_row_tile(group, h);
}

// Blocks per work tile: two output groups each.
template <bool kGated>
__device__ __forceinline__ int64_t fc1_wgmma_block_groups(const Fc1Params& p) {
  return (fc1_wgmma_groups<kGated>(p) + kWgmmaConsumers - 1) / kWgmmaConsumers;
}

// One consumer's FC1 outputs staged in shared memory for kFc1StageTokens tokens at a time: alpha · acc per (token,
// output column), gate and up apart (non-gated: the two halves' columns side by side).
// Rows padded to 68 floats: the 4 tokens a warp writes at once (2t) land 8 banks apart.
inline constexpr int kFc1StageTokens = 64;
struct Fc1Stage {
  float v[kWgmmaHalves][kFc1StageTokens][68];
};

template <int kN>
using Fc1Smem = WgmmaSmem<kN, Fc1Stage>;

// Producer warpgroup, one item: the row table of the tile (x of the token of each sorted row, in 16-byte units: x_ld
// is a multiple of 8), then the pipeline.
template <bool kGated, int kN>
__device__ __forceinline__ void fc1_wgmma_produce(const Fc1Params& p, const RouteTile& tile, int64_t block_group,
                                                  Fc1Smem<kN>& smem, WgmmaRing& ring FP4MOE_PROF_ARG) {
  named_barrier_sync(kWgmmaBarProducer, 128);  // the previous item's copies are issued: its rows are free
  for (int r = wgmma_thread(); r < kN; r += 128) {
    const int row = r < tile.row_end - tile.row_begin ? r : 0;  // rows past the tile: the first (wgmma_sources)
    smem.rows[r] = uint32_t(int64_t(sorted_pair(p.work, tile.row_begin + row) / p.top_k) * p.x_ld / 8);
  }
  named_barrier_sync(kWgmmaBarProducer, 128);
  const int64_t first_group = kWgmmaConsumers * block_group;
  const auto row_tile = [&](int consumer, int h) { return fc1_wgmma_row_tile<kGated>(p, first_group + consumer, h); };
  const WgmmaWeights w = wgmma_weights(p.w13, tile.expert, row_tile, p.weights_evict_first);
  wgmma_produce<false>(smem, w, p.x, nullptr, 0, p.w13.k_tiles, tile.row_end - tile.row_begin, ring FP4MOE_PROF_PASS);
}

// Activation, (W4A4) requantization and BF16 store of the staged outputs of kFc1StageTokens tokens. Lane 8s + r of
// a warp takes token row r of the warp's 8 and, in each of the 4 16-column blocks t of a 64-column chunk, columns
// 16t + 4s .. 16t + 4s + 3 (one 16-byte shared load per block and output: the 8 rows of a quarter-warp are 68
// floats apart, on distinct banks). In the MMA k order (format::fragment_k_slot) those 16 columns are the
// contiguous slots 16s .. 16s + 15, so a lane writes them as two 16-byte stores: four times fewer store and load
// instructions than a lane per column pair, and 4 lanes per requantized block instead of 8 (W4A4: a 16-column block
// is lanes r, r + 8, r + 16, r + 24): up to 3 % off the layer in W4A16, 3-6 % in W4A4 (bench/NOTES.md, session
// 17). The activation is a template argument, so the loop holds one activation's code: the rolled loop stays small
// for the instruction cache.
inline constexpr int kFc1RowsPerWarp = 8;

template <Activation kAct, bool kGated, int kPass>
__device__ __forceinline__ void fc1_wgmma_store_pass(const Fc1Params& p, const RouteTile& tile, int64_t group,
                                                     const Fc1Stage& stage, const RequantScale& gs2,
                                                     const RequantTable& requant) {
  constexpr int kOuts = kGated ? 1 : kWgmmaHalves;
  const int rows = tile.row_end - tile.row_begin;
  const int lane = int(threadIdx.x) % 32, s = lane / 8;
#pragma unroll 1
  for (int n = kFc1RowsPerWarp * wgmma_warp() + lane % 8; n < kFc1StageTokens; n += 4 * kFc1RowsPerWarp) {
    float v[kOuts][4][4];  // [output][block t][column 16t + 4s + i]
#pragma unroll
    for (int o = 0; o < kOuts; ++o) {
#pragma unroll
      for (int t = 0; t < 4; ++t) {
        const float4 a = *reinterpret_cast<const float4*>(&stage.v[o][n][16 * t + 4 * s]);
        const float4 b = kGated ? *reinterpret_cast<const float4*>(&stage.v[1][n][16 * t + 4 * s]) : float4{};
        v[o][t][0] = apply_activation<kAct>(p.swiglu, a.x, b.x);
        v[o][t][1] = apply_activation<kAct>(p.swiglu, a.y, b.y);
        v[o][t][2] = apply_activation<kAct>(p.swiglu, a.z, b.z);
        v[o][t][3] = apply_activation<kAct>(p.swiglu, a.w, b.w);
      }
    }
    if (p.w4a4) {
#pragma unroll
      for (int o = 0; o < kOuts; ++o) {
#pragma unroll
        for (int t = 0; t < 4; ++t) requantize_block<8, 4>(v[o][t], gs2, &requant);
      }
    }
    const int token = kPass * kFc1StageTokens + n;
    if (token < rows) {
#pragma unroll
      for (int o = 0; o < kOuts; ++o) {
        // Column 16t + 4s + i sits at slot 16s + 8·(i / 2) + 2t + i % 2.
        const int64_t chunk = (kGated ? group : 2 * group + o) * format::kFragK;
        uint4* dst = reinterpret_cast<uint4*>(p.h + (tile.row_begin + token) * p.intermediate + chunk + 16 * s);
        dst[0] = make_uint4(pack_bf16x2(v[o][0][0], v[o][0][1]), pack_bf16x2(v[o][1][0], v[o][1][1]),
                            pack_bf16x2(v[o][2][0], v[o][2][1]), pack_bf16x2(v[o][3][0], v[o][3][1]));
        dst[1] = make_uint4(pack_bf16x2(v[o][0][2], v[o][0][3]), pack_bf16x2(v[o][1][2], v[o][1][3]),
                            pack_bf16x2(v[o][2][2], v[o][2][3]), pack_bf16x2(v[o][3][2], v[o][3][3]));
      }
    }
  }
}

// One pass of the epilogue: alpha · acc staged in shared memory for kFc1StageTokens tokens (so the activation runs
// in a rolled loop: the unrolled form over all accumulators overflowed the instruction cache), then the store pass
// of the call's activation (gated: silu, gelu_tanh, swiglu_clamped; non-gated: relu2).
template <bool kGated, int kN, int kPass>
__device__ __forceinline__ void fc1_wgmma_epilogue_pass(const Fc1Params& p, const RouteTile& tile, int64_t group,
                                                        const WgmmaAcc<kN>& acc, float alpha, Fc1Stage& stage,
                                                        const RequantScale& gs2, const RequantTable& requant) {
  wgmma_stage_acc<kN, kPass, kFc1StageTokens>(acc, alpha,
                                               [&](int h, int n, int r, float v) { stage.v[h][n][r] = v; });
  if constexpr (!kGated) {
    fc1_wgmma_store_pass<Activation::kRelu2, kGated, kPass>(p, tile, group, stage, gs2, requant);
  } else if (p.activation == Activation::kSilu) {
    fc1_wgmma_store_pass<Activation::kSilu, kGated, kPass>(p, tile, group, stage, gs2, requant);
  } else if (p.activation == Activation::kGeluTanh) {
    fc1_wgmma_store_pass<Activation::kGeluTanh, kGated, kPass>(p, tile, group, stage, gs2, requant);
  } else {
    fc1_wgmma_store_pass<Activation::kSwigluClamped, kGated, kPass>(p, tile, group, stage, gs2, requant);
  }
}

// The epilogue of this consumer's output group (nothing past the last group).
template <bool kGated, int kN>
__device__ __forceinline__ void fc1_wgmma_epilogue(const Fc1Params& p, const RouteTile& tile, int64_t group,
                                                   const WgmmaAcc<kN>& acc, Fc1Smem<kN>& smem,
                                                   const RequantTable& requant) {
  if (group >= fc1_wgmma_groups<kGated>(p)) return;
  const float scale_2 = p.w13_scale_2[tile.expert];
  const float alpha = __fmul_rn(p.w4a4 ? __fdiv_rn(scale_2, p.gs1) : scale_2, kFragUnscale);
  const RequantScale gs2 = requant_scale(p.gs2);
  Fc1Stage& stage = smem.stage[wgmma_consumer()];
  wgmma_epilogue_passes<kN, kFc1StageTokens>(tile.row_end - tile.row_begin, [&](auto pass) {
    fc1_wgmma_epilogue_pass<kGated, kN, decltype(pass)::value>(p, tile, group, acc, alpha, stage, gs2, requant);
  });
}

// Persistent (wgmma_schedule.cuh). PDL: waits first (x, or the quantize pass, and the routing), then lets FC2
// launch; its blocks take the SMs this grid frees.
template <bool kGated, int kN>
__global__ void __launch_bounds__(kWgmmaThreads, 1) fc1_wgmma_kernel(Fc1Params p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ uint8_t fc1_smem_raw[];
  Fc1Smem<kN>& smem = wgmma_smem<Fc1Smem<kN>>(fc1_smem_raw);
  __shared__ RequantTable requant;  // W4A4; wgmma_persistent_block's first barrier orders it before any lookup
  if (p.w4a4) requant_table_fill(requant, requant_scale(p.gs2), int(threadIdx.x), kWgmmaThreads);
  griddep_wait();
  griddep_launch_dependents();
  wgmma_persistent_block(
      smem, p.work, fc1_wgmma_block_groups<kGated>(p), p.w13.k_tiles,
      [&](const RouteTile& tile, int64_t block_group, WgmmaRing& ring FP4MOE_PROF_ARG) {
        fc1_wgmma_produce<kGated, kN>(p, tile, block_group, smem, ring FP4MOE_PROF_PASS);
      },
      [&](const RouteTile& tile, int64_t group, const WgmmaAcc<kN>& acc) {
        fc1_wgmma_epilogue<kGated, kN>(p, tile, group, acc, smem, requant);
      });
#else
  griddep_wait();  // never launched off sm_90a (wgmma_path_available)
#endif
}

}  // namespace fp4moe::cuda
