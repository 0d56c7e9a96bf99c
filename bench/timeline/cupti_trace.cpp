// Kernel timeline of any CUDA program, for measurement only (not part of the library). Loaded by the CUDA driver
// through CUDA_INJECTION64_PATH, it asks CUPTI for an activity record of every kernel and memset, CUDA graph nodes
// included, and at exit writes them to $FP4MOE_TRACE_OUT (default fp4moe-trace.csv), one per line:
//   kind (K kernel, M memset), start ns, end ns, blocks (a memset: its bytes), threads per block, demangled name
//   (commas as ';').
// Unlike Nsight Compute it leaves kernels to overlap as they would (PDL, graph launches), so it shows where a layer's
// time goes between and inside its launches. bench/timeline/timeline.py summarizes the file.
#include <cupti.h>
#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

constexpr size_t kBufferBytes = size_t(16) << 20;
std::vector<std::string> g_records;

void CUPTIAPI give_buffer(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;
}

std::string demangled(const char* name) {
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string s = status == 0 && d ? d : name;
  std::free(d);
  for (char& c : s) {
    if (c == ',') c = ';';
  }
  return s;
}

void CUPTIAPI take_buffer(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  CUpti_Activity* record = nullptr;
  char line[128];
  while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
    if (record->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) {
      const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
      std::snprintf(line, sizeof line, "K,%llu,%llu,%u,%u,", static_cast<unsigned long long>(k->start),
                    static_cast<unsigned long long>(k->end), k->gridX * k->gridY * k->gridZ,
                    k->blockX * k->blockY * k->blockZ);
      g_records.push_back(line + demangled(k->name));
    } else if (record->kind == CUPTI_ACTIVITY_KIND_MEMSET) {
      const auto* m = reinterpret_cast<const CUpti_ActivityMemset4*>(record);
      std::snprintf(line, sizeof line, "M,%llu,%llu,%llu,0,memset", static_cast<unsigned long long>(m->start),
                    static_cast<unsigned long long>(m->end), static_cast<unsigned long long>(m->bytes));
      g_records.emplace_back(line);
    }
  }
  std::free(buffer);
}

void write_records() {
  cuptiActivityFlushAll(1);
  const char* path = std::getenv("FP4MOE_TRACE_OUT");
  FILE* f = std::fopen(path ? path : "fp4moe-trace.csv", "w");
  if (!f) {
    std::fprintf(stderr, "cupti_trace: cannot write %s\n", path ? path : "fp4moe-trace.csv");
    return;
  }
  for (const std::string& r : g_records) std::fprintf(f, "%s\n", r.c_str());
  std::fclose(f);
}

bool ok(CUptiResult r, const char* what) {
  if (r == CUPTI_SUCCESS) return true;
  const char* message = nullptr;
  cuptiGetResultString(r, &message);
  std::fprintf(stderr, "cupti_trace: %s: %s\n", what, message ? message : "unknown error");
  return false;
}

}  // namespace

// Called by the CUDA driver when it loads this library (CUDA_INJECTION64_PATH); 1 = success.
extern "C" int InitializeInjection(void) {
  if (!ok(cuptiActivityRegisterCallbacks(give_buffer, take_buffer), "register callbacks") ||
      !ok(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "enable kernel records") ||
      !ok(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMSET), "enable memset records")) {
    return 0;
  }
  std::atexit(write_records);
  return 1;
}
