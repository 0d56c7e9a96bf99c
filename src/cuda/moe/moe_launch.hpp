// Host-side interface of the CUDA fused-MoE path (no CUDA syntax: included by plain C++ files).
//
// Data path, one stream, no host synchronization and no allocation (graph-capturable):
//   route   : topk_ids → local expert keys → stable sort by expert (token order kept) → offsets, tile list
//   fc1     : gather x rows (BF16, or NVFP4 dequantized exactly) × FP4 w13 → alpha → activation → h
//             (h: BF16 in W4A16, NVFP4 + E4M3 scales with gs2 in W4A4)
//   fc2     : h × FP4 w2 → alpha → y (fp32, one row per routed (token, slot))
//   combine : out[t] = bf16(Σ_k w[t,k]·y[t,k] (+ out[t])), slots in order: deterministic
#pragma once

#include <cstddef>
#include <cstdint>

#include "fp4moe/config.hpp"

namespace fp4moe::cuda {

// Expert weights in the library's device layout: stacked over local experts, FC1 rows gate-up, linear scales.
struct DeviceExperts {
  const uint8_t* w13 = nullptr;        // [E_local, fc1_rows, H/2]
  const uint8_t* w13_scale = nullptr;  // [E_local, fc1_rows, H/16]
  const float* w13_scale_2 = nullptr;  // [E_local] = 1/gs (weight_scale_2)
  const uint8_t* w2 = nullptr;         // [E_local, H, I/2]
  const uint8_t* w2_scale = nullptr;   // [E_local, H, I/16]
  const float* w2_scale_2 = nullptr;   // [E_local]
};

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
};

// Exact workspace bytes for up to max_tokens tokens.
size_t moe_workspace_size(const MoeConfig& config, int64_t max_tokens);

// Enqueues the whole layer on `stream` (a cudaStream_t). Throws Error on launch failure.
void moe_launch(const MoeLaunch& launch, void* stream);

}  // namespace fp4moe::cuda
