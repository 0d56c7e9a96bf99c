// Host NVFP4 tensor operations: whole-matrix quantize/dequantize (spec §2) and the scale layouts (spec §3).
#include "fp4moe/format.hpp"

#include <cmath>
#include <cstring>

#include "fp4moe/error.hpp"

namespace fp4moe {

std::string_view scale_layout_name(ScaleLayout layout) {
  return layout == ScaleLayout::kLinear ? "linear" : "128x4";
}

ScaleLayout parse_scale_layout(std::string_view name, std::string_view arg) {
  if (name == "linear") return ScaleLayout::kLinear;
  if (name == "128x4") return ScaleLayout::kSwizzled128x4;
  fail_arg(arg, "linear|128x4", "'" + std::string(name) + "'");
}

std::array<int64_t, 2> scale_shape(ScaleLayout layout, int64_t rows, int64_t k) {
  FP4MOE_CHECK_ARG(k % kBlockSize == 0, "k", "a multiple of 16", k);
  const int64_t cols = k / kBlockSize;
  if (layout == ScaleLayout::kLinear) return {rows, cols};
  return {round_up(rows, 128), round_up(cols, 4)};
}

void swizzle_scales(const uint8_t* linear, int64_t rows, int64_t scale_cols, uint8_t* swizzled) {
  const int64_t padded = round_up(rows, 128) * round_up(scale_cols, 4);
  std::memset(swizzled, 0, size_t(padded));
  for (int64_t m = 0; m < rows; ++m) {
    for (int64_t kc = 0; kc < scale_cols; ++kc) {
      swizzled[swizzled_scale_offset(m, kc, scale_cols)] = linear[m * scale_cols + kc];
    }
  }
}

void unswizzle_scales(const uint8_t* swizzled, int64_t rows, int64_t scale_cols, uint8_t* linear) {
  for (int64_t m = 0; m < rows; ++m) {
    for (int64_t kc = 0; kc < scale_cols; ++kc) {
      linear[m * scale_cols + kc] = swizzled[swizzled_scale_offset(m, kc, scale_cols)];
    }
  }
}

float auto_global_scale(const float* x, int64_t n) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  if (!(amax > 0.0f) || !std::isfinite(amax)) return 1.0f;
  return kE4M3Max * kE2M1Max / amax;
}

void quantize_rows(const float* x, int64_t rows, int64_t k, int64_t ld, float gs, uint8_t* packed,
                   uint8_t* scales) {
  FP4MOE_CHECK_ARG(k % kBlockSize == 0, "k", "a multiple of 16", k);
  FP4MOE_CHECK_ARG(gs > 0.0f && std::isfinite(gs), "global_scale", "a finite value > 0", gs);
  const int64_t blocks = k / kBlockSize;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < blocks; ++b) {
      scales[r * blocks + b] = quantize_block(x + r * ld + b * kBlockSize, gs, packed + r * (k / 2) + b * 8);
    }
  }
}

Nvfp4Matrix quantize_matrix(const float* x, int64_t rows, int64_t k, float gs) {
  Nvfp4Matrix m;
  m.rows = rows;
  m.k = k;
  m.global_scale = gs;
  m.packed.resize(size_t(rows * k / 2));
  m.scales.resize(size_t(rows * k / kBlockSize));
  quantize_rows(x, rows, k, k, gs, m.packed.data(), m.scales.data());
  return m;
}

void dequantize_rows(const uint8_t* packed, const uint8_t* scales, int64_t rows, int64_t k, float gs, float* out) {
  FP4MOE_CHECK_ARG(k % kBlockSize == 0, "k", "a multiple of 16", k);
  const int64_t blocks = k / kBlockSize;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < k; ++i) {
      const float v = dequant_unscaled(fp4_get(packed + r * (k / 2), i), scales[r * blocks + i / kBlockSize]);
      out[r * k + i] = v / gs;
    }
  }
}

std::vector<float> dequantize_matrix(const Nvfp4Matrix& m) {
  std::vector<float> out(size_t(m.rows * m.k));
  dequantize_rows(m.packed.data(), m.scales.data(), m.rows, m.k, m.global_scale, out.data());
  return out;
}

float f16_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (man << 13));  // Inf / NaN
  if (exp == 0) {                                                         // zero / subnormal: man · 2^-24
    const float mag = float(man) * 5.9604644775390625e-8f;
    return bits_float(float_bits(mag) | sign);
  }
  return bits_float(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t float_to_f16(float f) {
  const uint32_t u = float_bits(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u);  // NaN
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to >= 65520: Inf
  if (a < 0x38800000u) {                                  // below 2^-14: subnormal grid 2^-24, ties to even
    const float q = round_half_even(bits_float(a) * 16777216.0f);
    return uint16_t(sign | uint16_t(q));
  }
  const uint32_t rounded = (a + 0xfffu + ((a >> 13) & 1u)) >> 13;
  return uint16_t(sign | uint16_t(rounded - (112u << 10)));
}

std::vector<float> to_float(const TensorView& t, std::string_view arg) {
  FP4MOE_CHECK_ARG(t.ndim == 2, arg, "a 2-D tensor", detail::concat("shape ", shape_string(t)));
  check_device(t, arg, Device::cpu());
  const int64_t rows = t.shape[0], cols = t.shape[1];
  std::vector<float> out(size_t(rows * cols));
  const char* base = static_cast<const char*>(t.data);
  const size_t es = dtype_size(t.dtype);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const char* p = base + (r * t.strides[0] + c * t.strides[1]) * int64_t(es);
      float v;
      if (t.dtype == DType::kF32) {
        std::memcpy(&v, p, 4);
      } else if (t.dtype == DType::kBF16 || t.dtype == DType::kF16) {
        uint16_t h;
        std::memcpy(&h, p, 2);
        v = t.dtype == DType::kBF16 ? bf16_to_float(h) : f16_to_float(h);
      } else {
        fail_arg(arg, "dtype BF16, F16 or F32", detail::concat("dtype ", dtype_name(t.dtype)));
      }
      out[size_t(r * cols + c)] = v;
    }
  }
  return out;
}

}  // namespace fp4moe
