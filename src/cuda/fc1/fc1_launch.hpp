// Host-side interface of the FC1 kernel (gather → GEMM with FP4 w13 → alpha → activation → h).
#pragma once

#include <cstdint>

#include "cuda/route/route_launch.hpp"
#include "fp4moe/config.hpp"

namespace fp4moe::cuda {

struct Fc1Params {
  // Routing
  const RouteTile* tiles = nullptr;
  const int32_t* num_tiles = nullptr;
  const int32_t* pairs_sorted = nullptr;  // pair t·K + k of each sorted row
  int64_t max_tiles = 0;
  int64_t top_k = 0;
  // A: x rows gathered by token: BF16 (x, x_ld) or NVFP4 (x_fp4 [T, H/2], x_scale [T, H/16])
  const uint16_t* x = nullptr;
  int64_t x_ld = 0;
  const uint8_t* x_fp4 = nullptr;
  const uint8_t* x_scale = nullptr;
  float gs1 = 1.0f;  // W4A4: alpha = w13_scale_2 / gs1
  // B: w13 [E_local, fc1_rows, H/2] gate-up, scales [E_local, fc1_rows, H/16], w13_scale_2 [E_local]
  const uint8_t* w13 = nullptr;
  const uint8_t* w13_scale = nullptr;
  const float* w13_scale_2 = nullptr;
  int64_t hidden = 0, intermediate = 0;
  bool gated = true;
  Activation activation = Activation::kSilu;
  SwigluParams swiglu{};
  // Output h per sorted row: BF16 [P, I] (W4A16) or NVFP4 [P, I/2] + scales [P, I/16] quantized with gs2 (W4A4)
  bool fp4_out = false;
  uint16_t* h = nullptr;
  uint8_t* h_fp4 = nullptr;
  uint8_t* h_scale = nullptr;
  float gs2 = 1.0f;
};

void fc1_launch(const Fc1Params& params, void* stream);

}  // namespace fp4moe::cuda
