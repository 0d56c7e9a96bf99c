// Host-side interface of the CUDA fused-MoE path (no CUDA syntax: included by plain C++ files).
//
// Data path, one stream, no host synchronization and no allocation (graph-capturable):
//   route   : topk_ids → pairs stably sorted by local expert (token order kept) → offsets, work tiles of
//             8/16/24/32 rows (wgmma path 64/128/160; heuristics.hpp); one launch up to 2048 pairs, two past
//             (route_launch.hpp: RoutePath); none for one token (pair tiles, route_launch.hpp: WorkTiles)
//   [W4A4]  : x quantized with gs1 (or the pre-quantized x) → exact BF16 values e2m1·sf; on the streaming path
//             with BF16 x, by the routing launch's spare blocks
//   [wgmma] : x into the MMA k order (W4A4 BF16 x quantized on the way), by the routing launch's spare blocks
//   fc1     : gathered x rows × FP4 w13 streamed once per tile → alpha → activation → h (BF16; W4A4: quantized
//             with gs2 per 16-column block and kept as exact BF16 values)
//   fc2     : h × FP4 w2 → alpha → y (fp32, one row per routed (token, slot))
//   combine : out[t] = bf16(Σ_k w[t,k]·y[t,k] (+ out[t])), slots in order: deterministic
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda/common/frag_matrix.hpp"
#include "fp4moe/config.hpp"

namespace fp4moe::cuda {

// Expert weights in the library's device layout: stacked over local experts, FC1 rows gate-up, both matrices in
// fragment tiles (format/fragment_layout.hpp). FC1 rows are padded to 16 (gated: gate tiles, then up tiles) or 32
// (non-gated), FC2 rows (H) to 32, K to 64.
struct DeviceExperts {
  FragMatrix w13;                      // [E_local] × fc1_rows × H
  const float* w13_scale_2 = nullptr;  // [E_local] = 1/gs (weight_scale_2)
  FragMatrix w2;                       // [E_local] × H × I
  const float* w2_scale_2 = nullptr;   // [E_local]
};

// Row padding of the fragment tiles of FC1 (gated or not) and FC2.
constexpr int64_t fc1_row_align(bool gated) { return gated ? 16 : 32; }
inline constexpr int64_t kFc2RowAlign = 32;

struct MoeLaunch {
  const MoeConfig* config = nullptr;
  DeviceExperts experts;
  float gs1 = 1.0f;  // W4A4: FC1 activation global scale (x_global_scale for pre-quantized x)
  float gs2 = 1.0f;  // W4A4: FC2 activation global scale
  int64_t tokens = 0;
  const uint16_t* x = nullptr;       // BF16 [T, H], row stride x_ld; or nullptr with x_fp4
  int64_t x_ld = 0;
  const uint8_t* x_fp4 = nullptr;    // pre-quantized [T, H/2] + x_scale [T, H/16] (W4A4 only)
  const uint8_t* x_scale = nullptr;
  const int32_t* topk_ids = nullptr;    // [T, K]; ids outside [0, E) are treated as non-local (add nothing)
  const float* topk_weights = nullptr;  // [T, K]
  uint16_t* out = nullptr;              // BF16 [T, H], row stride out_ld
  int64_t out_ld = 0;
  bool accumulate = false;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  int force_tile_rows = 0;  // 0: work tile from heuristics.hpp; 8, 16, 24, 32 (64, 128, 160: wgmma): that size
  int force_weight_rows_per_block = 0;  // 0: heuristics.hpp; 32 or 128: that block shape (streaming kernels)
};

// Exact workspace bytes for up to max_tokens tokens.
size_t moe_workspace_size(const MoeConfig& config, int64_t max_tokens);

// Enqueues the whole layer on `stream` (a cudaStream_t). Throws Error on launch failure.
void moe_launch(const MoeLaunch& launch, void* stream);

}  // namespace fp4moe::cuda
