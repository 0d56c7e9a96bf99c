// fp4moe: dense NVFP4 linear layer, out = x · Wᵀ, with W NVFP4 and x BF16 (W4A16) or NVFP4 (W4A4), spec §4.
//
//   auto w = fp4moe::prepare_linear(weights, fp4moe::Backend::kAuto);   // once
//   fp4moe::linear_forward(w, {x}, out, stream);   // per call; the CUDA path allocates nothing
#pragma once

#include <memory>

#include "fp4moe/config.hpp"
#include "fp4moe/format.hpp"
#include "fp4moe/tensor.hpp"

namespace fp4moe {

struct LinearWeights {
  TensorView weight;          // U8 [N, K/2]  (K % 16 == 0)
  TensorView weight_scale;    // E4M3 linear [N, K/16] or 128x4 [pad128(N), pad4(K/16)]
  TensorView weight_scale_2;  // F32 scalar ([1] or 0-d): ModelOpt weight_scale_2 = 1/gsW
  ScaleLayout scale_layout = ScaleLayout::kLinear;
};

class PreparedLinear {
 public:
  struct Impl;
  PreparedLinear() = default;
  explicit PreparedLinear(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  int64_t out_features() const;  // N
  int64_t in_features() const;   // K
  Backend backend() const;
  Device device() const;
  const Impl& impl() const;

 private:
  std::shared_ptr<const Impl> impl_;
};

PreparedLinear prepare_linear(const LinearWeights& weights, Backend backend = Backend::kAuto);

struct LinearInputs {
  TensorView x;               // BF16 [M, K] (rows may be strided); or pre-quantized U8 [M, K/2]
  TensorView x_scale;         // pre-quantized only: E4M3 linear [M, K/16]
  float x_global_scale = 0;   // pre-quantized only: gs of x
};

// out: BF16 [M, N] on the weights' device. out = bf16(alpha · Σ_k x̂[m,k]·ŵ[n,k]) with alpha = 1/gsW (BF16 x) or
// 1/(gsX·gsW) (NVFP4 x), where x̂, ŵ are the values without global scale. `stream`: cudaStream_t, CUDA only.
void linear_forward(const PreparedLinear& weights, const LinearInputs& inputs, TensorView out,
                    void* stream = nullptr);

}  // namespace fp4moe
