// HostStaging: device → host copies of source tensors for weight preparation.
#include "api/staging.hpp"

#include <cuda_runtime_api.h>

#include "cuda/common/cuda_check.hpp"

namespace fp4moe {

int64_t span_elements(const TensorView& t) {
  if (t.numel() == 0) return 0;
  int64_t span = 1;
  for (int d = 0; d < t.ndim; ++d) span += (t.shape[d] - 1) * t.strides[d];
  return span;
}

TensorView HostStaging::stage(const TensorView& t) {
  if (t.device.is_cpu() || t.empty()) return t;
  std::vector<uint8_t>& buf = buffers_.emplace_back(size_t(span_elements(t)) * dtype_size(t.dtype));
  if (!buf.empty()) FP4MOE_CUDA_CHECK(cudaMemcpy(buf.data(), t.data, buf.size(), cudaMemcpyDeviceToHost));
  TensorView h = t;
  h.data = buf.data();
  h.device = Device::cpu();
  return h;
}

}  // namespace fp4moe
