// Tests of the NVFP4 element formats, block quantizer and scale layouts (spec §1–§3).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <set>

#include "test_util.hpp"
#include "fp4moe/format.hpp"
#include "fp4moe/nvfp4.hpp"

namespace fp4moe {
namespace {

using testing::fresh_seed;

// ---- E2M1 ----

TEST(E2M1, DecodesEveryCode) {
  const float expected[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  for (int c = 0; c < 8; ++c) {
    EXPECT_EQ(e2m1_to_float(uint8_t(c)), expected[c]) << "code " << c;
    EXPECT_EQ(e2m1_to_float(uint8_t(c | 8)), -expected[c]) << "code " << (c | 8);
  }
  EXPECT_TRUE(std::signbit(e2m1_to_float(8)));  // code 8 is −0
}

TEST(E2M1, EncodesEveryCodeBack) {
  for (int c = 0; c < 16; ++c) EXPECT_EQ(float_to_e2m1(e2m1_to_float(uint8_t(c))), c) << "code " << c;
}

TEST(E2M1, SpecTieCasesRoundToEvenMantissa) {
  // Spec §2: 0.25→0, 0.75→1, 1.25→1, 1.75→2, 2.5→2, 3.5→4, 5→4, negatives alike.
  const std::pair<float, float> ties[] = {{0.25f, 0.0f}, {0.75f, 1.0f}, {1.25f, 1.0f}, {1.75f, 2.0f},
                                          {2.5f, 2.0f},  {3.5f, 4.0f},  {5.0f, 4.0f}};
  for (auto [in, out] : ties) {
    EXPECT_EQ(e2m1_to_float(float_to_e2m1(in)), out) << in;
    EXPECT_EQ(e2m1_to_float(float_to_e2m1(-in)), -out) << -in;
  }
}

TEST(E2M1, RoundsToNearestAndSaturates) {
  EXPECT_EQ(e2m1_to_float(float_to_e2m1(0.26f)), 0.5f);
  EXPECT_EQ(e2m1_to_float(float_to_e2m1(0.74f)), 0.5f);
  EXPECT_EQ(e2m1_to_float(float_to_e2m1(2.51f)), 3.0f);
  EXPECT_EQ(e2m1_to_float(float_to_e2m1(4.99f)), 4.0f);
  EXPECT_EQ(e2m1_to_float(float_to_e2m1(5.01f)), 6.0f);
  EXPECT_EQ(float_to_e2m1(7.0f), 7);
  EXPECT_EQ(float_to_e2m1(1e30f), 7);
  EXPECT_EQ(float_to_e2m1(std::numeric_limits<float>::infinity()), 7);
  EXPECT_EQ(float_to_e2m1(-std::numeric_limits<float>::infinity()), 15);
  EXPECT_EQ(float_to_e2m1(-0.0f), 8);   // sign kept
  EXPECT_EQ(float_to_e2m1(-0.1f), 8);   // rounds to −0
  EXPECT_EQ(float_to_e2m1(0.0f), 0);
}

// Independent nearest search over the grid, for random values.
TEST(E2M1, MatchesBruteForceNearest) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-7.0f, 7.0f);
  for (int n = 0; n < 200000; ++n) {
    const float v = dist(rng);
    int best = 0;
    float best_err = INFINITY;
    for (int c = 0; c < 8; ++c) {
      const float err = std::fabs(std::fabs(v) - e2m1_to_float(uint8_t(c)));
      if (err < best_err || (err == best_err && (c & 1) == 0)) best = c, best_err = err;
    }
    const int expected = best | (v < 0 ? 8 : 0);
    ASSERT_EQ(float_to_e2m1(v), expected) << v;
  }
}

// e2m1_round (the GPU requantization's shortcut) against the code round trip, bit for bit (sign of zero included):
// every float of magnitude 2^-4 .. 16 (where the thresholds and the saturation lie), every 4099th bit pattern of
// the rest, and the special values.
TEST(E2M1, RoundShortcutEqualsCodeRoundTrip) {
  const auto check = [](uint32_t u) {
    const float f = bits_float(u);
    const uint32_t want = float_bits(e2m1_to_float(float_to_e2m1(f)));
    const uint32_t got = float_bits(e2m1_round(f));
    if (want != got) ADD_FAILURE() << "bits 0x" << std::hex << u << ": want 0x" << want << ", got 0x" << got;
    return want == got;
  };
  int64_t failures = 0;
  for (uint32_t sign : {0u, 0x80000000u}) {
    for (uint32_t u = float_bits(0.0625f); u < float_bits(16.0f) && failures < 10; ++u) failures += !check(u | sign);
  }
  for (uint64_t u = 0; u <= 0xffffffffull && failures < 10; u += 4099) failures += !check(uint32_t(u));
  for (float f : {0.0f, -0.0f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                  std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::denorm_min(), 0.25f, 0.75f,
                  1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 6.0f, 1e30f}) {
    check(float_bits(f));
    check(float_bits(f) ^ 0x80000000u);
  }
  EXPECT_EQ(failures, 0);
}

// ---- E4M3 ----

TEST(E4M3, DecodesKnownCodes) {
  EXPECT_EQ(e4m3_to_float(0x00), 0.0f);
  EXPECT_EQ(e4m3_to_float(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(e4m3_to_float(0x07), 7 * std::ldexp(1.0f, -9));
  EXPECT_EQ(e4m3_to_float(0x08), std::ldexp(1.0f, -6));  // smallest normal
  EXPECT_EQ(e4m3_to_float(0x38), 1.0f);
  EXPECT_EQ(e4m3_to_float(0x7E), 448.0f);
  EXPECT_EQ(e4m3_to_float(0xFE), -448.0f);
  EXPECT_TRUE(std::isnan(e4m3_to_float(0x7F)));
  EXPECT_TRUE(std::isnan(e4m3_to_float(0xFF)));
}

TEST(E4M3, EveryFiniteCodeRoundTrips) {
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F) continue;
    EXPECT_EQ(float_to_e4m3(e4m3_to_float(uint8_t(c))), c) << "code " << c;
  }
}

TEST(E4M3, TiesToEvenInNormalsAndSubnormals) {
  const float sub = std::ldexp(1.0f, -9);
  EXPECT_EQ(float_to_e4m3(0.5f * sub), 0x00);   // tie 0 / 1 → 0
  EXPECT_EQ(float_to_e4m3(1.5f * sub), 0x02);   // tie 1 / 2 → 2
  EXPECT_EQ(float_to_e4m3(2.5f * sub), 0x02);   // tie 2 / 3 → 2
  EXPECT_EQ(float_to_e4m3(7.5f * sub), 0x08);   // tie 7·2^-9 / 2^-6 → 2^-6 (even)
  EXPECT_EQ(float_to_e4m3(1.0625f), 0x38);      // tie 1 / 1.125 → 1
  EXPECT_EQ(float_to_e4m3(1.1875f), 0x3A);      // tie 1.125 / 1.25 → 1.25
  EXPECT_EQ(float_to_e4m3(-1.1875f), 0xBA);
  EXPECT_EQ(float_to_e4m3(0.26f * sub), 0x00);
  EXPECT_EQ(float_to_e4m3(0.51f * sub), 0x01);
}

TEST(E4M3, SaturatesAndKeepsNaN) {
  EXPECT_EQ(float_to_e4m3(448.0f), 0x7E);
  EXPECT_EQ(float_to_e4m3(460.0f), 0x7E);
  EXPECT_EQ(float_to_e4m3(464.0f), 0x7E);
  EXPECT_EQ(float_to_e4m3(1e30f), 0x7E);
  EXPECT_EQ(float_to_e4m3(std::numeric_limits<float>::infinity()), 0x7E);
  EXPECT_EQ(float_to_e4m3(-std::numeric_limits<float>::infinity()), 0xFE);
  EXPECT_EQ(float_to_e4m3(std::numeric_limits<float>::quiet_NaN()) & 0x7F, 0x7F);
}

// Independent nearest search over all finite codes (ties to the even code), for random magnitudes.
TEST(E4M3, MatchesBruteForceNearest) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> expo(-12.0f, 9.5f);
  for (int n = 0; n < 100000; ++n) {
    const float v = std::exp2(expo(rng)) * ((n & 1) ? -1.0f : 1.0f);
    const float a = std::fabs(v);
    int best = 0;
    double best_err = INFINITY;
    for (int c = 0; c < 0x7F; ++c) {
      const double err = std::fabs(double(a) - double(e4m3_to_float(uint8_t(c))));
      if (err < best_err || (err == best_err && (c & 1) == 0)) best = c, best_err = err;
    }
    ASSERT_EQ(float_to_e4m3(v), best | (v < 0 ? 0x80 : 0)) << v;
  }
}

