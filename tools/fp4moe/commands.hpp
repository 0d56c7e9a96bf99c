// The fp4moe CLI: one function per subcommand registers its options and callback on the CLI11 app.
#pragma once

#include <CLI/CLI.hpp>

namespace fp4moe::cli {

void add_info_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_moe_command(CLI::App& app);
void add_check_command(CLI::App& app);
void add_bench_command(CLI::App& app);

// Set by a command whose verdict is negative (check); main() returns it.
int& exit_status();

}  // namespace fp4moe::cli
