// Helpers shared by the CPU and GPU tests of the dense NVFP4 linear layer: random weights and inputs.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "test_util.hpp"
#include "fp4moe/format.hpp"
#include "fp4moe/linear.hpp"
#include "problem/random_problem.hpp"

namespace fp4moe::linear_test {

constexpr uint16_t kPoison = 0x7FC1;

using testing::fresh_seed;

// Weights owned in host memory: packed [N, K/2], linear E4M3 scales [N, K/16], weight_scale_2 = 1/gsW.
struct HostLinear {
  int64_t n = 0, k = 0;
  std::vector<uint8_t> w, w_scale;
  float weight_scale_2 = 1.0f;

  LinearWeights view() const {
    return {TensorView(w.data(), DType::kU8, {n, k / 2}), TensorView(w_scale.data(), DType::kE4M3, {n, k / 16}),
            TensorView(&weight_scale_2, DType::kF32, {1}), ScaleLayout::kLinear};
  }
};

// W quantized from N(0, 0.02²) with gs = 448·6 / amax.
inline HostLinear random_linear(int64_t n, int64_t k, std::mt19937_64& rng) {
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<float> v(size_t(n * k));
  for (float& f : v) f = dist(rng);
  const float gs = auto_global_scale(v.data(), n * k);
  Nvfp4Matrix q = quantize_matrix(v.data(), n, k, gs);
  return {n, k, std::move(q.packed), std::move(q.scales), 1.0f / gs};
}

// x ~ N(0, 1) as BF16 [M, K] with row stride ld; the gap between rows is poison (a NaN that must be ignored).
inline std::vector<uint16_t> random_x(int64_t m, int64_t k, int64_t ld, std::mt19937_64& rng) {
  std::normal_distribution<float> dist;
  std::vector<uint16_t> x(size_t(m * ld), kPoison);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t j = 0; j < k; ++j) x[size_t(r * ld + j)] = float_to_bf16(dist(rng));
  }
  return x;
}

// A pre-quantized x: codes [M, K/2], linear scales [M, K/16], its global scale gs.
struct QuantizedX {
  std::vector<uint8_t> q, sf;
  float gs = 1.0f;
};

inline QuantizedX quantize_x(const std::vector<uint16_t>& x, int64_t m, int64_t k) {
  std::vector<float> xf(x.size());
  for (size_t i = 0; i < x.size(); ++i) xf[i] = bf16_to_float(x[i]);
  QuantizedX r;
  r.gs = auto_global_scale(xf.data(), int64_t(xf.size()));
  r.q.resize(size_t(m * k / 2));
  r.sf.resize(size_t(m * k / 16));
  quantize_rows(xf.data(), m, k, k, r.gs, r.q.data(), r.sf.data());
  return r;
}

inline bool any_nonzero(const std::vector<uint16_t>& v) {
  for (uint16_t b : v) {
    if ((b & 0x7FFF) != 0) return true;
  }
  return false;
}

// BF16 outputs agree within spec §6 (rel L2 <= 1e-3), all finite, the reference not all zero.
inline void expect_close(const std::vector<uint16_t>& actual, const std::vector<uint16_t>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  const ErrorStats s = compare_bf16(actual.data(), expected.data(), int64_t(actual.size()));
  EXPECT_EQ(s.nonfinite, 0);
  EXPECT_LE(s.rel_l2, 1e-3) << "max_abs " << s.max_abs;
  EXPECT_TRUE(any_nonzero(expected)) << "degenerate problem: all-zero reference";
}

struct GemmShape {
  int64_t m, n, k;
};

// Checks that every element of the [M, N] output (row stride ld) was written and no gap element was; returns the
// [M, N] part.
inline std::vector<uint16_t> check_written(const std::vector<uint16_t>& buf, int64_t m, int64_t n, int64_t ld) {
  std::vector<uint16_t> result(size_t(m * n));
  int64_t unwritten = 0, gap_written = 0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < ld; ++j) {
      const uint16_t v = buf[size_t(i * ld + j)];
      if (j < n) {
        unwritten += v == kPoison;
        result[size_t(i * n + j)] = v;
      } else {
        gap_written += v != kPoison;
      }
    }
  }
  EXPECT_EQ(unwritten, 0) << "output elements left unwritten";
  EXPECT_EQ(gap_written, 0) << "elements between output rows overwritten";
  return result;
}

}  // namespace fp4moe::linear_test
