// Dense NVFP4 linear layer, CPU backend: random problems against an independent fp64 model (BF16 x and
// pre-quantized x), hand-built cases with bitwise-known answers, 128x4 scales, M = 0, strided rows, independence of
// the thread count and of the batch composition, and every validation message. Outputs are poisoned (0x7FC1, a
// BF16 NaN) before each run and every element is checked to be written.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "linear_test_util.hpp"
#include "cuda/common/device_info.hpp"
#include "fp4moe/error.hpp"
#include "fp4moe/linear.hpp"
#include "problem/random_problem.hpp"

namespace fp4moe {
namespace {

using namespace linear_test;

LinearInputs bf16_inputs(const TensorView& x) {
  LinearInputs in;
  in.x = x;
  return in;
}

LinearInputs prequantized_inputs(const QuantizedX& qx, int64_t m, int64_t k) {
  return {TensorView(qx.q.data(), DType::kU8, {m, k / 2}), TensorView(qx.sf.data(), DType::kE4M3, {m, k / 16}),
          qx.gs};
}

// The fp64 model: out[m][n] = bf16(alpha · Σ_j x̂[m][j]·ŵ[n][j]), the sum and the product with alpha in double.
// x̂ is [M, K] contiguous; ŵ = e2m1(q)·sf from the shared decoders.
std::vector<uint16_t> fp64_model(const HostLinear& w, const std::vector<double>& xhat, int64_t m, double alpha) {
  std::vector<double> what(size_t(w.n * w.k));
  for (int64_t r = 0; r < w.n; ++r) {
    for (int64_t j = 0; j < w.k; ++j) {
      what[size_t(r * w.k + j)] =
          dequant_unscaled(fp4_get(&w.w[size_t(r * w.k / 2)], j), w.w_scale[size_t(r * w.k / 16 + j / 16)]);
    }
  }
  std::vector<uint16_t> out(size_t(m * w.n));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t r = 0; r < w.n; ++r) {
      double sum = 0;
      for (int64_t j = 0; j < w.k; ++j) sum += xhat[size_t(i * w.k + j)] * what[size_t(r * w.k + j)];
      out[size_t(i * w.n + r)] = float_to_bf16(float(alpha * sum));
    }
  }
  return out;
}

// Runs the layer into a poisoned [M, N] buffer with row stride out_ld; checks every element was written and the
// gaps between rows were not. Returns the [M, N] result (gaps dropped).
std::vector<uint16_t> run_linear(const PreparedLinear& p, const LinearInputs& in, int64_t m, int64_t out_ld = 0) {
  const int64_t n = p.out_features();
  if (out_ld == 0) out_ld = n;
  std::vector<uint16_t> buf(size_t(m * out_ld), kPoison);
  TensorView out(buf.data(), DType::kBF16, {m, n});
  out.strides[0] = out_ld;
  linear_forward(p, in, out);
  return check_written(buf, m, n, out_ld);
}

const GemmShape kShapes[] = {{1, 8, 16}, {5, 37, 64}, {33, 130, 272}, {17, 256, 1024}, {300, 24, 48}};

TEST(LinearCpu, MatchesFp64ModelWithBf16X) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937_64 rng(seed);
  for (const GemmShape& s : kShapes) {
    SCOPED_TRACE(::testing::Message() << "M=" << s.m << " N=" << s.n << " K=" << s.k);
    const HostLinear w = random_linear(s.n, s.k, rng);
    const std::vector<uint16_t> x = random_x(s.m, s.k, s.k, rng);
    std::vector<double> xhat(x.size());
    for (size_t i = 0; i < x.size(); ++i) xhat[i] = bf16_to_float(x[i]);
    const PreparedLinear p = prepare_linear(w.view(), Backend::kCpu);
    const LinearInputs in = bf16_inputs(TensorView(x.data(), DType::kBF16, {s.m, s.k}));
    expect_close(run_linear(p, in, s.m), fp64_model(w, xhat, s.m, double(w.weight_scale_2)));
  }
}

TEST(LinearCpu, MatchesFp64ModelWithPrequantizedX) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937_64 rng(seed);
  for (const GemmShape& s : kShapes) {
    SCOPED_TRACE(::testing::Message() << "M=" << s.m << " N=" << s.n << " K=" << s.k);
    const HostLinear w = random_linear(s.n, s.k, rng);
    const QuantizedX qx = quantize_x(random_x(s.m, s.k, s.k, rng), s.m, s.k);
    std::vector<double> xhat(size_t(s.m * s.k));
    for (int64_t i = 0; i < s.m * s.k; ++i) {
      xhat[size_t(i)] = dequant_unscaled(fp4_get(qx.q.data(), i), qx.sf[size_t(i / 16)]);
    }
    const PreparedLinear p = prepare_linear(w.view(), Backend::kCpu);
    const double alpha = double(w.weight_scale_2) / double(qx.gs);
    expect_close(run_linear(p, prequantized_inputs(qx, s.m, s.k), s.m), fp64_model(w, xhat, s.m, alpha));
  }
}

