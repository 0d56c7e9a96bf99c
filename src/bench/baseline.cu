// Kernels of the BF16 cuBLAS baseline (pipeline: baseline_kernels.hpp) and the dequantization that makes its BF16
// weights. Every kernel moves 16-byte vectors (8 BF16 values) per thread in a grid-stride loop.
//
// Roofline (all memory-bound; R = routed rows = Σ hit slots ≤ T·K):
//   dequantize: reads 9/16 B and writes 2 B per weight (offline, at setup);
//   gather    : reads and writes R·H·2 B;
//   activation: reads R·fc1_rows·2 B, writes R·I·2 B (a few exp/tanh per element, far under the FLOP ceiling);
//   combine   : reads R·H·2 B (+ T·K ids and weights), writes T·H·2 B.
#include <cuda_runtime.h>

#include <algorithm>

#include "bench/baseline_kernels.hpp"
#include "cuda/common/cuda_check.hpp"
#include "fp4moe/nvfp4.hpp"

namespace fp4moe::bench {

namespace {

constexpr int kThreads = 256;
constexpr int kVec = 8;  // BF16 values per 16-byte vector

unsigned grid_for(int64_t items) {
  return unsigned(std::clamp<int64_t>((items + kThreads - 1) / kThreads, 1, int64_t(1) << 16));
}

__device__ __forceinline__ int64_t thread_index() { return int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t thread_stride() { return int64_t(gridDim.x) * blockDim.x; }

__device__ __forceinline__ void load8(const uint16_t* p, float (&v)[kVec]) {
  const uint4 q = *reinterpret_cast<const uint4*>(p);
  const uint32_t w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    v[2 * i] = bf16_to_float(uint16_t(w[i] & 0xFFFFu));
    v[2 * i + 1] = bf16_to_float(uint16_t(w[i] >> 16));
  }
}

__device__ __forceinline__ void store8(uint16_t* p, const float (&v)[kVec]) {
  uint32_t w[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) w[i] = uint32_t(float_to_bf16(v[2 * i])) | (uint32_t(float_to_bf16(v[2 * i + 1])) << 16);
  *reinterpret_cast<uint4*>(p) = make_uint4(w[0], w[1], w[2], w[3]);
}

// One thread per 16-element scale block: 8 packed bytes + 1 scale → 16 BF16 values.
__global__ void dequantize_kernel(const uint2* packed, const uint8_t* scales, const float* scale_2,
                                  int64_t blocks_per_expert, int64_t blocks, uint16_t* out) {
  for (int64_t b = thread_index(); b < blocks; b += thread_stride()) {
    const float s = e4m3_to_float(scales[b]) * scale_2[b / blocks_per_expert];
    const uint2 q = packed[b];
    float v[2][kVec];
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const uint32_t word = i < 8 ? q.x : q.y;
      v[i / 8][i % 8] = e2m1_to_float(uint8_t((word >> (4 * (i % 8))) & 0xFu)) * s;
    }
    store8(out + b * 16, v[0]);
    store8(out + b * 16 + 8, v[1]);
  }
}

__global__ void gather_kernel(const uint4* x, const int32_t* row_token, int64_t rows, int64_t chunks, uint4* xg) {
  for (int64_t i = thread_index(); i < rows * chunks; i += thread_stride()) {
    const int64_t r = i / chunks, c = i % chunks;
    xg[i] = x[int64_t(row_token[r]) * chunks + c];
  }
}

__device__ __forceinline__ float sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

__device__ __forceinline__ float activate(const ActivationLaunch& a, float g, float u) {
  switch (a.activation) {
    case Activation::kSilu:
      return g * sigmoid(g) * u;
    case Activation::kGeluTanh:
      return 0.5f * g * (1.0f + tanhf(0.7978845608f * (g + 0.044715f * g * g * g))) * u;
    case Activation::kRelu2: {
      const float r = g < 0.0f ? 0.0f : g;
      return r * r;
    }
    case Activation::kSwigluClamped: {
      const float gc = fminf(g, a.swiglu.limit);
      const float uc = fminf(fmaxf(u, -a.swiglu.limit), a.swiglu.limit);
      return gc * sigmoid(a.swiglu.alpha * gc) * (uc + a.swiglu.beta);
    }
  }
  return 0.0f;
}

// One thread per 8 outputs h[r, j0 .. j0+8).
__global__ void activation_kernel(const ActivationLaunch a) {
  const int64_t inter = a.intermediate, chunks = inter / kVec;
  const bool gated = a.activation != Activation::kRelu2;
  const int64_t fc1_rows = gated ? 2 * inter : inter;
  for (int64_t i = thread_index(); i < a.rows * chunks; i += thread_stride()) {
    const int64_t r = i / chunks, j0 = (i % chunks) * kVec;
    const uint16_t* row = a.g + r * fc1_rows;
    float g[kVec], u[kVec] = {};
    if (!gated) {
      load8(row + j0, g);
    } else if (a.order == Fc1Order::kGateUp) {
      load8(row + j0, g);
      load8(row + inter + j0, u);
    } else if (a.order == Fc1Order::kUpGate) {
      load8(row + inter + j0, g);
      load8(row + j0, u);
    } else {  // interleaved: row 2j gate j, row 2j+1 up j
      float pair[2][kVec];
      load8(row + 2 * j0, pair[0]);
      load8(row + 2 * j0 + kVec, pair[1]);
#pragma unroll
      for (int e = 0; e < kVec; ++e) {
        g[e] = pair[e / 4][2 * (e % 4)];
        u[e] = pair[e / 4][2 * (e % 4) + 1];
      }
    }
    float h[kVec];
#pragma unroll
    for (int e = 0; e < kVec; ++e) h[e] = activate(a, g[e], u[e]);
    store8(a.h + r * inter + j0, h);
  }
}

// One thread per 8 outputs out[t, c·8 .. c·8+8), summing the token's slots in order in fp32.
__global__ void combine_kernel(const uint16_t* y, const int32_t* slot_row, const float* topk_weights, int64_t tokens,
                               int64_t top_k, int64_t hidden, uint16_t* out) {
  const int64_t chunks = hidden / kVec;
  for (int64_t i = thread_index(); i < tokens * chunks; i += thread_stride()) {
    const int64_t t = i / chunks, c0 = (i % chunks) * kVec;
    float acc[kVec] = {};
    for (int64_t k = 0; k < top_k; ++k) {
      const int32_t row = slot_row[t * top_k + k];
      if (row < 0) continue;
      const float w = topk_weights[t * top_k + k];
      float v[kVec];
      load8(y + int64_t(row) * hidden + c0, v);
#pragma unroll
      for (int e = 0; e < kVec; ++e) acc[e] += w * v[e];
    }
    store8(out + t * hidden + c0, acc);
  }
}

cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

}  // namespace

