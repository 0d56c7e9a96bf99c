// Features of the CUDA fused-MoE backend, on small layers (both modes):
//  - weight placements (split groups, per-expert 2-D groups, device-resident sources, strided w13), FC1 row orders
//    and 128x4 scales, and pre-quantized x are bitwise equal to the canonical call;
//  - expert-parallel shards run into one output with accumulate equal the full layer within two BF16 roundings;
//  - accumulate against the CPU reference with the same pre-filled output (untouched rows stay bit for bit);
//  - routing edge cases: experts without tokens, every token on one expert (T·K > E_local), duplicate ids (= the
//    weights summed), ids outside [0, E) (add nothing, no fault), T = 0 (no-op);
//  - CUDA graph capture and replay with new inputs in the same buffers, repeated runs, dirty and oversized
//    workspaces, a token run alone, and the convenience call are all bitwise equal to the eager runner;
//  - strided x and out rows, out on an 8-byte and on a 2-byte alignment (the gaps are neither read nor written);
//  - every work tile size of the streaming kernels (8, 16, 32 rows) gives bitwise the same output, with few and with
//    many rows per expert (all tokens on one expert), so the batch size never changes a token's result on that
//    path; the same holds for the wgmma path's two sizes (64, 128; sm_90a), which is also checked against the CPU.
// The fixture's canonical call (97 tokens) is itself checked against the CPU reference. Seeds are fresh per run.
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>

#include "fp4moe/error.hpp"
#include "gpu/moe_gpu_test_util.hpp"

namespace fp4moe {
namespace {

using testing::cpu_forward;
using testing::DeviceBuffer;
using testing::DeviceInputs;
using testing::expect_bitwise;
using testing::expect_close;
using testing::gpu_forward;
using testing::out_view;

RunOptions accumulate() {
  RunOptions o;
  o.accumulate = true;
  return o;
}

class FeatureTest : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    FP4MOE_REQUIRE_GPU();
    seed_ = testing::fresh_seed();
    config_ = testing::small_config(GetParam());
    trace_ = "seed=" + std::to_string(seed_) + " " + config_.describe();
    SCOPED_TRACE(trace_);
    layer_ = make_random_layer(config_, seed_);
    inputs_ = make_random_inputs(config_, 97, seed_ + 1);
    gpu_ = prepare_weights(config_, layer_.view(), Backend::kCuda);
    cpu_ = prepare_weights(config_, layer_.view(), Backend::kCpu);
    expected_ = gpu_forward(Runner(gpu_), inputs_.view());
    expect_close(expected_, cpu_forward(Runner(cpu_), inputs_.view()), config_.mode, "canonical call vs CPU");
  }
  Mode mode() const { return config_.mode; }

  uint64_t seed_ = 0;
  MoeConfig config_;
  std::string trace_;
  HostLayer layer_;
  HostInputs inputs_;
  PreparedWeights gpu_, cpu_;
  std::vector<uint16_t> expected_;  // GPU output of the canonical call (stacked gate-up weights, linear scales)
};

// ---- placements and layouts -----------------------------------------------------------------------------------------

TEST_P(FeatureTest, SplitPerExpertAndStridedWeightsAreBitwiseEqual) {
  SCOPED_TRACE(trace_);
  const MoeWeights stacked = layer_.view();
  auto check = [&](const MoeWeights& w, const std::string& what) {
    expect_bitwise(gpu_forward(config_, w, inputs_.view()), expected_, what);
  };
  for (const std::vector<int64_t>& sizes : {std::vector<int64_t>{3, 5}, {1, 2, 5}, {4, 1, 1, 2}}) {
    check(testing::split_weights(stacked, sizes), "split into " + std::to_string(sizes.size()) + " groups");
  }
  check(testing::per_expert_weights(stacked), "per-expert 2-D groups");
  testing::DeviceWeights on_device;
  testing::upload_weights(stacked, on_device);
  check(on_device.weights, "stacked, in device memory");
  testing::upload_weights(testing::per_expert_weights(stacked), on_device);
  check(on_device.weights, "per-expert 2-D groups, in device memory");

  const testing::StridedW13 strided(layer_, 16, 48);  // padding after every w13 row and every expert
  check(strided.weights, "strided w13");
}