// ---- BF16 / F16 ----

TEST(BF16, RoundsToNearestEven) {
  EXPECT_EQ(float_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(float_to_bf16(bits_float(0x3F808000u)), 0x3F80);  // tie → even
  EXPECT_EQ(float_to_bf16(bits_float(0x3F818000u)), 0x3F82);  // tie → even (up)
  EXPECT_EQ(float_to_bf16(bits_float(0x3F808001u)), 0x3F81);
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const float f = bf16_to_float(uint16_t(b));
    if (!std::isnan(f)) {
      ASSERT_EQ(float_to_bf16(f), b);
    }
  }
}

TEST(F16, EveryCodeRoundTripsAndTiesGoEven) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_to_float(uint16_t(h));
    if (!std::isnan(f)) {
      ASSERT_EQ(float_to_f16(f), h) << h;
    }
  }
  EXPECT_EQ(float_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);          // tie → even
  EXPECT_EQ(float_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);      // tie → even (up)
  EXPECT_EQ(float_to_f16(65520.0f), 0x7C00);                              // rounds to Inf
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -25)), 0x0000);                 // tie 0 / min subnormal → 0
  EXPECT_EQ(float_to_f16(3 * std::ldexp(1.0f, -25)), 0x0002);
}

// ---- packing ----

TEST(Packing, ElementTwoIIsTheLowNibble) {
  const uint8_t b = fp4_pack(0x3, 0xA);
  EXPECT_EQ(b, 0xA3);
  const uint8_t row[2] = {0xA3, 0x5C};
  EXPECT_EQ(fp4_get(row, 0), 0x3);
  EXPECT_EQ(fp4_get(row, 1), 0xA);
  EXPECT_EQ(fp4_get(row, 2), 0xC);
  EXPECT_EQ(fp4_get(row, 3), 0x5);
  // quantize_block puts x[0] in the low nibble of byte 0.
  float x[16] = {};
  x[0] = 6.0f;   // amax 6 with gs 1 → sf = 1, codes are the values themselves
  x[1] = -1.0f;
  uint8_t packed[8];
  EXPECT_EQ(quantize_block(x, 1.0f, packed), 0x38);
  EXPECT_EQ(packed[0], fp4_pack(7, 10));
}

