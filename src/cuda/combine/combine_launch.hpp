// Host-side interface of the combine kernel: out[t] = bf16(Σ_k w[t,k]·y[pos(t,k)] (+ out[t])), slots in order.
#pragma once

#include <cstdint>

#include "cuda/route/route_launch.hpp"

namespace fp4moe::cuda {

struct CombineParams {
  int64_t tokens = 0, top_k = 0, hidden = 0;
  WorkTiles work;                       // the sorted row of each pair (pair_position)
  const float* topk_weights = nullptr;  // [T·K]
  const float* y = nullptr;             // [P, H]
  uint16_t* out = nullptr;              // BF16 [T, H], row stride out_ld
  int64_t out_ld = 0;
  bool accumulate = false;
};

void combine_launch(const CombineParams& params, void* stream);

}  // namespace fp4moe::cuda
