// Device activation functions of spec §5.3, written like the CPU reference (same operation order; expf/tanhf may
// differ from the host libm in the last bit, which spec §6 allows).
#pragma once

#include "fp4moe/config.hpp"
#include "fp4moe/nvfp4.hpp"

namespace fp4moe::cuda {

__device__ __forceinline__ float sigmoid(float v) { return __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-v))); }

// One activation, chosen at compile time (epilogues that hoist the choice out of their loops).
template <Activation kAct>
__device__ __forceinline__ float apply_activation(const SwigluParams& s, float gate, float up) {
  if constexpr (kAct == Activation::kSilu) {
    return __fmul_rn(__fmul_rn(gate, sigmoid(gate)), up);
  } else if constexpr (kAct == Activation::kGeluTanh) {
    const float cube = __fmul_rn(__fmul_rn(gate, gate), gate);
    const float inner = __fmul_rn(0.7978845608f, __fadd_rn(gate, __fmul_rn(0.044715f, cube)));
    return __fmul_rn(__fmul_rn(__fmul_rn(0.5f, gate), __fadd_rn(1.0f, tanhf(inner))), up);
  } else if constexpr (kAct == Activation::kRelu2) {
    const float r = gate < 0.0f ? 0.0f : gate;
    return __fmul_rn(r, r);
  } else {
    static_assert(kAct == Activation::kSwigluClamped);
    const float g = fminf(gate, s.limit);
    const float u = fminf(fmaxf(up, -s.limit), s.limit);
    return __fmul_rn(__fmul_rn(g, sigmoid(__fmul_rn(s.alpha, g))), __fadd_rn(u, s.beta));
  }
}

__device__ __forceinline__ float apply_activation(Activation act, const SwigluParams& s, float gate, float up) {
  switch (act) {
    case Activation::kSilu:
      return apply_activation<Activation::kSilu>(s, gate, up);
    case Activation::kGeluTanh:
      return apply_activation<Activation::kGeluTanh>(s, gate, up);
    case Activation::kRelu2:
      return apply_activation<Activation::kRelu2>(s, gate, up);
    case Activation::kSwigluClamped:
      return apply_activation<Activation::kSwigluClamped>(s, gate, up);
  }
  return 0.0f;
}

}  // namespace fp4moe::cuda
