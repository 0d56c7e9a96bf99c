// The GPU NVFP4 quantizer against the host one: bit-exact codes and scales, both scale layouts, on random data
// of several magnitudes, exact tie values, strided inputs and extreme global scales. Outputs are poisoned first.
// The pass's dequantized-only form (W4A4's x for FC1: two threads per block) against the host's quantize_block
// followed by dequant_unscaled, bit for bit, on random bits (subnormals, huge values; blocks with NaN or Inf run but
// are not compared, spec §2) and normal values.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "test_util.hpp"
#include "fp4moe/error.hpp"
#include "fp4moe/quantize.hpp"
#include "gpu/gpu_test_util.hpp"

namespace fp4moe {
namespace {

using testing::DeviceBuffer;

using testing::fresh_seed;

enum class Fill { kNormal, kWideRange, kGridTies, kZerosAndSigns };

std::vector<uint16_t> make_bf16(int64_t rows, int64_t ld, Fill fill, std::mt19937_64& rng) {
  std::normal_distribution<float> normal;
  std::vector<uint16_t> x(size_t(rows * ld), 0x7FC1);  // the gap between rows (ld > k) is NaN: must be ignored
  for (int64_t i = 0; i < rows * ld; ++i) {
    float v = 0;
    switch (fill) {
      case Fill::kNormal: v = normal(rng); break;
      case Fill::kWideRange: v = normal(rng) * std::exp2(float(int(rng() % 40) - 20)); break;
      case Fill::kGridTies: v = 0.25f * float(int(rng() % 49) - 24); break;  // many values on E2M1 ties
      case Fill::kZerosAndSigns: v = (rng() % 3 == 0) ? ((rng() & 1) ? -0.0f : 0.0f) : normal(rng); break;
    }
    x[size_t(i)] = float_to_bf16(v);
  }
  return x;
}

struct Case {
  int64_t rows, k, ld;
  Fill fill;
  ScaleLayout layout;
};

void run_case(const Case& c, float gs, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "rows=" << c.rows << " k=" << c.k << " ld=" << c.ld << " fill="
                                    << int(c.fill) << " layout=" << scale_layout_name(c.layout) << " gs=" << gs
                                    << " seed=" << seed);
  std::mt19937_64 rng(seed);
  std::vector<uint16_t> x = make_bf16(c.rows, c.ld, c.fill, rng);
  std::vector<float> xf(size_t(c.rows * c.ld));
  for (size_t i = 0; i < x.size(); ++i) xf[i] = bf16_to_float(x[i]);
  if (gs <= 0) gs = auto_global_scale(xf.data(), int64_t(xf.size()));  // NaN gaps are skipped by fmax

  std::vector<uint8_t> ref_packed(size_t(c.rows * c.k / 2)), ref_linear(size_t(c.rows * c.k / 16));
  quantize_rows(xf.data(), c.rows, c.k, c.ld, gs, ref_packed.data(), ref_linear.data());
  const auto [srows, scols] = scale_shape(c.layout, c.rows, c.k);
  std::vector<uint8_t> ref_scales(size_t(srows * scols));
  if (c.layout == ScaleLayout::kLinear) {
    ref_scales = ref_linear;
  } else {
    swizzle_scales(ref_linear.data(), c.rows, c.k / 16, ref_scales.data());
  }

