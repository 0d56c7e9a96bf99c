// `fp4moe bench`: times a backend over a list of token counts (median of repeated runs, wall clock).
// The CUDA bench with events, cold L2, roofline ratios and the cuBLAS baseline comes with the CUDA backend.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "fp4moe/build_info.hpp"
#include "commands.hpp"
#include "fp4moe/moe.hpp"
#include "problem.hpp"
#include "problem/random_problem.hpp"

namespace fp4moe::cli {

namespace {

struct BenchOptions {
  ProblemOptions problem;
  std::vector<int64_t> tokens{1, 8, 64};
  int iters = 5;
  std::string json;
};

double flops(const MoeConfig& c, int64_t tokens) {
  return 2.0 * double(tokens) * double(c.top_k) * double(c.fc1_rows() * c.hidden + c.hidden * c.intermediate);
}

double median_us(const Runner& runner, const HostInputs& in, std::vector<std::byte>& ws, int iters) {
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

void run_bench(const BenchOptions& o) {
  const MoeConfig config = problem_config(o.problem);
  const uint64_t seed = problem_seed(o.problem);
  const HostLayer layer = make_random_layer(config, seed);
  const PreparedWeights w = prepare_weights(config, layer.view(), parse_backend(o.problem.backend, "--backend"));
  const Runner runner(w);
  std::cout << "bench: " << config.describe() << " backend=" << backend_name(w.backend()) << " seed=" << seed
            << " (median of " << o.iters << ", wall clock)\n";
  std::printf("%8s %14s %12s\n", "tokens", "us", "GFLOP/s");
  nlohmann::json points = nlohmann::json::array();
  for (int64_t t : o.tokens) {
    const HostInputs in = make_random_inputs(config, t, seed + uint64_t(t));
    std::vector<std::byte> ws(runner.workspace_size(t));
    const double us = median_us(runner, in, ws, o.iters);
    const double gflops = flops(config, t) / us * 1e-3;
    std::printf("%8lld %14.1f %12.2f\n", static_cast<long long>(t), us, gflops);
    points.push_back({{"tokens", t}, {"us", us}});
  }
  if (!o.json.empty()) {
    nlohmann::json j = {{"device", backend_name(w.backend())}, {"commit", build_info::kCommit},
                        {"preset", o.problem.preset}, {"mode", o.problem.mode}, {"points", points}};
    std::ofstream(o.json) << j.dump(2) << "\n";
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "Time a backend over a list of token counts");
  add_problem_options(cmd, o->problem);
  cmd->add_option("--tokens", o->tokens, "Comma-separated token counts")->delimiter(',')->capture_default_str();
  cmd->add_option("--iters", o->iters, "Timed runs per point (median reported)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--json", o->json, "Also write the results as JSON to this file");
  cmd->callback([o] { run_bench(*o); });
}

}  // namespace fp4moe::cli
