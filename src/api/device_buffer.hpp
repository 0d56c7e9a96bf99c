// DeviceBuffer: an owning cudaMalloc'ed allocation (host code). Used by weight preparation, never per call.
#pragma once

#include <cstddef>

namespace fp4moe {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  // Allocates `bytes` on `device` and copies `bytes` from host memory `src` when given.
  DeviceBuffer(int device, size_t bytes, const void* src = nullptr);
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer();

  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void release() noexcept;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  int device_ = 0;
};

// Scopes cudaSetDevice(device) and restores the previous device.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace fp4moe