// K = 32, N = 3, weight_scale_2 = 0.25: ŵ row 0 = 1 (block 0) / 2 (block 1); row 1 = −3; row 2 = 0.5 (even k) /
// 6 (odd k). Every sum is exact, so the output bits are known.
HostLinear exact_weights() {
  HostLinear w;
  w.n = 3;
  w.k = 32;
  w.weight_scale_2 = 0.25f;
  w.w.assign(48, 0);
  std::fill(w.w.begin(), w.w.begin() + 16, uint8_t(0x22));        // code 2 = 1.0
  std::fill(w.w.begin() + 16, w.w.begin() + 32, uint8_t(0xFF));   // code 15 = −6
  std::fill(w.w.begin() + 32, w.w.end(), uint8_t(0x71));          // low 0.5, high 6
  w.w_scale = {0x38, 0x40, 0x30, 0x30, 0x38, 0x38};               // 1, 2 | 0.5, 0.5 | 1, 1
  return w;
}

TEST(LinearCpu, ExactValuesWithBf16X) {
  const HostLinear w = exact_weights();
  std::vector<uint16_t> x(3 * 32, 0);
  for (int j = 0; j < 32; ++j) {
    x[size_t(j)] = float_to_bf16(1.0f);
    x[size_t(32 + j)] = float_to_bf16(float(j - 16));
  }
  x[64] = float_to_bf16(256.0f);  // row 2: 256, 1, 0, ...: sums 257 · {1, −3} and 134 need BF16 rounding
  x[65] = float_to_bf16(1.0f);
  const PreparedLinear p = prepare_linear(w.view(), Backend::kCpu);
  const std::vector<uint16_t> out = run_linear(p, bf16_inputs(TensorView(x.data(), DType::kBF16, {3, 32})), 3);
  // 12, −24, 26 | 26, 12, −2 | 64.25 → 64 (tie to even), −192.75 → −193, 33.5
  const std::vector<uint16_t> expected = {0x4140, 0xC1C0, 0x41D0, 0x41D0, 0x4140, 0xC000, 0x4280, 0xC341, 0x4206};
  EXPECT_EQ(out, expected);
}

TEST(LinearCpu, ExactValuesWithPrequantizedX) {
  const HostLinear w = exact_weights();
  // x̂ row 0 = 1 everywhere; row 1 = 1.5·2 = 3 (block 0), −1·1 = −1 (block 1). gsX = 2, so alpha = 0.25 / 2.
  QuantizedX qx;
  qx.q.assign(32, 0);
  std::fill(qx.q.begin(), qx.q.begin() + 16, uint8_t(0x22));
  std::fill(qx.q.begin() + 16, qx.q.begin() + 24, uint8_t(0x33));
  std::fill(qx.q.begin() + 24, qx.q.end(), uint8_t(0xAA));
  qx.sf = {0x38, 0x38, 0x40, 0x38};
  qx.gs = 2.0f;
  const PreparedLinear p = prepare_linear(w.view(), Backend::kCpu);
  const std::vector<uint16_t> out = run_linear(p, prequantized_inputs(qx, 2, 32), 2);
  // 6, −12, 13 | 2, −12, 13
  const std::vector<uint16_t> expected = {0x40C0, 0xC140, 0x4150, 0x4000, 0xC140, 0x4150};
  EXPECT_EQ(out, expected);
}

TEST(LinearCpu, SwizzledScalesAreBitwiseEqualToLinear) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937_64 rng(seed);
  const int64_t m = 9, n = 200, k = 80;  // N not a multiple of 128, K/16 = 5 not a multiple of 4: padding on both
  const HostLinear w = random_linear(n, k, rng);
  const std::vector<uint16_t> x = random_x(m, k, k, rng);
  const LinearInputs in = bf16_inputs(TensorView(x.data(), DType::kBF16, {m, k}));
  const std::vector<uint16_t> expected = run_linear(prepare_linear(w.view(), Backend::kCpu), in, m);
  const auto [sr, sc] = scale_shape(ScaleLayout::kSwizzled128x4, n, k);
  std::vector<uint8_t> swizzled(size_t(sr * sc));
  swizzle_scales(w.w_scale.data(), n, k / 16, swizzled.data());
  LinearWeights sw = w.view();
  sw.weight_scale = TensorView(swizzled.data(), DType::kE4M3, {sr, sc});
  sw.scale_layout = ScaleLayout::kSwizzled128x4;
  EXPECT_EQ(run_linear(prepare_linear(sw, Backend::kCpu), in, m), expected);
  EXPECT_TRUE(any_nonzero(expected));
}

