// Host interface of the device-side random generators of device_random.cu (no CUDA syntax: included by plain C++).
//
// The benchmark makes its problems directly on the GPU, because a big layer (deepseek-v3: 256 experts of 44M
// weights) takes minutes to quantize on the host. The draws imitate a layer quantized from N(0, 0.02²):
//  - FP4 codes: each element is e2m1(3·z) with z ~ N(0, 1), which saturates at ±6 for |z| > 5/3 (about 1 element
//    in 10): the code histogram of a block-quantized Gaussian whose 16-element block maximum sits near 2σ;
//  - E4M3 block scales: sf = e4m3(u · 0.02 · gs / 6) with u ~ U[1, 3.5] (the block maximum in units of σ) and gs
//    the matrix's global scale, so every scale is a normal E4M3 value in the range real checkpoints show
//    (never NaN, never 0);
//  - dequantized weights e2m1 · sf / gs then have a standard deviation near 0.02.
// Every value is a pure function of (seed, element index), so results do not depend on the launch shape.
#pragma once

#include <cstdint>

namespace fp4moe::bench {

// Standard deviation that the random weights imitate, and the range of u in the block scales above.
inline constexpr float kRandomWeightStd = 0.02f;
inline constexpr float kBlockAmaxLow = 1.0f;
inline constexpr float kBlockAmaxHigh = 3.5f;

// Packed FP4 codes as above; `bytes` % 8 == 0 and `packed` 8-byte aligned.
void fill_random_fp4(uint8_t* packed, int64_t bytes, uint64_t seed, void* stream);

// E4M3 scales for `experts` consecutive matrices of `per_expert` blocks each; matrix e uses gs = 1 / scale_2[e]
// (scale_2: device memory, the ModelOpt weight_scale_2 of each matrix).
void fill_random_block_scales(uint8_t* scales, int64_t experts, int64_t per_expert, const float* scale_2,
                              uint64_t seed, void* stream);

// BF16 values drawn from N(0, stddev²).
void fill_random_bf16(uint16_t* out, int64_t count, float stddev, uint64_t seed, void* stream);

}  // namespace fp4moe::bench