// ---- block quantizer ----

TEST(Quantizer, ExactValueBlock) {
  // gs = 2: s = amax·2/6; amax = 12 → s = 4 exactly (E4M3 0x48); inv = 1/(4·0.5) = 0.5.
  float x[16];
  const float grid[8] = {0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 6.0f, 8.0f, 12.0f};
  for (int i = 0; i < 16; ++i) x[i] = (i & 8) ? -grid[i & 7] : grid[i & 7];
  uint8_t packed[8];
  const uint8_t sf = quantize_block(x, 2.0f, packed);
  EXPECT_EQ(sf, float_to_e4m3(4.0f));
  for (int i = 0; i < 16; ++i) {
    const float back = dequant_unscaled(fp4_get(packed, i), sf) / 2.0f;
    EXPECT_EQ(back, x[i]) << i;
  }
}

TEST(Quantizer, ZeroBlockGivesZeroScaleAndCodes) {
  float x[16] = {};
  x[3] = -0.0f;
  uint8_t packed[8];
  EXPECT_EQ(quantize_block(x, 1234.0f, packed), 0);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(fp4_get(packed, i) & 7, 0) << i;
}

TEST(Quantizer, ErrorBoundOnRandomData) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int64_t rows = 64, k = 512;
  std::vector<float> x(size_t(rows * k));
  for (float& v : x) v = dist(rng) * std::exp2(float(int(rng() % 20) - 10));
  const float gs = auto_global_scale(x.data(), rows * k);
  const Nvfp4Matrix q = quantize_matrix(x.data(), rows, k, gs);
  const std::vector<float> back = dequantize_matrix(q);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < k / 16; ++b) {
      float amax = 0;
      for (int i = 0; i < 16; ++i) amax = std::max(amax, std::fabs(x[size_t(r * k + b * 16 + i)]));
      const float unit = e4m3_to_float(q.scales[size_t(r * (k / 16) + b)]) / gs;  // one E2M1 step of 1.0
      for (int i = 0; i < 16; ++i) {
        const size_t j = size_t(r * k + b * 16 + i);
        // Half the widest grid gap (4→6) is one unit. Rounding the scale down can clip the block max: by ≤ 2^-4
        // relative for normal E4M3 scales, and by ≤ 6·2^-10/gs absolute where the scale is subnormal.
        const float bound = unit * 1.0001f + amax / 16 + 6.0f * std::ldexp(1.0f, -10) / gs;
        ASSERT_LE(std::fabs(x[j] - back[j]), bound) << "row " << r << " block " << b;
        if (back[j] != 0) {
          ASSERT_EQ(std::signbit(x[j]), std::signbit(back[j]));
        }
      }
    }
  }
}

