// CPU reference of the fused NVFP4 MoE layer: spec §5 implemented exactly, multi-threaded (OpenMP).
//
// Works on prepared host weights (FC1 rows in gate-up order, linear scales) addressed per expert, so every way of
// storing experts reaches it the same. Deterministic: the result does not depend on the thread count.
#pragma once

#include <cstddef>
#include <cstdint>

#include "fp4moe/config.hpp"

namespace fp4moe::reference {

// One local expert's weights in host memory (spec §1 packing, linear E4M3 scales, rows contiguous).
struct HostExpert {
  const uint8_t* w13 = nullptr;        // [fc1_rows, H/2]; gated: rows [0, I) gate, [I, 2I) up
  const uint8_t* w13_scale = nullptr;  // [fc1_rows, H/16]
  float w13_scale_2 = 1.0f;            // ModelOpt weight_scale_2 = 1/gs
  const uint8_t* w2 = nullptr;         // [H, I/2]
  const uint8_t* w2_scale = nullptr;   // [H, I/16]
  float w2_scale_2 = 1.0f;
};

struct Problem {
  const MoeConfig* config = nullptr;
  const HostExpert* experts = nullptr;  // config->num_local_experts entries
  float gs1 = 1.0f;                     // W4A4: activation global scale of FC1 (not its inverse)
  float gs2 = 1.0f;                     // W4A4: activation global scale of FC2
  int64_t tokens = 0;
  // Exactly one of: BF16 x, or pre-quantized x (W4A4 only; gs1 is then x_global_scale).
  const uint16_t* x = nullptr;          // BF16 bits [T, H], row stride x_ld
  int64_t x_ld = 0;
  const uint8_t* x_fp4 = nullptr;       // [T, H/2], row stride H/2
  const uint8_t* x_scale = nullptr;     // [T, H/16] linear
  const int32_t* topk_ids = nullptr;    // [T, K] contiguous; ids validated by the caller to lie in [0, E)
  const float* topk_weights = nullptr;  // [T, K] contiguous
  uint16_t* out = nullptr;              // BF16 bits [T, H], row stride out_ld
  int64_t out_ld = 0;
  bool accumulate = false;
};

// Bytes of scratch that run_moe needs for up to max_tokens tokens with `threads` threads.
size_t workspace_size(const MoeConfig& config, int64_t max_tokens, int threads);

// Runs the layer. `threads` <= 0 uses the OpenMP default. Throws Error if the workspace is too small.
void run_moe(const Problem& problem, void* workspace, size_t workspace_bytes, int threads);

// Step 3 of §5 on one fp32 (gate, up) pair; for relu2 `up` is ignored.
float activation(const MoeConfig& config, float gate, float up);

}  // namespace fp4moe::reference
