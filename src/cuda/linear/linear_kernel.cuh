// Dense NVFP4 linear layer: out = bf16(alpha · x · Wᵀ), x BF16 or NVFP4 (dequantized exactly on load), W NVFP4.
// The same 64×64 portable tile as the MoE GEMMs with identity row maps. Grid: (M / 64, N / 64).
// Roofline: N·K/2·(1 + 1/8) weight bytes + M·K·2 + M·N·2 activation bytes; 2·M·N·K flops.
#pragma once

#include "cuda/gemm/tile_gemm.cuh"
#include "cuda/linear/linear_launch.hpp"

namespace fp4moe::cuda {

template <bool kFp4A>
__global__ void __launch_bounds__(TileShape::kThreads) linear_kernel(LinearLaunch p) {
  __shared__ TileSmem smem;
  const int64_t m0 = int64_t(blockIdx.x) * TileShape::kM, n0 = int64_t(blockIdx.y) * TileShape::kN;
  const RowSource x_src{p.x, p.x_ld, p.x_fp4, p.x_scale, p.k};
  const RowSource w_src{nullptr, 0, p.w, p.w_scale, p.k};
  const auto a = make_row_loader<kFp4A>(x_src, [&](int r) -> int64_t { return m0 + r < p.m ? m0 + r : -1; });
  const auto b = make_row_loader<true>(w_src, [&](int r) -> int64_t { return n0 + r < p.n ? n0 + r : -1; });
  Accum acc;
  tile_mainloop(a, b, p.k, smem, acc);
#pragma unroll
  for (int i = 0; i < 2; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
      for (int f = 0; f < 4; ++f) {
        const FragCoord c = frag_coord(i, j, f);
        const int64_t m = m0 + c.row, n = n0 + c.col;
        if (m < p.m && n < p.n) p.out[m * p.out_ld + n] = float_to_bf16(__fmul_rn(p.alpha, acc[i][j][f]));
      }
    }
  }
}

}  // namespace fp4moe::cuda
