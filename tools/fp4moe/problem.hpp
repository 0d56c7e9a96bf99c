// Shared by `check` and `bench`: the options that describe a random problem (a preset or explicit shapes).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "fp4moe/config.hpp"

namespace fp4moe::cli {

struct ProblemOptions {
  std::string preset = "tiny";
  std::optional<int64_t> experts, top_k, hidden, intermediate;
  std::string mode = "w4a16";
  std::optional<std::string> activation;
  std::string backend = "auto";
  std::optional<uint64_t> seed;  // default: fresh from std::random_device
};

void add_problem_options(CLI::App* cmd, ProblemOptions& o);
// The config: the preset, with any explicit shape flag or the activation overriding it.
MoeConfig problem_config(const ProblemOptions& o);
uint64_t problem_seed(const ProblemOptions& o);

}  // namespace fp4moe::cli
