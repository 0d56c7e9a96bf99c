// Device activation functions of spec §5.3, in the CPU reference's operation order. exp and the reciprocals are the
// hardware approximations (__expf: ex2.approx of v·log2 e, within 2 + 1.17·|v| ulps; rcp.approx: 1 ulp), so an
// activation is a few fp32 ulps from the CPU's (libm expf, IEEE division). The BF16 rounding of h hides that except
// for values within those ulps of a rounding tie. Spec §6 bounds the end-to-end error and is silent on the
// transcendental functions; CUDA's expf never matched the host libm bit for bit either. The accurate forms took ~24
// instructions and a division slow path per silu, these 6; the FC1 epilogues run one per output.
#pragma once

#include "fp4moe/config.hpp"
#include "fp4moe/nvfp4.hpp"

namespace fp4moe::cuda {

// 1 / v, hardware approximation (1 ulp; 1/inf = 0).
__device__ __forceinline__ float fast_rcp(float v) {
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(v));
  return r;
}

// The logistic function 1 / (1 + e^-v): 1 for large v, 0 for very negative v (e^-v = inf).
__device__ __forceinline__ float sigmoid(float v) { return fast_rcp(1.0f + __expf(-v)); }

// tanh(v) = 1 - 2 / (1 + e^2v): ±1 at the ends, absolute error ~1e-7 near 0 (gelu_tanh adds it to 1).
__device__ __forceinline__ float fast_tanh(float v) { return 1.0f - 2.0f * fast_rcp(1.0f + __expf(2.0f * v)); }

// One activation, chosen at compile time (epilogues that hoist the choice out of their loops).
template <Activation kAct>
__device__ __forceinline__ float apply_activation(const SwigluParams& s, float gate, float up) {
  if constexpr (kAct == Activation::kSilu) {
    return __fmul_rn(__fmul_rn(gate, sigmoid(gate)), up);
  } else if constexpr (kAct == Activation::kGeluTanh) {
    const float cube = __fmul_rn(__fmul_rn(gate, gate), gate);
    const float inner = __fmul_rn(0.7978845608f, __fadd_rn(gate, __fmul_rn(0.044715f, cube)));
    return __fmul_rn(__fmul_rn(__fmul_rn(0.5f, gate), __fadd_rn(1.0f, fast_tanh(inner))), up);
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
