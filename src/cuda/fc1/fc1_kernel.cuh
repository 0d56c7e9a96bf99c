// FC1 of the fused MoE: for one 64-row work tile of pairs routed to one expert, gathers the tokens' x rows,
// multiplies them with the expert's FP4 w13 (dequantized to exact BF16 on load), scales by alpha, applies the
// activation in fp32 and writes h per sorted row: BF16 (W4A16) or NVFP4 + E4M3 scales with gs2 (W4A4, spec §5.4).
// Tile: 64 rows × 64 B rows = gated: 32 output columns (16 gate + 16 up rows per warp column, so each thread holds
// gate and up of the same output element), non-gated: 64 output columns. Grid: (max tiles, I / columns).
// Roofline: reads w13 once per tile row-block (2I·H/2 bytes per expert per 64 rows), 2·64·2I·H flops per tile.
#pragma once

#include "cuda/fc1/activation.cuh"
#include "cuda/fc1/fc1_launch.hpp"
#include "cuda/gemm/tile_gemm.cuh"

namespace fp4moe::cuda {

template <bool kGated>
struct Fc1Columns {
  static constexpr int kOut = kGated ? TileShape::kN / 2 : TileShape::kN;  // output columns per block
};

// A rows: the x row of the token of each sorted pair of the tile.
template <bool kFp4A>
__device__ __forceinline__ auto fc1_a_loader(const Fc1Params& p, const RouteTile& tile) {
  const RowSource src{p.x, p.x_ld, p.x_fp4, p.x_scale, p.hidden};
  return make_row_loader<kFp4A>(src, [&](int r) -> int64_t {
    return r < tile.row_end - tile.row_begin ? p.pairs_sorted[tile.row_begin + r] / p.top_k : -1;
  });
}

// B rows: gated tiles take 16 gate rows then the 16 matching up rows for each warp column.
template <bool kGated>
__device__ __forceinline__ Fp4Rows fc1_b_loader(const Fc1Params& p, int64_t expert, int64_t n0) {
  const int64_t fc1_rows = kGated ? 2 * p.intermediate : p.intermediate;
  const RowSource src{nullptr, 0, p.w13, p.w13_scale, p.hidden};
  return make_row_loader<true>(src, [&](int r) -> int64_t {
    const int64_t col = kGated ? n0 + (r / 32) * 16 + (r % 16) : n0 + r;
    const int64_t row = kGated && (r % 32) >= 16 ? p.intermediate + col : col;
    return col < p.intermediate ? expert * fc1_rows + row : -1;
  });
}

// Output column of accumulator (j, f) of this thread, and the accumulator pair that feeds it.
template <bool kGated>
__device__ __forceinline__ int64_t fc1_out_col(int64_t n0, int j, int f) {
  const int wn = (int(threadIdx.x) / 32) % 2, t = int(threadIdx.x) % 4;
  return n0 + wn * (kGated ? 16 : 32) + j * 8 + 2 * t + (f & 1);
}

// W4A4: one 16-column block of h per quad of lanes (4 lanes × 2 n-tiles × 2 columns), quantized per spec §2.
__device__ __forceinline__ void store_h_fp4(const Fc1Params& p, int64_t sorted_row, int64_t col0, bool valid,
                                            const float (&v)[2][2]) {
  float amax = 0.0f;
#pragma unroll
  for (int j = 0; j < 2; ++j) amax = fmaxf(amax, fmaxf(fabsf(v[j][0]), fabsf(v[j][1])));
  amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
  amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 2));
  const uint8_t sf = block_scale_e4m3(amax, p.gs2);
  const float inv = block_inverse_scale(sf, p.gs2);
  if (!valid) return;
  const int t = int(threadIdx.x) % 4;
  const int64_t block = col0 / kBlockSize;
  uint8_t* dst = p.h_fp4 + sorted_row * (p.intermediate / 2) + block * 8;
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    dst[j * 4 + t] = fp4_pack(float_to_e2m1(__fmul_rn(v[j][0], inv)), float_to_e2m1(__fmul_rn(v[j][1], inv)));
  }
  if (t == 0) p.h_scale[sorted_row * (p.intermediate / kBlockSize) + block] = sf;
}

template <bool kGated>
__device__ void fc1_epilogue(const Fc1Params& p, const RouteTile& tile, int64_t n0, float alpha, const Accum& acc) {
  constexpr int kGroups = kGated ? 1 : 2;  // 16-column blocks per warp row (pairs of n8 tiles)
#pragma unroll
  for (int i = 0; i < 2; ++i) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int row = frag_coord(i, 0, 2 * half).row;
      const bool row_ok = row < tile.row_end - tile.row_begin;
      const int64_t sorted_row = tile.row_begin + row;
#pragma unroll
      for (int grp = 0; grp < kGroups; ++grp) {
        float v[2][2];
#pragma unroll
        for (int jj = 0; jj < 2; ++jj) {
          const int j = grp * 2 + jj;
#pragma unroll
          for (int c = 0; c < 2; ++c) {
            const int f = 2 * half + c;
            const float gate = __fmul_rn(alpha, acc[i][j][f]);
            float up = 0.0f;
            if constexpr (kGated) up = __fmul_rn(alpha, acc[i][j + 2][f]);
            v[jj][c] = apply_activation(p.activation, p.swiglu, gate, up);
          }
        }
        const int64_t col0 = fc1_out_col<kGated>(n0, grp * 2, 0) - 2 * (int(threadIdx.x) % 4);
        const bool col_ok = col0 < p.intermediate;
        if (p.fp4_out) {
          store_h_fp4(p, sorted_row, col0, row_ok && col_ok, v);
        } else if (row_ok && col_ok) {
#pragma unroll
          for (int jj = 0; jj < 2; ++jj) {
            const int64_t col = fc1_out_col<kGated>(n0, grp * 2 + jj, 0);
            *reinterpret_cast<uint32_t*>(p.h + sorted_row * p.intermediate + col) = pack_bf16x2(v[jj][0], v[jj][1]);
          }
        }
      }
    }
  }
}

template <bool kGated, bool kFp4A>
__global__ void __launch_bounds__(TileShape::kThreads, 1) fc1_kernel(Fc1Params p) {
  __shared__ TileSmem smem;
  if (int64_t(blockIdx.x) >= *p.num_tiles) return;  // the grid is sized for the worst case routing
  const RouteTile tile = p.tiles[blockIdx.x];
  const int64_t n0 = int64_t(blockIdx.y) * Fc1Columns<kGated>::kOut;
  Accum acc;
  tile_mainloop(fc1_a_loader<kFp4A>(p, tile), fc1_b_loader<kGated>(p, tile.expert, n0), p.hidden, smem, acc);
  const float scale_2 = p.w13_scale_2[tile.expert];
  const float alpha = kFp4A ? __fdiv_rn(scale_2, p.gs1) : scale_2;
  fc1_epilogue<kGated>(p, tile, n0, alpha, acc);
}

}  // namespace fp4moe::cuda
