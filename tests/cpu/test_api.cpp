// Public API: weight placement (stacked / split / per-expert / strided), FC1 row orders and scale layouts all give
// bitwise-identical results; every validation error names the argument, the expected and the actual value; the
// convenience call's workspace cache is bounded and clearable.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <random>

#include "layer_test_util.hpp"
#include "test_util.hpp"
#include "cuda/common/device_info.hpp"
#include "fp4moe/error.hpp"
#include "fp4moe/moe.hpp"
#include "problem/random_problem.hpp"

namespace fp4moe {
namespace {

using testing::fresh_seed;

MoeConfig tiny_config(Mode mode = Mode::kW4A16) {
  MoeConfig c = config_from_preset(find_preset("tiny"), mode);
  c.hidden = 64;
  c.intermediate = 32;
  return c;
}

std::vector<uint16_t> run(const MoeConfig& c, const MoeWeights& w, const HostInputs& in, RunOptions opt = {}) {
  const PreparedWeights p = prepare_weights(c, w, Backend::kCpu);
  Runner runner(p);
  std::vector<std::byte> ws(runner.workspace_size(in.tokens));
  std::vector<uint16_t> out(size_t(in.tokens * c.hidden), 0x7FC1);
  runner.run(in.view(), TensorView(out.data(), DType::kBF16, {in.tokens, c.hidden}), ws.data(), ws.size(), nullptr,
             opt);
  for (uint16_t v : out) EXPECT_FALSE(std::isnan(bf16_to_float(v))) << "unwritten output";
  return out;
}

bool any_nonzero(const std::vector<uint16_t>& v) {
  for (uint16_t b : v) {
    if ((b & 0x7FFF) != 0) return true;
  }
  return false;
}

class ApiTest : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    seed_ = fresh_seed();
    config_ = tiny_config(GetParam());
    layer_ = make_random_layer(config_, seed_);
    inputs_ = make_random_inputs(config_, 13, seed_ + 1);
    expected_ = run(config_, layer_.view(), inputs_);
    ASSERT_TRUE(any_nonzero(expected_));
  }
  uint64_t seed_ = 0;
  MoeConfig config_;
  HostLayer layer_;
  HostInputs inputs_;
  std::vector<uint16_t> expected_;
};

TEST_P(ApiTest, SplitWeightsAreBitwiseEqualToStacked) {
  SCOPED_TRACE(seed_);
  for (const std::vector<int64_t>& sizes : {std::vector<int64_t>{3, 5}, {1, 2, 5}, {4, 1, 1, 2}}) {
    EXPECT_EQ(run(config_, testing::split_weights(layer_.view(), sizes), inputs_), expected_);
  }
}

TEST_P(ApiTest, PerExpertPlacementIsBitwiseEqual) {
  SCOPED_TRACE(seed_);
  // Each expert in its own separately allocated 2-D tensors, in reverse allocation order.
  const MoeWeights stacked = layer_.view();
  const ExpertGroup& g = stacked.groups[0];
  std::vector<std::vector<uint8_t>> storage;
  std::vector<float> scale_2(size_t(2 * config_.num_local_experts));
  MoeWeights per = stacked;
  per.groups.clear();
  auto own = [&](const TensorView& t) {
    storage.emplace_back(static_cast<const uint8_t*>(t.data), static_cast<const uint8_t*>(t.data) + t.nbytes());
    TensorView v = t;
    v.data = storage.back().data();
    return v;
  };
  storage.reserve(64);
  for (int64_t e = config_.num_local_experts - 1; e >= 0; --e) {
    ExpertGroup one;
    one.w13 = own(g.w13.select(e));
    one.w13_scale = own(g.w13_scale.select(e));
    one.w2 = own(g.w2.select(e));
    one.w2_scale = own(g.w2_scale.select(e));
    scale_2[size_t(2 * e)] = layer_.w13_scale_2[size_t(e)];
    scale_2[size_t(2 * e + 1)] = layer_.w2_scale_2[size_t(e)];
    one.w13_scale_2 = TensorView(&scale_2[size_t(2 * e)], DType::kF32, {1});
    one.w2_scale_2 = TensorView(&scale_2[size_t(2 * e + 1)], DType::kF32, {});
    per.groups.insert(per.groups.begin(), one);
  }
  EXPECT_EQ(run(config_, per, inputs_), expected_);
}

TEST_P(ApiTest, StridedExpertAndRowSlicesWork) {
  SCOPED_TRACE(seed_);
  const testing::StridedW13 strided(layer_, 8, 32);  // padding after every w13 row and every expert
  EXPECT_EQ(run(config_, strided.weights, inputs_), expected_);
}

TEST_P(ApiTest, Fc1RowOrdersAreEquivalent) {
  SCOPED_TRACE(seed_);
  for (Fc1Order order : {Fc1Order::kUpGate, Fc1Order::kInterleaved}) {
    const HostLayer reordered = testing::reorder_fc1(layer_, order);
    EXPECT_EQ(run(reordered.config, reordered.view(), inputs_), expected_) << fc1_order_name(order);
  }
}

