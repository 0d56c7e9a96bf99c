// CPU reference of the dense NVFP4 linear layer (spec §4): out = bf16(alpha · Σ_k x̂[m,k]·ŵ[n,k]).
//
// Works on host memory: W as packed E2M1 codes with linear E4M3 scales, x as BF16 or pre-quantized NVFP4.
// Multi-threaded (OpenMP) and deterministic: the result does not depend on the thread count.
#pragma once

#include <cstdint>

namespace fp4moe::reference {

struct LinearProblem {
  int64_t m = 0, n = 0, k = 0;      // x [M, K], W [N, K], out [M, N]; K a positive multiple of 16
  // Exactly one of: BF16 x, or pre-quantized x.
  const uint16_t* x = nullptr;      // BF16 bits [M, K], row stride x_ld (0 = K)
  int64_t x_ld = 0;
  const uint8_t* x_fp4 = nullptr;   // [M, K/2] contiguous
  const uint8_t* x_scale = nullptr; // [M, K/16] linear, contiguous
  const uint8_t* w = nullptr;       // [N, K/2] contiguous
  const uint8_t* w_scale = nullptr; // [N, K/16] linear, contiguous
  float alpha = 1.0f;               // weight_scale_2 (BF16 x) or div_rn(weight_scale_2, gsX) (NVFP4 x)
  uint16_t* out = nullptr;          // BF16 bits [M, N], row stride out_ld (0 = N)
  int64_t out_ld = 0;
};

// Computes the layer. `threads` <= 0 uses the OpenMP default. Allocates its fp32 scratch per call: up to 256
// rows of x and 8 dequantized weight rows per thread.
void run_linear(const LinearProblem& problem, int threads = 0);

}  // namespace fp4moe::reference
