// Helpers of the GPU tests: skip with a visible reason when there is no GPU, RAII device buffers, and the quantize
// pass's parameters for W4A4's x (dequantized output only) with the host's expectation of its output.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cuda/common/cuda_check.hpp"
#include "cuda/common/device_info.hpp"
#include "cuda/quantize/quantize_launch.hpp"
#include "fp4moe/nvfp4.hpp"

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

// The quantize pass as W4A4's x takes it: BF16 rows [rows, k] (row stride ld) of `x` quantized with gs, written to
// `out` as dequantized BF16 values only.
inline cuda::QuantizeParams dequant_only_params(const DeviceBuffer& x, int64_t rows, int64_t k, int64_t ld, float gs,
                                                const DeviceBuffer& out) {
  cuda::QuantizeParams q;
  q.x = static_cast<const uint16_t*>(x.get());
  q.rows = rows;
  q.k = k;
  q.x_ld = ld;
  q.global_scale = gs;
  q.dequant = static_cast<uint16_t*>(out.get());
  return q;
}

// What the quantize pass's dequantized-only form must write, by the host's quantizer: for BF16 rows [rows, k] of
// `x` (row stride ld), each 16-value block through quantize_block with gs and back through dequant_unscaled, as BF16
// words [rows, k]. `finite`, where given, gets per word whether its block held no NaN or Inf (spec §2 leaves the
// result of those blocks open).
inline std::vector<uint16_t> host_dequant_rows(const std::vector<uint16_t>& x, int64_t rows, int64_t k, int64_t ld,
                                               float gs, std::vector<bool>* finite = nullptr) {
  std::vector<uint16_t> out(size_t(rows * k));
  if (finite) finite->assign(out.size(), true);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < k / kBlockSize; ++b) {
      float block[kBlockSize];
      bool all_finite = true;
      for (int i = 0; i < kBlockSize; ++i) {
        block[i] = bf16_to_float(x[size_t(r * ld + b * kBlockSize + i)]);
        all_finite = all_finite && std::isfinite(block[i]);
      }
      uint8_t packed[kBlockSize / 2];
      const uint8_t sf = quantize_block(block, gs, packed);
      for (int i = 0; i < kBlockSize; ++i) {
        const size_t at = size_t(r * k + b * kBlockSize + i);
        out[at] = float_to_bf16(dequant_unscaled(fp4_get(packed, i), sf));
        if (finite) (*finite)[at] = all_finite;
      }
    }
  }
  return out;
}

}  // namespace fp4moe::testing