TEST(LinearCpu, ZeroRowsIsANoOp) {
  std::mt19937_64 rng(fresh_seed());
  const HostLinear w = random_linear(16, 32, rng);
  const PreparedLinear p = prepare_linear(w.view(), Backend::kCpu);
  std::vector<uint16_t> sentinel(4, 0x1234);
  std::vector<uint16_t> x(4);
  linear_forward(p, bf16_inputs(TensorView(x.data(), DType::kBF16, {0, 32})),
                 TensorView(sentinel.data(), DType::kBF16, {0, 16}));
  std::vector<uint8_t> q(4), sf(4);
  linear_forward(p, {TensorView(q.data(), DType::kU8, {0, 16}), TensorView(sf.data(), DType::kE4M3, {0, 2}), 1.0f},
                 TensorView(sentinel.data(), DType::kBF16, {0, 16}));
  for (uint16_t v : sentinel) EXPECT_EQ(v, 0x1234);
}

TEST(LinearCpu, StridedRowsAreBitwiseEqualToContiguous) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937_64 rng(seed);
  const int64_t m = 11, n = 40, k = 96, x_ld = k + 24, w_ld = k / 2 + 8;
  const HostLinear w = random_linear(n, k, rng);
  const std::vector<uint16_t> xs = random_x(m, k, x_ld, rng);  // NaN gaps between rows
  std::vector<uint16_t> xc(size_t(m * k));
  for (int64_t i = 0; i < m; ++i) std::copy_n(&xs[size_t(i * x_ld)], k, &xc[size_t(i * k)]);
  const PreparedLinear p = prepare_linear(w.view(), Backend::kCpu);
  const std::vector<uint16_t> expected = run_linear(p, bf16_inputs(TensorView(xc.data(), DType::kBF16, {m, k})), m);
  TensorView xv(xs.data(), DType::kBF16, {m, k});
  xv.strides[0] = x_ld;
  EXPECT_EQ(run_linear(p, bf16_inputs(xv), m, n + 5), expected);
  // Weight rows strided too.
  std::vector<uint8_t> wpad(size_t(n * w_ld), 0xEE);
  for (int64_t r = 0; r < n; ++r) std::copy_n(&w.w[size_t(r * k / 2)], k / 2, &wpad[size_t(r * w_ld)]);
  LinearWeights wv = w.view();
  wv.weight.data = wpad.data();
  wv.weight.strides[0] = w_ld;
  EXPECT_EQ(run_linear(prepare_linear(wv, Backend::kCpu), bf16_inputs(xv), m), expected);
}

TEST(LinearCpu, ThreadCountAndBatchCompositionDoNotChangeBits) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937_64 rng(seed);
  const int64_t m = 300, n = 52, k = 160;  // m > 256: more than one chunk of x rows
  const HostLinear w = random_linear(n, k, rng);
  const std::vector<uint16_t> x = random_x(m, k, k, rng);
  const PreparedLinear p = prepare_linear(w.view(), Backend::kCpu);
  const LinearInputs in = bf16_inputs(TensorView(x.data(), DType::kBF16, {m, k}));
  const std::vector<uint16_t> expected = run_linear(p, in, m);
  const int threads = omp_get_max_threads();
  for (int t : {1, 3, 7}) {
    omp_set_num_threads(t);
    EXPECT_EQ(run_linear(p, in, m), expected) << t << " threads";
  }
  omp_set_num_threads(threads);
  for (int64_t i = 0; i < m; i += 37) {
    const LinearInputs one = bf16_inputs(TensorView(&x[size_t(i * k)], DType::kBF16, {1, k}));
    const std::vector<uint16_t> row = run_linear(p, one, 1);
    EXPECT_TRUE(std::equal(row.begin(), row.end(), expected.begin() + i * n)) << "row " << i << " alone";
  }
}

TEST(LinearCpu, PreparedAccessors) {
  std::mt19937_64 rng(fresh_seed());
  const HostLinear w = random_linear(24, 48, rng);
  LinearWeights v = w.view();
  v.weight_scale_2 = TensorView(&w.weight_scale_2, DType::kF32, {});  // 0-d scalar is accepted
  const PreparedLinear p = prepare_linear(v, Backend::kCpu);
  EXPECT_EQ(p.out_features(), 24);
  EXPECT_EQ(p.in_features(), 48);
  EXPECT_EQ(p.backend(), Backend::kCpu);
  EXPECT_EQ(p.device(), Device::cpu());
}

