// Helpers of the fused-MoE GPU tests (test_moe_gpu*.cpp):
//  - one call run by the CPU reference and by a CUDA runner on the same host inputs (inputs copied to the device,
//    output poisoned with NaN so unwritten elements show, workspace poisoned too);
//  - spec §6 comparison (rel L2 within the mode's tolerance, every element finite, non-zero guard) and bitwise
//    comparison that reports counts instead of dumping vectors;
//  - row sampling for large calls: a token's output depends only on that token, so the CPU reference may run on a
//    random subset of the call's tokens and be compared with those rows of the full GPU output;
//  - routing edits, and other placements of a random layer's weights (split, per-expert 2-D, device-resident,
//    FC1 row orders, 128x4 scales, pre-quantized x), all built from the stacked gate-up HostLayer.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "fp4moe/format.hpp"
#include "fp4moe/moe.hpp"
#include "cuda/fc1/fc1_launch.hpp"
#include "cuda/moe/heuristics.hpp"
#include "gpu/gpu_test_util.hpp"
#include "layer_test_util.hpp"
#include "problem/random_problem.hpp"

namespace fp4moe::testing {

// ---- configurations -------------------------------------------------------------------------------------------------

// The tiny preset (E = 8, K = 2, H = 256, I = 128) with the given mode and activation.
inline MoeConfig small_config(Mode mode, Activation act = Activation::kSilu) {
  MoeConfig c = config_from_preset(find_preset("tiny"), mode);
  c.activation = act;
  return c;
}

// Dimensions that are multiples of 16 but not of 32 (H, I/16 odd; fc1 rows and H not multiples of 128, so 128x4
// scales are padded), K = 3, and an expert range that starts after 0 and ends before E.
inline MoeConfig odd_config(Mode mode, Activation act = Activation::kSilu) {
  MoeConfig c;
  c.num_experts = 6;
  c.num_local_experts = 4;
  c.expert_offset = 1;
  c.top_k = 3;
  c.hidden = 144;
  c.intermediate = 80;
  c.activation = act;
  c.mode = mode;
  return c;
}

// All experts local, silu, the given shape and mode.
inline MoeConfig shape_config(Mode mode, int64_t experts, int64_t top_k, int64_t hidden, int64_t intermediate) {
  MoeConfig c;
  c.num_experts = c.num_local_experts = experts;
  c.top_k = top_k;
  c.hidden = hidden;
  c.intermediate = intermediate;
  c.mode = mode;
  return c;
}

// Whether this device runs the wgmma path for the layer (tile_rows 64, 128 and 160).
inline bool wgmma_runs(const MoeConfig& c) { return cuda::wgmma_shape_supported(c) && cuda::wgmma_path_available(); }

// Options that run a subset of a T-token call on the same kernel path as the call itself. The streaming kernels
// (every tile size) and the wgmma kernels (both tile sizes) are each batch-invariant, but the two paths differ in
// fp32 summation order, so a subset is compared on the path the automatic choice took for all T tokens.
inline RunOptions same_path_as(const MoeConfig& c, int64_t tokens) {
  RunOptions o;
  const int rows = cuda::plan_tile_rows(c, tokens, wgmma_runs(c));
  if (cuda::is_wgmma_tile_rows(rows)) o.tile_rows = rows;
  return o;
}

// ---- small vector utilities -----------------------------------------------------------------------------------------

inline bool any_nonzero(const std::vector<uint16_t>& v) {
  return std::any_of(v.begin(), v.end(), [](uint16_t b) { return (b & 0x7FFF) != 0; });
}

inline int64_t count_nonfinite(const std::vector<uint16_t>& v) {
  return std::count_if(v.begin(), v.end(), [](uint16_t b) { return (b & 0x7F80) == 0x7F80; });
}

inline double rms_bf16(const std::vector<uint16_t>& v) {
  double s = 0;
  for (uint16_t b : v) s += double(bf16_to_float(b)) * bf16_to_float(b);
  return v.empty() ? 0.0 : std::sqrt(s / double(v.size()));
}

// Bitwise equality of two BF16 outputs; on failure reports how many differ and the first difference.
inline void expect_bitwise(const std::vector<uint16_t>& actual, const std::vector<uint16_t>& expected,
                           const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  int64_t diff = 0, first = -1;
  for (size_t i = 0; i < actual.size(); ++i) {
    if (actual[i] == expected[i]) continue;
    if (first < 0) first = int64_t(i);
    ++diff;
  }
  EXPECT_EQ(diff, 0) << what << ": " << diff << " of " << actual.size() << " BF16 outputs differ; first at index "
                     << first << " (" << (first >= 0 ? bf16_to_float(actual[size_t(first)]) : 0.0f) << " vs "
                     << (first >= 0 ? bf16_to_float(expected[size_t(first)]) : 0.0f) << ")";
}

// Spec §6 agreement: every element finite (written), rel L2 ≤ rel_l2_tolerance(mode), neither side all zero.
inline void expect_close(const std::vector<uint16_t>& actual, const std::vector<uint16_t>& expected, Mode mode,
                         const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  const ErrorStats s = compare_bf16(actual.data(), expected.data(), int64_t(actual.size()));
  if (std::getenv("FP4MOE_TEST_PRINT_ERRORS")) {  // margins, for whoever tunes kernels or tolerances
    std::printf("[ errors   ] %s: rel_l2=%.3g max_abs=%.3g (%s)\n", what.c_str(), s.rel_l2, s.max_abs,
                std::string(mode_name(mode)).c_str());
  }
  EXPECT_EQ(s.nonfinite, 0) << what << ": non-finite (unwritten?) outputs of " << actual.size();
  EXPECT_LE(s.rel_l2, rel_l2_tolerance(mode)) << what << ": max_abs=" << s.max_abs << " mean_abs=" << s.mean_abs;
  EXPECT_TRUE(any_nonzero(expected)) << what << ": the reference is all zero (vacuous comparison)";
  EXPECT_TRUE(any_nonzero(actual)) << what << ": the output is all zero";
}

// ---- device copies of a call ----------------------------------------------------------------------------------------

// Bytes from the first to the last element of a (possibly strided) view; 0 for no elements.
inline size_t span_bytes(const TensorView& t) {
  if (t.empty() || t.numel() == 0) return 0;
  int64_t span = 1;
  for (int d = 0; d < t.ndim; ++d) span += (t.shape[d] - 1) * t.strides[d];
  return size_t(span) * dtype_size(t.dtype);
}

inline DeviceBuffer upload_view(const TensorView& host) {
  DeviceBuffer b(span_bytes(host));
  if (b.bytes()) FP4MOE_CUDA_CHECK(cudaMemcpy(b.get(), host.data, b.bytes(), cudaMemcpyHostToDevice));
  return b;
}

// The view `host` re-pointed at a device copy (same dtype, shape and strides).
inline TensorView device_view(TensorView host, const DeviceBuffer& b) {
  if (host.empty()) return host;
  host.data = b.get();
  host.device = Device::cuda(0);
  return host;
}

inline TensorView out_view(const DeviceBuffer& out, int64_t tokens, int64_t hidden) {
  return TensorView(out.get(), DType::kBF16, {tokens, hidden}, Device::cuda(0));
}

// Device copies of one call's inputs, reusable for later calls with the same shapes (e.g. CUDA graph replay).
class DeviceInputs {
 public:
  explicit DeviceInputs(const MoeInputs& host)
      : x_(upload_view(host.x)),
        x_scale_(upload_view(host.x_scale)),
        ids_(upload_view(host.topk_ids)),
        weights_(upload_view(host.topk_weights)) {
    view_ = host;
    view_.x = device_view(host.x, x_);
    view_.x_scale = device_view(host.x_scale, x_scale_);
    view_.topk_ids = device_view(host.topk_ids, ids_);
    view_.topk_weights = device_view(host.topk_weights, weights_);
  }
  const MoeInputs& view() const { return view_; }
  // Copies new host inputs of the same shapes into the same device buffers, ordered on `stream`.
  void update(const MoeInputs& host, cudaStream_t stream) {
    const std::pair<const TensorView*, const DeviceBuffer*> parts[] = {
        {&host.x, &x_}, {&host.x_scale, &x_scale_}, {&host.topk_ids, &ids_}, {&host.topk_weights, &weights_}};
    for (const auto& [t, b] : parts) {
      ASSERT_EQ(span_bytes(*t), b->bytes());
      if (b->bytes()) {
        FP4MOE_CUDA_CHECK(cudaMemcpyAsync(b->get(), t->data, b->bytes(), cudaMemcpyHostToDevice, stream));
      }
    }
    FP4MOE_CUDA_CHECK(cudaStreamSynchronize(stream));  // the host vectors may go away after this call
  }

