// The FC1 epilogues' W4A4 requantization (cuda/fc1/requantize.cuh) against nvfp4.hpp's portable quantizer, bit for
// bit: the two shortcuts on every fp32 input (e2m1_round for all 2^32 bit patterns, the hardware E4M3 conversion for
// all 2^31 non-negative ones, NaNs included), and requantize_block in its three lane layouts on random blocks (fresh
// seed, printed on failure) plus exact-value blocks (zeros, ties of the E2M1 grid, a saturating scale, subnormal
// scales).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "cuda/fc1/requantize.cuh"
#include "fp4moe/nvfp4.hpp"
#include "gpu/gpu_test_util.hpp"
#include "test_util.hpp"

namespace fp4moe {
namespace {

using testing::DeviceBuffer;
using testing::fresh_seed;

// counts[0]: e2m1_round mismatches, counts[1]: E4M3 mismatches; first[0/1]: the smallest mismatching bit pattern.
__global__ void shortcut_mismatches(unsigned long long* counts, unsigned* first) {
  const uint64_t stride = uint64_t(gridDim.x) * blockDim.x;
  for (uint64_t u = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; u <= 0xffffffffull; u += stride) {
    const float f = __uint_as_float(uint32_t(u));
    if (__float_as_uint(e2m1_round(f)) != __float_as_uint(e2m1_to_float(float_to_e2m1(f)))) {
      atomicAdd(&counts[0], 1ull);
      atomicMin(&first[0], unsigned(u));
    }
    if (u < 0x80000000ull && cuda::e4m3_of_nonnegative(f) != float_to_e4m3(f)) {
      atomicAdd(&counts[1], 1ull);
      atomicMin(&first[1], unsigned(u));
    }
  }
}

TEST(RequantizeGpu, ShortcutsMatchPortableOnEveryInput) {
  FP4MOE_REQUIRE_GPU();
  DeviceBuffer counts(2 * sizeof(unsigned long long), 0);
  DeviceBuffer first(2 * sizeof(unsigned), 0xFF);
  shortcut_mismatches<<<1024, 256>>>(static_cast<unsigned long long*>(counts.get()),
                                     static_cast<unsigned*>(first.get()));
  FP4MOE_CUDA_CHECK(cudaGetLastError());
  const auto n = counts.to_host<unsigned long long>();
  const auto at = first.to_host<unsigned>();
  EXPECT_EQ(n[0], 0u) << "e2m1_round differs from the code round trip, first at bits 0x" << std::hex << at[0];
  EXPECT_EQ(n[1], 0u) << "e4m3_of_nonnegative differs from float_to_e4m3, first at bits 0x" << std::hex << at[1];
}

// One warp per 32 / (16 / kValues) blocks of 16 values. Stride 4, 2 values: lane 4g + t holds elements g and g + 8
// of block t (the MMA fragment rows); stride 1, 2 values: lane 8b + j holds elements 2j and 2j + 1 of block b;
// stride 8, 4 values: lane 8s + b holds elements 4s .. 4s + 3 of block b (the wgmma FC1 store pass).
template <int kLaneStride, int kValues>
__global__ void requantize_blocks(const float* x, float* out, int blocks, float gs2) {
  constexpr int kBlocksPerWarp = 32 / (16 / kValues);
  const int lane = int(threadIdx.x) % 32;
  const int in_warp = kLaneStride == 4 ? lane % 4 : kLaneStride == 1 ? lane / 8 : lane % 8;
  const int block = kBlocksPerWarp * (int(blockIdx.x * blockDim.x + threadIdx.x) / 32) + in_warp;
  int e[kValues];
  for (int r = 0; r < kValues; ++r) {
    e[r] = kLaneStride == 4 ? lane / 4 + 8 * r : kLaneStride == 1 ? 2 * (lane % 8) + r : 4 * (lane / 8) + r;
  }
  const bool in = block < blocks;
  float v[kValues];
  for (int r = 0; r < kValues; ++r) v[r] = in ? x[16 * block + e[r]] : 0.0f;
  cuda::requantize_block<kLaneStride, kValues>(v, cuda::requant_scale(gs2));
  if (in) {
    for (int r = 0; r < kValues; ++r) out[16 * block + e[r]] = v[r];
  }
}

// Blocks: exact-value cases first, then random values whose scales (amax · gs2 / 6) run from below the smallest
// E4M3 subnormal to past 448.
std::vector<float> test_blocks(std::mt19937_64& rng, int random_blocks, float gs2) {
  std::vector<float> x(16 * 4, 0.0f);  // block 0: zeros
  const float ties[8] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 6.0f};
  for (int i = 0; i < 16; ++i) {
    x[16 + i] = (i % 2 ? -1.0f : 1.0f) * ties[i % 8];  // block 1: the grid's ties (scale 1 for gs = 1)
    x[32 + i] = i == 5 ? 1e30f : 1.0f;                  // block 2: a scale that saturates at 448
    x[48 + i] = 1e-9f * float(i - 7);                   // block 3: a subnormal scale
  }
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-14, 12);
  for (int b = 0; b < random_blocks; ++b) {
    const float scale = std::ldexp(1.0f, exponent(rng)) / gs2;
    for (int i = 0; i < 16; ++i) x.push_back(scale * normal(rng));
  }
  return x;
}

template <int kLaneStride, int kValues>
void check_requantize(float gs2) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed << " lane stride " << kLaneStride << " values " << kValues
                                    << " gs2 " << gs2);
  std::mt19937_64 rng(seed);
  const std::vector<float> x = test_blocks(rng, 4093, gs2);
  const int blocks = int(x.size() / 16);
  std::vector<float> want(x.size());
  for (int b = 0; b < blocks; ++b) {
    uint8_t packed[8];
    const uint8_t sf = quantize_block(&x[size_t(16 * b)], gs2, packed);
    for (int i = 0; i < 16; ++i) want[size_t(16 * b + i)] = dequant_unscaled(fp4_get(packed, i), sf);
  }
  DeviceBuffer d_x = DeviceBuffer::from_host(x);
  DeviceBuffer d_out(x.size() * sizeof(float));  // poisoned: every element must be written
  constexpr int kBlocksPerWarp = 32 / (16 / kValues);
  const int warps = (blocks + kBlocksPerWarp - 1) / kBlocksPerWarp;
  requantize_blocks<kLaneStride, kValues><<<(warps + 3) / 4, 128>>>(static_cast<const float*>(d_x.get()),
                                                                     static_cast<float*>(d_out.get()), blocks, gs2);
  FP4MOE_CUDA_CHECK(cudaGetLastError());
  const std::vector<float> got = d_out.to_host<float>();
  int mismatches = 0;
  for (size_t i = 0; i < x.size() && mismatches < 10; ++i) {
    if (float_bits(got[i]) != float_bits(want[i])) {
      ++mismatches;
      ADD_FAILURE() << "block " << i / 16 << " element " << i % 16 << ": x " << x[i] << " want " << want[i]
                    << " got " << got[i];
    }
  }
  EXPECT_GT(std::count_if(want.begin(), want.end(), [](float v) { return v != 0.0f; }), int64_t(x.size() / 2))
      << "the blocks should mostly quantize to non-zero values";
}

TEST(RequantizeGpu, BlocksMatchPortableQuantizer) {
  FP4MOE_REQUIRE_GPU();
  for (float gs2 : {1.0f, 448.0f * 6.0f / 3.7f, 1e-3f}) {
    check_requantize<4, 2>(gs2);
    check_requantize<1, 2>(gs2);
    check_requantize<8, 4>(gs2);
  }
}

}  // namespace
}  // namespace fp4moe
