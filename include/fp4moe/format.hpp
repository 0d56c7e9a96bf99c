// fp4moe: host-side NVFP4 tensor operations: quantize/dequantize whole matrices and convert scale layouts
// (spec §2–§3). Element-level conversions live in nvfp4.hpp and are shared with the GPU kernels.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "fp4moe/nvfp4.hpp"
#include "fp4moe/tensor.hpp"

namespace fp4moe {

enum class ScaleLayout : uint8_t {
  kLinear,        // sf[row][k / 16], uint8[rows, K/16]
  kSwizzled128x4  // rows padded to 128, scale columns to 4, 512-byte atoms (spec §3)
};

std::string_view scale_layout_name(ScaleLayout layout);  // "linear" / "128x4"
ScaleLayout parse_scale_layout(std::string_view name, std::string_view arg = "scale_layout");

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Shape of one matrix's scale tensor in the given layout, for `rows` × `k` elements (k % 16 == 0).
// Linear: [rows, k/16]. Swizzled: [round_up(rows, 128), round_up(k/16, 4)].
std::array<int64_t, 2> scale_shape(ScaleLayout layout, int64_t rows, int64_t k);

// Byte offset of scale (row m, scale column kc) in the 128x4 layout of a matrix with `scale_cols` = K/16.
FP4MOE_HD int64_t swizzled_scale_offset(int64_t m, int64_t kc, int64_t scale_cols) {
  const int64_t num_k_tiles = (scale_cols + 3) / 4;
  return (m / 128) * num_k_tiles * 512 + (kc / 4) * 512 + (m % 32) * 16 + ((m % 128) / 32) * 4 + (kc % 4);
}

// Linear [rows, scale_cols] → 128x4 (padding bytes 0). `dst` holds scale_shape(kSwizzled128x4, ...) bytes.
void swizzle_scales(const uint8_t* linear, int64_t rows, int64_t scale_cols, uint8_t* swizzled);
// 128x4 → linear [rows, scale_cols].
void unswizzle_scales(const uint8_t* swizzled, int64_t rows, int64_t scale_cols, uint8_t* linear);

// A quantized matrix in host memory: packed [rows, k/2], linear scales [rows, k/16], global scale gs.
struct Nvfp4Matrix {
  int64_t rows = 0;
  int64_t k = 0;
  std::vector<uint8_t> packed;
  std::vector<uint8_t> scales;
  float global_scale = 1.0f;  // gs; the ModelOpt checkpoint value is 1/gs
};

// gs = 448·6 / amax over the values (1.0 when amax is 0 or not finite).
float auto_global_scale(const float* x, int64_t n);

// Quantizes rows of fp32 values (row stride `ld` elements) per spec §2. Multi-threaded over rows.
void quantize_rows(const float* x, int64_t rows, int64_t k, int64_t ld, float gs, uint8_t* packed,
                   uint8_t* scales);
Nvfp4Matrix quantize_matrix(const float* x, int64_t rows, int64_t k, float gs);

// Dequantizes to fp32: x̂ = e2m1(q) · sf / gs (linear scales).
void dequantize_rows(const uint8_t* packed, const uint8_t* scales, int64_t rows, int64_t k, float gs, float* out);
std::vector<float> dequantize_matrix(const Nvfp4Matrix& m);

// Widens a 2-D BF16/F16/F32 host tensor to a contiguous fp32 vector (BF16 and F16 widen exactly).
std::vector<float> to_float(const TensorView& t, std::string_view arg);

// fp16 ↔ fp32 (round to nearest even).
float f16_to_float(uint16_t h);
uint16_t float_to_f16(float f);

}  // namespace fp4moe
