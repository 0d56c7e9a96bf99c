// PTX wrappers shared by the CUDA kernels: the BF16 tensor-core MMA (sm_80+) and small packing helpers.
#pragma once

#include <cstdint>

namespace fp4moe::cuda {

// D = A·B + D for one 16x8x16 tile: A row-major 16x16 BF16 (4 regs), B column-major 16x8 BF16 (2 regs), fp32 D.
// Fragment ownership (lane = 4·g + t): A regs {a0,a1,a2,a3} hold (row g, k 2t..2t+1), (row g+8, same k),
// (row g, k 2t+8..2t+9), (row g+8, k 2t+8..); B regs hold (k 2t..2t+1, col g), (k 2t+8..2t+9, col g);
// D holds (row g, cols 2t, 2t+1) and (row g+8, cols 2t, 2t+1).
__device__ __forceinline__ void mma_bf16_16x8x16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Two fp32 values → packed BF16x2 (round to nearest even), low half = lo.
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  uint32_t r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

}  // namespace fp4moe::cuda
