// `fp4moe bench`: times the MoE layer (or, with --op linear, the dense NVFP4 linear layer) over a list of sizes.
// CUDA backend: CUDA events around one call at a time with the L2 flushed before each, median of many runs, the
// device's copy bandwidth and BF16 GEMM rate measured in the same run, the roofline floor of anchors.md, and a
// cuBLAS BF16 baseline of the same layer (src/bench/bench_cuda.hpp). CPU backend: wall clock, median of --iters
// runs, no baseline.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "bench/bench_cuda.hpp"
#include "commands.hpp"
#include "fp4moe/build_info.hpp"
#include "fp4moe/error.hpp"
#include "fp4moe/moe.hpp"
#include "problem.hpp"
#include "problem/random_problem.hpp"

namespace fp4moe::cli {

namespace {

using nlohmann::json;

struct BenchOptions {
  ProblemOptions problem;
  std::string op = "moe";
  std::vector<int64_t> tokens;  // default: kCudaTokens (CUDA) or kCpuTokens (CPU)
  std::vector<int64_t> m{1, 16, 256};
  int64_t n = 4096, k = 4096;
  std::optional<int> iters;     // CPU: runs per point; CUDA: the minimum number of timed runs
  double min_ms = 200;
  bool graph = false;
  bool warm_l2 = false;
  int tile_rows = 0;
  int weight_rows_per_block = 0;
  std::string baseline = "best";
  int device = 0;
  std::string json_path;
};

const std::vector<int64_t> kCudaTokens{1, 8, 64, 512, 4096, 16384};
const std::vector<int64_t> kCpuTokens{1, 8, 64};
constexpr int kCpuIters = 5;

std::string iso_date() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

void write_json(const std::string& path, const json& j) {
  if (path.empty()) return;
  std::ofstream f(path);
  FP4MOE_CHECK(f.good(), "cannot write ", path);
  f << j.dump(2) << "\n";
  std::cout << "wrote " << path << "\n";
}

json optional_number(bool present, double v) { return present ? json(v) : json(nullptr); }

bench::TimingOptions timing_options(const BenchOptions& o) {
  bench::TimingOptions t;
  t.min_runs = o.iters.value_or(t.min_runs);
  t.min_total_ms = o.min_ms;
  t.flush_l2 = !o.warm_l2;
  return t;
}

// ---- CUDA -----------------------------------------------------------------------------------------------------------

bench::Ceilings cuda_preamble(const BenchOptions& o, const std::string& what, uint64_t seed, json& j) {
  const std::string device = bench::gpu_name(o.device);
  std::cout << "bench: " << what << " backend=cuda device=" << device << " (cuda:" << o.device << ") seed=" << seed
            << " graph=" << (o.graph ? "yes" : "no") << " l2=" << (o.warm_l2 ? "warm" : "cold") << "\n";
  const bench::Ceilings c = bench::measure_ceilings(o.device);
  std::printf("ceilings (measured now): copy %.3f TB/s (1 GiB D2D, read+write), BF16 GEMM %.1f TFLOP/s (cuBLAS 8192^3)\n",
              c.copy_tbps, c.bf16_tflops);
  j = {{"device", device},           {"commit", build_info::kCommit}, {"date", iso_date()},
       {"backend", "cuda"},          {"op", o.op},                    {"copy_tbps", c.copy_tbps},
       {"bf16_tflops", c.bf16_tflops}, {"graph", o.graph},            {"l2", o.warm_l2 ? "warm" : "cold"},
       {"seed", seed}};
  const bench::TimingOptions t = timing_options(o);
  j["timing"] = {{"min_runs", t.min_runs}, {"min_ms", t.min_total_ms}, {"warmup", t.warmup}, {"statistic", "median"}};
  return c;
}

void print_header(const char* size_name) {
  std::printf("%7s %5s %11s %8s %6s %10s %7s %11s %7s %8s  %s\n", size_name, "A", "us", "TFLOP/s", "TB/s",
              "floor_us", "floor/t", "baseline_us", "speedup", "rel_l2", "baseline");
}

// One table row and its JSON fields; `hit` < 0 prints "-" (linear). The last column names the baseline variant
// timed, and says when a graph was asked for but the baseline could not be captured (then timed as direct calls).
json report_point(int64_t size, int64_t hit, const bench::Timing& t, const bench::Roofline& r,
                  const std::optional<bench::BaselineResult>& b, bool graph) {
  const double us = t.median_us;
  std::printf("%7lld %5s %11.1f %8.1f %6.3f %10.1f %7.3f", static_cast<long long>(size),
              hit < 0 ? "-" : std::to_string(hit).c_str(), us, r.flops / us * 1e-6, r.bytes / us * 1e-6,
              r.floor_us, r.floor_us / us);
  if (b) {
    std::printf(" %11.1f %7.2f %8.1e  %s%s\n", b->timing.median_us, b->timing.median_us / us, b->rel_l2,
                b->impl.c_str(), graph && !b->graph ? " (not graphed)" : "");
  } else {
    std::printf(" %11s %7s %8s\n", "-", "-", "-");
  }
  std::fflush(stdout);
  json p = {{"us", us},          {"p10_us", t.p10_us},          {"p90_us", t.p90_us},
            {"runs", t.runs},    {"tflops", r.flops / us * 1e-6}, {"tbps", r.bytes / us * 1e-6},
            {"flops", r.flops},  {"bytes", r.bytes},            {"floor_us", r.floor_us},
            {"floor_ratio", r.floor_us / us}};
  p["baseline_us"] = optional_number(b.has_value(), b ? b->timing.median_us : 0);
  p["baseline_p10_us"] = optional_number(b.has_value(), b ? b->timing.p10_us : 0);
  p["baseline_p90_us"] = optional_number(b.has_value(), b ? b->timing.p90_us : 0);
  p["speedup"] = optional_number(b.has_value(), b ? b->timing.median_us / us : 0);
  p["baseline_rel_l2"] = optional_number(b.has_value(), b ? b->rel_l2 : 0);
  p["baseline_impl"] = b ? json(b->impl) : json(nullptr);
  p["baseline_graph"] = b ? json(b->graph) : json(nullptr);
  return p;
}

void run_cuda_moe(const BenchOptions& o, const MoeConfig& config, uint64_t seed) {
  json j;
  const bench::Ceilings ceilings = cuda_preamble(o, config.describe(), seed, j);
  bench::MoeBenchSpec spec;
  spec.config = config;
  spec.seed = seed;
  spec.max_tokens = *std::max_element(o.tokens.begin(), o.tokens.end());
  spec.device = o.device;
  spec.graph = o.graph;
  spec.tile_rows = o.tile_rows;
  spec.weight_rows_per_block = o.weight_rows_per_block;
  spec.baseline = bench::parse_baseline_kind(o.baseline);
  spec.timing = timing_options(o);
  bench::MoeBench bench(spec, ceilings);
  const std::string& status = bench.baseline_status();
  std::cout << "prepared weights: " << bench.prepared_bytes() << " bytes; baseline: cuBLAS BF16 ("
            << (status.empty() ? std::string(bench::baseline_kind_name(spec.baseline)) : status) << ")\n";
  print_header("tokens");
  json points = json::array();
  for (int64_t t : o.tokens) {
    const bench::MoePoint p = bench.measure(t);
    json row = report_point(t, p.hit_experts, p.ours, p.roofline, p.baseline, o.graph);
    row["tokens"] = t;
    row["hit_experts"] = p.hit_experts;
    points.push_back(row);
  }
  j["preset"] = o.problem.preset;
  j["config"] = config.describe();
  j["mode"] = o.problem.mode;
  j["baseline"] = bench::baseline_kind_name(spec.baseline);
  j["baseline_status"] = status;
  j["points"] = points;
  write_json(o.json_path, j);
}

void run_cuda_linear(const BenchOptions& o, uint64_t seed) {
  json j;
  const std::string what = "linear N=" + std::to_string(o.n) + " K=" + std::to_string(o.k) + " mode=" + o.problem.mode;
  const bench::Ceilings ceilings = cuda_preamble(o, what, seed, j);
  bench::LinearBenchSpec spec;
  spec.n = o.n;
  spec.k = o.k;
  spec.max_m = *std::max_element(o.m.begin(), o.m.end());
  spec.mode = parse_mode(o.problem.mode, "--mode");
  spec.seed = seed;
  spec.device = o.device;
  spec.graph = o.graph;
  spec.baseline = o.baseline != "none";
  spec.timing = timing_options(o);
  bench::LinearBench bench(spec, ceilings);
  std::cout << "baseline: " << (spec.baseline ? "cuBLAS BF16 GEMM (cublasGemmEx)" : "none") << "\n";
  print_header("m");
  json points = json::array();
  for (int64_t m : o.m) {
    const bench::LinearPoint p = bench.measure(m);
    json row = report_point(m, -1, p.ours, p.roofline, p.baseline, o.graph);
    row["m"] = m;
    points.push_back(row);
  }
  j["preset"] = nullptr;
  j["n"] = o.n;
  j["k"] = o.k;
  j["mode"] = o.problem.mode;
  j["baseline"] = spec.baseline ? "gemm" : "none";
  j["points"] = points;
  write_json(o.json_path, j);
}

// ---- CPU ------------------------------------------------------------------------------------------------------------

double cpu_median_us(const Runner& runner, const HostInputs& in, std::vector<std::byte>& ws, int iters) {
  std::vector<uint16_t> out(size_t(in.tokens * in.hidden));
  const TensorView out_view(out.data(), DType::kBF16, {in.tokens, in.hidden});
  runner.run(in.view(), out_view, ws.data(), ws.size());  // warm-up
  std::vector<double> times;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    runner.run(in.view(), out_view, ws.data(), ws.size());
    times.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void run_cpu_moe(const BenchOptions& o, const MoeConfig& config, uint64_t seed) {
  const int iters = o.iters.value_or(kCpuIters);
  const HostLayer layer = make_random_layer(config, seed);
  const PreparedWeights w = prepare_weights(config, layer.view(), Backend::kCpu);
  const Runner runner(w);
  std::cout << "bench: " << config.describe() << " backend=cpu seed=" << seed << " (median of " << iters
            << ", wall clock" << (o.graph ? "; --graph ignored on the CPU" : "") << ")\n";
  std::printf("%8s %14s %12s\n", "tokens", "us", "GFLOP/s");
  json points = json::array();
  for (int64_t t : o.tokens) {
    const HostInputs in = make_random_inputs(config, t, seed + uint64_t(t));
    std::vector<std::byte> ws(runner.workspace_size(t));
    const double us = cpu_median_us(runner, in, ws, iters);
    const double gflops = bench::moe_roofline(config, t, 0, {1, 1}).flops / us * 1e-3;
    std::printf("%8lld %14.1f %12.2f\n", static_cast<long long>(t), us, gflops);
    points.push_back({{"tokens", t}, {"us", us}, {"gflops", gflops}});
  }
  write_json(o.json_path, {{"device", "cpu"},   {"backend", "cpu"},        {"op", "moe"},
                           {"commit", build_info::kCommit}, {"date", iso_date()}, {"preset", o.problem.preset},
                           {"config", config.describe()},   {"mode", o.problem.mode}, {"graph", false},
                           {"seed", seed},      {"points", points}});
}

void run_bench(BenchOptions o) {
  const Backend backend = resolve_backend(parse_backend(o.problem.backend, "--backend"));
  const uint64_t seed = problem_seed(o.problem);
  if (o.tokens.empty()) o.tokens = backend == Backend::kCuda ? kCudaTokens : kCpuTokens;
  if (o.op == "linear") {
    FP4MOE_CHECK_ARG(backend == Backend::kCuda, "--backend", "cuda (or auto on a GPU machine) for --op linear", "cpu");
    run_cuda_linear(o, seed);
  } else if (backend == Backend::kCuda) {
    run_cuda_moe(o, problem_config(o.problem), seed);
  } else {
    run_cpu_moe(o, problem_config(o.problem), seed);
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "Time the MoE layer (or a linear layer) over a list of sizes");
  add_problem_options(cmd, o->problem);
  cmd->add_option("--op", o->op, "moe or linear")->check(CLI::IsMember({"moe", "linear"}))->capture_default_str();
  cmd->add_option("--tokens", o->tokens, "Comma-separated token counts (default: 1,8,64,512,4096,16384 on CUDA, "
                                         "1,8,64 on the CPU)")
      ->delimiter(',')->check(CLI::PositiveNumber);
  cmd->add_option("--m", o->m, "--op linear: comma-separated row counts M of x")
      ->delimiter(',')->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--n", o->n, "--op linear: output features N")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--k", o->k, "--op linear: input features K (multiple of 16)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--iters", o->iters, "CPU: timed runs per point (default 5); CUDA: at least this many (default 20)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--min-ms", o->min_ms, "CUDA: time each point over at least this much GPU time")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_flag("--graph", o->graph, "CUDA: capture each point's call in a CUDA graph once and time its replays");
  cmd->add_option("--tile-rows", o->tile_rows, "CUDA MoE: rows per work tile, 8, 16, 24 or 32 (streaming kernels), "
                  "64, 128 or 160 (wgmma kernels, sm_90a) (default 0 = chosen from the batch shape)")
      ->check(CLI::IsMember({0, 8, 16, 24, 32, 64, 128, 160}))
      ->capture_default_str();
  cmd->add_option("--weight-rows-per-block", o->weight_rows_per_block,
                  "CUDA MoE, streaming kernels: weight rows per block, 32 (K split over 4 warps) or 128 (4 warps share "
                  "the token tile); same results (default 0 = chosen from the batch shape)")
      ->check(CLI::IsMember({0, 32, 128}))
      ->capture_default_str();
  cmd->add_flag("--warm-l2", o->warm_l2, "CUDA: do not flush the L2 between timed runs");
  cmd->add_option("--baseline", o->baseline, "CUDA: cuBLAS BF16 baseline GEMMs: grouped, loop, best (the faster of both) or none")
      ->check(CLI::IsMember({"grouped", "loop", "best", "none"}))->capture_default_str();
  cmd->add_option("--device", o->device, "CUDA device ordinal")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--json", o->json_path, "Also write the results as JSON to this file");
  cmd->callback([o] { run_bench(*o); });
}

}  // namespace fp4moe::cli
