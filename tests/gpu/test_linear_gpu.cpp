// Dense NVFP4 linear layer, CUDA backend against the CPU backend: model-sized shapes with BF16 and pre-quantized x
// (rel L2 <= 1e-3), two runs bitwise equal, poisoned outputs fully written, strided rows, weights staged from
// device memory (both scale layouts), M = 0, and the CUDA-side validation (device, alignment).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "linear_test_util.hpp"
#include "fp4moe/error.hpp"
#include "fp4moe/linear.hpp"
#include "gpu/gpu_test_util.hpp"
#include "problem/random_problem.hpp"

namespace fp4moe {
namespace {

using testing::DeviceBuffer;

using namespace linear_test;

// The inputs of one call, on the host and copied to the device (views for both).
struct Inputs {
  LinearInputs host, device;
  std::vector<DeviceBuffer> buffers;
};

Inputs bf16_inputs(const std::vector<uint16_t>& x, int64_t m, int64_t k, int64_t ld, Device dev) {
  Inputs in;
  in.buffers.push_back(DeviceBuffer::from_host(x));
  in.host.x = TensorView(x.data(), DType::kBF16, {m, k});
  in.host.x.strides[0] = ld;
  in.device.x = in.host.x;
  in.device.x.data = in.buffers.back().get();
  in.device.x.device = dev;
  return in;
}

Inputs prequantized_inputs(const QuantizedX& qx, int64_t m, int64_t k, Device dev) {
  Inputs in;
  in.buffers.push_back(DeviceBuffer::from_host(qx.q));
  in.buffers.push_back(DeviceBuffer::from_host(qx.sf));
  in.host = {TensorView(qx.q.data(), DType::kU8, {m, k / 2}), TensorView(qx.sf.data(), DType::kE4M3, {m, k / 16}),
             qx.gs};
  in.device = {TensorView(in.buffers[0].get(), DType::kU8, {m, k / 2}, dev),
               TensorView(in.buffers[1].get(), DType::kE4M3, {m, k / 16}, dev), qx.gs};
  return in;
}

std::vector<uint16_t> run_cpu(const PreparedLinear& p, const LinearInputs& in, int64_t m) {
  std::vector<uint16_t> out(size_t(m * p.out_features()), kPoison);
  linear_forward(p, in, TensorView(out.data(), DType::kBF16, {m, p.out_features()}));
  return check_written(out, m, p.out_features(), p.out_features());
}

// Runs on the GPU into a poisoned device buffer with row stride out_ld (0 = N).
std::vector<uint16_t> run_gpu(const PreparedLinear& p, const LinearInputs& in, int64_t m, int64_t out_ld = 0,
                              cudaStream_t stream = nullptr) {
  const int64_t n = p.out_features();
  if (out_ld == 0) out_ld = n;
  const DeviceBuffer out = DeviceBuffer::from_host(std::vector<uint16_t>(size_t(m * out_ld), kPoison));
  TensorView ov(out.get(), DType::kBF16, {m, n}, p.device());
  ov.strides[0] = out_ld;
  linear_forward(p, in, ov, stream);
  FP4MOE_CUDA_CHECK(cudaStreamSynchronize(stream));
  return check_written(out.to_host<uint16_t>(), m, n, out_ld);
}

TEST(LinearGpu, MatchesCpuBackendOnModelShapes) {
  FP4MOE_REQUIRE_GPU();
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937_64 rng(seed);
  cudaStream_t stream = nullptr;
  FP4MOE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const GemmShape shapes[] = {{1, 256, 64}, {7, 2048, 2048}, {64, 4096, 7168}, {257, 2880, 2880}, {1000, 512, 1536}};
  for (const GemmShape& s : shapes) {
    SCOPED_TRACE(::testing::Message() << "M=" << s.m << " N=" << s.n << " K=" << s.k);
    const auto t0 = std::chrono::steady_clock::now();
    const HostLinear w = random_linear(s.n, s.k, rng);
    const PreparedLinear cpu = prepare_linear(w.view(), Backend::kCpu);
    const PreparedLinear gpu = prepare_linear(w.view(), Backend::kCuda);
    ASSERT_EQ(gpu.backend(), Backend::kCuda);
    const std::vector<uint16_t> x = random_x(s.m, s.k, s.k, rng);
    const QuantizedX qx = quantize_x(x, s.m, s.k);
    for (const bool prequantized : {false, true}) {
      SCOPED_TRACE(prequantized ? "pre-quantized x" : "BF16 x");
      const Inputs in = prequantized ? prequantized_inputs(qx, s.m, s.k, gpu.device())
                                     : bf16_inputs(x, s.m, s.k, s.k, gpu.device());
      const std::vector<uint16_t> expected = run_cpu(cpu, in.host, s.m);
      const std::vector<uint16_t> got = run_gpu(gpu, in.device, s.m, 0, stream);
      expect_close(got, expected);
      EXPECT_EQ(run_gpu(gpu, in.device, s.m, 0, stream), got) << "two runs differ";
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("  M=%lld N=%lld K=%lld: %.0f ms (data, CPU and GPU runs)\n", (long long)s.m, (long long)s.n,
                (long long)s.k, ms);
  }
  FP4MOE_CUDA_CHECK(cudaStreamDestroy(stream));
}

TEST(LinearGpu, StridedRowsAreBitwiseEqualToContiguous) {
  FP4MOE_REQUIRE_GPU();
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937_64 rng(seed);
  const int64_t m = 37, n = 192, k = 320, x_ld = k + 40;
  const HostLinear w = random_linear(n, k, rng);
  const PreparedLinear gpu = prepare_linear(w.view(), Backend::kCuda);
  const std::vector<uint16_t> xs = random_x(m, k, x_ld, rng);  // NaN gaps between rows
  std::vector<uint16_t> xc(size_t(m * k));
  for (int64_t i = 0; i < m; ++i) std::copy_n(&xs[size_t(i * x_ld)], k, &xc[size_t(i * k)]);
  const Inputs contiguous = bf16_inputs(xc, m, k, k, gpu.device());
  const Inputs strided = bf16_inputs(xs, m, k, x_ld, gpu.device());
  const std::vector<uint16_t> expected = run_gpu(gpu, contiguous.device, m);
  EXPECT_TRUE(any_nonzero(expected));
  EXPECT_EQ(run_gpu(gpu, strided.device, m, n + 8), expected);
  EXPECT_EQ(run_gpu(gpu, contiguous.device, m, n + 24), expected);
  const PreparedLinear cpu = prepare_linear(w.view(), Backend::kCpu);
  expect_close(expected, run_cpu(cpu, strided.host, m));
}

TEST(LinearGpu, WeightsFromDeviceMemoryAreEquivalent) {
  FP4MOE_REQUIRE_GPU();
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937_64 rng(seed);
  const int64_t m = 20, n = 300, k = 208;  // N and K/16 = 13 both need 128x4 padding
  const HostLinear w = random_linear(n, k, rng);
  const PreparedLinear from_host = prepare_linear(w.view(), Backend::kCuda);
  const Device dev = from_host.device();
  const std::vector<uint16_t> x = random_x(m, k, k, rng);
  const Inputs in = bf16_inputs(x, m, k, k, dev);
  const std::vector<uint16_t> expected = run_gpu(from_host, in.device, m);

  const auto [sr, sc] = scale_shape(ScaleLayout::kSwizzled128x4, n, k);
  std::vector<uint8_t> swizzled(size_t(sr * sc));
  swizzle_scales(w.w_scale.data(), n, k / 16, swizzled.data());
  const DeviceBuffer dw = DeviceBuffer::from_host(w.w), dsf = DeviceBuffer::from_host(w.w_scale);
  const DeviceBuffer dsw = DeviceBuffer::from_host(swizzled);
  const DeviceBuffer ds2 = DeviceBuffer::from_host(std::vector<float>{w.weight_scale_2});
  LinearWeights dv{TensorView(dw.get(), DType::kU8, {n, k / 2}, dev),
                   TensorView(dsf.get(), DType::kE4M3, {n, k / 16}, dev),
                   TensorView(ds2.get(), DType::kF32, {1}, dev), ScaleLayout::kLinear};
  const PreparedLinear from_device = prepare_linear(dv, Backend::kCuda);
  EXPECT_EQ(from_device.device(), dev);
  EXPECT_EQ(run_gpu(from_device, in.device, m), expected);
  dv.weight_scale = TensorView(dsw.get(), DType::kE4M3, {sr, sc}, dev);
  dv.scale_layout = ScaleLayout::kSwizzled128x4;
  EXPECT_EQ(run_gpu(prepare_linear(dv, Backend::kCuda), in.device, m), expected);
  try {
    prepare_linear(dv, Backend::kCpu);
    ADD_FAILURE() << "CPU backend accepted device-resident weights";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("argument 'weights.weight': expected memory on cpu"), std::string::npos)
        << e.what();
  }
}

TEST(LinearGpu, ZeroRowsIsANoOp) {
  FP4MOE_REQUIRE_GPU();
  std::mt19937_64 rng(fresh_seed());
  const HostLinear w = random_linear(64, 128, rng);
  const PreparedLinear gpu = prepare_linear(w.view(), Backend::kCuda);
  const Device dev = gpu.device();
  const DeviceBuffer sentinel = DeviceBuffer::from_host(std::vector<uint16_t>(8, 0x1234));
  const DeviceBuffer x(64);
  LinearInputs in;
  in.x = TensorView(x.get(), DType::kBF16, {0, 128}, dev);
  linear_forward(gpu, in, TensorView(sentinel.get(), DType::kBF16, {0, 64}, dev));
  in = {TensorView(x.get(), DType::kU8, {0, 64}, dev), TensorView(x.get(), DType::kE4M3, {0, 8}, dev), 1.0f};
  linear_forward(gpu, in, TensorView(sentinel.get(), DType::kBF16, {0, 64}, dev));
  FP4MOE_CUDA_CHECK(cudaDeviceSynchronize());
  for (uint16_t v : sentinel.to_host<uint16_t>()) EXPECT_EQ(v, 0x1234);
}

using testing::expect_error;

TEST(LinearGpu, InputsMustBeOnTheWeightsDeviceAndAligned) {
  FP4MOE_REQUIRE_GPU();
  std::mt19937_64 rng(fresh_seed());
  const int64_t m = 4, n = 32, k = 64;
  const HostLinear w = random_linear(n, k, rng);
  const PreparedLinear gpu = prepare_linear(w.view(), Backend::kCuda);
  const Device dev = gpu.device();
  const std::string on_dev = "memory on " + device_name(dev);
  const std::vector<uint16_t> x = random_x(m, k + 8, k + 8, rng);
  const Inputs in = bf16_inputs(x, m, k, k, dev);
  const DeviceBuffer out(size_t(m * n * 2));
  const TensorView ov(out.get(), DType::kBF16, {m, n}, dev);
  expect_error([&] { linear_forward(gpu, in.host, ov); }, "argument 'x': expected " + on_dev + ", got memory on cpu");
  std::vector<uint16_t> host_out(size_t(m * n));
  expect_error([&] { linear_forward(gpu, in.device, TensorView(host_out.data(), DType::kBF16, {m, n})); },
               "argument 'out': expected " + on_dev + ", got memory on cpu");
  LinearInputs bad = in.device;
  bad.x.data = static_cast<uint16_t*>(bad.x.data) + 1;
  expect_error([&] { linear_forward(gpu, bad, ov); }, "argument 'x': expected a 16-byte aligned pointer");
  bad = in.device;
  bad.x.strides[0] = k + 4;
  expect_error([&] { linear_forward(gpu, bad, ov); },
               "argument 'x': expected a row stride that is a multiple of 8 elements (CUDA backend), "
               "got row stride 68");
  FP4MOE_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace
}  // namespace fp4moe
