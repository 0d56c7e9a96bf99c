// `fp4moe check`: a random problem on a backend against the CPU reference, with the spec §6 verdict.
#include <cstdio>
#include <iostream>

#include "commands.hpp"
#include "host_forward.hpp"
#include "fp4moe/moe.hpp"
#include "problem.hpp"
#include "problem/random_problem.hpp"

namespace fp4moe::cli {

namespace {

struct CheckOptions {
  ProblemOptions problem;
  int64_t tokens = 16;
};

std::vector<uint16_t> run_on(const PreparedWeights& w, const HostInputs& in) {
  std::vector<uint16_t> out(size_t(in.tokens * in.hidden), 0x7FC1);  // poisoned: NaN until written
  forward_host_tensors(w, in.view(), TensorView(out.data(), DType::kBF16, {in.tokens, in.hidden}));
  return out;
}

void run_check(const CheckOptions& o) {
  const MoeConfig config = problem_config(o.problem);
  const uint64_t seed = problem_seed(o.problem);
  std::cout << "check: " << config.describe() << " tokens=" << o.tokens << " seed=" << seed << "\n";
  const HostLayer layer = make_random_layer(config, seed);
  const HostInputs inputs = make_random_inputs(config, o.tokens, seed + 1);
  const PreparedWeights tested = prepare_weights(config, layer.view(), parse_backend(o.problem.backend, "--backend"));
  const PreparedWeights reference = prepare_weights(config, layer.view(), Backend::kCpu);
  const std::vector<uint16_t> got = run_on(tested, inputs);
  const std::vector<uint16_t> want = run_on(reference, inputs);
  const ErrorStats s = compare_bf16(got.data(), want.data(), int64_t(got.size()));
  const double tol = rel_l2_tolerance(config.mode);
  const bool pass = s.nonfinite == 0 && s.rel_l2 <= tol;
  std::printf("backend %s vs cpu reference: max_abs=%.3e mean_abs=%.3e rel_l2=%.3e (tolerance %.0e) nonfinite=%lld\n",
              std::string(backend_name(tested.backend())).c_str(), s.max_abs, s.mean_abs, s.rel_l2, tol,
              static_cast<long long>(s.nonfinite));
  std::cout << (pass ? "PASS" : "FAIL") << "\n";
  if (!pass) exit_status() = 1;
}

}  // namespace

void add_check_command(CLI::App& app) {
  auto o = std::make_shared<CheckOptions>();
  CLI::App* cmd = app.add_subcommand("check", "Compare a backend with the CPU reference on a random problem");
  add_problem_options(cmd, o->problem);
  cmd->add_option("--tokens", o->tokens, "Number of tokens T")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->callback([o] { run_check(*o); });
}

}  // namespace fp4moe::cli
