// fp4moe: command-line entry point (info, quantize, moe, check, bench).
#include <iostream>

#include "fp4moe/build_info.hpp"
#include "fp4moe/error.hpp"
#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"fp4moe: fused NVFP4 Mixture-of-Experts layers (CPU reference and CUDA)", "fp4moe"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("fp4moe ") + fp4moe::build_info::kVersion);
  fp4moe::cli::add_info_command(app);
  fp4moe::cli::add_quantize_command(app);
  fp4moe::cli::add_moe_command(app);
  fp4moe::cli::add_check_command(app);
  fp4moe::cli::add_bench_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const fp4moe::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  return fp4moe::cli::exit_status();
}
