// The device the micro-benchmarks run on: device 0 when it is a compute capability 9.0 GPU (sm_90a code only).
#pragma once

#include <cuda_runtime.h>

#include <cstdio>

namespace fp4moe::micro {

// Multiprocessors of device 0 (and its properties in *prop), or 0 after saying why `program` cannot run.
inline int sm90_multiprocessors(const char* program, cudaDeviceProp* prop) {
  if (cudaGetDeviceProperties(prop, 0) != cudaSuccess || prop->major != 9) {
    std::printf("%s needs a compute capability 9.0 GPU (sm_90a); none found\n", program);
    return 0;
  }
  return prop->multiProcessorCount;
}

}  // namespace fp4moe::micro