// FC1 row orders, 128x4 scales and both together, against `expected` (the layer as stored: gate-up, linear).
void expect_layouts_equivalent(const HostLayer& layer, const HostInputs& in, const std::vector<uint16_t>& expected) {
  for (Fc1Order order : {Fc1Order::kUpGate, Fc1Order::kInterleaved}) {
    const HostLayer r = testing::reorder_fc1(layer, order);
    expect_bitwise(gpu_forward(r.config, r.view(), in.view()), expected, std::string(fc1_order_name(order)));
  }
  const testing::SwizzledWeights swizzled(layer);
  expect_bitwise(gpu_forward(layer.config, swizzled.weights, in.view()), expected, "128x4 scales");
  const HostLayer interleaved = testing::reorder_fc1(layer, Fc1Order::kInterleaved);
  const testing::SwizzledWeights both(interleaved);
  expect_bitwise(gpu_forward(interleaved.config, both.weights, in.view()), expected, "interleaved, 128x4 scales");
}

TEST_P(FeatureTest, Fc1OrdersAndSwizzledScalesAreBitwiseEqual) {
  SCOPED_TRACE(trace_);
  expect_layouts_equivalent(layer_, inputs_, expected_);
  // Odd shapes: fc1 rows and H not multiples of 128, H/16 and I/16 not multiples of 4, so 128x4 scales are padded.
  const MoeConfig odd = testing::odd_config(mode());
  const HostLayer layer = make_random_layer(odd, seed_ + 11);
  std::mt19937_64 rng(seed_ + 12);
  HostInputs in = make_random_inputs(odd, 97, seed_ + 12);
  testing::ensure_local_hits(odd, in, rng);
  expect_layouts_equivalent(layer, in, gpu_forward(Runner(prepare_weights(odd, layer.view(), Backend::kCuda)),
                                                   in.view()));
}

TEST(MoeGpuPrequantizedX, BitwiseEqualToBf16X) {
  FP4MOE_REQUIRE_GPU();
  for (const MoeConfig& c : {testing::small_config(Mode::kW4A4), testing::odd_config(Mode::kW4A4)}) {
    const uint64_t seed = testing::fresh_seed();
    SCOPED_TRACE(::testing::Message() << "seed=" << seed << " " << c.describe());
    const HostLayer layer = make_random_layer(c, seed);
    const float gs = global_scale_from_inverse(layer.fc1_input_scale);  // the gs1 prepare_weights derives
    const Runner gpu(prepare_weights(c, layer.view(), Backend::kCuda));
    const Runner cpu(prepare_weights(c, layer.view(), Backend::kCpu));
    HostLayer unscaled = layer;
    unscaled.fc1_input_scale = 0.0f;  // pre-quantized x brings its own global scale
    const Runner gpu_unscaled(prepare_weights(c, unscaled.view(), Backend::kCuda));
    for (int64_t tokens : {1, 64, 300}) {
      SCOPED_TRACE(::testing::Message() << "T=" << tokens);
      std::mt19937_64 rng(seed + uint64_t(tokens));
      HostInputs in = make_random_inputs(c, tokens, seed + uint64_t(tokens));
      testing::ensure_local_hits(c, in, rng);
      const testing::QuantizedX q = testing::quantize_x(in, gs);
      const MoeInputs xq = testing::prequantized_view(in, q);
      const std::vector<uint16_t> from_fp4 = gpu_forward(gpu, xq);
      expect_bitwise(from_fp4, gpu_forward(gpu, in.view()), "pre-quantized x vs BF16 x");
      expect_bitwise(gpu_forward(gpu_unscaled, xq), from_fp4, "pre-quantized x, layer without fc1_input_scale");
      expect_close(from_fp4, cpu_forward(cpu, xq), c.mode, "pre-quantized x vs CPU reference");
    }
  }
}

// ---- expert parallelism and accumulate ------------------------------------------------------------------------------