TEST_P(ApiTest, SwizzledScalesAreEquivalentToLinear) {
  SCOPED_TRACE(seed_);
  const testing::SwizzledWeights swizzled(layer_);
  EXPECT_EQ(run(config_, swizzled.weights, inputs_), expected_);
}

TEST_P(ApiTest, ConvenienceCallMatchesRunnerAndCacheIsBounded) {
  SCOPED_TRACE(seed_);
  const PreparedWeights p = prepare_weights(config_, layer_.view(), Backend::kCpu);
  std::vector<uint16_t> out(expected_.size(), 0x7FC1);
  const TensorView ov(out.data(), DType::kBF16, {inputs_.tokens, config_.hidden});
  clear_workspace_cache();
  EXPECT_EQ(workspace_cache_bytes(), 0u);
  moe_forward(p, inputs_.view(), ov);
  EXPECT_EQ(out, expected_);
  EXPECT_EQ(workspace_cache_bytes(), Runner(p).workspace_size(inputs_.tokens));
  clear_workspace_cache();
  EXPECT_EQ(workspace_cache_bytes(), 0u);
  set_workspace_cache_limit(16);  // smaller than any workspace: a one-off buffer is used and nothing is cached
  std::fill(out.begin(), out.end(), uint16_t(0x7FC1));
  moe_forward(p, inputs_.view(), ov);
  EXPECT_EQ(out, expected_);
  EXPECT_EQ(workspace_cache_bytes(), 0u);
  set_workspace_cache_limit(size_t(1) << 30);
}

INSTANTIATE_TEST_SUITE_P(Modes, ApiTest, ::testing::Values(Mode::kW4A16, Mode::kW4A4),
                         [](const auto& info) { return std::string(mode_name(info.param)); });

// ---- validation messages ----

using testing::expect_error;

TEST(ApiValidation, ConfigErrorsNameTheField) {
  MoeConfig c = tiny_config();
  c.top_k = 9;
  expect_error([&] { c.validate(); }, "argument 'top_k': expected a value in [1, 8] (num_experts), got 9");
  c = tiny_config();
  c.hidden = 72;
  expect_error([&] { c.validate(); }, "argument 'hidden': expected a positive multiple of 16, got 72");
  c = tiny_config();
  c.num_local_experts = 4;
  c.expert_offset = 5;
  expect_error([&] { c.validate(); }, "argument 'expert_offset': expected a value in [0, 4]");
  expect_error([] { parse_activation("gelu"); }, "expected one of silu|gelu_tanh|relu2|swiglu_clamped, got 'gelu'");
}

TEST(ApiValidation, WeightErrorsNameTheTensor) {
  const MoeConfig c = tiny_config();
  const HostLayer layer = make_random_layer(c, fresh_seed());
  MoeWeights w = layer.view();
  w.groups[0].w13.dtype = DType::kBF16;
  expect_error([&] { prepare_weights(c, w, Backend::kCpu); },
               "argument 'weights.groups[0].w13': expected dtype U8, got dtype BF16");
  w = layer.view();
  w.groups[0].w2.shape[1] = 63;
  expect_error([&] { prepare_weights(c, w, Backend::kCpu); },
               "argument 'weights.groups[0].w2': expected shape [8, 64, 16], got shape [8, 63, 16]");
  w = layer.view();
  w.groups[0].w13_scale.shape[2] = 8;
  expect_error([&] { prepare_weights(c, w, Backend::kCpu); },
               "argument 'weights.groups[0].w13_scale': expected shape [8, 64, 4], got shape [8, 64, 8]");
  w = layer.view();
  w.scale_layout = ScaleLayout::kSwizzled128x4;
  expect_error([&] { prepare_weights(c, w, Backend::kCpu); }, "expected shape [8, 128, 4], got shape [8, 64, 4]");
  w = layer.view();
  w.groups[0] = testing::slice_group(w.groups[0], 0, 7);
  expect_error([&] { prepare_weights(c, w, Backend::kCpu); },
               "argument 'weights.groups': expected 8 experts in all (num_local_experts), got 7 experts");
  HostLayer bad = layer;
  bad.w2_scale_2[3] = -1.0f;
  expect_error([&] { prepare_weights(c, bad.view(), Backend::kCpu); },
               "argument 'w2_scale_2[3]': expected a finite value > 0, got -1");
  w = layer.view();
  w.groups[0].w13.device = Device::cuda();  // every source tensor must live on the same device
  expect_error([&] { prepare_weights(c, w, Backend::kCpu); },
               "argument 'weights.groups[0].w13_scale': expected memory on cuda:0, got memory on cpu");
  for (TensorView* t : {&w.groups[0].w13_scale, &w.groups[0].w13_scale_2, &w.groups[0].w2, &w.groups[0].w2_scale,
                        &w.groups[0].w2_scale_2}) {
    t->device = Device::cuda();
  }
  expect_error([&] { prepare_weights(c, w, Backend::kCpu); },
               "argument 'weights.groups[0].w13': expected memory on cpu, got memory on cuda:0");
  if (survey_gpus().devices.empty()) {
    expect_error([&] { prepare_weights(c, layer.view(), Backend::kCuda); },
                 "argument 'backend': expected a machine with a CUDA GPU of SM80 or newer for backend cuda, got no GPU");
  }
}

