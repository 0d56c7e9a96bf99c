// FC2 of the fused MoE for large batches (sm_90a, wgmma): for one work tile (up to kN = 64 or 128 sorted rows of
// one expert) and 128 outputs (w2 rows 128j..128j+127), streams those w2 rows (fragment tiles) against the tile's
// h rows (BF16 in the MMA k order, as fc1_wgmma_kernel.cuh writes them; I a multiple of 64) and writes
// y = alpha · (h · w2ᵀ) in fp32 per sorted row for the combine.
// Tile: 128 weight rows × kN tokens, one warpgroup (wgmma_gemm.cuh). Grid: (max tiles, ceil(H/128)).
// Roofline: 2·rows·H·I flops at the BF16 tensor-core peak; w2 bytes once per work tile; writes 4·H bytes per
// routed row.
#pragma once

#include "cuda/common/launch.cuh"
#include "cuda/fc2/fc2_launch.hpp"
#include "cuda/gemm/wgmma_gemm.cuh"
#include "cuda/route/work_tiles.cuh"

namespace fp4moe::cuda {

// y = alpha · acc for the rows and columns inside the tile and the matrix.
template <int kN>
__device__ void fc2_wgmma_epilogue(const Fc2Params& p, const RouteTile& tile, int64_t group, const WgmmaAcc<kN>& acc) {
  const float scale_2 = p.w2_scale_2[tile.expert];
  const float alpha = __fmul_rn(p.w4a4 ? __fdiv_rn(scale_2, p.gs2) : scale_2, kFragUnscale);
  const int rows = tile.row_end - tile.row_begin;
#pragma unroll
  for (int h = 0; h < kWgmmaHalves; ++h) {
    const int64_t col0 = wgmma_row_tile(group, h) * format::kFragRows;
#pragma unroll
    for (int i = 0; i < kN / 2; ++i) {
      const int n = wgmma_token(i);
      const int64_t col = col0 + wgmma_row(i);
      if (n < rows && col < p.hidden) p.y[(tile.row_begin + n) * p.hidden + col] = __fmul_rn(alpha, acc[h][i]);
    }
  }
}

// PDL: waits first (h comes from FC1), then lets the combine launch into the SMs this grid frees.
template <int kN>
__global__ void __launch_bounds__(kWgmmaThreads, 2) fc2_wgmma_kernel(Fc2Params p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ uint8_t fc2_smem_raw[];
  WgmmaSmem<kN>& smem = wgmma_smem<kN>(fc2_smem_raw);
  griddep_wait();
  griddep_launch_dependents();
  RouteTile tile;
  if (!work_tile(p.work, blockIdx.x, tile)) return;  // the grid is sized for the worst case routing
  const int64_t group = blockIdx.y;
  for (int r = int(threadIdx.x); r < kN; r += kWgmmaThreads) {
    smem.rows[r] = r < tile.row_end - tile.row_begin ? p.h + (tile.row_begin + r) * p.intermediate : nullptr;
  }
  const WgmmaWeights w = wgmma_weights(p.w2, tile.expert, [&](int h) { return wgmma_row_tile(group, h); });
  __syncthreads();
  WgmmaAcc<kN> acc;
  wgmma_block_gemm<kN>(smem, w, p.w2.k_tiles, acc);
  fc2_wgmma_epilogue<kN>(p, tile, group, acc);
#else
  griddep_wait();  // never launched off sm_90a (wgmma_path_available)
#endif
}

}  // namespace fp4moe::cuda