TEST_P(FeatureTest, ExpertParallelShardsSumToFullLayer) {
  SCOPED_TRACE(trace_);
  const int64_t e = config_.num_experts, split = 3, t = inputs_.tokens, h = config_.hidden;
  MoeConfig ca = config_, cb = config_;
  ca.num_local_experts = split;
  cb.num_local_experts = e - split;
  cb.expert_offset = split;
  const MoeWeights wa = testing::expert_range(layer_.view(), 0, split);
  const MoeWeights wb = testing::expert_range(layer_.view(), split, e - split);
  const Runner ra(prepare_weights(ca, wa, Backend::kCuda)), rb(prepare_weights(cb, wb, Backend::kCuda));
  DeviceInputs in(inputs_.view());
  DeviceBuffer out(size_t(t * h) * 2, 0xFF), ws(std::max(ra.workspace_size(t), rb.workspace_size(t)));
  ra.run(in.view(), out_view(out, t, h), ws.get(), ws.bytes());
  FP4MOE_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<uint16_t> partial = out.to_host<uint16_t>();
  testing::expect_rows_consistent_with_routing(ca, inputs_, partial);
  rb.run(in.view(), out_view(out, t, h), ws.get(), ws.bytes(), nullptr, accumulate());
  FP4MOE_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<uint16_t> sharded = out.to_host<uint16_t>();
  // The CPU reference run the same way (shard A, then shard B accumulated onto it).
  const std::vector<uint16_t> ref_a = cpu_forward(Runner(prepare_weights(ca, wa, Backend::kCpu)), inputs_.view());
  const std::vector<uint16_t> ref_ab =
      cpu_forward(Runner(prepare_weights(cb, wb, Backend::kCpu)), inputs_.view(), accumulate(), &ref_a);
  expect_close(partial, ref_a, mode(), "shard A vs CPU reference");
  expect_close(sharded, ref_ab, mode(), "shard A + shard B (accumulate) vs CPU reference run the same way");

  // Two BF16 roundings apart (the partial sum's and the final one; 2^-8·|v| ≥ half an ulp of v), plus a little
  // for fp32 summation order. In W4A4 a different GEMM order may flip a quantized intermediate code (spec §6),
  // which moves whole rows by ~1%, so a few elements may exceed the bound there.
  const double slack = 1e-3 * testing::rms_bf16(expected_);
  int64_t over = 0;
  for (size_t i = 0; i < sharded.size(); ++i) {
    const double a = bf16_to_float(partial[i]), s = bf16_to_float(sharded[i]), f = bf16_to_float(expected_[i]);
    over += std::fabs(s - f) > std::ldexp(std::fabs(a) + std::fabs(s) + std::fabs(f), -8) + slack;
  }
  const auto allowed = mode() == Mode::kW4A16 ? 0 : int64_t(sharded.size() / 100);
  EXPECT_LE(over, allowed) << "elements of the sharded result more than two BF16 roundings from the full layer";
}

TEST_P(FeatureTest, AccumulateAddsToExistingOutput) {
  SCOPED_TRACE(trace_);
  MoeConfig c = config_;
  c.num_local_experts = 4;
  c.expert_offset = 2;
  const MoeWeights w = testing::expert_range(layer_.view(), 2, 4);
  HostInputs in = inputs_;
  in.topk_ids[2] = 0;  // token 1 misses the local range [2, 6)
  in.topk_ids[3] = 7;
  std::mt19937_64 rng(seed_ + 2);
  std::normal_distribution<float> normal(0.0f, float(testing::rms_bf16(expected_)));
  std::vector<uint16_t> prefill(in.x.size());
  for (uint16_t& v : prefill) v = float_to_bf16(normal(rng));
  for (size_t i = 0; i < prefill.size(); i += 7) prefill[i] = 0x8000;  // −0: must survive in untouched rows
  const std::vector<uint16_t> out =
      gpu_forward(Runner(prepare_weights(c, w, Backend::kCuda)), in.view(), accumulate(), &prefill);
  const std::vector<uint16_t> ref =
      cpu_forward(Runner(prepare_weights(c, w, Backend::kCpu)), in.view(), accumulate(), &prefill);
  expect_close(out, ref, mode(), "accumulate vs CPU reference with the same pre-filled output");
  int64_t missed = 0, changed = 0;
  for (int64_t t = 0; t < in.tokens; ++t) {
    if (testing::token_hits(c, in, t)) continue;
    ++missed;
    const size_t at = size_t(t * c.hidden);
    changed += !std::equal(out.begin() + at, out.begin() + at + c.hidden, prefill.begin() + at);
  }
  EXPECT_GT(missed, 0);
  EXPECT_EQ(changed, 0) << "rows of tokens without a local expert must keep out bit for bit";
}

// ---- routing edge cases ---------------------------------------------------------------------------------------------

// Sets every token's K ids to pick(t, k) (keeping the weights).
void route(HostInputs& in, const std::function<int32_t(int64_t, int64_t)>& pick) {
  for (int64_t t = 0; t < in.tokens; ++t) {
    for (int64_t k = 0; k < in.top_k; ++k) in.topk_ids[size_t(t * in.top_k + k)] = pick(t, k);
  }
}

