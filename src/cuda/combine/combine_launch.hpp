// Host-side interface of the combine kernel: out[t] = bf16(Σ_k w[t,k]·y[pos(t,k)] (+ out[t])), slots in order.
#pragma once

#include <cstdint>

namespace fp4moe::cuda {

struct CombineParams {
  int64_t tokens = 0, top_k = 0, hidden = 0;
  const int32_t* position = nullptr;    // [T·K] sorted row of each pair, -1 if not local
  const float* topk_weights = nullptr;  // [T·K]
  const float* y = nullptr;             // [P, H]
  uint16_t* out = nullptr;              // BF16 [T, H], row stride out_ld
  int64_t out_ld = 0;
  bool accumulate = false;
};

void combine_launch(const CombineParams& params, void* stream);

}  // namespace fp4moe::cuda