  DeviceBuffer dx = DeviceBuffer::from_host(x);
  DeviceBuffer dpacked(ref_packed.size()), dscales(ref_scales.size());
  TensorView tx(dx.get(), DType::kBF16, {c.rows, c.k}, Device::cuda());
  tx.strides[0] = c.ld;
  quantize_nvfp4_cuda(tx, gs, TensorView(dpacked.get(), DType::kU8, {c.rows, c.k / 2}, Device::cuda()),
                      TensorView(dscales.get(), DType::kE4M3, {srows, scols}, Device::cuda()), c.layout);
  FP4MOE_CUDA_CHECK(cudaDeviceSynchronize());
  const auto packed = dpacked.to_host<uint8_t>();
  const auto scales = dscales.to_host<uint8_t>();
  int64_t bad_codes = 0, bad_scales = 0;
  for (size_t i = 0; i < packed.size(); ++i) bad_codes += packed[i] != ref_packed[i];
  for (size_t i = 0; i < scales.size(); ++i) bad_scales += scales[i] != ref_scales[i];
  EXPECT_EQ(bad_codes, 0) << "of " << packed.size() << " packed bytes differ";
  EXPECT_EQ(bad_scales, 0) << "of " << scales.size() << " scale bytes differ";
  int64_t nonzero = 0;
  for (uint8_t v : ref_packed) nonzero += v != 0;
  if (c.fill != Fill::kZerosAndSigns && gs < 1e20f) {
    EXPECT_GT(nonzero, 0);  // guard against all-zero agreement
  }
}

TEST(QuantizeGpu, BitExactWithHostAcrossShapesAndLayouts) {
  FP4MOE_REQUIRE_GPU();
  const uint64_t seed = fresh_seed();
  const Case cases[] = {
      {1, 16, 16, Fill::kNormal, ScaleLayout::kLinear},
      {7, 64, 64, Fill::kGridTies, ScaleLayout::kLinear},
      {257, 2048, 2048, Fill::kWideRange, ScaleLayout::kLinear},
      {300, 7168, 7168, Fill::kNormal, ScaleLayout::kSwizzled128x4},
      {129, 80, 80, Fill::kZerosAndSigns, ScaleLayout::kSwizzled128x4},
      {33, 2880, 2880, Fill::kGridTies, ScaleLayout::kSwizzled128x4},
      {1000, 256, 256, Fill::kWideRange, ScaleLayout::kSwizzled128x4},
  };
  uint64_t s = seed;
  for (const Case& c : cases) run_case(c, 0.0f, s++);
}

TEST(QuantizeGpu, StridedRows) {
  FP4MOE_REQUIRE_GPU();
  const uint64_t seed = fresh_seed();
  run_case({50, 128, 200, Fill::kNormal, ScaleLayout::kLinear}, 0.0f, seed);
  run_case({130, 32, 40, Fill::kGridTies, ScaleLayout::kSwizzled128x4}, 0.0f, seed + 1);
}

TEST(QuantizeGpu, FixedAndExtremeGlobalScales) {
  FP4MOE_REQUIRE_GPU();
  const uint64_t seed = fresh_seed();
  for (float gs : {1.0f, 2688.0f, 0.37f, 1e30f, 1e-30f, 3.0e38f}) {
    run_case({64, 512, 512, Fill::kWideRange, ScaleLayout::kLinear}, gs, seed);
  }
}

TEST(QuantizeGpu, ZeroRowsIsANoOp) {
  FP4MOE_REQUIRE_GPU();
  DeviceBuffer dx(16), dp(16), ds(16);
  quantize_nvfp4_cuda(TensorView(dx.get(), DType::kBF16, {0, 64}, Device::cuda()), 1.0f,
                      TensorView(dp.get(), DType::kU8, {0, 32}, Device::cuda()),
                      TensorView(ds.get(), DType::kE4M3, {0, 4}, Device::cuda()), ScaleLayout::kLinear);
  FP4MOE_CUDA_CHECK(cudaDeviceSynchronize());
  for (uint8_t v : dp.to_host<uint8_t>()) EXPECT_EQ(v, 0xAB);
}

struct DequantCase {
  int64_t rows, k, ld;
};

// Even rows hold normal values, odd rows random BF16 bits; the output has a poisoned tail that must stay so. Blocks
// with a NaN or an infinity are left out of the comparison: spec §2 leaves their result unspecified (the GPU's
// arithmetic does not keep a NaN's sign, x86's does, so −0 and +0 differ there).
void run_dequant_only_case(const DequantCase& c, float gs, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "rows=" << c.rows << " k=" << c.k << " ld=" << c.ld << " gs=" << gs
                                    << " seed=" << seed);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<uint16_t> x(size_t(c.rows * c.ld), 0x7FC1);
  for (int64_t r = 0; r < c.rows; ++r) {
    for (int64_t i = 0; i < c.k; ++i) {
      x[size_t(r * c.ld + i)] = r % 2 == 1 ? uint16_t(rng()) : float_to_bf16(normal(rng));
    }
  }
  constexpr int64_t kTail = 64;
  constexpr uint16_t kPoisonWord = 0xABAB;
  std::vector<bool> compared;
  std::vector<uint16_t> want = testing::host_dequant_rows(x, c.rows, c.k, c.ld, gs, &compared);
  want.resize(want.size() + kTail, kPoisonWord);
  compared.resize(want.size(), true);
  DeviceBuffer dx = DeviceBuffer::from_host(x);
  DeviceBuffer dout(want.size() * sizeof(uint16_t));
  cuda::launch_quantize_nvfp4(testing::dequant_only_params(dx, c.rows, c.k, c.ld, gs, dout), nullptr);
  FP4MOE_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<uint16_t> got = dout.to_host<uint16_t>();
  int64_t bad = 0, nonzero = 0, skipped = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    nonzero += i < size_t(c.rows * c.k) && int64_t(i) / c.k % 2 == 0 && (got[i] & 0x7fffu) != 0;
    skipped += !compared[i];
    if (compared[i] && got[i] != want[i] && ++bad <= 5) {
      ADD_FAILURE() << "element " << i << ": " << got[i] << " != " << want[i];
    }
  }
  EXPECT_EQ(bad, 0) << "of " << want.size() - skipped << " compared words differ (the last " << kTail
                    << " must stay poisoned; " << skipped << " in blocks with NaN or Inf not compared)";
  if (gs > 0.1f && gs < 1e4f) {  // (extreme gs saturate or flush the scales)
    EXPECT_GT(nonzero, (c.rows + 1) / 2 * c.k / 2) << "most dequantized values of the normal rows are not zero";
  }
}