TEST_P(FeatureTest, EmptyAndHotExperts) {
  SCOPED_TRACE(trace_);
  const Runner gpu(gpu_), cpu(cpu_);
  HostInputs in = make_random_inputs(config_, 1000, seed_ + 3);  // T·K = 2000 pairs on 8 local experts
  const int32_t subset[] = {1, 4, 6};
  const std::pair<const char*, std::function<int32_t(int64_t, int64_t)>> cases[] = {
      {"only experts 1, 4, 6 (five experts get no tokens)",
       [&](int64_t t, int64_t k) { return subset[(t + k * (1 + t % 2)) % 3]; }},
      {"expert 3 in every token", [](int64_t t, int64_t k) { return int32_t(k == 0 ? 3 : 4 + t % 7) % 8; }},
      {"every token on experts 5 and 2", [](int64_t, int64_t k) { return int32_t(k == 0 ? 5 : 2); }},
  };
  for (const auto& [what, pick] : cases) {
    route(in, pick);
    expect_close(gpu_forward(gpu, in.view()), cpu_forward(cpu, in.view()), mode(), what);
  }
}

TEST_P(FeatureTest, DuplicateIdsCountTwice) {
  SCOPED_TRACE(trace_);
  const Runner gpu(gpu_), cpu(cpu_);
  const int64_t k = config_.top_k;
  HostInputs dup = inputs_, merged = inputs_;
  for (int64_t t = 0; t < inputs_.tokens; ++t) {
    const size_t s = size_t(t * k);
    const int32_t e = inputs_.topk_ids[s];
    dup.topk_ids[s + 1] = e;  // both slots on expert e, each with its own weight
    merged.topk_ids[s + 1] = int32_t((e + 1) % config_.num_experts);
    merged.topk_weights[s] = inputs_.topk_weights[s] + inputs_.topk_weights[s + 1];
    merged.topk_weights[s + 1] = 0.0f;  // expert e once with the summed weight
  }
  const std::vector<uint16_t> out = gpu_forward(gpu, dup.view());
  expect_close(out, cpu_forward(cpu, dup.view()), mode(), "duplicate ids vs CPU reference");
  expect_close(out, gpu_forward(gpu, merged.view()), mode(), "duplicate ids vs one slot with the summed weight");
}

TEST_P(FeatureTest, OutOfRangeIdsAddNothing) {
  SCOPED_TRACE(trace_);
  const int64_t e = config_.num_experts, k = config_.top_k;
  const int32_t bad[] = {-1, int32_t(e), 1 << 30, INT32_MIN, INT32_MAX, int32_t(-e)};
  HostInputs in = inputs_;
  for (int64_t t = 0; t < in.tokens; t += 3) in.topk_ids[size_t(t * k + (t / 3) % k)] = bad[(t / 3) % 6];
  for (int64_t s = 0; s < k; ++s) in.topk_ids[size_t(k + s)] = bad[s];  // token 1: every slot bad
  auto is_bad = [&](int32_t id) { return id < 0 || id >= e; };

  // E_local < E: in the reference a valid non-local id (0) stands in for each bad one.
  MoeConfig c = config_;
  c.num_local_experts = 6;
  c.expert_offset = 1;
  const MoeWeights w = testing::expert_range(layer_.view(), 1, 6);
  HostInputs nonlocal = in;
  for (int32_t& id : nonlocal.topk_ids) id = is_bad(id) ? 0 : id;
  const Runner gpu(prepare_weights(c, w, Backend::kCuda));
  const std::vector<uint16_t> out = gpu_forward(gpu, in.view());
  testing::expect_rows_consistent_with_routing(c, nonlocal, out);
  expect_close(out, cpu_forward(Runner(prepare_weights(c, w, Backend::kCpu)), nonlocal.view()), mode(),
               "bad ids vs CPU reference with a non-local id instead");
  expect_bitwise(out, gpu_forward(gpu, nonlocal.view()), "bad ids vs the same call with a non-local id instead");

  // E_local == E: in the reference each bad slot gets id 0 and weight 0.
  HostInputs zeroed = in;
  for (size_t i = 0; i < zeroed.topk_ids.size(); ++i) {
    if (!is_bad(zeroed.topk_ids[i])) continue;
    zeroed.topk_ids[i] = 0;
    zeroed.topk_weights[i] = 0.0f;
  }
  expect_close(gpu_forward(Runner(gpu_), in.view()), cpu_forward(Runner(cpu_), zeroed.view()), mode(),
               "bad ids (all experts local) vs CPU reference with weight 0 instead");
}

