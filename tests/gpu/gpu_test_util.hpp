// Helpers of the GPU tests: skip with a visible reason when there is no GPU, and RAII device buffers.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

#include "cuda/common/cuda_check.hpp"
#include "cuda/common/device_info.hpp"

#define FP4MOE_REQUIRE_GPU()                                                                    \
  do {                                                                                          \
    const auto& survey_ = ::fp4moe::survey_gpus();                                              \
    if (survey_.devices.empty()) GTEST_SKIP() << "no CUDA GPU on this machine: " << survey_.reason; \
  } while (0)

namespace fp4moe::testing {

// A cudaMalloc'ed buffer, filled with `poison` bytes on creation so unwritten outputs show.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes, int poison = 0xAB) : bytes_(bytes) {
    if (bytes_ == 0) return;
    FP4MOE_CUDA_CHECK(cudaMalloc(&ptr_, bytes_));
    FP4MOE_CUDA_CHECK(cudaMemset(ptr_, poison, bytes_));
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  template <class T>
  static DeviceBuffer from_host(const std::vector<T>& v) {
    DeviceBuffer b(v.size() * sizeof(T));
    if (!v.empty()) FP4MOE_CUDA_CHECK(cudaMemcpy(b.ptr_, v.data(), b.bytes_, cudaMemcpyHostToDevice));
    return b;
  }
  template <class T>
  std::vector<T> to_host() const {
    std::vector<T> v(bytes_ / sizeof(T));
    if (!v.empty()) FP4MOE_CUDA_CHECK(cudaMemcpy(v.data(), ptr_, v.size() * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr; }
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace fp4moe::testing
