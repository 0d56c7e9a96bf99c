// Host interface of the kernels of the BF16 cuBLAS baseline (baseline.cu; no CUDA syntax: included by plain C++).
//
// The baseline computes the same MoE layer as the library with BF16 weights (the FP4 weights dequantized once):
//   gather    : xg[r] = x[row_token[r]]                    (routed rows grouped by expert, token order kept)
//   FC1       : g = xg · W13ᵀ per expert                    (cuBLAS, BF16 out; host code in bench_cuda.cpp)
//   activation: h = bf16(act(gate, up))                     (fp32 math)
//   FC2       : y = h · W2ᵀ per expert                      (cuBLAS, BF16 out)
//   combine   : out[t] = bf16(Σ_k w[t,k] · y[slot_row[t,k]]) (fp32 sum; slots with row -1 add nothing)
// All tensors are row-major BF16 bits (uint16_t) in device memory with 16-byte aligned rows.
#pragma once

#include <cstdint>

#include "fp4moe/config.hpp"

namespace fp4moe::bench {

// out[e, r, :] = bf16(e2m1(q) · sf · scale_2[e]) for `experts` matrices of rows × k (k % 16 == 0) with linear
// scales: the BF16 weights of the baseline.
void launch_dequantize_bf16(const uint8_t* packed, const uint8_t* scales, const float* scale_2, int64_t experts,
                            int64_t rows, int64_t k, uint16_t* out, void* stream);

// xg[r, :] = x[row_token[r], :] for r < rows; hidden % 8 == 0.
void launch_gather_rows(const uint16_t* x, const int32_t* row_token, int64_t rows, int64_t hidden, uint16_t* xg,
                        void* stream);

struct ActivationLaunch {
  const uint16_t* g = nullptr;  // [rows, fc1_rows] FC1 output, rows in `order` (gate/up halves or interleaved)
  uint16_t* h = nullptr;        // [rows, intermediate]
  int64_t rows = 0;
  int64_t intermediate = 0;     // % 8 == 0
  Activation activation = Activation::kSilu;
  Fc1Order order = Fc1Order::kGateUp;
  SwigluParams swiglu{};
};
void launch_activation(const ActivationLaunch& launch, void* stream);

// out[t, :] = bf16(Σ_k topk_weights[t, k] · y[slot_row[t·K + k], :]) over slots with slot_row >= 0.
void launch_combine(const uint16_t* y, const int32_t* slot_row, const float* topk_weights, int64_t tokens,
                    int64_t top_k, int64_t hidden, uint16_t* out, void* stream);

}  // namespace fp4moe::bench
