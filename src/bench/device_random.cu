// Device-side random generators for benchmark problems: packed FP4 weights, E4M3 block scales and BF16 tensors,
// each value a hash of (seed, index) (distributions: device_random.hpp).
//
// Roofline: write-only passes (no reads), a few integer multiplies and one log/sincos per two values, so each
// kernel is bound by write bandwidth: the 6.3 GB of deepseek-v3 FP4 weights and scales fill in a few ms on an H100.
#include <cuda_runtime.h>

#include <algorithm>

#include "bench/device_random.hpp"
#include "cuda/common/cuda_check.hpp"
#include "fp4moe/nvfp4.hpp"

namespace fp4moe::bench {

namespace {

constexpr int kThreads = 256;
constexpr float kCodeSpread = 3.0f;  // FP4 code = e2m1(kCodeSpread · z)

unsigned grid_for(int64_t items) {
  return unsigned(std::clamp<int64_t>((items + kThreads - 1) / kThreads, 1, int64_t(1) << 16));
}

__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

__device__ __forceinline__ uint64_t hash_index(uint64_t seed, uint64_t index) {
  return mix64(mix64(seed + 0x9E3779B97F4A7C15ull) ^ (index * 0xD1B54A32D192ED03ull));
}

// Uniform in (0, 1) from 24 bits.
__device__ __forceinline__ float unit_float(uint32_t bits24) { return (float(bits24) + 0.5f) * 0x1.0p-24f; }

// Two independent N(0, 1) samples from one 64-bit hash (Box-Muller on two 24-bit uniforms).
__device__ __forceinline__ float2 normal_pair(uint64_t h) {
  const float u1 = unit_float(uint32_t(h >> 40));
  const float u2 = unit_float(uint32_t(h & 0xFFFFFFu));
  const float r = sqrtf(-2.0f * logf(u1));
  float s, c;
  sincospif(2.0f * u2, &s, &c);
  return make_float2(r * c, r * s);
}

// One thread writes 8 packed bytes (16 FP4 elements).
__global__ void random_fp4_kernel(uint2* packed, int64_t words, uint64_t seed) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t w = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; w < words; w += stride) {
    uint32_t half[2] = {0, 0};
#pragma unroll
    for (int p = 0; p < 8; ++p) {
      const float2 z = normal_pair(hash_index(seed, uint64_t(w * 8 + p)));
      const uint32_t byte = fp4_pack(float_to_e2m1(kCodeSpread * z.x), float_to_e2m1(kCodeSpread * z.y));
      half[p / 4] |= byte << (8 * (p % 4));
    }
    packed[w] = make_uint2(half[0], half[1]);
  }
}

__global__ void random_scales_kernel(uint8_t* scales, int64_t experts, int64_t per_expert, const float* scale_2,
                                     uint64_t seed) {
  const int64_t total = experts * per_expert;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const float gs = 1.0f / scale_2[i / per_expert];
    const float u = kBlockAmaxLow + (kBlockAmaxHigh - kBlockAmaxLow) * unit_float(uint32_t(hash_index(seed, i) >> 40));
    scales[i] = float_to_e4m3(u * kRandomWeightStd * gs / kE2M1Max);
  }
}

// One thread writes two BF16 values.
__global__ void random_bf16_kernel(uint16_t* out, int64_t count, float stddev, uint64_t seed) {
  const int64_t pairs = (count + 1) / 2;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < pairs; p += stride) {
    const float2 z = normal_pair(hash_index(seed, uint64_t(p)));
    out[2 * p] = float_to_bf16(stddev * z.x);
    if (2 * p + 1 < count) out[2 * p + 1] = float_to_bf16(stddev * z.y);
  }
}

}  // namespace

void fill_random_fp4(uint8_t* packed, int64_t bytes, uint64_t seed, void* stream) {
  FP4MOE_CHECK(bytes % 8 == 0, "fill_random_fp4: byte count ", bytes, " is not a multiple of 8");
  if (bytes == 0) return;
  const int64_t words = bytes / 8;
  random_fp4_kernel<<<grid_for(words), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      reinterpret_cast<uint2*>(packed), words, seed);
  FP4MOE_CUDA_CHECK(cudaGetLastError());
}

void fill_random_block_scales(uint8_t* scales, int64_t experts, int64_t per_expert, const float* scale_2,
                              uint64_t seed, void* stream) {
  if (experts * per_expert == 0) return;
  random_scales_kernel<<<grid_for(experts * per_expert), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      scales, experts, per_expert, scale_2, seed);
  FP4MOE_CUDA_CHECK(cudaGetLastError());
}

void fill_random_bf16(uint16_t* out, int64_t count, float stddev, uint64_t seed, void* stream) {
  if (count == 0) return;
  random_bf16_kernel<<<grid_for((count + 1) / 2), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(out, count,
                                                                                                      stddev, seed);
  FP4MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace fp4moe::bench