TEST(MoeGpuEdgeCases, ZeroTokensIsANoOp) {
  FP4MOE_REQUIRE_GPU();
  for (Mode mode : {Mode::kW4A16, Mode::kW4A4}) {
    const MoeConfig c = testing::small_config(mode);
    const PreparedWeights p = prepare_weights(c, make_random_layer(c, testing::fresh_seed()).view(), Backend::kCuda);
    const Runner runner(p);
    const HostInputs empty = make_random_inputs(c, 0, 1);
    DeviceInputs in(empty.view());
    DeviceBuffer sentinel(256, 0x5A), ws(runner.workspace_size(0));
    const TensorView out(sentinel.get(), DType::kBF16, {0, c.hidden}, Device::cuda(0));
    runner.run(in.view(), out, ws.get(), ws.bytes());
    runner.run(in.view(), out, ws.get(), ws.bytes(), nullptr, accumulate());
    moe_forward(p, in.view(), out);
    FP4MOE_CUDA_CHECK(cudaDeviceSynchronize());
    int64_t touched = 0;
    for (uint8_t b : sentinel.to_host<uint8_t>()) touched += b != 0x5A;
    EXPECT_EQ(touched, 0) << mode_name(mode) << ": T = 0 must not write out";
  }
}

// ---- CUDA graphs, determinism, workspaces, the convenience call -----------------------------------------------------

// One run() captured on `stream` into an instantiated CUDA graph. Global capture mode: a synchronizing or
// allocating call inside run() fails the capture.
class CapturedRun {
 public:
  CapturedRun(const Runner& runner, const MoeInputs& in, TensorView out, const DeviceBuffer& ws, cudaStream_t s) {
    FP4MOE_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    try {
      runner.run(in, out, ws.get(), ws.bytes(), s);
    } catch (...) {
      cudaGraph_t broken = nullptr;
      cudaStreamEndCapture(s, &broken);
      if (broken) cudaGraphDestroy(broken);
      throw;
    }
    FP4MOE_CUDA_CHECK(cudaStreamEndCapture(s, &graph_));
    FP4MOE_CUDA_CHECK(cudaGraphGetNodes(graph_, nullptr, &nodes_));
    FP4MOE_CUDA_CHECK(cudaGraphInstantiate(&exec_, graph_, 0));
  }
  ~CapturedRun() {
    if (exec_) cudaGraphExecDestroy(exec_);
    if (graph_) cudaGraphDestroy(graph_);
  }
  CapturedRun(const CapturedRun&) = delete;
  CapturedRun& operator=(const CapturedRun&) = delete;
  size_t nodes() const { return nodes_; }
  void replay(cudaStream_t s) const {
    FP4MOE_CUDA_CHECK(cudaGraphLaunch(exec_, s));
    FP4MOE_CUDA_CHECK(cudaStreamSynchronize(s));
  }

 private:
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
  size_t nodes_ = 0;
};

TEST_P(FeatureTest, CudaGraphReplayMatchesEager) {
  SCOPED_TRACE(trace_);
  const Runner runner(gpu_);
  const int64_t t = inputs_.tokens, h = config_.hidden;
  const HostInputs other = make_random_inputs(config_, t, seed_ + 5);  // new x and routing, same T
  const std::vector<uint16_t> eager_other = gpu_forward(runner, other.view());
  expect_close(eager_other, cpu_forward(Runner(cpu_), other.view()), mode(), "eager call vs CPU reference");

  testing::Stream stream;
  DeviceInputs in(inputs_.view());
  DeviceBuffer out(size_t(t * h) * 2, 0xFF), ws(runner.workspace_size(t));
  const CapturedRun graph(runner, in.view(), out_view(out, t, h), ws, stream.get());
  EXPECT_GT(graph.nodes(), 0u);
  FP4MOE_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
  EXPECT_EQ(testing::count_nonfinite(out.to_host<uint16_t>()), t * h) << "capturing must not run the layer";
  graph.replay(stream.get());
  expect_bitwise(out.to_host<uint16_t>(), expected_, "graph replay vs eager run");

  in.update(other.view(), stream.get());
  FP4MOE_CUDA_CHECK(cudaMemsetAsync(out.get(), 0xFF, out.bytes(), stream.get()));
  graph.replay(stream.get());
  expect_bitwise(out.to_host<uint16_t>(), eager_other, "replay with new inputs in the same buffers vs eager run");
  graph.replay(stream.get());  // again, over its own output and the used workspace
  expect_bitwise(out.to_host<uint16_t>(), eager_other, "second replay");
}

