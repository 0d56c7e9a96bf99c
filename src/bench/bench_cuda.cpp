// The CUDA benchmark instrument: device ceilings, the roofline floor, and the MoE / linear benches with their cuBLAS
// BF16 baselines (method: bench_cuda.hpp; baseline pipeline: baseline_kernels.hpp).
//
// MoE baseline, per point (routing fixed outside the timing): the host sorts the routed (token, slot) pairs by
// local expert once and uploads the gather list, the slot → row map and the GEMM pointer arrays; the timed region
// then runs gather → FC1 (cublasGemmGroupedBatchedEx, or one cublasGemmEx per hit expert) → activation → FC2 →
// combine. It excludes the routing sort that the library does on the device, and the weight dequantization.
#include "bench/bench_cuda.hpp"

#include <algorithm>
#include <numeric>
#include <random>

#include "bench/baseline_kernels.hpp"
#include "bench/device_random.hpp"
#include "bench/gpu_timing.hpp"
#include "fp4moe/linear.hpp"
#include "fp4moe/moe.hpp"
#include "fp4moe/quantize.hpp"
#include "problem/random_problem.hpp"

namespace fp4moe::bench {

namespace {

constexpr double kFp4BytesPerWeight = 0.5 + 1.0 / 16.0;  // packed code + E4M3 scale per 16
constexpr size_t kMemoryMargin = size_t(1) << 30;        // left free when sizing the baseline

double floor_us(double flops, double bytes, const Ceilings& c) {
  return std::max(bytes / (c.copy_tbps * 1e12), flops / (c.bf16_tflops * 1e12)) * 1e6;
}

size_t free_device_memory() {
  size_t free = 0, total = 0;
  FP4MOE_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return free;
}

std::string gib(double bytes) { return detail::concat(std::round(bytes / double(1 << 30) * 10) / 10, " GiB"); }

// C[n, m] = B[n, k] · A[m, k]ᵀ (row-major, BF16 in/out, fp32 accumulate): the column-major C = op(A)·B with op = T.
void gemm_bf16(cublasHandle_t h, int m, int n, int k, const void* a, int lda, const void* b, int ldb, void* c,
               int ldc) {
  const float alpha = 1.0f, beta = 0.0f;
  FP4MOE_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, a, CUDA_R_16BF, lda, b, CUDA_R_16BF,
                                   ldb, &beta, c, CUDA_R_16BF, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

double rel_l2_device(const void* ours, const void* reference, int64_t count) {
  std::vector<uint16_t> a(static_cast<size_t>(count)), b(static_cast<size_t>(count));
  FP4MOE_CUDA_CHECK(cudaMemcpy(a.data(), ours, a.size() * 2, cudaMemcpyDeviceToHost));
  FP4MOE_CUDA_CHECK(cudaMemcpy(b.data(), reference, b.size() * 2, cudaMemcpyDeviceToHost));
  return compare_bf16(a.data(), b.data(), count).rel_l2;
}

// Times `enqueue` as such or, with `graph`, as replays of a graph captured once. A failed capture throws when
// `required`, else falls back to direct calls (reported through *graphed).
Timing time_point(const std::function<void()>& enqueue, cudaStream_t stream, L2Flusher& flusher,
                  const TimingOptions& o, bool graph, bool required, bool* graphed) {
  GraphExec exec;
  const std::string why = graph ? exec.capture(enqueue, stream) : "not asked";
  FP4MOE_CHECK(!graph || !required || why.empty(), "capturing the timed call in a CUDA graph failed: ", why);
  if (graphed) *graphed = why.empty();
  L2Flusher* f = o.flush_l2 ? &flusher : nullptr;
  if (why.empty()) return time_calls([&] { exec.launch(stream); }, stream, f, o);
  return time_calls(enqueue, stream, f, o);
}

// ---- random layer on the device ---------------------------------------------------------------------------------

// weight_scale_2 = 1/gs per expert, gs = 448·6 / amax with the tensor amax drawn in [5σ, 6σ] (σ = 0.02).
std::vector<float> random_scale_2(int64_t experts, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> spread(5.0f, 6.0f);
  std::vector<float> s(static_cast<size_t>(experts));
  for (float& v : s) v = spread(rng) * kRandomWeightStd / (kE4M3Max * kE2M1Max);
  return s;
}

struct DeviceMatrices {  // `experts` stacked rows × k NVFP4 matrices with linear scales
  DeviceBuffer packed, scales, scale_2;
};

DeviceMatrices make_device_matrices(int dev, int64_t experts, int64_t rows, int64_t k, uint64_t seed,
                                    cudaStream_t s) {
  DeviceMatrices m;
  const std::vector<float> s2 = random_scale_2(experts, seed);
  m.scale_2 = DeviceBuffer(dev, s2.size() * sizeof(float), s2.data());
  m.packed = DeviceBuffer(dev, size_t(experts * rows * k / 2));
  m.scales = DeviceBuffer(dev, size_t(experts * rows * k / kBlockSize));
  fill_random_fp4(m.packed.as<uint8_t>(), int64_t(m.packed.bytes()), seed + 1, s);
  fill_random_block_scales(m.scales.as<uint8_t>(), experts, rows * k / kBlockSize, m.scale_2.as<float>(), seed + 2, s);
  FP4MOE_CUDA_CHECK(cudaStreamSynchronize(s));
  return m;
}

MoeWeights device_layer_view(const MoeConfig& c, const DeviceMatrices& w13, const DeviceMatrices& w2, int dev) {
  const int64_t el = c.num_local_experts, h = c.hidden, i = c.intermediate, r1 = c.fc1_rows();
  const Device d = Device::cuda(dev);
  ExpertGroup g;
  g.w13 = TensorView(w13.packed.get(), DType::kU8, {el, r1, h / 2}, d);
  g.w13_scale = TensorView(w13.scales.get(), DType::kE4M3, {el, r1, h / kBlockSize}, d);
  g.w13_scale_2 = TensorView(w13.scale_2.get(), DType::kF32, {el}, d);
  g.w2 = TensorView(w2.packed.get(), DType::kU8, {el, h, i / 2}, d);
  g.w2_scale = TensorView(w2.scales.get(), DType::kE4M3, {el, h, i / kBlockSize}, d);
  g.w2_scale_2 = TensorView(w2.scale_2.get(), DType::kF32, {el}, d);
  MoeWeights w;
  w.groups.push_back(g);
  if (c.mode == Mode::kW4A4) {  // the calibration of the host random problems (random_problem.hpp)
    w.fc1_input_scale = kRandomXAmax / (kE4M3Max * kE2M1Max);
    w.fc2_input_scale = kRandomIntermediateAmax / (kE4M3Max * kE2M1Max);
  }
  return w;
}

// ---- routing and the baseline plan --------------------------------------------------------------------------------

struct Routing {
  std::vector<int32_t> ids;
  std::vector<float> weights;
  int64_t hit_experts = 0;  // distinct local experts
};

Routing make_routing(const MoeConfig& c, int64_t tokens, uint64_t seed) {
  Routing r;
  r.ids.resize(size_t(tokens * c.top_k));
  r.weights.resize(r.ids.size());
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<int32_t> pool(size_t(c.num_experts));
  std::vector<char> hit(size_t(c.num_local_experts), 0);
  for (int64_t t = 0; t < tokens; ++t) {
    std::iota(pool.begin(), pool.end(), 0);  // partial Fisher-Yates: K distinct experts, uniformly drawn
    float total = 0.0f;
    for (int64_t k = 0; k < c.top_k; ++k) {
      std::uniform_int_distribution<int64_t> pick(k, c.num_experts - 1);
      std::swap(pool[size_t(k)], pool[size_t(pick(rng))]);
      const size_t slot = size_t(t * c.top_k + k);
      r.ids[slot] = pool[size_t(k)];
      r.weights[slot] = std::exp(normal(rng));
      total += r.weights[slot];
      const int64_t local = r.ids[slot] - c.expert_offset;
      if (local >= 0 && local < c.num_local_experts) hit[size_t(local)] = 1;
    }
    for (int64_t k = 0; k < c.top_k; ++k) r.weights[size_t(t * c.top_k + k)] /= total;
  }
  r.hit_experts = std::count(hit.begin(), hit.end(), 1);
  return r;
}

// The routed (token, slot) pairs grouped by local expert: rows [offset[e], offset[e] + count[e]) of the gathered
// activations belong to expert e, in token order. GEMM problems are the hit experts ordered by row count, so that
// experts with equal counts form one group of the grouped GEMM.
struct BaselinePlan {
  std::vector<int32_t> row_token;  // gathered row → token
  std::vector<int32_t> slot_row;   // (token, slot) → gathered row, -1 when the slot is not local
  std::vector<int64_t> offset, count;
  std::vector<int64_t> problems;   // hit experts by increasing row count
  std::vector<int> group_n, group_size;
};

BaselinePlan make_baseline_plan(const MoeConfig& c, const Routing& r) {
  BaselinePlan p;
  const int64_t el = c.num_local_experts;
  p.count.assign(size_t(el), 0);
  p.slot_row.assign(r.ids.size(), -1);
  for (int32_t id : r.ids) {
    const int64_t local = id - c.expert_offset;
    if (local >= 0 && local < el) ++p.count[size_t(local)];
  }
  p.offset.assign(size_t(el), 0);
  for (int64_t e = 1; e < el; ++e) p.offset[size_t(e)] = p.offset[size_t(e - 1)] + p.count[size_t(e - 1)];
  p.row_token.resize(size_t(std::accumulate(p.count.begin(), p.count.end(), int64_t(0))));
  std::vector<int64_t> cursor = p.offset;
  for (size_t slot = 0; slot < r.ids.size(); ++slot) {
    const int64_t local = r.ids[slot] - c.expert_offset;
    if (local < 0 || local >= el) continue;
    const int64_t row = cursor[size_t(local)]++;
    p.row_token[size_t(row)] = int32_t(slot / size_t(c.top_k));
    p.slot_row[slot] = int32_t(row);
  }
  for (int64_t e = 0; e < el; ++e) {
    if (p.count[size_t(e)] > 0) p.problems.push_back(e);
  }
  std::stable_sort(p.problems.begin(), p.problems.end(),
                   [&](int64_t a, int64_t b) { return p.count[size_t(a)] < p.count[size_t(b)]; });
  for (int64_t e : p.problems) {
    const int n = int(p.count[size_t(e)]);
    if (p.group_n.empty() || p.group_n.back() != n) {
      p.group_n.push_back(n);
      p.group_size.push_back(0);
    }
    ++p.group_size.back();
  }
  return p;
}

// One layer GEMM of the baseline over the point's problems: out_p[n_p, m] = in_p[n_p, k] · W_e[m, k]ᵀ. The host
// arrays live as long as the plan, so a captured graph never refers to freed memory.
struct ExpertGemm {
  int m = 0, k = 0;
  std::vector<int> n;
  std::vector<const void*> a, b;  // weights, inputs (host copies, for the loop variant)
  std::vector<void*> c;
  DeviceBuffer pointers;          // device [a..., b..., c...] for the grouped variant
  std::vector<int> group_n, group_size, group_m, group_k, group_ldc;
  std::vector<cublasOperation_t> group_ta, group_tb;
  std::vector<float> alpha, beta;

  void plan(const BaselinePlan& p, int dev, int64_t rows, int64_t depth, const uint16_t* weights,
            const uint16_t* in, uint16_t* out) {
    m = int(rows);
    k = int(depth);
    n.clear();
    a.clear();
    b.clear();
    c.clear();
    for (int64_t e : p.problems) {
      n.push_back(int(p.count[size_t(e)]));
      a.push_back(weights + e * rows * depth);
      b.push_back(in + p.offset[size_t(e)] * depth);
      c.push_back(out + p.offset[size_t(e)] * rows);
    }
    std::vector<const void*> all(a);
    all.insert(all.end(), b.begin(), b.end());
    all.insert(all.end(), c.begin(), c.end());
    pointers = DeviceBuffer(dev, all.size() * sizeof(void*), all.data());
    const size_t g = p.group_n.size();
    group_n = p.group_n;
    group_size = p.group_size;
    group_m.assign(g, m);
    group_k.assign(g, k);
    group_ldc.assign(g, m);
    group_ta.assign(g, CUBLAS_OP_T);
    group_tb.assign(g, CUBLAS_OP_N);
    alpha.assign(g, 1.0f);
    beta.assign(g, 0.0f);
  }

  void run_loop(cublasHandle_t h) const {
    for (size_t i = 0; i < n.size(); ++i) gemm_bf16(h, m, n[i], k, a[i], k, b[i], k, c[i], m);
  }

  // lda = ldb = k: both operands are row-major with the reduction innermost.
  void run_grouped(cublasHandle_t h) const {
    if (group_n.empty()) return;
    const size_t count = n.size();
    const auto** dev = static_cast<const void**>(pointers.get());
    FP4MOE_CUBLAS_CHECK(cublasGemmGroupedBatchedEx(
        h, group_ta.data(), group_tb.data(), group_m.data(), group_n.data(), group_k.data(), alpha.data(), dev,
        CUDA_R_16BF, group_k.data(), dev + count, CUDA_R_16BF, group_k.data(), beta.data(),
        const_cast<void**>(dev + 2 * count), CUDA_R_16BF, group_ldc.data(), int(group_n.size()), group_size.data(),
        CUBLAS_COMPUTE_32F));
  }
};

}  // namespace

Roofline moe_roofline(const MoeConfig& c, int64_t tokens, int64_t hit_experts, const Ceilings& ceilings) {
  const double per_expert = double(c.fc1_rows() * c.hidden + c.hidden * c.intermediate);
  Roofline r;
  r.flops = 2.0 * double(tokens) * double(c.top_k) * per_expert;
  r.bytes = double(hit_experts) * per_expert * kFp4BytesPerWeight + 4.0 * double(tokens) * double(c.hidden);
  r.floor_us = floor_us(r.flops, r.bytes, ceilings);
  return r;
}

Roofline linear_roofline(int64_t m, int64_t n, int64_t k, bool fp4_x, const Ceilings& ceilings) {
  Roofline r;
  r.flops = 2.0 * double(m) * double(n) * double(k);
  r.bytes = double(n) * double(k) * kFp4BytesPerWeight + double(m) * double(k) * (fp4_x ? kFp4BytesPerWeight : 2.0) +
            2.0 * double(m) * double(n);
  r.floor_us = floor_us(r.flops, r.bytes, ceilings);
  return r;
}

std::string gpu_name(int device) {
  cudaDeviceProp p{};
  FP4MOE_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  return p.name;
}

Ceilings measure_ceilings(int device) {
  DeviceGuard guard(device);
  Stream stream;
  TimingOptions o;
  o.warmup = 3;
  o.min_runs = o.max_runs = 20;
  o.min_total_ms = 0;
  Ceilings c;
  {
    constexpr size_t kBytes = size_t(1) << 30;
    DeviceBuffer src(device, kBytes), dst(device, kBytes);
    fill_random_bf16(src.as<uint16_t>(), int64_t(kBytes / 2), 1.0f, 1, stream.get());
    const Timing t = time_calls(
        [&] { FP4MOE_CUDA_CHECK(cudaMemcpyAsync(dst.get(), src.get(), kBytes, cudaMemcpyDeviceToDevice, stream.get())); },
        stream.get(), nullptr, o);
    c.copy_tbps = 2.0 * double(kBytes) / t.median_us * 1e-6;
  }
  {
    constexpr int kN = 8192;
    constexpr size_t kElems = size_t(kN) * kN;
    DeviceBuffer a(device, kElems * 2), b(device, kElems * 2), out(device, kElems * 2);
    fill_random_bf16(a.as<uint16_t>(), int64_t(kElems), 1.0f, 2, stream.get());
    fill_random_bf16(b.as<uint16_t>(), int64_t(kElems), 1.0f, 3, stream.get());
    Cublas blas(device, stream.get());
    const Timing t = time_calls([&] { gemm_bf16(blas.get(), kN, kN, kN, a.get(), kN, b.get(), kN, out.get(), kN); },
                                stream.get(), nullptr, o);
    c.bf16_tflops = 2.0 * double(kN) * kN * kN / t.median_us * 1e-6;
  }
  return c;
}

BaselineKind parse_baseline_kind(std::string_view name) {
  if (name == "none") return BaselineKind::kNone;
  if (name == "grouped") return BaselineKind::kGrouped;
  if (name == "loop") return BaselineKind::kLoop;
  if (name == "best") return BaselineKind::kBest;
  fail_arg("--baseline", "none, grouped, loop or best", name);
}

std::string_view baseline_kind_name(BaselineKind kind) {
  switch (kind) {
    case BaselineKind::kNone: return "none";
    case BaselineKind::kGrouped: return "grouped";
    case BaselineKind::kLoop: return "loop";
    case BaselineKind::kBest: return "best";
  }
  return "?";
}

// ---- MoE bench ----------------------------------------------------------------------------------------------------

struct MoeBench::State {
  MoeBenchSpec spec;
  Ceilings ceilings;
  int dev = 0;
  Stream stream;
  L2Flusher flusher;
  PreparedWeights prepared;
  std::unique_ptr<Runner> runner;
  DeviceBuffer workspace, x, ids, weights, out, out_base;
  // Baseline: BF16 weights, routed-row activations (sized for max_tokens · K), per-point plan.
  std::string baseline_status;
  std::unique_ptr<Cublas> blas;
  DeviceBuffer w13, w2, xg, g, h, y, row_token, slot_row;
  ExpertGemm fc1, fc2;
  int64_t routed_rows = 0;

