// Work-tile selection of the CUDA fused MoE (host only), from the call's shape alone (no host synchronization, so
// never from the actual routing). The FC1/FC2 kernels stream each hit expert's weights once per work tile of
// `tile_rows` sorted rows; small tiles keep the MMA narrow when few tokens hit an expert, large tiles cut the
// number of times an expert's weights pass through L2 when many do. The streaming tile sizes (8, 16, 24, 32) sum in
// the same order, so the choice among them never changes results. The wgmma path (64-, 128- or 160-row tiles, sm_90a)
// sums in another order: its results equal the streaming path's up to fp32 rounding, and are the same for all of
// its tile sizes. Thresholds from `fp4moe bench` on the H100 (bench/NOTES.md).
#pragma once

#include <cstdint>

#include "fp4moe/config.hpp"

namespace fp4moe::cuda {

// Work tile rows of the weight-streaming kernels (any GPU) and of the wgmma kernels (sm_90a, large batches).
inline constexpr int kTileRowChoices[] = {8, 16, 24, 32};
inline constexpr int kWgmmaTileRowChoices[] = {64, 128, 160};

// Whether `rows` is one of kTileRowChoices or kWgmmaTileRowChoices.
bool is_tile_rows_choice(int rows);

// Whether a tile size belongs to the wgmma path.
constexpr bool is_wgmma_tile_rows(int rows) { return rows >= kWgmmaTileRowChoices[0]; }

// Whether the layer's shape fits the wgmma kernels: H a multiple of 64 (FC1's k chunks), I a multiple of 64 (FC2's
// k chunks and, gated, FC1's 64-output groups) or, non-gated, of 128 (FC1's 128-output groups).
bool wgmma_shape_supported(const MoeConfig& config);

// Whether a call of `tokens` tokens skips the routing launch and runs each (token, slot) pair as its own one-row
// tile (WorkTiles): one token, unless a tile size other than 8 rows is forced.
bool plan_pair_tiles(int64_t tokens, int force_rows = 0);

// Weight rows per block of the streaming kernels: 32 (K split over the 4 warps) or 128 (4 warps share the token
// tile). Both give the same bits, so FC1 and FC2 choose independently.
inline constexpr int kWeightRowsPerBlockChoices[] = {32, 128};
bool is_weight_rows_per_block_choice(int rows);

enum class StreamGemm { kFc1, kFc2 };

// Weight rows per block of `gemm` for a call of `tokens` tokens in work tiles of `tile_rows` (a streaming size);
// force_rows > 0 (a validated choice) picks that shape for both GEMMs.
int plan_weight_rows_per_block(const MoeConfig& config, int64_t tokens, int tile_rows, StreamGemm gemm,
                               int force_rows = 0);

// Bulk weight stages per warp (sm_90+) of a streaming launch of `blocks` blocks on `sms` multiprocessors: 2 for
// the 8-row kernels with 32-row blocks when the grid has at most kDeepStagesMaxBlocksPerSm blocks per SM (as many
// as their 2-stage shared memory lets share an SM), else 1. The same bits either way.
inline constexpr int64_t kDeepStagesMaxBlocksPerSm = 5;
int plan_weight_stages(int64_t blocks, int tile_rows, int weight_rows_per_block, int sms);

// Whether the streaming FC2 takes each sorted tile's h as soon as that tile's FC1 blocks stored it (counters in
// WorkTiles::tile_ready) rather than after the whole FC1 grid, with both grids tile-major (stream_gemm.cuh). For
// `max_tiles` sorted tiles (at most kTileMajorMaxTiles) and FC2's planned block shape. The same bits either way.
bool plan_tile_handoff(const MoeConfig& config, int64_t max_tiles, int fc2_weight_rows_per_block,
                       int fc2_weight_stages);

// Whether the wgmma kernels copy the weights as first to evict from the L2: when, routed evenly, each hit expert's
// rows fit one tile of `tile_rows`, so its weights pass through once and no later tile reads them again. Then x, h
// and y stay in the L2 while the weights stream past, for FC1, FC2 and the combine. The same bits either way.
bool plan_weights_evict_first(const MoeConfig& config, int64_t tokens, int tile_rows);

// Rows of one routing work tile for `tokens` tokens; `wgmma` says whether the wgmma path may run (device and shape).
// force_rows > 0 (a validated choice) picks that size.
int plan_tile_rows(const MoeConfig& config, int64_t tokens, bool wgmma, int force_rows = 0);

}  // namespace fp4moe::cuda
