// forward_host_tensors: stage host inputs on the weights' device, run, copy the output back.
#include "host_forward.hpp"

#include <cuda_runtime_api.h>

#include <vector>

#include "api/device_buffer.hpp"
#include "cuda/common/cuda_check.hpp"

namespace fp4moe::cli {

namespace {

// A contiguous device copy of a host view (same dtype and shape).
TensorView to_device(const TensorView& t, int device, std::vector<DeviceBuffer>& keep) {
  if (t.empty()) return t;
  check_contiguous(t, "input");
  keep.emplace_back(device, t.nbytes(), t.data);
  TensorView d = t;
  d.data = keep.back().get();
  d.device = Device::cuda(device);
  return d;
}

}  // namespace

void forward_host_tensors(const PreparedWeights& weights, const MoeInputs& in, TensorView out, RunOptions options) {
  const Device device = weights.device();
  if (device.is_cpu()) {
    moe_forward(weights, in, out, nullptr, options);
    return;
  }
  DeviceGuard guard(device.index);
  std::vector<DeviceBuffer> keep;
  keep.reserve(8);
  MoeInputs d = in;
  d.x = to_device(in.x, device.index, keep);
  d.x_scale = to_device(in.x_scale, device.index, keep);
  d.topk_ids = to_device(in.topk_ids, device.index, keep);
  d.topk_weights = to_device(in.topk_weights, device.index, keep);
  const TensorView d_out = to_device(out, device.index, keep);
  moe_forward(weights, d, d_out, nullptr, options);
  FP4MOE_CUDA_CHECK(cudaDeviceSynchronize());
  if (out.nbytes()) FP4MOE_CUDA_CHECK(cudaMemcpy(out.data, d_out.data, out.nbytes(), cudaMemcpyDeviceToHost));
}

}  // namespace fp4moe::cli
