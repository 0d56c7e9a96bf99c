// The CUDA weight layout's block scales (format/fragment_layout.hpp: scale codes, signs and zeros folded into the
// codes) against the CPU reference, both modes, on the tiny preset: negative, ±0 and subnormal E4M3 scales in both
// GEMMs on every tile path, and a NaN scale, whose output column is NaN for exactly the tokens routed to its expert
// (as in the reference). Seeds are fresh per run.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gpu/moe_gpu_test_util.hpp"

namespace fp4moe {
namespace {

using testing::cpu_forward;
using testing::expect_close;
using testing::gpu_forward;

class ScaleByteTest : public ::testing::TestWithParam<Mode> {};

TEST_P(ScaleByteTest, EveryKindOfScaleByteMatchesTheReference) {
  // The CUDA layout folds a scale's sign into its block's codes and a zero scale into zero codes, and decodes
  // subnormal scales from a normalized code (format/fragment_layout.hpp): negative, ±0 and subnormal block scales
  // in both GEMMs, on the pair tiles (T = 1), the 8- and 24-row streaming tiles and the 64- and 160-row wgmma tiles.
  FP4MOE_REQUIRE_GPU();
  const uint64_t seed = testing::fresh_seed();
  const MoeConfig config = testing::small_config(GetParam());
  SCOPED_TRACE("seed=" + std::to_string(seed) + " " + config.describe());
  HostLayer l = make_random_layer(config, seed);
  const HostInputs inputs = make_random_inputs(config, 97, seed + 1);
  std::mt19937_64 rng(seed + 11);
  int negative = 0, zero = 0, subnormal = 0;
  for (std::vector<uint8_t>* scales : {&l.w13_scale, &l.w2_scale}) {
    for (uint8_t& b : *scales) {
      switch (rng() % 8) {
        case 0: b ^= 0x80u; break;
        case 1: b = uint8_t(rng() % 2 ? 0x00 : 0x80); break;
        case 2: b = uint8_t(1 + rng() % 7 + (rng() % 2 ? 0x80 : 0)); break;
        default: break;
      }
      negative += (b & 0x80u) && (b & 0x7fu);
      zero += (b & 0x7fu) == 0;
      subnormal += (b & 0x78u) == 0 && (b & 0x7u);
    }
  }
  EXPECT_GT(negative, 0);
  EXPECT_GT(zero, 0);
  EXPECT_GT(subnormal, 0);
  const Runner gpu(prepare_weights(config, l.view(), Backend::kCuda));
  const Runner cpu(prepare_weights(config, l.view(), Backend::kCpu));
  for (int64_t tokens : {int64_t(1), int64_t(20), int64_t(60), int64_t(97), int64_t(700)}) {
    const HostInputs in = make_random_inputs(config, tokens, seed + 12);
    expect_close(gpu_forward(gpu, in.view()), cpu_forward(cpu, in.view()), GetParam(),
                 "odd scale bytes, T=" + std::to_string(tokens));
  }

  // A NaN scale (0x7F) in FC2 row c of token 0's first expert: column c of every token routed there is NaN on both
  // sides (the old decode read 0x7F as a finite 1.875 · 2^8), and everything else agrees.
  const int32_t e = inputs.topk_ids[0];
  const int64_t c = 5, h = config.hidden, row_blocks = config.intermediate / 16;
  l.w2_scale[size_t((e * h + c) * row_blocks)] = 0x7f;
  std::vector<uint16_t> got = gpu_forward(Runner(prepare_weights(config, l.view(), Backend::kCuda)), inputs.view());
  std::vector<uint16_t> want = cpu_forward(Runner(prepare_weights(config, l.view(), Backend::kCpu)), inputs.view());
  int64_t nan_rows = 0;
  for (int64_t t = 0; t < inputs.tokens; ++t) {
    bool routed = false;
    for (int64_t k = 0; k < config.top_k; ++k) routed |= inputs.topk_ids[size_t(t * config.top_k + k)] == e;
    nan_rows += routed;
    for (int64_t j = 0; j < h; ++j) {
      const size_t i = size_t(t * h + j);
      const bool nan_expected = routed && j == c;
      ASSERT_EQ(std::isnan(bf16_to_float(got[i])), nan_expected) << "token " << t << " column " << j << " (GPU)";
      ASSERT_EQ(std::isnan(bf16_to_float(want[i])), nan_expected) << "token " << t << " column " << j << " (CPU)";
      if (nan_expected) got[i] = want[i] = 0;
    }
  }
  EXPECT_GT(nan_rows, 0);
  expect_close(got, want, GetParam(), "a NaN scale in FC2, other elements");
}

INSTANTIATE_TEST_SUITE_P(Modes, ScaleByteTest, ::testing::Values(Mode::kW4A16, Mode::kW4A4),
                         [](const auto& info) { return std::string(mode_name(info.param)); });

}  // namespace
}  // namespace fp4moe
