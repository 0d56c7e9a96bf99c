// GPU discovery through the CUDA runtime; on a machine without a driver every call fails cleanly and the
// survey carries the runtime's error text instead of devices.
#include "cuda/common/device_info.hpp"

#include <cuda_runtime_api.h>

#include "cuda/common/cuda_check.hpp"

namespace fp4moe {

namespace {

GpuSurvey take_survey() {
  GpuSurvey s;
  cudaRuntimeGetVersion(&s.runtime_version);
  cudaDriverGetVersion(&s.driver_version);
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    s.reason = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
    return s;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    GpuInfo g;
    g.ordinal = i;
    g.name = p.name;
    g.cc_major = p.major;
    g.cc_minor = p.minor;
    g.multiprocessors = p.multiProcessorCount;
    g.memory_bytes = p.totalGlobalMem;
    g.l2_bytes = size_t(p.l2CacheSize);
    s.devices.push_back(g);
  }
  if (s.devices.empty()) s.reason = "the CUDA runtime reports no devices";
  return s;
}

}  // namespace

const GpuSurvey& survey_gpus() {
  static const GpuSurvey survey = take_survey();
  return survey;
}

int current_multiprocessor_count() {
  int device = 0, sms = 0;
  FP4MOE_CUDA_CHECK(cudaGetDevice(&device));
  FP4MOE_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return sms;
}

}  // namespace fp4moe
