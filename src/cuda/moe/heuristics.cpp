// Work-tile selection of the CUDA fused MoE; see heuristics.hpp.
#include "cuda/moe/heuristics.hpp"

#include <algorithm>
#include <iterator>

#include "cuda/fc1/fc1_launch.hpp"
#include "cuda/fc2/fc2_launch.hpp"

namespace fp4moe::cuda {

namespace {

constexpr int64_t kSmallTileMaxRowsPerExpert = 6;
// wgmma path (sm_90a), H100 W4A16 (bench/NOTES.md). At 16 rows per expert the streaming kernels with 16-row tiles
// (4-chunk bulk stages) beat 64-row wgmma tiles: qwen3-30b T=256 243 vs 258 µs, qwen3-235b T=256 780 vs 855,
// deepseek-v3 T=512 3477 vs 3708, mixtral T=64 458 vs 474. Above that an expert needs two 16-row tiles, each
// streaming its weights, where one 64-row wgmma tile does (the session-4 sweep had wgmma ahead from 24 rows).
// 128-row tiles win from ~128 rows per expert (deepseek-v3 T=4096: 8169 vs 9225 µs; mixtral T=512, 128 rows: 1145
// vs 1230), tie at 64 (qwen3-30b T=1024: 417 vs 417; qwen3-235b: 1282 vs 1318) and lose at 32 (gpt-oss T=1024:
// 1691 vs 1197).
constexpr int64_t kWgmmaMinRowsPerExpert = 17;
constexpr int64_t kWgmmaWideMinRowsPerExpert = 96;
// Fewest 128-row blocks (about 8 per SM on the H100) for which the streaming kernels take that block shape.
constexpr int64_t kWideBlocksMinGrid = 1024;

}  // namespace

bool is_tile_rows_choice(int rows) {
  return std::find(std::begin(kTileRowChoices), std::end(kTileRowChoices), rows) != std::end(kTileRowChoices) ||
         std::find(std::begin(kWgmmaTileRowChoices), std::end(kWgmmaTileRowChoices), rows) !=
             std::end(kWgmmaTileRowChoices);
}

bool wgmma_shape_supported(const MoeConfig& c) {
  return c.hidden % 64 == 0 && c.intermediate % (c.gated() ? 64 : 128) == 0;
}

bool plan_pair_tiles(int64_t tokens, int force_rows) {
  // One token's experts are distinct, so pair tiles stream each weight once, like the sorted tiles, and drop the
  // routing launch and its round trips from the critical path (bench/NOTES.md). From two tokens on, pairs may
  // share an expert and would stream its weights twice.
  return tokens == 1 && (force_rows == 0 || force_rows == kTileRowChoices[0]);
}

bool is_weight_rows_per_block_choice(int rows) {
  return std::find(std::begin(kWeightRowsPerBlockChoices), std::end(kWeightRowsPerBlockChoices), rows) !=
         std::end(kWeightRowsPerBlockChoices);
}

int plan_weight_rows_per_block(const MoeConfig& c, int64_t tokens, int tile_rows, StreamGemm gemm, int force_rows) {
  if (force_rows > 0) return force_rows;
  // 128-row blocks read the token tile once per 128 weight rows instead of once per 32. H100, W4A16, 16-row tiles
  // (bench/NOTES.md): qwen3-30b T=256 0.47 → 0.53 of the floor, qwen3-235b T=256 0.57-0.60 → 0.64, deepseek-v3
  // T=512 0.61 → 0.66, gpt-oss T=256/512 0.80/0.58 → 0.83/0.63. With 8-row tiles they lose (qwen3-30b T=64: 0.77
  // vs 0.74), and so do grids of few long blocks: mixtral T=64 (8 experts; FC2 has ~400 blocks of 224 chunks per
  // warp) 0.55 vs 0.50-0.53.
  if (tile_rows < 16) return kWeightRowsPerBlockChoices[0];
  const int64_t pairs = tokens * c.top_k;
  const int64_t experts_hit = std::max<int64_t>(1, std::min(pairs, c.num_local_experts));
  const int64_t rows_per_expert = (pairs + experts_hit - 1) / experts_hit;
  const int64_t tiles = experts_hit * ((rows_per_expert + tile_rows - 1) / tile_rows);
  const int64_t groups =
      gemm == StreamGemm::kFc2 ? fc2_output_groups(c.hidden) : fc1_output_groups(c.intermediate, c.gated());
  const int64_t wide_blocks = tiles * ((groups + 3) / 4);
  return wide_blocks >= kWideBlocksMinGrid ? kWeightRowsPerBlockChoices[1] : kWeightRowsPerBlockChoices[0];
}

int plan_tile_rows(const MoeConfig& c, int64_t tokens, bool wgmma, int force_rows) {
  if (force_rows > 0) return force_rows;
  // Rows per hit expert if the routing spreads evenly. H100, qwen3-30b-a3b W4A16 (bench/NOTES.md): 8-row tiles are
  // fastest up to ~4 rows per expert, 16-row tiles from ~16 rows per expert on (also at 64 and more, where an
  // expert's weights pass through L2 once per tile); 32-row tiles were slower everywhere (registers, occupancy).
  const int64_t pairs = tokens * c.top_k;
  const int64_t experts_hit = std::max<int64_t>(1, std::min(pairs, c.num_local_experts));
  const int64_t rows_per_expert = (pairs + experts_hit - 1) / experts_hit;
  if (wgmma && rows_per_expert >= kWgmmaMinRowsPerExpert) {
    return rows_per_expert >= kWgmmaWideMinRowsPerExpert ? 128 : 64;
  }
  return rows_per_expert <= kSmallTileMaxRowsPerExpert ? 8 : 16;
}

}  // namespace fp4moe::cuda
