// PDL support query (see launch.cuh).
#include <array>
#include <atomic>

#include "cuda/common/launch.cuh"

namespace fp4moe::cuda {

bool pdl_supported() {
  constexpr int kMaxDevices = 64;
  static std::array<std::atomic<int>, kMaxDevices> cached{};  // 0 = unknown, 1 = no, 2 = yes
  int device = 0;
  FP4MOE_CUDA_CHECK(cudaGetDevice(&device));
  if (device >= kMaxDevices) return false;
  if (cached[size_t(device)] == 0) {
    int major = 0;
    FP4MOE_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    cached[size_t(device)] = major >= 9 ? 2 : 1;
  }
  return cached[size_t(device)] == 2;
}

}  // namespace fp4moe::cuda
