// Work-tile selection of the CUDA fused MoE; see heuristics.hpp.
#include "cuda/moe/heuristics.hpp"

#include <algorithm>
#include <iterator>

#include "cuda/fc1/fc1_launch.hpp"
#include "cuda/fc2/fc2_launch.hpp"
#include "cuda/gemm/stream_tiles.hpp"
#include "format/fragment_layout.hpp"

namespace fp4moe::cuda {

namespace {

constexpr int64_t kSmallTileMaxRowsPerExpert = 6;
// 24-row tiles (bench/NOTES.md, H100 W4A16, same session): at 16 rows per expert an expert mostly needs one 24-row
// tile where ~45 % need two 16-row tiles, each decoding its weights: qwen3-235b T=256 0.63 → 0.69 of the floor,
// deepseek-v3 T=512 0.64 → 0.72, mixtral T=64 0.57 → 0.71, qwen3-30b T=256 0.53 → 0.57; at 12 rows they lose
// (qwen3-235b T=192 0.80 vs 0.72, deepseek-v3 T=384 0.81 vs 0.76).
constexpr int64_t kMidTileMinRowsPerExpert = 14;
// wgmma path (sm_90a). At 20 rows per expert 24-row streaming tiles beat what 64-row wgmma tiles reach at 16 and 32
// rows (qwen3-235b T=320: 0.62 against 0.54 at T=256 and 0.52 at T=512; deepseek-v3 T=640 0.65 against 0.58 and
// 0.56). Earlier, with 16-row tiles only: wgmma ahead from 17 rows (qwen3-30b T=384 265 vs 325 µs at 24 rows).
// Wide tiles lose to 64-row tiles at 32 rows per expert (gpt-oss T=1024: 1691 vs 1197 µs; qwen3-235b T=512: 1044
// vs 856). Since the wgmmas, copies and epilogue passes only cover a tile's rows (session 10), a wide tile costs what
// its rows need, and at ~64 rows per expert it saves the second, part-filled 64-row tile that about half the experts
// get: mixtral T=256 621 vs 792 µs with 128-row tiles. 160-row tiles beat 128-row tiles from 64 rows per expert up
// (session 13, 160/128 time): most where an expert's rows just pass a multiple of 128, which 128-row tiles meet with
// a part-filled tile that pays a whole weight pass (128 rows per expert: mixtral T=512 0.73, qwen3-30b T=2048 0.87,
// deepseek-v3 T=4096 0.87; 256 rows: 0.92-0.98), and 0.97-1.01 at 512-1024 rows (fewer weight passes per row).
constexpr int64_t kWgmmaMinRowsPerExpert = 21;
constexpr int64_t kWgmmaWideMinRowsPerExpert = 48;
constexpr int kWgmmaWideTileRows = 160;
// Fewest 128-row blocks (about 8 per SM on the H100) for which the streaming kernels take that block shape.
constexpr int64_t kWideBlocksMinGrid = 1024;

// The experts a call hits and the rows each gets if the routing spreads its pairs evenly (the heuristics see the
// shape only, never the routing).
struct EvenRouting {
  int64_t experts_hit, rows_per_expert;
};
EvenRouting even_routing(const MoeConfig& c, int64_t tokens) {
  const int64_t pairs = tokens * c.top_k;
  const int64_t experts_hit = std::max<int64_t>(1, std::min(pairs, c.num_local_experts));
  return {experts_hit, (pairs + experts_hit - 1) / experts_hit};
}

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
  const EvenRouting r = even_routing(c, tokens);
  const int64_t tiles = r.experts_hit * ((r.rows_per_expert + tile_rows - 1) / tile_rows);
  const int64_t groups =
      gemm == StreamGemm::kFc2 ? fc2_output_groups(c.hidden) : fc1_output_groups(c.intermediate, c.gated());
  const int64_t wide_blocks = tiles * ((groups + 3) / 4);
  return wide_blocks >= kWideBlocksMinGrid ? kWeightRowsPerBlockChoices[1] : kWeightRowsPerBlockChoices[0];
}

int plan_weight_stages(int64_t blocks, int tile_rows, int weight_rows_per_block, int sms) {
  // A grid this small has at most 20 warps per SM, each with one stage of 4 chunks in flight and none while it
  // decodes them; a second stage keeps its next chunks coming. H100, W4A16, same binary, µs (bench/NOTES.md):
  // mixtral-8x7b T=1 (FC2: 256 blocks) 96.5, 97.0 → 92.2, 92.2; qwen3-30b-a3b T=1 (FC1 384, FC2 512 blocks) 22.6,
  // 22.8 → 21.9, 22.0. Two stages lost in the 16- and 24-row kernels (more registers: 3 blocks per SM instead of 4;
  // mixtral T=64 359, 361 → 377, 373) and in the 128-row blocks (shared memory for 3 instead of 4: deepseek-v3
  // T=512 2821, 2841 → 3042, 2969; qwen3-235b T=128 531, 533 → 573, 574).
  const bool eight_row_blocks =
      tile_rows == kTileRowChoices[0] && weight_rows_per_block == kWeightRowsPerBlockChoices[0];
  return eight_row_blocks && blocks <= kDeepStagesMaxBlocksPerSm * sms ? 2 : 1;
}

bool plan_tile_handoff(const MoeConfig& c, int64_t max_tiles, int fc2_weight_rows_per_block, int fc2_weight_stages) {
  // The handoff lets FC2 blocks compute while FC1's last blocks drain. Where an FC2 warp's whole K range fits the
  // stages it prefetches before it waits (32-row blocks split K over 4 warps: I <= 1024 with one stage), the
  // blocks that wait already hold all their weights, so there is nothing to gain, and the tile-major order cost
  // 1-3 µs (qwen3-30b-a3b, I = 768, T = 8-64; at T = 256, with 128-row blocks, it gained: 195 → 191). H100,
  // W4A16, same binary, µs (bench/NOTES.md): qwen3-30b-a3b T=8/64 69.4/140.4 → 70.8/144.7; gpt-oss-120b (I = 2880)
  // 168.5/551.3 → 161.7/541.6; qwen3-235b-a22b (I = 1536) 211.9/483.5 → 209.1/476.9; mixtral-8x7b T=8 272.0 →
  // 263.5; deepseek-v3 T=8/64 511.8/1811.1 → 507.6/1801.0 (before: x = tile grids, no handoff).
  constexpr int64_t kFc2ChunksPerStage = 4, kWarpsSplittingK = 4;  // weight_stager.cuh, stream_gemm.cuh (device)
  const int64_t k_split = fc2_weight_rows_per_block == kWeightRowsPerBlockChoices[0] ? kWarpsSplittingK : 1;
  const int64_t k_chunks = (c.intermediate + format::kFragK - 1) / format::kFragK;
  const int64_t chunks_per_warp = (k_chunks + k_split - 1) / k_split;
  return max_tiles <= kTileMajorMaxTiles && chunks_per_warp > kFc2ChunksPerStage * fc2_weight_stages;
}

bool plan_weights_evict_first(const MoeConfig& c, int64_t tokens, int tile_rows) {
  // H100, W4A16, same call, µs (bench/NOTES.md, session 25): qwen3-30b-a3b T=512 (32 rows per expert, 64-row tiles,
  // y 34 MB, which can then stay in the L2 for the combine) 216.5, 214.2 → 207.9, 203.8; T=1024 (64 rows, 160-row
  // tiles, y 67 MB) even.
  // With evict_first everywhere, experts of two or more tiles lost the L2 reuse between their tiles (qwen3-30b
  // T=4096 789, 790 → 794, 803).
  return even_routing(c, tokens).rows_per_expert <= tile_rows;
}

int plan_tile_rows(const MoeConfig& c, int64_t tokens, bool wgmma, int force_rows) {
  if (force_rows > 0) return force_rows;
  // Rows per hit expert if the routing spreads evenly. H100 (bench/NOTES.md): 8-row tiles up to ~6 rows per
  // expert, 16-row tiles up to ~13, 24-row tiles above (also without wgmma); 32-row tiles lose to 24 (registers,
  // occupancy: 3 blocks per SM).
  const int64_t rows_per_expert = even_routing(c, tokens).rows_per_expert;
  if (wgmma && rows_per_expert >= kWgmmaMinRowsPerExpert) {
    return rows_per_expert >= kWgmmaWideMinRowsPerExpert ? kWgmmaWideTileRows : 64;
  }
  if (rows_per_expert <= kSmallTileMaxRowsPerExpert) return 8;
  return rows_per_expert < kMidTileMinRowsPerExpert ? 16 : 24;
}

}  // namespace fp4moe::cuda
