// Dense NVFP4 linear layer (include/fp4moe/linear.hpp): weight validation and preparation (once: validate, stage
// device-resident sources to the host, convert to packed rows + linear scales, upload for CUDA), per-call input
// validation, and dispatch to the CPU reference or to the CUDA GEMM (cuda::linear_launch).
// The CUDA backend also needs BF16 x 16-byte aligned with a row stride that is a multiple of 8 elements, and packed
// x 4-byte aligned (the GEMM's load widths); each is checked with an error naming 'x'.
#include "fp4moe/linear.hpp"

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "api/device_buffer.hpp"
#include "api/staging.hpp"
#include "cuda/common/cuda_check.hpp"
#include "cuda/linear/linear_launch.hpp"
#include "fp4moe/error.hpp"
#include "fp4moe/moe.hpp"
#include "reference/linear_reference.hpp"

namespace fp4moe {

// The library's own layout of the weights: W [N, K/2] packed and linear scales [N, K/16], rows contiguous.
struct PreparedLinear::Impl {
  int64_t n = 0, k = 0;
  Backend backend = Backend::kCpu;
  Device device{};
  float weight_scale_2 = 1.0f;          // 1/gsW, as given
  std::vector<uint8_t> w, w_scale;      // CPU backend (and the staging copy of the CUDA backend, then released)
  DeviceBuffer cuda_w, cuda_w_scale;    // CUDA backend
};

namespace {

constexpr const char* kWeightArg = "weights.weight";
constexpr const char* kScaleArg = "weights.weight_scale";
constexpr const char* kScale2Arg = "weights.weight_scale_2";

// Checks dtypes, ranks, shapes per scale layout, strides and that all three tensors share one device.
// Returns {N, K}.
std::array<int64_t, 2> validate_weights(const LinearWeights& w) {
  check_dtype(w.weight, kWeightArg, DType::kU8);
  FP4MOE_CHECK_ARG(w.weight.ndim == 2, kWeightArg, "a 2-D tensor [N, K/2]",
                   detail::concat("shape ", shape_string(w.weight)));
  const int64_t n = w.weight.shape[0], k = 2 * w.weight.shape[1];
  FP4MOE_CHECK_ARG(n >= 1, kWeightArg, "at least one row (N >= 1)", detail::concat("shape ", shape_string(w.weight)));
  FP4MOE_CHECK_ARG(k > 0 && k % kBlockSize == 0, kWeightArg, "K = 2 * shape[1] a positive multiple of 16",
                   detail::concat("shape ", shape_string(w.weight), " (K = ", k, ")"));
  check_row_major(w.weight, kWeightArg);

  FP4MOE_CHECK_ARG(!w.weight_scale.empty(), kScaleArg, "an F8_E4M3 tensor", "none");
  FP4MOE_CHECK_ARG(w.weight_scale.dtype == DType::kE4M3 || w.weight_scale.dtype == DType::kU8, kScaleArg,
                   "dtype F8_E4M3 (or U8 raw bytes)", detail::concat("dtype ", dtype_name(w.weight_scale.dtype)));
  const auto [srows, scols] = scale_shape(w.scale_layout, n, k);
  check_shape(w.weight_scale, kScaleArg, {srows, scols});
  check_row_major(w.weight_scale, kScaleArg);
  if (w.scale_layout == ScaleLayout::kSwizzled128x4) {
    // The 128x4 formula addresses the scales as one flat block.
    const int64_t row_stride = w.weight_scale.strides[0];
    FP4MOE_CHECK_ARG(row_stride == scols, kScaleArg, detail::concat("contiguous 128x4 blocks (row stride ", scols, ")"),
                     detail::concat("row stride ", row_stride));
  }
  check_device(w.weight_scale, kScaleArg, w.weight.device);

  check_dtype(w.weight_scale_2, kScale2Arg, DType::kF32);
  FP4MOE_CHECK_ARG(w.weight_scale_2.numel() == 1 && w.weight_scale_2.ndim <= 1, kScale2Arg, "shape [1] (or 0-d)",
                   detail::concat("shape ", shape_string(w.weight_scale_2)));
  check_device(w.weight_scale_2, kScale2Arg, w.weight.device);
  return {n, k};
}

// Host views → impl.w (rows packed contiguously) and impl.w_scale (linear), plus weight_scale_2.
void convert_on_host(const TensorView& w, const TensorView& sf, const TensorView& sf2, ScaleLayout layout,
                     PreparedLinear::Impl& impl) {
  const int64_t n = impl.n, row_bytes = impl.k / 2, cols = impl.k / kBlockSize;
  std::memcpy(&impl.weight_scale_2, sf2.data, sizeof(float));  // memcpy: file views need not be aligned
  FP4MOE_CHECK_ARG(std::isfinite(impl.weight_scale_2) && impl.weight_scale_2 > 0, kScale2Arg, "a finite value > 0",
                   impl.weight_scale_2);
  impl.w.resize(size_t(n * row_bytes));
  impl.w_scale.resize(size_t(n * cols));
  const auto* wsrc = static_cast<const uint8_t*>(w.data);
  const auto* ssrc = static_cast<const uint8_t*>(sf.data);
  for (int64_t r = 0; r < n; ++r) {
    std::memcpy(impl.w.data() + r * row_bytes, wsrc + r * w.strides[0], size_t(row_bytes));
  }
  if (layout == ScaleLayout::kSwizzled128x4) {
    unswizzle_scales(ssrc, n, cols, impl.w_scale.data());
    return;
  }
  for (int64_t r = 0; r < n; ++r) {
    std::memcpy(impl.w_scale.data() + r * cols, ssrc + r * sf.strides[0], size_t(cols));
  }
}

void upload(PreparedLinear::Impl& impl) {
  impl.cuda_w = DeviceBuffer(impl.device.index, impl.w.size(), impl.w.data());
  impl.cuda_w_scale = DeviceBuffer(impl.device.index, impl.w_scale.size(), impl.w_scale.data());
  impl.w = {};
  impl.w_scale = {};
}

struct CallShape {
  int64_t m = 0;
  bool prequantized = false;
};

void check_row_stride(const TensorView& t, std::string_view arg, int64_t min_stride) {
  if (t.shape[0] <= 1) return;
  FP4MOE_CHECK_ARG(t.strides[0] >= min_stride, arg, detail::concat("row stride >= ", min_stride),
                   detail::concat("row stride ", t.strides[0]));
}

// The CUDA GEMM reads BF16 x rows 16 bytes at a time and packed x 4 bytes at a time.
void check_cuda_alignment(const TensorView& x, bool prequantized) {
  check_aligned(x, "x", prequantized ? 4 : 16);
  if (prequantized || x.shape[0] <= 1) return;
  FP4MOE_CHECK_ARG(x.strides[0] % 8 == 0, "x", "a row stride that is a multiple of 8 elements (CUDA backend)",
                   detail::concat("row stride ", x.strides[0]));
}

void validate_prequantized_x(const PreparedLinear::Impl& w, const LinearInputs& in, int64_t m) {
  check_shape(in.x, "x", {m, w.k / 2});
  check_contiguous(in.x, "x");
  FP4MOE_CHECK_ARG(!in.x_scale.empty(), "x_scale", "E4M3 scales [M, K/16] for pre-quantized x", "none");
  FP4MOE_CHECK_ARG(in.x_scale.dtype == DType::kE4M3 || in.x_scale.dtype == DType::kU8, "x_scale",
                   "dtype F8_E4M3 (or U8 raw bytes)", detail::concat("dtype ", dtype_name(in.x_scale.dtype)));
  check_shape(in.x_scale, "x_scale", {m, w.k / kBlockSize});
  check_contiguous(in.x_scale, "x_scale");
  check_device(in.x_scale, "x_scale", w.device);
  FP4MOE_CHECK_ARG(std::isfinite(in.x_global_scale) && in.x_global_scale > 0, "x_global_scale",
                   "a finite value > 0 for pre-quantized x", in.x_global_scale);
}

CallShape validate_inputs(const PreparedLinear::Impl& w, const LinearInputs& in, const TensorView& out) {
  CallShape s;
  FP4MOE_CHECK_ARG(in.x.ndim == 2, "x", "a 2-D tensor [M, K]", detail::concat("shape ", shape_string(in.x)));
  s.m = in.x.shape[0];
  s.prequantized = in.x.dtype == DType::kU8;
  check_device(in.x, "x", w.device);
  check_row_major(in.x, "x");
  if (s.prequantized) {
    validate_prequantized_x(w, in, s.m);
  } else {
    FP4MOE_CHECK_ARG(in.x.dtype == DType::kBF16, "x", "dtype BF16 (or U8 for pre-quantized x)",
                     detail::concat("dtype ", dtype_name(in.x.dtype)));
    check_shape(in.x, "x", {s.m, w.k});
    check_row_stride(in.x, "x", w.k);
    FP4MOE_CHECK_ARG(in.x_scale.empty(), "x_scale", "none with BF16 x", "a tensor");
  }
  if (w.backend == Backend::kCuda) check_cuda_alignment(in.x, s.prequantized);
  check_dtype(out, "out", DType::kBF16);
  check_shape(out, "out", {s.m, w.n});
  check_row_major(out, "out");
  check_row_stride(out, "out", w.n);
  check_device(out, "out", w.device);
  return s;
}

}  // namespace

PreparedLinear prepare_linear(const LinearWeights& weights, Backend backend) {
  const auto [n, k] = validate_weights(weights);
  auto impl = std::make_shared<PreparedLinear::Impl>();
  impl->n = n;
  impl->k = k;
  impl->backend = resolve_backend(backend);
  if (impl->backend == Backend::kCpu) {
    check_device(weights.weight, kWeightArg, Device::cpu());
    impl->device = Device::cpu();
  } else if (weights.weight.device.kind == DeviceKind::kCuda) {
    impl->device = weights.weight.device;
  } else {
    int current = 0;
    FP4MOE_CUDA_CHECK(cudaGetDevice(&current));
    impl->device = Device::cuda(current);
  }
  HostStaging staging;
  convert_on_host(staging.stage(weights.weight), staging.stage(weights.weight_scale),
                  staging.stage(weights.weight_scale_2), weights.scale_layout, *impl);
  if (impl->backend == Backend::kCuda) upload(*impl);
  return PreparedLinear(std::move(impl));
}

void linear_forward(const PreparedLinear& weights, const LinearInputs& inputs, TensorView out, void* stream) {
  const PreparedLinear::Impl& w = weights.impl();
  const CallShape s = validate_inputs(w, inputs, out);
  if (s.m == 0) return;
  const float alpha = s.prequantized ? div_rn(w.weight_scale_2, inputs.x_global_scale) : w.weight_scale_2;
  const int64_t x_ld = s.m > 1 ? inputs.x.strides[0] : w.k;
  const int64_t out_ld = s.m > 1 ? out.strides[0] : w.n;
  if (w.backend == Backend::kCuda) {
    cuda::LinearLaunch l;
    l.m = s.m;
    l.n = w.n;
    l.k = w.k;
    if (s.prequantized) {
      l.x_fp4 = inputs.x.ptr<const uint8_t>();
      l.x_scale = inputs.x_scale.ptr<const uint8_t>();
    } else {
      l.x = inputs.x.ptr<const uint16_t>();
      l.x_ld = x_ld;
    }
    l.w = w.cuda_w.as<const uint8_t>();
    l.w_scale = w.cuda_w_scale.as<const uint8_t>();
    l.alpha = alpha;
    l.out = out.ptr<uint16_t>();
    l.out_ld = out_ld;
    DeviceGuard guard(w.device.index);
    cuda::linear_launch(l, stream);
    return;
  }
  reference::LinearProblem p;
  p.m = s.m;
  p.n = w.n;
  p.k = w.k;
  if (s.prequantized) {
    p.x_fp4 = inputs.x.ptr<const uint8_t>();
    p.x_scale = inputs.x_scale.ptr<const uint8_t>();
  } else {
    p.x = inputs.x.ptr<const uint16_t>();
    p.x_ld = x_ld;
  }
  p.w = w.w.data();
  p.w_scale = w.w_scale.data();
  p.alpha = alpha;
  p.out = out.ptr<uint16_t>();
  p.out_ld = out_ld;
  reference::run_linear(p);
}

int64_t PreparedLinear::out_features() const { return impl().n; }
int64_t PreparedLinear::in_features() const { return impl().k; }
Backend PreparedLinear::backend() const { return impl().backend; }
Device PreparedLinear::device() const { return impl().device; }
const PreparedLinear::Impl& PreparedLinear::impl() const {
  FP4MOE_CHECK(impl_ != nullptr, "PreparedLinear is empty (default-constructed); call prepare_linear()");
  return *impl_;
}

}  // namespace fp4moe