TEST(Quantizer, ExtremeGlobalScalesStayFinite) {
  float x[16];
  for (int i = 0; i < 16; ++i) x[i] = float(i) - 7.5f;
  uint8_t packed[8];
  // Huge gs: the scale saturates at 448 and all codes saturate to ±6.
  EXPECT_EQ(quantize_block(x, 1e30f, packed), 0x7E);
  EXPECT_EQ(fp4_get(packed, 0), 15);
  // Tiny gs: the scale underflows to 0, so does every code.
  EXPECT_EQ(quantize_block(x, 1e-30f, packed), 0x00);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(fp4_get(packed, i) & 7, 0);
}

TEST(Quantizer, RowsMatchBlockFunctionWithStride) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist;
  const int64_t rows = 5, k = 48, ld = 64;
  std::vector<float> x(size_t(rows * ld));
  for (float& v : x) v = dist(rng);
  std::vector<uint8_t> packed(size_t(rows * k / 2)), scales(size_t(rows * k / 16));
  quantize_rows(x.data(), rows, k, ld, 3.0f, packed.data(), scales.data());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < k / 16; ++b) {
      uint8_t p[8];
      EXPECT_EQ(scales[size_t(r * 3 + b)], quantize_block(&x[size_t(r * ld + b * 16)], 3.0f, p));
      for (int i = 0; i < 8; ++i) EXPECT_EQ(packed[size_t(r * 24 + b * 8 + i)], p[i]);
    }
  }
}

// ---- scale layouts ----

TEST(ScaleLayout, SwizzleOffsetFormula) {
  // offset = (m/128)·numKTiles·512 + (k/4)·512 + (m%32)·16 + ((m%128)/32)·4 + k%4
  EXPECT_EQ(swizzled_scale_offset(0, 0, 8), 0);
  EXPECT_EQ(swizzled_scale_offset(0, 1, 8), 1);
  EXPECT_EQ(swizzled_scale_offset(1, 0, 8), 16);
  EXPECT_EQ(swizzled_scale_offset(32, 0, 8), 4);
  EXPECT_EQ(swizzled_scale_offset(96, 3, 8), 15);
  EXPECT_EQ(swizzled_scale_offset(0, 4, 8), 512);
  EXPECT_EQ(swizzled_scale_offset(128, 0, 8), 1024);  // numKTiles = 2
  EXPECT_EQ(swizzled_scale_offset(128, 0, 5), 1024);  // ceil(5/4) = 2
  EXPECT_EQ(swizzled_scale_offset(131, 6, 8), 1024 + 512 + 3 * 16 + 2);
}

TEST(ScaleLayout, OffsetsAreABijectionOntoThePaddedBuffer) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{128, 4}, {256, 12}, {384, 8}}) {
    std::set<int64_t> seen;
    for (int64_t m = 0; m < rows; ++m) {
      for (int64_t k = 0; k < cols; ++k) seen.insert(swizzled_scale_offset(m, k, cols));
    }
    EXPECT_EQ(int64_t(seen.size()), rows * cols);
    EXPECT_EQ(*seen.rbegin(), rows * cols - 1);
  }
}

TEST(ScaleLayout, RoundTripWithPaddingZeroed) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937_64 rng(seed);
  const int64_t rows = 200, cols = 7;  // padded to 256 × 8
  const auto shape = scale_shape(ScaleLayout::kSwizzled128x4, rows, cols * 16);
  ASSERT_EQ(shape[0], 256);
  ASSERT_EQ(shape[1], 8);
  std::vector<uint8_t> linear(size_t(rows * cols)), swz(size_t(shape[0] * shape[1]), 0xAB), back(linear.size());
  for (uint8_t& v : linear) v = uint8_t(1 + rng() % 255);
  swizzle_scales(linear.data(), rows, cols, swz.data());
  unswizzle_scales(swz.data(), rows, cols, back.data());
  EXPECT_EQ(back, linear);
  int64_t nonzero = 0;
  for (uint8_t v : swz) nonzero += v != 0;
  EXPECT_EQ(nonzero, rows * cols);  // every padding byte is 0, every real scale non-zero
  EXPECT_EQ(swz[size_t(swizzled_scale_offset(5, 3, cols))], linear[size_t(5 * cols + 3)]);
}

}  // namespace
}  // namespace fp4moe