TEST(ApiValidation, InputErrorsNameTheArgument) {
  const MoeConfig c = tiny_config();
  const HostLayer layer = make_random_layer(c, fresh_seed());
  const PreparedWeights p = prepare_weights(c, layer.view(), Backend::kCpu);
  Runner runner(p);
  HostInputs in = make_random_inputs(c, 4, fresh_seed());
  std::vector<uint16_t> out(size_t(4 * c.hidden));
  std::vector<std::byte> ws(runner.workspace_size(4));
  const TensorView ov(out.data(), DType::kBF16, {4, c.hidden});
  auto run_with = [&](const MoeInputs& mi, TensorView o, size_t ws_bytes) {
    runner.run(mi, o, ws.data(), ws_bytes);
  };
  MoeInputs mi = in.view();
  mi.x.shape[1] = 32;
  expect_error([&] { run_with(mi, ov, ws.size()); }, "argument 'x': expected shape [4, 64], got shape [4, 32]");
  mi = in.view();
  mi.topk_ids.dtype = DType::kF32;
  expect_error([&] { run_with(mi, ov, ws.size()); }, "argument 'topk_ids': expected dtype I32, got dtype F32");
  mi = in.view();
  mi.topk_weights.shape[1] = 3;
  expect_error([&] { run_with(mi, ov, ws.size()); }, "argument 'topk_weights': expected shape [4, 2], got shape [4, 3]");
  expect_error([&] { run_with(in.view(), TensorView(out.data(), DType::kBF16, {3, c.hidden}), ws.size()); },
               "argument 'out': expected shape [4, 64], got shape [3, 64]");
  if (ws.size() > 0) {
    expect_error([&] { run_with(in.view(), ov, ws.size() - 1); },
                 "argument 'workspace_bytes': expected >= " + std::to_string(ws.size()) + " bytes");
  }
  in.topk_ids[5] = 8;
  expect_error([&] { run_with(in.view(), ov, ws.size()); },
               "argument 'topk_ids': expected ids in [0, 8), got id 8 at (token 2, slot 1)");
  in.topk_ids[5] = -1;
  expect_error([&] { run_with(in.view(), ov, ws.size()); }, "got id -1 at (token 2, slot 1)");
}

TEST(ApiValidation, W4A4NeedsAnActivationScale) {
  MoeConfig c = tiny_config(Mode::kW4A4);
  HostLayer layer = make_random_layer(c, fresh_seed());
  layer.fc1_input_scale = 0.0f;
  const PreparedWeights p = prepare_weights(c, layer.view(), Backend::kCpu);
  const HostInputs in = make_random_inputs(c, 2, fresh_seed());
  std::vector<uint16_t> out(size_t(2 * c.hidden));
  expect_error([&] { moe_forward(p, in.view(), TensorView(out.data(), DType::kBF16, {2, c.hidden})); },
               "argument 'weights.fc1_input_scale': expected a value > 0 (1/gs1) in mode w4a4 with BF16 x");
  // Pre-quantized x is W4A4-only.
  const MoeConfig c16 = tiny_config(Mode::kW4A16);
  const PreparedWeights p16 = prepare_weights(c16, make_random_layer(c16, 1).view(), Backend::kCpu);
  std::vector<uint8_t> xq(size_t(2 * c.hidden / 2)), xs(size_t(2 * c.hidden / 16));
  MoeInputs mi = in.view();
  mi.x = TensorView(xq.data(), DType::kU8, {2, c.hidden / 2});
  mi.x_scale = TensorView(xs.data(), DType::kE4M3, {2, c.hidden / 16});
  mi.x_global_scale = 1.0f;
  expect_error([&] { moe_forward(p16, mi, TensorView(out.data(), DType::kBF16, {2, c.hidden})); },
               "argument 'x': expected dtype BF16 (pre-quantized U8 x needs mode w4a4), got dtype U8 with mode w4a16");
}

TEST(ApiEdgeCases, ZeroTokensLeavesOutputUntouched) {
  const MoeConfig c = tiny_config();
  const PreparedWeights p = prepare_weights(c, make_random_layer(c, fresh_seed()).view(), Backend::kCpu);
  const HostInputs in = make_random_inputs(c, 0, 1);
  std::vector<uint16_t> sentinel(4, 0x1234);
  moe_forward(p, in.view(), TensorView(sentinel.data(), DType::kBF16, {0, c.hidden}));
  for (uint16_t v : sentinel) EXPECT_EQ(v, 0x1234);
}

TEST(ApiBackend, AutoResolvesWithAReason) {
  std::string reason;
  const Backend b = resolve_backend(Backend::kAuto, &reason);
  EXPECT_NE(b, Backend::kAuto);
  EXPECT_FALSE(reason.empty());
}

}  // namespace
}  // namespace fp4moe