TEST_P(FeatureTest, RepeatedRunsWorkspacesAndBatchesAreBitwiseEqual) {
  SCOPED_TRACE(trace_);
  const Runner runner(gpu_), cpu(cpu_);
  const int64_t h = config_.hidden;
  DeviceBuffer big(runner.workspace_size(4096), 0xFF);  // sized for 4096 tokens, used with fewer
  for (int64_t t : {1, 7, 97, 257}) {
    SCOPED_TRACE(::testing::Message() << "T=" << t);
    const HostInputs in = t == inputs_.tokens ? inputs_ : make_random_inputs(config_, t, seed_ + uint64_t(t));
    const std::vector<uint16_t> exact = gpu_forward(runner, in.view());
    expect_close(exact, cpu_forward(cpu, in.view()), mode(), "vs CPU reference");
    EXPECT_LE(runner.workspace_size(t), big.bytes());
    DeviceInputs din(in.view());
    DeviceBuffer out(size_t(t * h) * 2, 0xFF), zeroed(runner.workspace_size(t), 0x00);
    for (const auto& [ws, what] : {std::pair{&big, "workspace_size(4096)"}, {&big, "the same workspace again"},
                                   {&zeroed, "a zero-filled workspace"}}) {
      FP4MOE_CUDA_CHECK(cudaMemset(out.get(), 0xFF, out.bytes()));
      runner.run(din.view(), out_view(out, t, h), ws->get(), ws->bytes());
      FP4MOE_CUDA_CHECK(cudaDeviceSynchronize());
      expect_bitwise(out.to_host<uint16_t>(), exact, what);
    }
    const HostInputs last = testing::take_rows(in, {t - 1});  // runs are deterministic whatever the batch
    expect_bitwise(gpu_forward(runner, last.view(), testing::same_path_as(config_, t)),
                   testing::gather_rows(exact, {t - 1}, h), "last token alone");
    if (zeroed.bytes() > 0) {
      EXPECT_THROW(runner.run(din.view(), out_view(out, t, h), zeroed.get(), zeroed.bytes() - 1), Error);
    }
  }
}

TEST_P(FeatureTest, EveryWorkTileSizeIsBitwiseEqual) {
  SCOPED_TRACE(trace_);
  const Runner runner(gpu_);
  HostInputs hot = inputs_;  // every token on expert 3 in slot 0: 97 rows on one expert, several tiles of each size
  for (int64_t t = 0; t < hot.tokens; ++t) hot.topk_ids[size_t(t * config_.top_k)] = int32_t(config_.expert_offset + 3);
  for (const HostInputs* in : {&inputs_, &hot}) {
    RunOptions smallest;
    smallest.tile_rows = 8;
    const std::vector<uint16_t> reference = gpu_forward(runner, in->view(), smallest);
    EXPECT_TRUE(testing::any_nonzero(reference));
    for (int rows : {8, 16, 24, 32}) {
      for (int block_rows : {32, 128}) {
        if (rows == 8 && block_rows == 32) continue;  // the reference
        RunOptions o;
        o.tile_rows = rows;
        o.weight_rows_per_block = block_rows;
        expect_bitwise(gpu_forward(runner, in->view(), o), reference,
                       "tile_rows=" + std::to_string(rows) + " weight_rows_per_block=" + std::to_string(block_rows) +
                           (in == &hot ? " (hot expert)" : " (random routing)"));
      }
    }
  }
  // One token runs each (token, slot) pair as its own tile, with no routing launch, unless a larger tile is
  // forced (then it is routed): both give the same bits, also with a repeated expert and an id that is not local.
  HostInputs one = testing::take_rows(inputs_, {5});
  HostInputs repeated = one, not_local = one;
  repeated.topk_ids[1] = repeated.topk_ids[0];
  not_local.topk_ids[0] = int32_t(config_.num_experts);
  for (const HostInputs* in : {&one, &repeated, &not_local}) {
    const std::vector<uint16_t> pairs = gpu_forward(runner, in->view());
    EXPECT_TRUE(std::any_of(pairs.begin(), pairs.end(), [](uint16_t v) { return (v & 0x7FFF) != 0; }));
    for (int rows : {8, 16, 24, 32}) {
      RunOptions o;
      o.tile_rows = rows;
      o.weight_rows_per_block = 128;
      expect_bitwise(gpu_forward(runner, in->view(), o), pairs,
                     "one token: pair tiles vs tile_rows=" + std::to_string(rows) + " weight_rows_per_block=128");
      if (rows == 8) continue;
      o.weight_rows_per_block = 0;
      expect_bitwise(gpu_forward(runner, in->view(), o), pairs, "one token: pair tiles vs tile_rows=" + std::to_string(rows));
    }
  }
  RunOptions bad;
  bad.tile_rows = 48;
  testing::expect_error([&] { gpu_forward(runner, inputs_.view(), bad); }, "options.tile_rows");
  RunOptions bad_block;
  bad_block.weight_rows_per_block = 64;
  testing::expect_error([&] { gpu_forward(runner, inputs_.view(), bad_block); }, "options.weight_rows_per_block");
}

