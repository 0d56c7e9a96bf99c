// Host-side interface of the FC2 kernel (h × FP4 w2 → alpha → y per sorted row, fp32).
#pragma once

#include <cstdint>

#include "cuda/route/route_launch.hpp"

namespace fp4moe::cuda {

struct Fc2Params {
  const RouteTile* tiles = nullptr;
  const int32_t* num_tiles = nullptr;
  int64_t max_tiles = 0;
  // A: h per sorted row, BF16 [P, I] or NVFP4 [P, I/2] + scales [P, I/16]
  const uint16_t* h = nullptr;
  const uint8_t* h_fp4 = nullptr;
  const uint8_t* h_scale = nullptr;
  float gs2 = 1.0f;  // W4A4: alpha = w2_scale_2 / gs2
  // B: w2 [E_local, H, I/2], scales [E_local, H, I/16], w2_scale_2 [E_local]
  const uint8_t* w2 = nullptr;
  const uint8_t* w2_scale = nullptr;
  const float* w2_scale_2 = nullptr;
  int64_t hidden = 0, intermediate = 0;
  float* y = nullptr;  // [P, H]
};

void fc2_launch(const Fc2Params& params, void* stream);

}  // namespace fp4moe::cuda