TEST(QuantizeGpu, DequantizedOnlyMatchesHostBitForBit) {
  FP4MOE_REQUIRE_GPU();
  const uint64_t seed = fresh_seed();
  const DequantCase cases[] = {
      {1, 7168, 7168},  // deepseek-v3's x at T = 1
      {1, 2048, 2048},  // qwen3-30b's
      {3, 16, 16},      // one block per row
      {5, 48, 56},      // three blocks per row (warps span rows), strided rows
      {300, 2880, 2880},
      {37, 4096, 4104},
  };
  uint64_t s = seed;
  for (const DequantCase& c : cases) {
    for (float gs : {1.0f, 2688.0f, 0.37f, 1e-30f, 3.0e38f}) run_dequant_only_case(c, gs, s++);
  }
}

// Validation runs before any CUDA call, so these need no GPU.
TEST(QuantizeGpuValidation, RejectsHostMemoryAndBadShapes) {
  std::vector<uint16_t> x(64);
  std::vector<uint8_t> p(32), s(4);
  using testing::expect_error;
  expect_error([&] {
    quantize_nvfp4_cuda(TensorView(x.data(), DType::kBF16, {1, 64}), 1.0f, TensorView(p.data(), DType::kU8, {1, 32}),
                        TensorView(s.data(), DType::kE4M3, {1, 4}), ScaleLayout::kLinear);
  }, "argument 'x': expected CUDA memory, got cpu");
  expect_error([&] {
    quantize_nvfp4_cuda(TensorView(x.data(), DType::kF32, {1, 32}, Device::cuda()), 1.0f,
                        TensorView(p.data(), DType::kU8, {1, 16}), TensorView(s.data(), DType::kE4M3, {1, 2}),
                        ScaleLayout::kLinear);
  }, "argument 'x': expected dtype BF16, got dtype F32");
  expect_error([&] {
    quantize_nvfp4_cuda(TensorView(x.data(), DType::kBF16, {2, 24}, Device::cuda()), 1.0f,
                        TensorView(p.data(), DType::kU8, {2, 12}), TensorView(s.data(), DType::kE4M3, {2, 1}),
                        ScaleLayout::kLinear);
  }, "expected K (shape[1]) a multiple of 16, got 24");
}

}  // namespace
}  // namespace fp4moe