  explicit State(const MoeBenchSpec& s) : spec(s), dev(s.device), flusher(s.device) {}

  void set_up_baseline(const DeviceMatrices& src13, const DeviceMatrices& src2);
  void enqueue_baseline(bool grouped, int64_t tokens);
  std::optional<BaselineResult> measure_baseline(const Routing& r, int64_t tokens);
};

void MoeBench::State::set_up_baseline(const DeviceMatrices& src13, const DeviceMatrices& src2) {
  const MoeConfig& c = spec.config;
  const int64_t el = c.num_local_experts, hd = c.hidden, in = c.intermediate, r1 = c.fc1_rows();
  const int64_t routed = spec.max_tokens * c.top_k;
  const double weight_bytes = 2.0 * double(el) * double(r1 * hd + hd * in);
  const double act_bytes = 2.0 * double(routed) * double(2 * hd + r1 + in) + 8.0 * double(routed);
  const double available = double(free_device_memory()) - double(kMemoryMargin);
  if (weight_bytes + act_bytes > available) {
    baseline_status = detail::concat("skipped: the BF16 baseline needs ", gib(weight_bytes + act_bytes),
                                     " of device memory, ", gib(std::max(available, 0.0)), " free");
    return;
  }
  w13 = DeviceBuffer(dev, size_t(2 * el * r1 * hd));
  w2 = DeviceBuffer(dev, size_t(2 * el * hd * in));
  launch_dequantize_bf16(src13.packed.as<uint8_t>(), src13.scales.as<uint8_t>(), src13.scale_2.as<float>(), el, r1,
                         hd, w13.as<uint16_t>(), stream.get());
  launch_dequantize_bf16(src2.packed.as<uint8_t>(), src2.scales.as<uint8_t>(), src2.scale_2.as<float>(), el, hd, in,
                         w2.as<uint16_t>(), stream.get());
  xg = DeviceBuffer(dev, size_t(2 * routed * hd));
  g = DeviceBuffer(dev, size_t(2 * routed * r1));
  h = DeviceBuffer(dev, size_t(2 * routed * in));
  y = DeviceBuffer(dev, size_t(2 * routed * hd));
  row_token = DeviceBuffer(dev, size_t(4 * routed));
  slot_row = DeviceBuffer(dev, size_t(4 * routed));
  blas = std::make_unique<Cublas>(dev, stream.get());
  stream.sync();
}

void MoeBench::State::enqueue_baseline(bool grouped, int64_t tokens) {
  const MoeConfig& c = spec.config;
  void* s = stream.get();
  launch_gather_rows(x.as<uint16_t>(), row_token.as<int32_t>(), routed_rows, c.hidden, xg.as<uint16_t>(), s);
  grouped ? fc1.run_grouped(blas->get()) : fc1.run_loop(blas->get());
  ActivationLaunch act;
  act.g = g.as<uint16_t>();
  act.h = h.as<uint16_t>();
  act.rows = routed_rows;
  act.intermediate = c.intermediate;
  act.activation = c.activation;
  act.order = c.fc1_order;
  act.swiglu = c.swiglu;
  launch_activation(act, s);
  grouped ? fc2.run_grouped(blas->get()) : fc2.run_loop(blas->get());
  launch_combine(y.as<uint16_t>(), slot_row.as<int32_t>(), weights.as<float>(), tokens, c.top_k, c.hidden,
                 out_base.as<uint16_t>(), s);
}

std::optional<BaselineResult> MoeBench::State::measure_baseline(const Routing& r, int64_t tokens) {
  if (!blas) return std::nullopt;
  const MoeConfig& c = spec.config;
  const BaselinePlan plan = make_baseline_plan(c, r);
  routed_rows = int64_t(plan.row_token.size());
  FP4MOE_CUDA_CHECK(cudaMemcpy(row_token.get(), plan.row_token.data(), plan.row_token.size() * 4,
                               cudaMemcpyHostToDevice));
  FP4MOE_CUDA_CHECK(cudaMemcpy(slot_row.get(), plan.slot_row.data(), plan.slot_row.size() * 4,
                               cudaMemcpyHostToDevice));
  fc1.plan(plan, dev, c.fc1_rows(), c.hidden, w13.as<uint16_t>(), xg.as<uint16_t>(), g.as<uint16_t>());
  fc2.plan(plan, dev, c.hidden, c.intermediate, w2.as<uint16_t>(), h.as<uint16_t>(), y.as<uint16_t>());
  std::optional<BaselineResult> best;
  for (const bool grouped : {true, false}) {
    if (spec.baseline == (grouped ? BaselineKind::kLoop : BaselineKind::kGrouped)) continue;
    BaselineResult res;
    res.impl = grouped ? "grouped" : "loop";
    res.timing = time_point([&] { enqueue_baseline(grouped, tokens); }, stream.get(), flusher, spec.timing,
                            spec.graph, false, &res.graph);
    if (!best || res.timing.median_us < best->timing.median_us) best = res;
  }
  return best;
}

// Order: source layer → prepared weights → our buffers → baseline (BF16 weights from the source, while memory
// allows) → source released.
MoeBench::MoeBench(const MoeBenchSpec& spec, const Ceilings& ceilings)
    : s_([&] {
        DeviceGuard guard(spec.device);  // the stream and the L2 buffer belong to spec.device
        return std::make_unique<State>(spec);
      }()) {
  State& s = *s_;
  const MoeConfig& c = spec.config;
  const int64_t t = spec.max_tokens;
  FP4MOE_CHECK_ARG(t >= 1, "max_tokens", ">= 1", t);
  DeviceGuard guard(s.dev);
  s.ceilings = ceilings;
  const DeviceMatrices w13 = make_device_matrices(s.dev, c.num_local_experts, c.fc1_rows(), c.hidden,
                                                  spec.seed * 4 + 1, s.stream.get());
  const DeviceMatrices w2 = make_device_matrices(s.dev, c.num_local_experts, c.hidden, c.intermediate,
                                                 spec.seed * 4 + 2, s.stream.get());
  s.prepared = prepare_weights(c, device_layer_view(c, w13, w2, s.dev), Backend::kCuda);
  s.runner = std::make_unique<Runner>(s.prepared);
  s.workspace = DeviceBuffer(s.dev, s.runner->workspace_size(t));
  s.x = DeviceBuffer(s.dev, size_t(2 * t * c.hidden));
  s.ids = DeviceBuffer(s.dev, size_t(4 * t * c.top_k));
  s.weights = DeviceBuffer(s.dev, size_t(4 * t * c.top_k));
  s.out = DeviceBuffer(s.dev, size_t(2 * t * c.hidden));
  s.out_base = DeviceBuffer(s.dev, size_t(2 * t * c.hidden));
  fill_random_bf16(s.x.as<uint16_t>(), t * c.hidden, 1.0f, spec.seed * 4 + 3, s.stream.get());
  if (spec.baseline == BaselineKind::kNone) {
    s.baseline_status = "not asked for (--baseline none)";
  } else {
    s.set_up_baseline(w13, w2);
  }
  s.stream.sync();
}

MoeBench::~MoeBench() = default;

const std::string& MoeBench::baseline_status() const { return s_->baseline_status; }
size_t MoeBench::prepared_bytes() const { return s_->prepared.bytes(); }

MoePoint MoeBench::measure(int64_t tokens) {
  State& s = *s_;
  const MoeConfig& c = s.spec.config;
  FP4MOE_CHECK_ARG(tokens >= 1 && tokens <= s.spec.max_tokens, "tokens",
                   detail::concat("a count in [1, ", s.spec.max_tokens, "]"), tokens);
  DeviceGuard guard(s.dev);
  const Routing r = make_routing(c, tokens, s.spec.seed + uint64_t(tokens));
  FP4MOE_CUDA_CHECK(cudaMemcpy(s.ids.get(), r.ids.data(), r.ids.size() * 4, cudaMemcpyHostToDevice));
  FP4MOE_CUDA_CHECK(cudaMemcpy(s.weights.get(), r.weights.data(), r.weights.size() * 4, cudaMemcpyHostToDevice));
  const Device d = Device::cuda(s.dev);
  MoeInputs in;
  in.x = TensorView(s.x.get(), DType::kBF16, {tokens, c.hidden}, d);
  in.topk_ids = TensorView(s.ids.get(), DType::kI32, {tokens, c.top_k}, d);
  in.topk_weights = TensorView(s.weights.get(), DType::kF32, {tokens, c.top_k}, d);
  const TensorView out(s.out.get(), DType::kBF16, {tokens, c.hidden}, d);
  MoePoint p;
  p.tokens = tokens;
  p.hit_experts = r.hit_experts;
  p.roofline = moe_roofline(c, tokens, r.hit_experts, s.ceilings);
  RunOptions options;
  options.tile_rows = s.spec.tile_rows;
  options.weight_rows_per_block = s.spec.weight_rows_per_block;
  p.ours = time_point([&] { s.runner->run(in, out, s.workspace.get(), s.workspace.bytes(), s.stream.get(), options); },
                      s.stream.get(), s.flusher, s.spec.timing, s.spec.graph, true, nullptr);
  p.baseline = s.measure_baseline(r, tokens);
  if (p.baseline) p.baseline->rel_l2 = rel_l2_device(s.out.get(), s.out_base.get(), tokens * c.hidden);
  return p;
}

// ---- linear bench -------------------------------------------------------------------------------------------------

struct LinearBench::State {
  LinearBenchSpec spec;
  Ceilings ceilings;
  int dev = 0;
  Stream stream;
  L2Flusher flusher;
  PreparedLinear prepared;
  std::unique_ptr<Cublas> blas;
  DeviceBuffer w_bf16, x, x_fp4, x_scale, out, out_base;

