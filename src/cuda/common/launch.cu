// PDL support query (see launch.cuh).
#include <array>
#include <atomic>

#include "cuda/common/launch.cuh"

namespace fp4moe::cuda {

bool pdl_supported() {
  static std::array<std::atomic<int>, kMaxCachedDevices> cached{};  // 0 = unknown, 1 = no, 2 = yes
  const int device = current_device();
  if (device >= kMaxCachedDevices) return false;
  if (cached[size_t(device)] == 0) {
    cached[size_t(device)] = current_device_attribute(cudaDevAttrComputeCapabilityMajor) >= 9 ? 2 : 1;
  }
  return cached[size_t(device)] == 2;
}

}  // namespace fp4moe::cuda
