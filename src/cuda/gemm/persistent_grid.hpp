// Host side of the persistent wgmma kernels (wgmma_schedule.cuh): one block per SM, never more blocks than items.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cuda/common/launch.cuh"

namespace fp4moe::cuda {

inline unsigned persistent_grid(int64_t items) {
  const int sms = current_device_attribute(cudaDevAttrMultiProcessorCount);
  return unsigned(std::max<int64_t>(1, std::min<int64_t>(items, sms)));
}

}  // namespace fp4moe::cuda
