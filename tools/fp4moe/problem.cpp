// Random-problem options of `check` and `bench`.
#include "problem.hpp"

#include <random>

namespace fp4moe::cli {

void add_problem_options(CLI::App* cmd, ProblemOptions& o) {
  cmd->add_option("--preset", o.preset, "Model shape: " + preset_names())->capture_default_str();
  cmd->add_option("--experts", o.experts, "E (overrides the preset)");
  cmd->add_option("--top-k", o.top_k, "K (overrides the preset)");
  cmd->add_option("--hidden", o.hidden, "H (overrides the preset)");
  cmd->add_option("--intermediate", o.intermediate, "I (overrides the preset)");
  cmd->add_option("--mode", o.mode, "w4a16 or w4a4")->check(CLI::IsMember({"w4a16", "w4a4"}))->capture_default_str();
  cmd->add_option("--activation", o.activation, "silu|gelu_tanh|relu2|swiglu_clamped (default: the preset's)");
  cmd->add_option("--backend", o.backend, "auto, cpu or cuda")->capture_default_str();
  cmd->add_option("--seed", o.seed, "Random seed (default: fresh; printed)");
}

MoeConfig problem_config(const ProblemOptions& o) {
  MoeConfig c = config_from_preset(find_preset(o.preset), parse_mode(o.mode, "--mode"));
  if (o.experts) c.num_experts = c.num_local_experts = *o.experts;
  if (o.top_k) c.top_k = *o.top_k;
  if (o.hidden) c.hidden = *o.hidden;
  if (o.intermediate) c.intermediate = *o.intermediate;
  if (o.activation) c.activation = parse_activation(*o.activation, "--activation");
  c.validate();
  return c;
}

uint64_t problem_seed(const ProblemOptions& o) {
  if (o.seed) return *o.seed;
  std::random_device rd;
  return (uint64_t(rd()) << 32) | rd();
}

}  // namespace fp4moe::cli