void launch_dequantize_bf16(const uint8_t* packed, const uint8_t* scales, const float* scale_2, int64_t experts,
                            int64_t rows, int64_t k, uint16_t* out, void* stream) {
  FP4MOE_CHECK(k % kBlockSize == 0, "launch_dequantize_bf16: k = ", k, " is not a multiple of 16");
  const int64_t per_expert = rows * (k / kBlockSize), blocks = experts * per_expert;
  if (blocks == 0) return;
  dequantize_kernel<<<grid_for(blocks), kThreads, 0, as_stream(stream)>>>(reinterpret_cast<const uint2*>(packed),
                                                                           scales, scale_2, per_expert, blocks, out);
  FP4MOE_CUDA_CHECK(cudaGetLastError());
}

void launch_gather_rows(const uint16_t* x, const int32_t* row_token, int64_t rows, int64_t hidden, uint16_t* xg,
                        void* stream) {
  FP4MOE_CHECK(hidden % kVec == 0, "launch_gather_rows: hidden = ", hidden, " is not a multiple of 8");
  if (rows == 0) return;
  const int64_t chunks = hidden / kVec;
  gather_kernel<<<grid_for(rows * chunks), kThreads, 0, as_stream(stream)>>>(
      reinterpret_cast<const uint4*>(x), row_token, rows, chunks, reinterpret_cast<uint4*>(xg));
  FP4MOE_CUDA_CHECK(cudaGetLastError());
}

void launch_activation(const ActivationLaunch& launch, void* stream) {
  FP4MOE_CHECK(launch.intermediate % kVec == 0, "launch_activation: intermediate = ", launch.intermediate,
               " is not a multiple of 8");
  if (launch.rows == 0) return;
  activation_kernel<<<grid_for(launch.rows * (launch.intermediate / kVec)), kThreads, 0, as_stream(stream)>>>(launch);
  FP4MOE_CUDA_CHECK(cudaGetLastError());
}

void launch_combine(const uint16_t* y, const int32_t* slot_row, const float* topk_weights, int64_t tokens,
                    int64_t top_k, int64_t hidden, uint16_t* out, void* stream) {
  FP4MOE_CHECK(hidden % kVec == 0, "launch_combine: hidden = ", hidden, " is not a multiple of 8");
  if (tokens == 0) return;
  combine_kernel<<<grid_for(tokens * (hidden / kVec)), kThreads, 0, as_stream(stream)>>>(y, slot_row, topk_weights,
                                                                                          tokens, top_k, hidden, out);
  FP4MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace fp4moe::bench