// ---- validation messages ----

using testing::expect_error;

TEST(LinearValidation, WeightErrorsNameTheArgument) {
  std::mt19937_64 rng(fresh_seed());
  HostLinear w = random_linear(8, 64, rng);
  auto prep = [](const LinearWeights& v) { return [v] { prepare_linear(v, Backend::kCpu); }; };
  LinearWeights v = w.view();
  v.weight.dtype = DType::kBF16;
  expect_error(prep(v), "argument 'weights.weight': expected dtype U8, got dtype BF16");
  v = w.view();
  v.weight = TensorView(w.w.data(), DType::kU8, {2, 4, 32});
  expect_error(prep(v), "argument 'weights.weight': expected a 2-D tensor [N, K/2], got shape [2, 4, 32]");
  v = w.view();
  v.weight = TensorView(w.w.data(), DType::kU8, {8, 20});
  expect_error(prep(v),
               "argument 'weights.weight': expected K = 2 * shape[1] a positive multiple of 16, got shape [8, 20] "
               "(K = 40)");
  v = w.view();
  v.weight = TensorView(w.w.data(), DType::kU8, {0, 32});
  expect_error(prep(v), "argument 'weights.weight': expected at least one row (N >= 1), got shape [0, 32]");
  v = w.view();
  v.weight.strides[1] = 2;
  expect_error(prep(v), "argument 'weights.weight': expected innermost stride 1, got stride 2");
  v = w.view();
  v.weight_scale = TensorView();
  expect_error(prep(v), "argument 'weights.weight_scale': expected an F8_E4M3 tensor, got none");
  v = w.view();
  v.weight_scale.dtype = DType::kF32;
  expect_error(prep(v), "argument 'weights.weight_scale': expected dtype F8_E4M3 (or U8 raw bytes), got dtype F32");
  v = w.view();
  v.weight_scale.shape[1] = 8;
  expect_error(prep(v), "argument 'weights.weight_scale': expected shape [8, 4], got shape [8, 8]");
  v = w.view();
  v.scale_layout = ScaleLayout::kSwizzled128x4;
  expect_error(prep(v), "argument 'weights.weight_scale': expected shape [128, 4], got shape [8, 4]");
  v = w.view();
  v.weight_scale_2.dtype = DType::kBF16;
  expect_error(prep(v), "argument 'weights.weight_scale_2': expected dtype F32, got dtype BF16");
  v = w.view();
  v.weight_scale_2.shape[0] = 2;
  expect_error(prep(v), "argument 'weights.weight_scale_2': expected shape [1] (or 0-d), got shape [2]");
  for (const auto& [bad, text] : {std::pair{-1.0f, "-1"}, {0.0f, "0"}, {NAN, "nan"}, {INFINITY, "inf"}}) {
    w.weight_scale_2 = bad;
    expect_error(prep(w.view()),
                 std::string("argument 'weights.weight_scale_2': expected a finite value > 0, got ") + text);
  }
  w.weight_scale_2 = 0.5f;
  v = w.view();
  v.weight.device = Device::cuda();
  expect_error(prep(v), "argument 'weights.weight_scale': expected memory on cuda:0, got memory on cpu");
  v.weight_scale.device = v.weight_scale_2.device = Device::cuda();
  expect_error(prep(v), "argument 'weights.weight': expected memory on cpu, got memory on cuda:0");
  if (survey_gpus().devices.empty()) {
    expect_error([&] { prepare_linear(w.view(), Backend::kCuda); },
                 "argument 'backend': expected a machine with a CUDA GPU of SM80 or newer for backend cuda, "
                 "got no GPU");
  }
  expect_error([] { PreparedLinear{}.out_features(); },
               "PreparedLinear is empty (default-constructed); call prepare_linear()");
}