// The two block shapes of the streaming kernels on shapes where 128-row blocks have idle warps (I/16 = 5 and
// ceil(H/32) = 5 output groups: the second block has one active warp) and K has fewer chunks than a block has
// warps (K = 144 and 80: 3 and 2 chunks, so some of the four K ranges are empty), gated and not.
TEST_P(FeatureTest, BlockShapesAreBitwiseEqualOnOddShapes) {
  SCOPED_TRACE(trace_);
  for (Activation act : {Activation::kSilu, Activation::kRelu2}) {
    const MoeConfig odd = testing::odd_config(mode(), act);
    SCOPED_TRACE(odd.describe());
    const HostLayer layer = make_random_layer(odd, seed_ + 21);
    std::mt19937_64 rng(seed_ + 22);
    HostInputs in = make_random_inputs(odd, 97, seed_ + 22);
    testing::ensure_local_hits(odd, in, rng);
    const Runner gpu(prepare_weights(odd, layer.view(), Backend::kCuda));
    const Runner cpu(prepare_weights(odd, layer.view(), Backend::kCpu));
    for (int rows : {8, 16, 24, 32}) {
      RunOptions split, shared;
      split.tile_rows = shared.tile_rows = rows;
      split.weight_rows_per_block = 32;
      shared.weight_rows_per_block = 128;
      const std::vector<uint16_t> out = gpu_forward(gpu, in.view(), split);
      EXPECT_TRUE(testing::any_nonzero(out));
      expect_bitwise(gpu_forward(gpu, in.view(), shared), out, "tile_rows=" + std::to_string(rows) + ": 128 vs 32");
      if (rows == 16) expect_close(out, cpu_forward(cpu, in.view()), mode(), "tile_rows=16 vs CPU reference");
    }
  }
}

// The wgmma path (sm_90a): 64-, 128- and 160-row tiles give the same bits, with random routing, with one hot expert
// (several full tiles and a partial one) and with a batch larger than every expert's tile; all close to the CPU
// reference.
// Shapes it cannot run are refused naming options.tile_rows.
TEST_P(FeatureTest, WgmmaTileSizesAreBitwiseEqual) {
  SCOPED_TRACE(trace_);
  if (!testing::wgmma_runs(config_)) GTEST_SKIP() << "the wgmma path needs compute capability 9.0 (sm_90a code)";
  const Runner runner(gpu_), cpu(cpu_);
  HostInputs hot = inputs_;
  for (int64_t t = 0; t < hot.tokens; ++t) hot.topk_ids[size_t(t * config_.top_k)] = int32_t(config_.expert_offset + 3);
  const HostInputs large = make_random_inputs(config_, 700, seed_ + 2);
  const HostInputs* const cases[] = {&inputs_, &hot, &large};
  for (const HostInputs* in : cases) {
    const std::string what = in == &hot ? " (hot expert)" : in == &large ? " (700 tokens)" : " (random routing)";
    RunOptions wide;
    wide.tile_rows = 128;
    const std::vector<uint16_t> out = gpu_forward(runner, in->view(), wide);
    EXPECT_TRUE(testing::any_nonzero(out));
    for (int rows : {64, 160}) {
      RunOptions other;
      other.tile_rows = rows;
      expect_bitwise(gpu_forward(runner, in->view(), other), out,
                     "tile_rows=" + std::to_string(rows) + " vs 128" + what);
    }
    expect_close(out, cpu_forward(cpu, in->view()), mode(), "tile_rows=128 vs CPU reference" + what);
  }
  MoeConfig odd = testing::odd_config(mode());
  const HostLayer odd_layer = make_random_layer(odd, seed_ + 3);
  const Runner odd_runner(prepare_weights(odd, odd_layer.view(), Backend::kCuda));
  const HostInputs odd_in = make_random_inputs(odd, 5, seed_ + 4);
  RunOptions wide;
  wide.tile_rows = 128;
  testing::expect_error([&] { gpu_forward(odd_runner, odd_in.view(), wide); }, "options.tile_rows");
}

