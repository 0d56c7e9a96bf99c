// The CUDA backend's fragment-tile weight layout: packing is a permutation (every element found where the lookup
// says, with its dequantized value e2m1 · sf unchanged for every scale byte, padding zero), the integer decode the
// kernels run (mirrored here op for op) turns each word into BF16 pairs worth exactly e2m1 · 2^-126 for every code
// in every register slot, and every scale code gives the BF16 |sf| · 2^117 with one multiply-add.
#include <gtest/gtest.h>

#include <algorithm>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "format/fragment_layout.hpp"
#include "fp4moe/nvfp4.hpp"
#include "test_util.hpp"

namespace fp4moe {
namespace {

using format::FragShape;

// frag_decode_word of cuda/common/fragment_decode.cuh, on the host.
void decode_word(uint32_t w, uint32_t (&r)[4]) {
  constexpr uint32_t kMask = format::kFragMask;
  r[0] = w & kMask;
  r[1] = (w << 3) & kMask;
  r[2] = (w << 6) & kMask;
  r[3] = (((w >> 7) & 0x00D800D8u) * 0x821u) & kMask;
}

// frag_scale_pair of cuda/common/fragment_decode.cuh, on the host.
uint32_t scale_pair(uint32_t code) { return code * 0x00100010u + 0x70007000u; }

// Equal bit for bit (so zeros of the same sign), or both NaN.
bool same_value(float a, float b) { return is_nan(a) ? is_nan(b) : float_bits(a) == float_bits(b); }

double bf16_value(uint16_t bits) {
  const int sign = bits >> 15, exp = (bits >> 7) & 0xff, mant = bits & 0x7f;
  if (exp == 0xff) return mant != 0 ? std::nan("") : (sign ? -HUGE_VAL : HUGE_VAL);
  const double v = exp == 0 ? std::ldexp(mant / 128.0, -126) : std::ldexp(1.0 + mant / 128.0, exp - 127);
  return sign ? -v : v;
}

TEST(FragmentLayout, DecodeGivesEveryCodeInEveryRegisterSlot) {
  // A word with code c in register `reg`, half `half` (all other bits zero) must decode to e2m1(c) · 2^-126 there
  // and to zero in every other slot.
  for (int reg = 0; reg < 4; ++reg) {
    for (int half = 0; half < 2; ++half) {
      for (uint32_t code = 0; code < 16; ++code) {
        uint32_t w = 0;
        for (int b = 0; b < 4; ++b) w |= ((code >> b) & 1u) << (format::kFragBitPos[reg][b] + 16 * half);
        uint32_t r[4];
        decode_word(w, r);
        for (int rr = 0; rr < 4; ++rr) {
          for (int hh = 0; hh < 2; ++hh) {
            const uint16_t bits = uint16_t(r[rr] >> (16 * hh));
            const double want = (rr == reg && hh == half) ? std::ldexp(double(e2m1_to_float(uint8_t(code))), -126) : 0.0;
            EXPECT_EQ(bf16_value(bits), want) << "reg " << reg << " half " << half << " code " << code << " slot "
                                              << rr << "/" << hh;
            if (rr == reg && hh == half) {
              EXPECT_EQ(bits >> 15, code >> 3) << "sign of code " << code;
            }
          }
        }
      }
    }
  }
}

TEST(FragmentLayout, ScaleCodesGiveTheScaleInBothHalvesOfOneMultiplyAdd) {
  for (int b = 0; b < 256; ++b) {
    const uint8_t code = format::frag_scale_code(uint8_t(b));
    const float sf = e4m3_to_float(uint8_t(b));
    const uint32_t pair = scale_pair(code);
    EXPECT_EQ(pair >> 16, pair & 0xffffu) << "byte " << b;
    const double v = bf16_value(uint16_t(pair));
    if (std::isnan(sf)) {
      EXPECT_EQ(code, 0xffu);
      EXPECT_TRUE(std::isnan(v)) << "byte " << b;
    } else if (sf == 0.0f) {
      EXPECT_EQ(code, 0u) << "byte " << b;
    } else {
      EXPECT_EQ(v, std::ldexp(double(std::fabs(sf)), 117)) << "byte " << b;
      EXPECT_EQ(format::frag_scale_code_value(code), std::fabs(sf)) << "byte " << b;
    }
  }
}

TEST(FragmentLayout, CodePairsKeepEveryDequantizedValue) {
  // e2m1 · sf for every code and every scale byte (negative scales, ±0, subnormals, NaN), signed zeros included.
  int zeros_checked = 0;
  for (int b = 0; b < 256; ++b) {
    const uint8_t code_sf = format::frag_scale_code(uint8_t(b));
    for (int pair = 0; pair < 256; ++pair) {
      const uint8_t stored = format::frag_code_pair(uint8_t(pair), uint8_t(b));
      for (int half = 0; half < 2; ++half) {
        const uint8_t c = uint8_t((pair >> (4 * half)) & 0xf), sc = uint8_t((stored >> (4 * half)) & 0xf);
        const float want = e2m1_to_float(c) * e4m3_to_float(uint8_t(b));
        const float got = e2m1_to_float(sc) * format::frag_scale_code_value(code_sf);
        EXPECT_TRUE(same_value(got, want)) << "byte " << b << " code " << int(c) << ": " << got << " vs " << want;
        zeros_checked += want == 0.0f;
      }
    }
  }
  EXPECT_GT(zeros_checked, 0);
}

TEST(FragmentLayout, BitPositionsTileTheWord) {
  uint32_t seen = 0;
  for (int reg = 0; reg < 4; ++reg) {
    for (int half = 0; half < 2; ++half) {
      for (int b = 0; b < 4; ++b) {
        const uint32_t bit = 1u << (format::kFragBitPos[reg][b] + 16 * half);
        EXPECT_EQ(seen & bit, 0u) << "bit used twice";
        seen |= bit;
      }
    }
  }
  EXPECT_EQ(seen, 0xffffffffu);
}

struct LayoutCase {
  int64_t rows, k, row_align;
};

class FragmentPackTest : public ::testing::TestWithParam<LayoutCase> {};

TEST_P(FragmentPackTest, PackIsAPermutationWithZeroPadding) {
  const auto [rows, k, align] = GetParam();
  const uint64_t seed = testing::fresh_seed();
  SCOPED_TRACE(::testing::Message() << "seed=" << seed << " rows=" << rows << " k=" << k << " align=" << align);
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> codes(size_t(rows * k / 2)), scales(size_t(rows * k / 16));
  for (auto& c : codes) c = uint8_t(rng());
  for (auto& s : scales) s = uint8_t(rng());  // every byte: negative, ±0, subnormal and NaN scales
  const FragShape shape = format::frag_shape(rows, k, align);
  EXPECT_EQ(shape.row_tiles * 16 % align, 0);
  EXPECT_GE(shape.row_tiles * 16, rows);
  EXPECT_EQ(shape.k_tiles, (k + 63) / 64);
  std::vector<uint8_t> tc(size_t(shape.code_bytes()), 0xAB), ts(size_t(shape.scale_bytes()), 0xAB);
  format::pack_fragment_tiles(codes.data(), scales.data(), shape, tc.data(), ts.data());
  for (int64_t r = 0; r < shape.row_tiles * 16; ++r) {
    for (int64_t kk = 0; kk < shape.k_tiles * 64; ++kk) {
      const bool real = r < rows && kk < k;
      const uint8_t sf = real ? scales[size_t(r * k / 16 + kk / 16)] : 0;
      const uint8_t code = real ? fp4_get(codes.data() + r * k / 2, kk) : 0;
      const uint8_t want = uint8_t((format::frag_code_pair(uint8_t(code | code << 4), sf)) & 0xf);
      ASSERT_EQ(format::fragment_code(tc.data(), shape, r, kk), want) << "row " << r << " k " << kk;
      ASSERT_EQ(format::fragment_scale(ts.data(), shape, r, kk), format::frag_scale_code(sf))
          << "row " << r << " k " << kk;
    }
  }
}

TEST(FragmentLayout, LaneBytesAreTheMmaFragments) {
  // Lane 4g + t of tile 0, word s, register 0 low half = row g, k 16t + 4s (spec of the layout, fixed here).
  const int64_t rows = 16, k = 64;
  std::vector<uint8_t> codes(size_t(rows * k / 2), 0), scales(size_t(rows * k / 16), 0);
  const int g = 5, t = 2, s = 3;
  const int64_t kk = 16 * t + 4 * s;
  codes[size_t((g + 8) * k / 2 + (kk + 3) / 2)] = uint8_t(0x7 << 4);  // row g+8, k+3 = 6.0 → register 3, high
  scales[size_t(g * k / 16 + t)] = 0x38;
  scales[size_t((g + 8) * k / 16 + t)] = 0x38;  // a zero scale would zero the code (frag_code_pair)
  const FragShape shape = format::frag_shape(rows, k, 16);
  std::vector<uint8_t> tc(size_t(shape.code_bytes())), ts(size_t(shape.scale_bytes()));
  format::pack_fragment_tiles(codes.data(), scales.data(), shape, tc.data(), ts.data());
  uint32_t w;
  std::memcpy(&w, tc.data() + (4 * g + t) * 16 + s * 4, 4);
  uint32_t r[4];
  decode_word(w, r);
  EXPECT_EQ(bf16_value(uint16_t(r[3] >> 16)), std::ldexp(6.0, -126));
  EXPECT_EQ(r[0] | r[1] | r[2] | (r[3] & 0xffffu), 0u);
  EXPECT_EQ(ts[size_t((4 * g + t) * 2)], format::frag_scale_code(0x38));  // row g scale at byte 2·lane
  EXPECT_EQ(format::frag_scale_code_value(format::frag_scale_code(0x38)), 1.0f);
}

TEST(FragmentLayout, MmaKOrderMatchesTheARegisters) {
  // Lane 4g + t, word s: A registers 0/1 hold logical k 16t + 4s + {0, 1}, which the MMA multiplies with its k
  // positions 2t, 2t + 1 of step s; registers 2/3 hold 16t + 4s + {2, 3} at positions 2t + 8, 2t + 9. B operands in
  // the MMA k order put logical k l at position fragment_k_slot(l) of the 64.
  std::vector<int> seen(64, 0);
  for (int t = 0; t < 4; ++t) {
    for (int s = 0; s < 4; ++s) {
      for (int i = 0; i < 4; ++i) {
        const int l = 16 * t + 4 * s + i;
        const int position = 16 * s + (i < 2 ? 2 * t + i : 8 + 2 * t + (i - 2));
        EXPECT_EQ(format::fragment_k_slot(l), position) << "l=" << l;
        ++seen[size_t(format::fragment_k_slot(l))];
      }
    }
  }
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; })) << "not a permutation of 0..63";
  for (int l = 0; l < 64; l += 2) {  // the reorder kernels move 32-bit words: pairs stay together, in order
    EXPECT_EQ(format::fragment_k_slot(l) % 2, 0);
    EXPECT_EQ(format::fragment_k_slot(l + 1), format::fragment_k_slot(l) + 1);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, FragmentPackTest,
                         ::testing::Values(LayoutCase{16, 64, 16}, LayoutCase{48, 80, 32}, LayoutCase{32, 208, 16},
                                           LayoutCase{64, 256, 32}, LayoutCase{16, 16, 16}));

}  // namespace
}  // namespace fp4moe