  explicit State(const LinearBenchSpec& s) : spec(s), dev(s.device), flusher(s.device) {}
};

LinearBench::LinearBench(const LinearBenchSpec& spec, const Ceilings& ceilings)
    : s_([&] {
        DeviceGuard guard(spec.device);
        return std::make_unique<State>(spec);
      }()) {
  State& s = *s_;
  const int64_t n = spec.n, k = spec.k, m = spec.max_m;
  FP4MOE_CHECK_ARG(n >= 1 && k >= 16 && k % 16 == 0, "--n/--k", "N >= 1 and K a positive multiple of 16",
                   detail::concat("N = ", n, ", K = ", k));
  FP4MOE_CHECK_ARG(m >= 1, "max_m", ">= 1", m);
  DeviceGuard guard(s.dev);
  s.ceilings = ceilings;
  const DeviceMatrices w = make_device_matrices(s.dev, 1, n, k, spec.seed * 4 + 1, s.stream.get());
  // Host copies: the canonical checkpoint form that every backend's prepare_linear() accepts.
  std::vector<uint8_t> packed(w.packed.bytes()), scales(w.scales.bytes());
  float scale_2 = 0;
  FP4MOE_CUDA_CHECK(cudaMemcpy(packed.data(), w.packed.get(), packed.size(), cudaMemcpyDeviceToHost));
  FP4MOE_CUDA_CHECK(cudaMemcpy(scales.data(), w.scales.get(), scales.size(), cudaMemcpyDeviceToHost));
  FP4MOE_CUDA_CHECK(cudaMemcpy(&scale_2, w.scale_2.get(), sizeof scale_2, cudaMemcpyDeviceToHost));
  LinearWeights lw;
  lw.weight = TensorView(packed.data(), DType::kU8, {n, k / 2});
  lw.weight_scale = TensorView(scales.data(), DType::kE4M3, {n, k / kBlockSize});
  lw.weight_scale_2 = TensorView(&scale_2, DType::kF32, {1});
  s.prepared = prepare_linear(lw, Backend::kCuda);
  if (spec.baseline) {
    s.w_bf16 = DeviceBuffer(s.dev, size_t(2 * n * k));
    launch_dequantize_bf16(w.packed.as<uint8_t>(), w.scales.as<uint8_t>(), w.scale_2.as<float>(), 1, n, k,
                           s.w_bf16.as<uint16_t>(), s.stream.get());
    s.blas = std::make_unique<Cublas>(s.dev, s.stream.get());
    s.out_base = DeviceBuffer(s.dev, size_t(2 * m * n));
  }
  s.x = DeviceBuffer(s.dev, size_t(2 * m * k));
  s.out = DeviceBuffer(s.dev, size_t(2 * m * n));
  if (spec.mode == Mode::kW4A4) {
    s.x_fp4 = DeviceBuffer(s.dev, size_t(m * k / 2));
    s.x_scale = DeviceBuffer(s.dev, size_t(m * k / kBlockSize));
  }
  fill_random_bf16(s.x.as<uint16_t>(), m * k, 1.0f, spec.seed * 4 + 3, s.stream.get());
  s.stream.sync();
}

LinearBench::~LinearBench() = default;

LinearPoint LinearBench::measure(int64_t m) {
  State& s = *s_;
  const int64_t n = s.spec.n, k = s.spec.k;
  FP4MOE_CHECK_ARG(m >= 1 && m <= s.spec.max_m, "m", detail::concat("a count in [1, ", s.spec.max_m, "]"), m);
  DeviceGuard guard(s.dev);
  const Device d = Device::cuda(s.dev);
  const bool fp4_x = s.spec.mode == Mode::kW4A4;
  LinearInputs in;
  in.x = TensorView(s.x.get(), DType::kBF16, {m, k}, d);
  if (fp4_x) {  // x quantized once, outside the timing, with the random problems' calibration (amax 8)
    const float gs = kE4M3Max * kE2M1Max / kRandomXAmax;
    const TensorView packed(s.x_fp4.get(), DType::kU8, {m, k / 2}, d);
    const TensorView scales(s.x_scale.get(), DType::kE4M3, {m, k / kBlockSize}, d);
    quantize_nvfp4_cuda(in.x, gs, packed, scales, ScaleLayout::kLinear, s.stream.get());
    in.x = packed;
    in.x_scale = scales;
    in.x_global_scale = gs;
  }
  const TensorView out(s.out.get(), DType::kBF16, {m, n}, d);
  LinearPoint p;
  p.m = m;
  p.roofline = linear_roofline(m, n, k, fp4_x, s.ceilings);
  p.ours = time_point([&] { linear_forward(s.prepared, in, out, s.stream.get()); }, s.stream.get(), s.flusher,
                      s.spec.timing, s.spec.graph, true, nullptr);
  if (s.blas) {
    BaselineResult b;
    b.impl = "gemm";
    b.timing = time_point(
        [&] { gemm_bf16(s.blas->get(), int(n), int(m), int(k), s.w_bf16.get(), int(k), s.x.get(), int(k),
                        s.out_base.get(), int(n)); },
        s.stream.get(), s.flusher, s.spec.timing, s.spec.graph, false, &b.graph);
    b.rel_l2 = rel_l2_device(s.out.get(), s.out_base.get(), m * n);
    p.baseline = b;
  }
  return p;
}

}  // namespace fp4moe::bench
