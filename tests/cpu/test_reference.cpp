// Tests of the CPU reference MoE (src/reference): agreement with the independent naive fp64 implementation in
// naive_moe.hpp, exact hand-computed cases, expert parallelism, routing corner cases, determinism and argument
// checks. Random tests draw a fresh seed each run (FP4MOE_TEST_SEED=<n> replays one) and print it on failure.
// The shared helpers (problem builders, runners, comparison and agreement bounds) are in reference_test_util.hpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "cpu/reference_test_util.hpp"
#include "fp4moe/error.hpp"
#include "fp4moe/nvfp4.hpp"
#include "naive_moe.hpp"
#include "reference/moe_reference.hpp"

namespace reference_test {
namespace {

// ---- agreement with the naive fp64 implementation ----------------------------------------------------------------

struct ActivationCase {
  const char* name;
  Activation activation;
  fp4moe::SwigluParams swiglu;
};

using AgreementParam = std::tuple<Mode, ActivationCase>;

class ReferenceVsNaive : public testing::TestWithParam<AgreementParam> {};

TEST_P(ReferenceVsNaive, RandomProblems) {
  const auto [mode, act] = GetParam();
  SEEDED_RNG(rng);
  for (int round = 0; round < 3; ++round) {
    const int64_t k = 2 + int64_t(rng() % 2), h = 64 << (rng() % 3), i = 32 << (rng() % 3);
    MoeConfig c = make_config(8, k, h, i, act.activation, mode);
    c.swiglu = act.swiglu;
    if (rng() % 2) {  // an expert-parallel shard: slots routed to experts 0..3 add nothing
      c.num_local_experts = 4;
      c.expert_offset = 4;
    }
    const int64_t tokens = 8 + int64_t(rng() % 33);  // >= 8 so that one rounding flip stays far below the bounds
    SCOPED_TRACE("round=" + std::to_string(round) + " K=" + std::to_string(k) + " H=" + std::to_string(h) +
                 " I=" + std::to_string(i) + " T=" + std::to_string(tokens) +
                 " E_local=" + std::to_string(c.num_local_experts));
    const Layer layer = random_layer(c, rng);
    const Batch b = random_batch(c, tokens, rng);
    const Options o = mode == Mode::kW4A4 ? w4a4_options(layer, b) : Options{};
    const std::vector<uint16_t> want = run_naive(layer, b, o);
    const std::vector<uint16_t> got = run_reference(layer, b, o);
    expect_agreement(mode, got, want);
    if (mode == Mode::kW4A4) {
      // Guard against both sides skipping the activation quantization: W4A4 must visibly differ from W4A16.
      MoeConfig c16 = c;
      c16.mode = Mode::kW4A16;
      const Layer l16{c16, layer.experts};
      EXPECT_GT(compare(run_naive(l16, b, Options{}), want).rel_l2, 1e-2);
    }
  }
}

constexpr fp4moe::SwigluParams kDefaultSwiglu{};
constexpr fp4moe::SwigluParams kTightSwiglu{1.0f, 0.5f, 0.25f};  // a limit the FC1 outputs often exceed

INSTANTIATE_TEST_SUITE_P(
    AllModesAndActivations, ReferenceVsNaive,
    testing::Combine(testing::Values(Mode::kW4A16, Mode::kW4A4),
                     testing::Values(ActivationCase{"silu", Activation::kSilu, kDefaultSwiglu},
                                     ActivationCase{"gelu_tanh", Activation::kGeluTanh, kDefaultSwiglu},
                                     ActivationCase{"relu2", Activation::kRelu2, kDefaultSwiglu},
                                     ActivationCase{"swiglu_clamped", Activation::kSwigluClamped, kDefaultSwiglu},
                                     ActivationCase{"swiglu_tight", Activation::kSwigluClamped, kTightSwiglu})),
    [](const testing::TestParamInfo<AgreementParam>& param_info) {
      return std::string(std::get<0>(param_info.param) == Mode::kW4A16 ? "w4a16_" : "w4a4_") +
             std::get<1>(param_info.param).name;
    });

// ---- exact values ---------------------------------------------------------------------------------------------

// An expert whose every weight (FC1 and FC2) is E2M1 `code` with scale byte `sf` and weight_scale_2 `s2`.
naive::Expert uniform_expert(const MoeConfig& c, uint8_t code, uint8_t sf, float s2) {
  naive::Expert ex;
  ex.w13.assign(size_t(c.fc1_rows() * c.hidden / 2), fp4moe::fp4_pack(code, code));
  ex.w13_scale.assign(size_t(c.fc1_rows() * c.hidden / 16), sf);
  ex.w13_scale_2 = s2;
  ex.w2.assign(size_t(c.hidden * c.intermediate / 2), fp4moe::fp4_pack(code, code));
  ex.w2_scale.assign(size_t(c.hidden * c.intermediate / 16), sf);
  ex.w2_scale_2 = s2;
  return ex;
}

// A batch whose token t has x = rows[t] (zero-padded to H) and the given ids and weights.
Batch fixed_batch(int64_t hidden, const std::vector<std::vector<float>>& rows, std::vector<int32_t> ids,
                  std::vector<float> weights) {
  Batch b;
  b.tokens = int64_t(rows.size());
  for (const std::vector<float>& r : rows) {
    for (int64_t j = 0; j < hidden; ++j) b.x.push_back(fp4moe::float_to_bf16(j < int64_t(r.size()) ? r[j] : 0.0f));
  }
  b.ids = std::move(ids);
  b.weights = std::move(weights);
  return b;
}

// Every element of token t's output must be bf16(value[t]) exactly.
void expect_token_values(const std::vector<uint16_t>& out, int64_t hidden, const std::vector<float>& value) {
  for (size_t i = 0; i < value.size() * size_t(hidden); ++i) {
    ASSERT_EQ(out[i], fp4moe::float_to_bf16(value[i / hidden])) << "token " << i / hidden << " element " << i % hidden;
  }
}

// H = 32, I = 16, relu2. Expert 0: weights 1.0 (code 2, scale 1.0, scale_2 1). Expert 1: weights
// 4.0 · 0.5 · 0.25 = 0.5. For x summing to S: expert 0 gives h = S², y = 16·S²; expert 1 gives h = (S/2)²,
// y = 0.5·16·(S/2)². With S = 6: y0 = 576, y1 = 72. All intermediate values are small integers, exact everywhere.
TEST(ReferenceExact, W4A16Relu2TwoExperts) {
  const MoeConfig c = make_config(2, 2, 32, 16, Activation::kRelu2, Mode::kW4A16);
  const Layer layer{c, {uniform_expert(c, 2, 0x38, 1.0f), uniform_expert(c, 6, 0x30, 0.25f)}};
  const Batch b = fixed_batch(32, {{3, -2, 5}, {-3, 2, -5}, {3, -2, 5}}, {0, 1, 0, 1, 1, 0}, {0.5f, 0.25f, 1, 1, 1, 0});
  // 0.5·576 + 0.25·72 = 306;  S = −6 → relu2 gives 0;  1·72 + 0·576 = 72.
  expect_token_values(run_reference(layer, b, Options{}), 32, {306, 0, 72});
  expect_token_values(run_naive(layer, b, Options{}), 32, {306, 0, 72});
  const Options acc{.accumulate = true, .out_init = std::vector<uint16_t>(3 * 32, fp4moe::float_to_bf16(-8.0f))};
  expect_token_values(run_reference(layer, b, acc), 32, {298, -8, 64});
}

// W4A4, H = 32, I = 16, relu2, weights 1.0. x = [6, -4, 0…] ++ [6, -6, 0…]: each block has amax 6, so with
// gs1 = 1 its scale is exactly 1.0 and the codes are x itself; S = 2, h = 4. With gs2 = 1.5, h's scale is
// 4·(1.5·(1/6)) = 1.0 and inv = 1/(1·(1/1.5)) = 1.5 in fp32, so h quantizes to 6 (code 7); FC2 gives
// 16·6 = 96, alpha2 = 1/1.5 → 96·0.6666667f = 64 exactly after rounding.
TEST(ReferenceExact, W4A4Relu2) {
  const MoeConfig c = make_config(1, 1, 32, 16, Activation::kRelu2, Mode::kW4A4);
  const Layer layer{c, {uniform_expert(c, 2, 0x38, 1.0f)}};
  std::vector<float> x(32, 0.0f);
  x[0] = 6, x[1] = -4, x[16] = 6, x[17] = -6;
  const Batch b = fixed_batch(32, {x}, {0}, {1.0f});
  const Options o{.gs1 = 1.0f, .gs2 = 1.5f};
  expect_token_values(run_reference(layer, b, o), 32, {64});
  expect_token_values(run_naive(layer, b, o), 32, {64});
}

TEST(ReferenceExact, ActivationFormulas) {
  MoeConfig c = make_config(1, 1, 16, 16, Activation::kSilu, Mode::kW4A16);
  for (Activation a : {Activation::kSilu, Activation::kGeluTanh, Activation::kRelu2, Activation::kSwigluClamped}) {
    c.activation = a;
    for (float g = -12.0f; g <= 12.0f; g += 0.37f) {
      for (float u : {-9.0f, -1.5f, 0.0f, 0.7f, 8.0f}) {
        const double want = naive::activation(c, g, u);
        EXPECT_NEAR(ref::activation(c, g, u), want, 1e-6 * (1.0 + std::fabs(want)))
            << "activation " << int(a) << " g=" << g << " u=" << u;
      }
    }
  }
  c.activation = Activation::kRelu2;
  EXPECT_EQ(ref::activation(c, 3.0f, 100.0f), 9.0f);  // up is ignored
  EXPECT_EQ(ref::activation(c, -3.0f, 100.0f), 0.0f);
  c.activation = Activation::kSwigluClamped;  // gate clamps at limit (from above only), up at ±limit
  EXPECT_EQ(ref::activation(c, 50.0f, 50.0f), ref::activation(c, 7.0f, 7.0f));
  EXPECT_EQ(ref::activation(c, 1.0f, -50.0f), ref::activation(c, 1.0f, -7.0f));
  EXPECT_EQ(ref::activation(c, -200.0f, 1.0f), -0.0f);  // σ underflows to 0 without NaN
}

// ---- expert parallelism ---------------------------------------------------------------------------------------

TEST(ReferenceExpertParallel, ShardsWithAccumulateMatchFullRun) {
  SEEDED_RNG(rng);
  for (Mode mode : {Mode::kW4A16, Mode::kW4A4}) {
    const Layer full = random_layer(make_config(8, 3, 128, 64, Activation::kSilu, mode), rng);
    const Batch b = random_batch(full.config, 24, rng);
    const Options o = mode == Mode::kW4A4 ? w4a4_options(full, b) : Options{};
    const std::vector<uint16_t> want = run_reference(full, b, o);
    const std::vector<uint16_t> first = run_reference(shard(full, 0, 4), b, o);
    const Options acc{.gs1 = o.gs1, .gs2 = o.gs2, .accumulate = true, .out_init = first};
    const std::vector<uint16_t> got = run_reference(shard(full, 4, 4), b, acc);
    // The sharded result is rounded to BF16 twice (after each shard), the full one once; each rounding moves a
    // value by at most 2^-8 of its magnitude (half a BF16 ulp), plus fp32 reordering noise far below that.
    const double max_want = compare(got, want).max_want;
    for (size_t i = 0; i < want.size(); ++i) {
      const double w = fp4moe::bf16_to_float(want[i]), g = fp4moe::bf16_to_float(got[i]);
      const double f = fp4moe::bf16_to_float(first[i]);
      ASSERT_LE(std::fabs(g - w), std::ldexp(std::fabs(f) + std::fabs(g) + std::fabs(w), -8) + 1e-6 * max_want)
          << "element " << i;
    }
    EXPECT_LE(compare(got, want).rel_l2, 4e-3);
    EXPECT_GT(max_want, 0.0);
  }
}

TEST(ReferenceExpertParallel, TokensWithoutLocalSlots) {
  SEEDED_RNG(rng);
  MoeConfig c = make_config(16, 2, 64, 32, Activation::kSilu, Mode::kW4A16);
  c.num_local_experts = 8;
  c.expert_offset = 8;
  const Layer layer = random_layer(c, rng);
  Batch b = random_batch(c, 6, rng);
  for (int64_t t : {1, 4}) b.ids[t * 2] = int32_t(t), b.ids[t * 2 + 1] = 7;  // experts below the local range
  b.ids[0] = 9, b.ids[1] = 12;                                               // token 0 is fully local
  const std::vector<uint16_t> out = run_reference(layer, b, Options{});
  for (int64_t t : {1, 4}) EXPECT_EQ(std::count(out.begin() + t * 64, out.begin() + (t + 1) * 64, 0), 64) << t;
  EXPECT_NE(std::count(out.begin(), out.begin() + 64, uint16_t(0)), 64) << "a local token produced all zeros";
  Options acc{.accumulate = true};
  for (size_t i = 0; i < out.size(); ++i) acc.out_init.push_back(i % 5 == 0 ? 0x8000 : uint16_t(0x3c00 + i));
  const std::vector<uint16_t> got = run_reference(layer, b, acc);
  for (int64_t t : {1, 4})
    EXPECT_TRUE(std::equal(got.begin() + t * 64, got.begin() + (t + 1) * 64, acc.out_init.begin() + t * 64)) << t;
  EXPECT_NE(got[0], acc.out_init[0]);
}

// ---- routing ----------------------------------------------------------------------------------------------------

TEST(ReferenceRouting, MorePairsThanLocalExperts) {
  SEEDED_RNG(rng);
  MoeConfig c = make_config(8, 3, 64, 32, Activation::kGeluTanh, Mode::kW4A16);
  c.num_local_experts = 2;  // 40 tokens × 3 slots over 2 local experts (and 6 remote ones)
  c.expert_offset = 3;
  const Layer layer = random_layer(c, rng);
  const Batch b = random_batch(c, 40, rng);
  expect_agreement(c.mode, run_reference(layer, b, Options{}), run_naive(layer, b, Options{}));
}

TEST(ReferenceRouting, ZeroTokensIsNoOp) {
  const MoeConfig c = make_config(8, 2, 64, 32, Activation::kSilu, Mode::kW4A16);
  const Layer layer{c, std::vector<naive::Expert>(8, uniform_expert(c, 2, 0x38, 1.0f))};
  const std::vector<ref::HostExpert> host = host_experts(layer);
  std::vector<uint16_t> out(64, 0x1234);
  Batch b;
  const ref::Problem p = make_problem(layer, host, b, Options{}, out);
  EXPECT_NO_THROW(ref::run_moe(p, nullptr, 0, 2));
  EXPECT_EQ(out, std::vector<uint16_t>(64, 0x1234));
  EXPECT_GT(ref::workspace_size(c, 0, 2), 0u);
}

// Experts nobody routes to hold NaN scales: if the reference touched them, the output would not be finite.
TEST(ReferenceRouting, ExpertsWithoutTokensAreNotRead) {
  SEEDED_RNG(rng);
  const MoeConfig c = make_config(8, 2, 64, 32, Activation::kSilu, Mode::kW4A4);
  Layer layer = random_layer(c, rng);
  Batch b = random_batch(c, 16, rng);
  for (size_t i = 0; i < b.ids.size(); ++i) b.ids[i] = i % 2 == 0 ? 2 : 5;
  for (int e : {0, 1, 3, 4, 6, 7}) {
    naive::Expert& ex = layer.experts[size_t(e)];
    std::fill(ex.w13_scale.begin(), ex.w13_scale.end(), 0x7f);
    std::fill(ex.w2_scale.begin(), ex.w2_scale.end(), 0x7f);
  }
  const Options o = w4a4_options(layer, b);
  expect_agreement(c.mode, run_reference(layer, b, o), run_naive(layer, b, o));
}

TEST(ReferenceRouting, AllTokensToOneExpert) {
  SEEDED_RNG(rng);
  const MoeConfig c = make_config(8, 1, 128, 64, Activation::kSwigluClamped, Mode::kW4A16);
  const Layer layer = random_layer(c, rng);
  Batch b = random_batch(c, 64, rng);
  std::fill(b.ids.begin(), b.ids.end(), 6);
  expect_agreement(c.mode, run_reference(layer, b, Options{}), run_naive(layer, b, Options{}));
}

// ids [e, e] with weights [w, w] add w·y twice: 0 + w·y + w·y = 2·(w·y) exactly, the same as one slot of weight 2w.
TEST(ReferenceRouting, DuplicateIdsWithinATokenCountTwice) {
  SEEDED_RNG(rng);
  for (Mode mode : {Mode::kW4A16, Mode::kW4A4}) {
    const Layer pair = random_layer(make_config(8, 2, 64, 32, Activation::kSilu, mode), rng);
    Layer single = pair;
    single.config.top_k = 1;
    Batch dup = random_batch(pair.config, 12, rng);
    Batch one = random_batch(single.config, 12, rng);
    one.x = dup.x;
    for (int64_t t = 0; t < 12; ++t) {
      dup.ids[t * 2 + 1] = dup.ids[t * 2];
      dup.weights[t * 2 + 1] = dup.weights[t * 2];
      one.ids[t] = dup.ids[t * 2];
      one.weights[t] = 2.0f * dup.weights[t * 2];
    }
    const Options o{.gs1 = dup.gs1, .gs2 = 100.0f};
    EXPECT_EQ(run_reference(pair, dup, o), run_reference(single, one, o)) << "mode " << int(mode);
  }
}

// ---- determinism and workspace ----------------------------------------------------------------------------------

TEST(ReferenceDeterminism, IndependentOfThreadCountAndRepeatable) {
  SEEDED_RNG(rng);
  for (Mode mode : {Mode::kW4A16, Mode::kW4A4}) {
    const Layer layer = random_layer(make_config(8, 2, 256, 128, Activation::kSilu, mode), rng);
    const Batch b = random_batch(layer.config, 37, rng);
    Options o = mode == Mode::kW4A4 ? w4a4_options(layer, b) : Options{};
    o.threads = 1;
    const std::vector<uint16_t> one = run_reference(layer, b, o);
    for (int threads : {2, 2, 3}) {
      o.threads = threads;
      EXPECT_EQ(run_reference(layer, b, o), one) << "mode " << int(mode) << " threads " << threads;
    }
  }
}

// 300 tokens span two chunks of the reference; every token must come out as when it runs alone.
TEST(ReferenceDeterminism, IndependentOfBatchComposition) {
  SEEDED_RNG(rng);
  const Layer layer = random_layer(make_config(8, 2, 64, 32, Activation::kSilu, Mode::kW4A4), rng);
  const Batch all = random_batch(layer.config, 300, rng);
  const Options o{.gs1 = all.gs1, .gs2 = 200.0f};
  const std::vector<uint16_t> together = run_reference(layer, all, o);
  const Options o1{.gs1 = o.gs1, .gs2 = o.gs2, .threads = 1};  // single tokens alone, on one thread
  for (int64_t t = 0; t < all.tokens; t += 7) {
    Batch b;
    b.tokens = 1;
    b.x.assign(all.x.begin() + t * 64, all.x.begin() + (t + 1) * 64);
    b.ids.assign(all.ids.begin() + t * 2, all.ids.begin() + (t + 1) * 2);
    b.weights.assign(all.weights.begin() + t * 2, all.weights.begin() + (t + 1) * 2);
    const std::vector<uint16_t> alone = run_reference(layer, b, o1);
    ASSERT_TRUE(std::equal(alone.begin(), alone.end(), together.begin() + t * 64)) << "token " << t;
  }
}

TEST(ReferenceWorkspace, TooSmallThrows) {
  const MoeConfig c = make_config(8, 2, 64, 32, Activation::kSilu, Mode::kW4A16);
  Rng rng(1);
  const Layer layer = random_layer(c, rng);
  const Batch b = random_batch(c, 5, rng);
  const std::vector<ref::HostExpert> host = host_experts(layer);
  std::vector<uint16_t> out(5 * 64);
  const ref::Problem p = make_problem(layer, host, b, Options{}, out);
  const size_t need = ref::workspace_size(c, 5, 2);
  std::vector<std::byte> ws(need + 1);
  for (auto [ptr, bytes] : {std::pair<void*, size_t>{ws.data(), need - 1}, {nullptr, need}}) {
    try {
      ref::run_moe(p, ptr, bytes, 2);
      ADD_FAILURE() << "no error for a workspace of " << bytes << " bytes";
    } catch (const fp4moe::Error& e) {
      EXPECT_NE(std::string(e.what()).find("workspace"), std::string::npos) << e.what();
    }
  }
  // Exactly the reported size works, also when the buffer is not 64-byte aligned.
  const std::vector<uint16_t> aligned = run_reference(layer, b, Options{});
  EXPECT_NO_THROW(ref::run_moe(p, ws.data() + 1, need, 2));
  EXPECT_EQ(out, aligned);
  EXPECT_LE(ref::workspace_size(c, 5, 1), need);
  EXPECT_LE(need, ref::workspace_size(c, 6, 2));
}

// ---- inputs -----------------------------------------------------------------------------------------------------

TEST(ReferenceInputs, PrequantizedXMatchesBf16X) {
  SEEDED_RNG(rng);
  const Layer layer = random_layer(make_config(8, 2, 128, 64, Activation::kGeluTanh, Mode::kW4A4), rng);
  const Batch b = random_batch(layer.config, 20, rng);
  const Options o = w4a4_options(layer, b);
  const PackedX xq = pack_x(b, o.gs1);
  const Options pre{.gs1 = o.gs1, .gs2 = o.gs2, .xq = &xq};
  const std::vector<uint16_t> from_bf16 = run_reference(layer, b, o);
  EXPECT_EQ(run_reference(layer, b, pre), from_bf16);
  EXPECT_EQ(run_naive(layer, b, pre), run_naive(layer, b, o));
}

// Row strides larger than H are honoured and the padding between rows is left alone.
TEST(ReferenceInputs, RowStrides) {
  SEEDED_RNG(rng);
  const Layer layer = random_layer(make_config(8, 2, 64, 32, Activation::kRelu2, Mode::kW4A16), rng);
  const Batch b = random_batch(layer.config, 9, rng);
  const std::vector<uint16_t> dense = run_reference(layer, b, Options{});
  std::vector<uint16_t> x(9 * 80, 0x7fc0), out(9 * 96, 0x5555);
  for (int64_t t = 0; t < 9; ++t) std::copy_n(b.x.begin() + t * 64, 64, x.begin() + t * 80);
  const std::vector<ref::HostExpert> host = host_experts(layer);
  ref::Problem p = make_problem(layer, host, b, Options{}, out);
  p.x = x.data();
  p.x_ld = 80;
  p.out_ld = 96;
  std::vector<std::byte> ws(ref::workspace_size(layer.config, 9, 2));
  ref::run_moe(p, ws.data(), ws.size(), 2);
  for (int64_t t = 0; t < 9; ++t) {
    EXPECT_TRUE(std::equal(dense.begin() + t * 64, dense.begin() + (t + 1) * 64, out.begin() + t * 96));
    EXPECT_TRUE(
        std::all_of(out.begin() + t * 96 + 64, out.begin() + (t + 1) * 96, [](uint16_t v) { return v == 0x5555; }));
  }
}

TEST(ReferenceInputs, InconsistentProblemsThrow) {
  Rng rng(2);
  const Layer layer = random_layer(make_config(8, 2, 64, 32, Activation::kSilu, Mode::kW4A16), rng);
  Layer layer4 = layer;
  layer4.config.mode = Mode::kW4A4;
  const Batch b = random_batch(layer.config, 3, rng);
  const PackedX xq = pack_x(b, b.gs1);
  const std::vector<ref::HostExpert> host = host_experts(layer);
  std::vector<uint16_t> out(3 * 64);
  std::vector<std::byte> ws(ref::workspace_size(layer.config, 3, 2));
  // Each case breaks one thing in an otherwise valid problem.
  const auto expect_error = [&](const char* what, const auto& breaks) {
    ref::Problem p = make_problem(layer, host, b, Options{}, out);
    breaks(p);
    EXPECT_THROW(ref::run_moe(p, ws.data(), ws.size(), 2), fp4moe::Error) << what;
  };
  expect_error("x and x_fp4 both given",
               [&](ref::Problem& p) { p.x_fp4 = xq.packed.data(), p.x_scale = xq.scales.data(); });
  expect_error("no x", [](ref::Problem& p) { p.x = nullptr; });
  expect_error("pre-quantized x in W4A16",
               [&](ref::Problem& p) { p.x = nullptr, p.x_fp4 = xq.packed.data(), p.x_scale = xq.scales.data(); });
  expect_error("gs1 = 0 in W4A4", [&](ref::Problem& p) { p.config = &layer4.config, p.gs1 = 0.0f; });
  expect_error("null topk_ids", [](ref::Problem& p) { p.topk_ids = nullptr; });
  expect_error("out_ld < H", [](ref::Problem& p) { p.out_ld = 8; });
}

}  // namespace
}  // namespace reference_test
