// Host-side interface of the dense NVFP4 GEMM for linear layers: out = alpha · x · Wᵀ (BF16 out).
#pragma once

#include <cstdint>

namespace fp4moe::cuda {

struct LinearLaunch {
  int64_t m = 0, n = 0, k = 0;          // x [M, K], W [N, K], out [M, N]; K % 16 == 0
  const uint16_t* x = nullptr;          // BF16 [M, K], row stride x_ld (elements); or nullptr with x_fp4
  int64_t x_ld = 0;
  const uint8_t* x_fp4 = nullptr;       // NVFP4 [M, K/2] contiguous + x_scale linear [M, K/16]
  const uint8_t* x_scale = nullptr;
  const uint8_t* w = nullptr;           // [N, K/2] contiguous
  const uint8_t* w_scale = nullptr;     // linear [N, K/16]
  float alpha = 1.0f;                   // 1/gsW (BF16 x) or 1/(gsX·gsW) (NVFP4 x)
  uint16_t* out = nullptr;              // BF16 [M, N], row stride out_ld
  int64_t out_ld = 0;
};

// Enqueues the GEMM on `stream` (a cudaStream_t). No workspace, no allocation. Throws Error on launch failure.
void linear_launch(const LinearLaunch& launch, void* stream);

}  // namespace fp4moe::cuda
