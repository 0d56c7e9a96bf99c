// The library's own weight layout (PreparedWeights::Impl) and the validation shared by all backends.
#pragma once

#include <string>
#include <vector>

#include "api/device_buffer.hpp"
#include "cuda/moe/moe_launch.hpp"
#include "fp4moe/moe.hpp"
#include "reference/moe_reference.hpp"

namespace fp4moe {

// CPU backend layout: per expert, FC1 rows in gate-up order and linear scales, one contiguous buffer per tensor.
struct HostWeightStorage {
  std::vector<uint8_t> w13, w13_scale, w2, w2_scale;
  std::vector<float> w13_scale_2, w2_scale_2;
  std::vector<reference::HostExpert> experts;  // pointers into the vectors above
};

// CUDA backend layout: the host layout above converted to fragment tiles and uploaded once (one allocation per
// tensor).
struct DeviceWeightStorage {
  DeviceBuffer w13, w13_scale, w2, w2_scale, w13_scale_2, w2_scale_2;
  cuda::DeviceExperts experts;  // pointers into the buffers above
};

struct PreparedWeights::Impl {
  MoeConfig config;
  Backend backend = Backend::kCpu;
  Device device{};
  float gs1 = 0.0f;  // FC1 activation global scale (1 / fc1_input_scale); 0 = not given
  float gs2 = 1.0f;  // FC2 activation global scale (1 / fc2_input_scale, default 1)
  HostWeightStorage host;    // CPU backend (and the staging copy of the CUDA backend, released after upload)
  DeviceWeightStorage cuda;  // CUDA backend
  size_t bytes = 0;
};

// Checks every group of `weights` against `config` (dtypes, ranks, shapes per scale layout, innermost strides,
// expert counts, scale_2 values, input scales). Throws Error naming the tensor, e.g. "groups[1].w2_scale".
void validate_weights(const MoeConfig& config, const MoeWeights& weights);

// Number of experts in a group (its leading dimension, or 1 for 2-D tensors).
int64_t group_expert_count(const ExpertGroup& group);

}  // namespace fp4moe
