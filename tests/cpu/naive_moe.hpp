// Test-only naive implementation of the NVFP4 MoE layer (spec §1, §2, §5), written independently of the library:
// its own E2M1/E4M3/BF16 conversions (searches and formulas rather than bit tricks), one token and one slot at a
// time, GEMMs and activations in double. Quantization steps follow the spec's fp32 formula literally with floats,
// because §2 defines them in fp32. It does not include fp4moe/nvfp4.hpp, so a shared bug there cannot hide.
#pragma once

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fp4moe/config.hpp"

namespace naive {

// §1: E2M1 magnitudes of codes 0..7.
inline constexpr double kE2M1Values[8] = {0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0};

inline double e2m1_decode(uint8_t code) {
  const double mag = kE2M1Values[code & 7];
  return (code & 8) ? -mag : mag;
}

// §1: E4M3 by its definition: bias 7, subnormals man·2^-9, 0x7F/0xFF NaN.
inline double e4m3_decode(uint8_t code) {
  const int exp = (code >> 3) & 15, man = code & 7;
  const double sign = (code & 0x80) ? -1.0 : 1.0;
  if (exp == 15 && man == 7) return NAN;
  if (exp == 0) return sign * man * std::ldexp(1.0, -9);
  return sign * (1.0 + man / 8.0) * std::ldexp(1.0, exp - 7);
}

inline bool sign_bit(float v) { return std::signbit(v); }

// Nearest E2M1 code to v: the closest of the 8 magnitudes, ties to the even mantissa (code & 1 == 0); values past 6
// land on 6 because it is the nearest. The sign of v is kept (−0 → code 8).
inline uint8_t e2m1_encode(float v) {
  const double a = std::fabs(double(v));
  int best = 0;
  for (int c = 1; c < 8; ++c) {
    const double d = std::fabs(kE2M1Values[c] - a), db = std::fabs(kE2M1Values[best] - a);
    if (d < db || (d == db && (c & 1) == 0)) best = c;
  }
  return uint8_t(best | (sign_bit(v) ? 8 : 0));
}

// Nearest finite E4M3 code to v over all 127 non-negative finite codes, ties to the even mantissa; anything past
// 448 lands on 448 (satfinite) because it is the nearest finite code.
inline uint8_t e4m3_encode(float v) {
  const double a = std::fabs(double(v));
  int best = 0;
  for (int c = 1; c < 0x7f; ++c) {
    const double d = std::fabs(e4m3_decode(uint8_t(c)) - a), db = std::fabs(e4m3_decode(uint8_t(best)) - a);
    if (d < db || (d == db && (c & 1) == 0)) best = c;
  }
  return uint8_t(best | (sign_bit(v) ? 0x80 : 0));
}

inline float bf16_decode(uint16_t b) {
  const uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Nearest BF16 (8 significant bits) to a finite double, ties to even, by scaling the significand to an integer.
inline uint16_t bf16_encode(double v) {
  if (v == 0.0) return std::signbit(v) ? 0x8000 : 0;
  int e = 0;
  const double m = std::frexp(v, &e);                 // v = m · 2^e, 0.5 <= |m| < 1
  const double r = std::nearbyint(std::ldexp(m, 8));  // 8 significant bits, round half to even
  const float f = float(std::ldexp(r, e - 8));        // exact in float
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return uint16_t(u >> 16);
}

// §2 on one block of 16 floats: returns the scale byte and writes 16 codes (one per element, unpacked).
inline uint8_t quantize_block(const float* x, float gs, uint8_t* codes) {
  float amax = 0.0f;
  for (int i = 0; i < 16; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  const float r6 = 1.0f / 6.0f;
  const float gs_r6 = gs * r6;
  const float s = amax * gs_r6;
  const uint8_t sf = e4m3_encode(s);
  const float sff = float(e4m3_decode(sf));
  float inv = 0.0f;
  if (sff != 0.0f) {
    const float inv_gs = 1.0f / gs;
    const float denom = sff * inv_gs;
    inv = std::fmin(1.0f / denom, FLT_MAX);
  }
  for (int i = 0; i < 16; ++i) {
    const float scaled = x[i] * inv;
    codes[i] = e2m1_encode(scaled);
  }
  return sf;
}

// A vector of NVFP4 values: one code per element, one scale per 16. at() omits the global scale.
struct Quantized {
  std::vector<uint8_t> codes;
  std::vector<uint8_t> scales;
  double at(size_t i) const { return e2m1_decode(codes[i]) * e4m3_decode(scales[i / 16]); }
};

inline Quantized quantize_vector(const std::vector<float>& x, float gs) {
  Quantized q;
  q.codes.resize(x.size());
  q.scales.resize(x.size() / 16);
  for (size_t b = 0; b < x.size() / 16; ++b) q.scales[b] = quantize_block(&x[b * 16], gs, &q.codes[b * 16]);
  return q;
}

// One expert in the spec's storage: packed rows (element 2i in the low nibble) and linear scales.
struct Expert {
  std::vector<uint8_t> w13, w13_scale;  // [fc1_rows, H/2], [fc1_rows, H/16]
  float w13_scale_2 = 1.0f;
  std::vector<uint8_t> w2, w2_scale;  // [H, I/2], [H, I/16]
  float w2_scale_2 = 1.0f;
};

// A packed [rows, cols] matrix with linear scales, decoded element by element to doubles without the global scale.
inline std::vector<double> decode_matrix(const std::vector<uint8_t>& packed, const std::vector<uint8_t>& scales,
                                         int64_t rows, int64_t cols) {
  std::vector<double> m(size_t(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const uint8_t byte = packed[size_t(r * (cols / 2) + c / 2)];
      const uint8_t code = (c % 2 == 0) ? (byte & 15) : (byte >> 4);
      m[size_t(r * cols + c)] = e2m1_decode(code) * e4m3_decode(scales[size_t(r * (cols / 16) + c / 16)]);
    }
  }
  return m;
}

inline double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

inline double activation(const fp4moe::MoeConfig& c, double g, double u) {
  switch (c.activation) {
    case fp4moe::Activation::kSilu:
      return g * sigmoid(g) * u;
    case fp4moe::Activation::kGeluTanh:
      return 0.5 * g * (1.0 + std::tanh(0.7978845608 * (g + 0.044715 * g * g * g))) * u;
    case fp4moe::Activation::kRelu2:
      return g > 0 ? g * g : 0.0;
    case fp4moe::Activation::kSwigluClamped: {
      const double limit = c.swiglu.limit;
      const double gc = std::fmin(g, limit), uc = std::fmax(-limit, std::fmin(u, limit));
      return gc * sigmoid(double(c.swiglu.alpha) * gc) * (uc + double(c.swiglu.beta));
    }
  }
  return NAN;
}

struct Inputs {
  std::vector<uint16_t> x;                 // BF16 [T, H]; or empty when x_codes is given
  std::vector<uint8_t> x_codes, x_scales;  // pre-quantized x (W4A4): one code per element, [T, H/16] scales
  std::vector<int32_t> topk_ids;           // [T, K]
  std::vector<float> topk_weights;         // [T, K]
  float gs1 = 1.0f, gs2 = 1.0f;
  bool accumulate = false;
};

// Optional by-products for choosing test scales.
struct Stats {
  double h_amax = 0.0;  // max |h| before rounding/quantization over all local slots
};

// Spec §5 on T tokens; `out` (BF16 [T, H]) is read when accumulating and always written except for tokens with no
// local slot under accumulate.
inline void run_moe(const fp4moe::MoeConfig& c, const std::vector<Expert>& experts, const Inputs& in, int64_t tokens,
                    std::vector<uint16_t>& out, Stats* stats = nullptr) {
  const int64_t hidden = c.hidden, inter = c.intermediate, k_top = c.top_k;
  const bool w4a4 = c.mode == fp4moe::Mode::kW4A4;
  // Decoded weights of every local expert (decoding once per call only keeps the tests fast).
  std::vector<std::vector<double>> w13(experts.size()), w2(experts.size());
  for (size_t e = 0; e < experts.size(); ++e) {
    w13[e] = decode_matrix(experts[e].w13, experts[e].w13_scale, c.fc1_rows(), hidden);
    w2[e] = decode_matrix(experts[e].w2, experts[e].w2_scale, hidden, inter);
  }
  for (int64_t t = 0; t < tokens; ++t) {
    // Step 1: the activation input as doubles (exact values of the BF16 x or of its NVFP4 quantization).
    std::vector<double> a(static_cast<size_t>(hidden));
    if (!in.x_codes.empty()) {
      for (int64_t j = 0; j < hidden; ++j) {
        a[j] = e2m1_decode(in.x_codes[size_t(t * hidden + j)]) *
               e4m3_decode(in.x_scales[size_t(t * (hidden / 16) + j / 16)]);
      }
    } else {
      std::vector<float> xf(static_cast<size_t>(hidden));
      for (int64_t j = 0; j < hidden; ++j) xf[j] = bf16_decode(in.x[size_t(t * hidden + j)]);
      if (w4a4) {
        const Quantized q = quantize_vector(xf, in.gs1);
        for (int64_t j = 0; j < hidden; ++j) a[j] = q.at(size_t(j));
      } else {
        for (int64_t j = 0; j < hidden; ++j) a[j] = xf[j];
      }
    }
    std::vector<double> sum(size_t(hidden), 0.0);
    bool any_local = false;
    for (int64_t k = 0; k < k_top; ++k) {
      const int64_t le = int64_t(in.topk_ids[size_t(t * k_top + k)]) - c.expert_offset;
      if (le < 0 || le >= c.num_local_experts) continue;
      any_local = true;
      const Expert& ex = experts[size_t(le)];
      // Step 2: FC1 in double.
      const double alpha1 = w4a4 ? double(ex.w13_scale_2) / double(in.gs1) : double(ex.w13_scale_2);
      std::vector<double> fc1(size_t(c.fc1_rows()));
      for (int64_t n = 0; n < c.fc1_rows(); ++n) {
        double s = 0.0;
        for (int64_t j = 0; j < hidden; ++j) s += a[j] * w13[size_t(le)][size_t(n * hidden + j)];
        fc1[n] = alpha1 * s;
      }
      // Steps 3-4: activation in double, then BF16 rounding or fp32 quantization with gs2.
      std::vector<double> h(static_cast<size_t>(inter));
      std::vector<float> hf(static_cast<size_t>(inter));
      for (int64_t i = 0; i < inter; ++i) {
        const double v = activation(c, fc1[i], c.gated() ? fc1[inter + i] : 0.0);
        if (stats) stats->h_amax = std::fmax(stats->h_amax, std::fabs(v));
        h[i] = bf16_decode(bf16_encode(v));
        hf[i] = float(v);
      }
      if (w4a4) {
        const Quantized q = quantize_vector(hf, in.gs2);
        for (int64_t i = 0; i < inter; ++i) h[i] = q.at(size_t(i));
      }
      // Step 5: FC2 in double; step 6: weighted sum in double.
      const double alpha2 = w4a4 ? double(ex.w2_scale_2) / double(in.gs2) : double(ex.w2_scale_2);
      const double w = in.topk_weights[size_t(t * k_top + k)];
      for (int64_t n = 0; n < hidden; ++n) {
        double s = 0.0;
        for (int64_t i = 0; i < inter; ++i) s += h[i] * w2[size_t(le)][size_t(n * inter + i)];
        sum[n] += w * (alpha2 * s);
      }
    }
    if (!any_local && in.accumulate) continue;
    for (int64_t n = 0; n < hidden; ++n) {
      uint16_t& o = out[size_t(t * hidden + n)];
      o = bf16_encode(sum[n] + (in.accumulate ? double(bf16_decode(o)) : 0.0));
    }
  }
}

}  // namespace naive