TEST_P(FeatureTest, ConvenienceCallMatchesRunner) {
  SCOPED_TRACE(trace_);
  const int64_t t = inputs_.tokens, h = config_.hidden;
  DeviceInputs in(inputs_.view());
  DeviceBuffer out(size_t(t * h) * 2, 0xFF);
  testing::Stream stream;
  auto forward = [&](cudaStream_t s) {
    FP4MOE_CUDA_CHECK(cudaMemsetAsync(out.get(), 0xFF, out.bytes(), s));
    moe_forward(gpu_, in.view(), out_view(out, t, h), s);
    FP4MOE_CUDA_CHECK(cudaStreamSynchronize(s));
    return out.to_host<uint16_t>();
  };
  clear_workspace_cache();
  expect_bitwise(forward(nullptr), expected_, "moe_forward, default stream");
  EXPECT_EQ(workspace_cache_bytes(), Runner(gpu_).workspace_size(t));
  expect_bitwise(forward(stream.get()), expected_, "moe_forward, non-default stream, cached workspace");
  set_workspace_cache_limit(16);  // below any workspace: a one-off buffer, nothing cached
  clear_workspace_cache();
  expect_bitwise(forward(stream.get()), expected_, "moe_forward, one-off workspace");
  EXPECT_EQ(workspace_cache_bytes(), 0u);
  set_workspace_cache_limit(size_t(1) << 30);
  clear_workspace_cache();
}

TEST_P(FeatureTest, StridedRowsOfXAndOut) {
  SCOPED_TRACE(trace_);
  const Runner runner(gpu_);
  const int64_t t = inputs_.tokens, h = config_.hidden, x_ld = h + 32;
  std::vector<uint16_t> xs(size_t(t * x_ld), 0x7FC1);  // NaN between rows: reading it would show in the result
  for (int64_t r = 0; r < t; ++r) std::copy_n(&inputs_.x[size_t(r * h)], h, &xs[size_t(r * x_ld)]);
  MoeInputs host = inputs_.view();
  host.x = TensorView(xs.data(), DType::kBF16, {t, h});
  host.x.strides[0] = x_ld;
  DeviceInputs in(host);
  // out rows 8-byte aligned (the combine's vector stores), then out one element into its buffer with an odd row
  // stride (rows on every 2-byte alignment: element stores).
  for (const auto& [offset, out_ld] : {std::pair<int64_t, int64_t>{0, h + 48}, {1, h + 47}}) {
    SCOPED_TRACE(::testing::Message() << "out offset " << offset << " row stride " << out_ld);
    DeviceBuffer out(size_t(offset + t * out_ld) * 2, 0xFF), ws(runner.workspace_size(t));
    TensorView ov(static_cast<uint16_t*>(out.get()) + offset, DType::kBF16, {t, h}, Device::cuda(0));
    ov.strides[0] = out_ld;
    runner.run(in.view(), ov, ws.get(), ws.bytes());
    FP4MOE_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<uint16_t> all = out.to_host<uint16_t>();
    std::vector<uint16_t> rows;
    int64_t gap_writes = std::count_if(all.begin(), all.begin() + offset, [](uint16_t b) { return b != 0xFFFF; });
    for (int64_t r = 0; r < t; ++r) {
      const auto row = all.begin() + offset + r * out_ld;
      rows.insert(rows.end(), row, row + h);
      gap_writes += std::count_if(row + h, row + out_ld, [](uint16_t b) { return b != 0xFFFF; });
    }
    expect_bitwise(rows, expected_, "strided x and out rows vs contiguous");
    EXPECT_EQ(gap_writes, 0) << "elements outside the out rows were written";
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, FeatureTest, ::testing::Values(Mode::kW4A16, Mode::kW4A4),
                         [](const auto& info) { return std::string(mode_name(info.param)); });

}  // namespace
}  // namespace fp4moe