TEST(LinearValidation, InputErrorsNameTheArgument) {
  std::mt19937_64 rng(fresh_seed());
  const HostLinear w = random_linear(8, 64, rng);
  const PreparedLinear p = prepare_linear(w.view(), Backend::kCpu);
  std::vector<uint16_t> x(4 * 128), out(4 * 16);
  const LinearInputs good = bf16_inputs(TensorView(x.data(), DType::kBF16, {4, 64}));
  const TensorView ov(out.data(), DType::kBF16, {4, 8});
  auto call = [&](LinearInputs in, TensorView o) { return [=, &p] { linear_forward(p, in, o); }; };
  LinearInputs in = good;
  in.x.shape[1] = 32;
  expect_error(call(in, ov), "argument 'x': expected shape [4, 64], got shape [4, 32]");
  in = good;
  in.x.dtype = DType::kF32;
  expect_error(call(in, ov), "argument 'x': expected dtype BF16 (or U8 for pre-quantized x), got dtype F32");
  in.x = TensorView(x.data(), DType::kBF16, {64});
  expect_error(call(in, ov), "argument 'x': expected a 2-D tensor [M, K], got shape [64]");
  expect_error(call(LinearInputs{}, ov), "argument 'x': expected a 2-D tensor [M, K], got shape []");
  in = good;
  in.x.strides = {128, 2};
  expect_error(call(in, ov), "argument 'x': expected innermost stride 1, got stride 2");
  in.x.strides = {32, 1};
  expect_error(call(in, ov), "argument 'x': expected row stride >= 64, got row stride 32");
  in = good;
  in.x.device = Device::cuda();
  expect_error(call(in, ov), "argument 'x': expected memory on cpu, got memory on cuda:0");
  in = good;
  in.x_scale = TensorView(x.data(), DType::kE4M3, {4, 4});
  expect_error(call(in, ov), "argument 'x_scale': expected none with BF16 x, got a tensor");
  expect_error(call(good, TensorView(out.data(), DType::kBF16, {3, 8})),
               "argument 'out': expected shape [4, 8], got shape [3, 8]");
  expect_error(call(good, TensorView(out.data(), DType::kF32, {4, 8})),
               "argument 'out': expected dtype BF16, got dtype F32");
  TensorView bad_out = ov;
  bad_out.strides[0] = 4;
  expect_error(call(good, bad_out), "argument 'out': expected row stride >= 8, got row stride 4");
  bad_out = ov;
  bad_out.strides[1] = 2;
  expect_error(call(good, bad_out), "argument 'out': expected innermost stride 1, got stride 2");
  bad_out = ov;
  bad_out.device = Device::cuda();
  expect_error(call(good, bad_out), "argument 'out': expected memory on cpu, got memory on cuda:0");
  expect_error([&] { linear_forward(PreparedLinear{}, good, ov); }, "PreparedLinear is empty");
}

TEST(LinearValidation, PrequantizedInputErrorsNameTheArgument) {
  std::mt19937_64 rng(fresh_seed());
  const HostLinear w = random_linear(8, 64, rng);
  const PreparedLinear p = prepare_linear(w.view(), Backend::kCpu);
  std::vector<uint8_t> q(4 * 64), sf(4 * 8);
  std::vector<uint16_t> out(4 * 8);
  const LinearInputs good{TensorView(q.data(), DType::kU8, {4, 32}), TensorView(sf.data(), DType::kE4M3, {4, 4}),
                          1.0f};
  const TensorView ov(out.data(), DType::kBF16, {4, 8});
  auto call = [&](LinearInputs in) { return [=, &p] { linear_forward(p, in, ov); }; };
  EXPECT_NO_THROW(call(good)());
  LinearInputs in = good;
  in.x.shape[1] = 64;
  expect_error(call(in), "argument 'x': expected shape [4, 32], got shape [4, 64]");
  in = good;
  in.x.strides[0] = 40;
  expect_error(call(in),
               "argument 'x': expected a contiguous (row-major) tensor, got strides that are not row-major for shape "
               "[4, 32]");
  in = good;
  in.x_scale = TensorView();
  expect_error(call(in), "argument 'x_scale': expected E4M3 scales [M, K/16] for pre-quantized x, got none");
  in = good;
  in.x_scale.shape[1] = 8;
  expect_error(call(in), "argument 'x_scale': expected shape [4, 4], got shape [4, 8]");
  in = good;
  in.x_scale.dtype = DType::kBF16;
  expect_error(call(in), "argument 'x_scale': expected dtype F8_E4M3 (or U8 raw bytes), got dtype BF16");
  in = good;
  in.x_scale.strides[0] = 8;
  expect_error(call(in), "argument 'x_scale': expected a contiguous (row-major) tensor");
  in = good;
  in.x_scale.device = Device::cuda();
  expect_error(call(in), "argument 'x_scale': expected memory on cpu, got memory on cuda:0");
  for (const auto& [bad, text] : {std::pair{0.0f, "0"}, {-2.0f, "-2"}, {INFINITY, "inf"}, {NAN, "nan"}}) {
    in = good;
    in.x_global_scale = bad;
    expect_error(call(in), std::string("argument 'x_global_scale': expected a finite value > 0 for pre-quantized x, "
                                       "got ") + text);
  }
}

}  // namespace
}  // namespace fp4moe
