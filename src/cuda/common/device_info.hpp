// Which CUDA GPUs this process can see (host code, CUDA runtime API only).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace fp4moe {

struct GpuInfo {
  int ordinal = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int multiprocessors = 0;
  size_t memory_bytes = 0;
  size_t l2_bytes = 0;
  bool supported() const { return cc_major >= 8; }  // the library targets SM80 and newer
};

struct GpuSurvey {
  std::vector<GpuInfo> devices;
  std::string reason;       // why the list is empty (the runtime's error text), else ""
  int runtime_version = 0;  // e.g. 13000
  int driver_version = 0;   // 0 when no driver is installed
};

// Queried once per process and cached (cheap to call).
const GpuSurvey& survey_gpus();

// Multiprocessors of the current device (a runtime attribute query: no synchronization). Throws Error on failure.
int current_multiprocessor_count();

}  // namespace fp4moe
