// DeviceBuffer and DeviceGuard: RAII over cudaMalloc/cudaFree and cudaSetDevice.
#include "api/device_buffer.hpp"

#include <cuda_runtime_api.h>

#include <utility>

#include "cuda/common/cuda_check.hpp"

namespace fp4moe {

DeviceBuffer::DeviceBuffer(int device, size_t bytes, const void* src) : bytes_(bytes), device_(device) {
  if (bytes == 0) return;
  DeviceGuard guard(device);
  FP4MOE_CUDA_CHECK(cudaMalloc(&ptr_, bytes));
  if (src) FP4MOE_CUDA_CHECK(cudaMemcpy(ptr_, src, bytes, cudaMemcpyHostToDevice));
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept
    : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)), device_(o.device_) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    release();
    ptr_ = std::exchange(o.ptr_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
    device_ = o.device_;
  }
  return *this;
}

DeviceBuffer::~DeviceBuffer() { release(); }

void DeviceBuffer::release() noexcept {
  if (ptr_) {
    int previous = 0;
    cudaGetDevice(&previous);
    cudaSetDevice(device_);
    cudaFree(ptr_);
    cudaSetDevice(previous);
    ptr_ = nullptr;
  }
}

DeviceGuard::DeviceGuard(int device) {
  FP4MOE_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != device) FP4MOE_CUDA_CHECK(cudaSetDevice(device));
}

DeviceGuard::~DeviceGuard() { cudaSetDevice(previous_); }

}  // namespace fp4moe
