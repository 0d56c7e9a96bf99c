// `fp4moe info`: version, build configuration, compiled CUDA targets, GPUs found, and what `auto` picks.
#include <omp.h>

#include <iostream>

#include "cuda/common/device_info.hpp"
#include "fp4moe/build_info.hpp"
#include "commands.hpp"
#include "fp4moe/moe.hpp"

namespace fp4moe::cli {

namespace {

std::string cuda_version(int v) {
  return v == 0 ? std::string("none") : std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}

void print_info() {
  std::cout << "fp4moe " << build_info::kVersion << " (commit " << build_info::kCommit << ", "
            << build_info::kBuildType << ")\n"
            << "compilers: " << build_info::kCxxCompiler << ", nvcc " << build_info::kCudaCompilerVersion << "\n"
            << "CUDA targets: " << build_info::kCudaArchitectures << "\n"
            << "CPU threads: " << omp_get_max_threads() << "\n";
  const GpuSurvey& s = survey_gpus();
  std::cout << "CUDA runtime " << cuda_version(s.runtime_version) << ", driver " << cuda_version(s.driver_version)
            << "\n";
  if (s.devices.empty()) std::cout << "GPUs: none (" << s.reason << ")\n";
  for (const GpuInfo& g : s.devices) {
    std::cout << "GPU " << g.ordinal << ": " << g.name << ", sm_" << g.cc_major << g.cc_minor << ", "
              << g.multiprocessors << " SMs, " << (g.memory_bytes >> 20) << " MiB, L2 " << (g.l2_bytes >> 20)
              << " MiB" << (g.supported() ? "" : " (unsupported: fp4moe needs SM80 or newer)") << "\n";
  }
  std::string reason;
  const Backend b = resolve_backend(Backend::kAuto, &reason);
  std::cout << "backend auto -> " << backend_name(b) << ": " << reason << "\n";
}

}  // namespace

int& exit_status() {
  static int status = 0;
  return status;
}

void add_info_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("info", "Version, build configuration, GPUs, and the backend auto picks");
  cmd->callback(print_info);
}

}  // namespace fp4moe::cli