 private:
  DeviceBuffer x_, x_scale_, ids_, weights_;
  MoeInputs view_;
};

// A non-blocking CUDA stream, destroyed at scope exit.
class Stream {
 public:
  Stream() { FP4MOE_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~Stream() { cudaStreamDestroy(s_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

// ---- one call on each backend ---------------------------------------------------------------------------------------

inline int64_t call_tokens(const MoeInputs& in) { return in.x.ndim >= 1 ? in.x.shape[0] : 0; }

// The CPU reference on host inputs. `prefill` (for accumulate) is the initial content of out.
inline std::vector<uint16_t> cpu_forward(const Runner& runner, const MoeInputs& host, RunOptions opt = {},
                                         const std::vector<uint16_t>* prefill = nullptr) {
  const int64_t t = call_tokens(host), h = runner.weights().config().hidden;
  std::vector<uint16_t> out = prefill ? *prefill : std::vector<uint16_t>(size_t(t * h), 0x7FC1);
  std::vector<std::byte> ws(runner.workspace_size(t));
  runner.run(host, TensorView(out.data(), DType::kBF16, {t, h}), ws.data(), ws.size(), nullptr, opt);
  return out;
}

// The CUDA runner on host inputs copied to the device: out poisoned with NaN (or `prefill`), a workspace of exactly
// workspace_size(T) poisoned bytes; synchronizes and checks for CUDA errors before copying out back.
inline std::vector<uint16_t> gpu_forward(const Runner& runner, const MoeInputs& host, RunOptions opt = {},
                                         const std::vector<uint16_t>* prefill = nullptr,
                                         cudaStream_t stream = nullptr) {
  const int64_t t = call_tokens(host), h = runner.weights().config().hidden;
  EXPECT_EQ(runner.weights().backend(), Backend::kCuda);
  DeviceInputs in(host);
  DeviceBuffer out = prefill ? DeviceBuffer::from_host(*prefill) : DeviceBuffer(size_t(t * h) * 2, 0xFF);
  DeviceBuffer ws(runner.workspace_size(t));
  runner.run(in.view(), out_view(out, t, h), ws.get(), ws.bytes(), stream, opt);
  FP4MOE_CUDA_CHECK(cudaStreamSynchronize(stream));
  FP4MOE_CUDA_CHECK(cudaGetLastError());
  return out.to_host<uint16_t>();
}

// Prepares `weights` for the CUDA backend and runs one call.
inline std::vector<uint16_t> gpu_forward(const MoeConfig& c, const MoeWeights& weights, const MoeInputs& host,
                                         RunOptions opt = {}) {
  return gpu_forward(Runner(prepare_weights(c, weights, Backend::kCuda)), host, opt);
}

// ---- routing and row sampling ---------------------------------------------------------------------------------------

inline bool is_local(const MoeConfig& c, int32_t id) {
  return id >= c.expert_offset && id < c.expert_offset + c.num_local_experts;
}

inline bool token_hits(const MoeConfig& c, const HostInputs& in, int64_t t) {
  for (int64_t k = 0; k < in.top_k; ++k) {
    if (is_local(c, in.topk_ids[size_t(t * in.top_k + k)])) return true;
  }
  return false;
}

// Gives every token except each `skip`-th one (t % skip == skip - 1) at least one local expert, so that small
// calls under expert parallelism are not vacuous; the skipped tokens keep their random routing (often all-miss).
inline void ensure_local_hits(const MoeConfig& c, HostInputs& in, std::mt19937_64& rng, int64_t skip = 4) {
  for (int64_t t = 0; t < in.tokens; ++t) {
    if (t % skip == skip - 1 || token_hits(c, in, t)) continue;
    in.topk_ids[size_t(t * in.top_k + t % in.top_k)] = int32_t(c.expert_offset + int64_t(rng() % c.num_local_experts));
  }
}

// Every row finite; rows of tokens without a local expert exactly ±0; rows of tokens with one not all zero.
inline void expect_rows_consistent_with_routing(const MoeConfig& c, const HostInputs& in,
                                                const std::vector<uint16_t>& out) {
  ASSERT_EQ(out.size(), size_t(in.tokens * c.hidden));
  EXPECT_EQ(count_nonfinite(out), 0) << "non-finite (unwritten?) outputs of " << out.size();
  int64_t bad_miss = 0, bad_hit = 0;
  for (int64_t t = 0; t < in.tokens; ++t) {
    const uint16_t* row = &out[size_t(t * c.hidden)];
    const bool nonzero = std::any_of(row, row + c.hidden, [](uint16_t b) { return (b & 0x7FFF) != 0; });
    if (token_hits(c, in, t)) {
      bad_hit += !nonzero;
    } else {
      bad_miss += nonzero;
    }
  }
  EXPECT_EQ(bad_miss, 0) << "tokens without a local expert whose output row is not zero";
  EXPECT_EQ(bad_hit, 0) << "tokens with a local expert whose output row is all zero";
}

// `n` distinct sorted token indices in [0, tokens), always including the first and the last.
inline std::vector<int64_t> sample_rows(int64_t tokens, int64_t n, std::mt19937_64& rng) {
  std::vector<int64_t> all(static_cast<size_t>(tokens));
  for (int64_t t = 0; t < tokens; ++t) all[size_t(t)] = t;
  if (n >= tokens) return all;
  std::shuffle(all.begin() + 1, all.end() - 1, rng);
  std::vector<int64_t> rows(all.begin(), all.begin() + (n - 1));
  rows.push_back(tokens - 1);
  std::sort(rows.begin(), rows.end());
  return rows;
}

// The sub-call made of the given tokens of `in`.
inline HostInputs take_rows(const HostInputs& in, const std::vector<int64_t>& rows) {
  HostInputs s;
  s.tokens = int64_t(rows.size());
  s.top_k = in.top_k;
  s.hidden = in.hidden;
  for (int64_t t : rows) {
    s.x.insert(s.x.end(), in.x.begin() + t * in.hidden, in.x.begin() + (t + 1) * in.hidden);
    s.topk_ids.insert(s.topk_ids.end(), in.topk_ids.begin() + t * in.top_k, in.topk_ids.begin() + (t + 1) * in.top_k);
    s.topk_weights.insert(s.topk_weights.end(), in.topk_weights.begin() + t * in.top_k,
                          in.topk_weights.begin() + (t + 1) * in.top_k);
  }
  return s;
}

inline std::vector<uint16_t> gather_rows(const std::vector<uint16_t>& out, const std::vector<int64_t>& rows,
                                         int64_t hidden) {
  std::vector<uint16_t> g;
  g.reserve(rows.size() * size_t(hidden));
  for (int64_t t : rows) g.insert(g.end(), out.begin() + t * hidden, out.begin() + (t + 1) * hidden);
  return g;
}

// ---- weights on the device ------------------------------------------------------------------------------------------

// Host weights copied to the GPU (same shapes and strides), each tensor its own allocation, the groups allocated
// in reverse order, so that sources on the device in any placement reach prepare_weights.
struct DeviceWeights {
  std::vector<DeviceBuffer> buffers;
  MoeWeights weights;
};

inline void upload_weights(const MoeWeights& host, DeviceWeights& dst) {
  dst.weights = host;
  dst.buffers.clear();
  dst.buffers.reserve(host.groups.size() * 6);
  for (size_t gi = host.groups.size(); gi-- > 0;) {
    const ExpertGroup& h = host.groups[gi];
    ExpertGroup& d = dst.weights.groups[gi];
    for (auto [src, out] : {std::pair{&h.w13, &d.w13}, {&h.w13_scale, &d.w13_scale}, {&h.w13_scale_2, &d.w13_scale_2},
                            {&h.w2, &d.w2}, {&h.w2_scale, &d.w2_scale}, {&h.w2_scale_2, &d.w2_scale_2}}) {
      dst.buffers.push_back(upload_view(*src));
      *out = device_view(*src, dst.buffers.back());
    }
  }
}

// ---- pre-quantized x ------------------------------------------------------------------------------------------------

// x quantized on the host per spec §2 with global scale gs (linear scales), and host inputs that use it.
struct QuantizedX {
  std::vector<uint8_t> packed, scales;
  float gs = 1.0f;
};

inline QuantizedX quantize_x(const HostInputs& in, float gs) {
  std::vector<float> xf(in.x.size());
  for (size_t i = 0; i < xf.size(); ++i) xf[i] = bf16_to_float(in.x[i]);
  QuantizedX q;
  q.gs = gs;
  q.packed.resize(size_t(in.tokens * in.hidden / 2));
  q.scales.resize(size_t(in.tokens * in.hidden / kBlockSize));
  if (in.tokens > 0) quantize_rows(xf.data(), in.tokens, in.hidden, in.hidden, gs, q.packed.data(), q.scales.data());
  return q;
}

inline MoeInputs prequantized_view(const HostInputs& in, const QuantizedX& q) {
  MoeInputs m = in.view();
  m.x = TensorView(q.packed.data(), DType::kU8, {in.tokens, in.hidden / 2});
  m.x_scale = TensorView(q.scales.data(), DType::kE4M3, {in.tokens, in.hidden / kBlockSize});
  m.x_global_scale = q.gs;
  return m;
}

}  // namespace fp4moe::testing

namespace fp4moe {

// Readable test parameters in gtest and ctest names ("w4a16" rather than a byte dump).
inline void PrintTo(Mode mode, std::ostream* os) { *os << mode_name(mode); }

}  // namespace fp4moe
