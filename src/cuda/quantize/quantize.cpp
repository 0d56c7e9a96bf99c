// quantize_nvfp4_cuda: argument validation on the host, then the launch.
#include <cmath>
#include <cstdint>

#include "cuda/quantize/quantize_launch.hpp"
#include "fp4moe/error.hpp"
#include "fp4moe/quantize.hpp"

namespace fp4moe {

void quantize_nvfp4_cuda(const TensorView& x, float global_scale, const TensorView& packed, const TensorView& scales,
                         ScaleLayout layout, void* stream) {
  check_dtype(x, "x", DType::kBF16);
  FP4MOE_CHECK_ARG(x.ndim == 2, "x", "a 2-D tensor [rows, K]", detail::concat("shape ", shape_string(x)));
  FP4MOE_CHECK_ARG(x.device.kind == DeviceKind::kCuda, "x", "CUDA memory", device_name(x.device));
  const int64_t rows = x.shape[0], k = x.shape[1];
  FP4MOE_CHECK_ARG(k % kBlockSize == 0, "x", "K (shape[1]) a multiple of 16", k);
  check_row_major(x, "x");
  check_aligned(x, "x", 16);
  const int64_t ld = rows > 1 ? x.strides[0] : k;
  FP4MOE_CHECK_ARG(ld % 8 == 0, "x", "a row stride that is a multiple of 8 elements (16 bytes)", ld);
  FP4MOE_CHECK_ARG(std::isfinite(global_scale) && global_scale > 0, "global_scale", "a finite value > 0",
                   global_scale);
  check_dtype(packed, "packed", DType::kU8);
  check_shape(packed, "packed", {rows, k / 2});
  check_contiguous(packed, "packed");
  check_device(packed, "packed", x.device);
  check_aligned(packed, "packed", 8);
  FP4MOE_CHECK_ARG(scales.dtype == DType::kE4M3 || scales.dtype == DType::kU8, "scales", "dtype F8_E4M3",
                   detail::concat("dtype ", dtype_name(scales.dtype)));
  const auto [srows, scols] = scale_shape(layout, rows, k);
  check_shape(scales, "scales", {srows, scols});
  check_contiguous(scales, "scales");
  check_device(scales, "scales", x.device);

  cuda::QuantizeParams p;
  p.x = x.ptr<const uint16_t>();
  p.rows = rows;
  p.k = k;
  p.x_ld = ld;
  p.global_scale = global_scale;
  p.packed = packed.ptr<uint8_t>();
  p.scales = scales.ptr<uint8_t>();
  p.swizzled = layout == ScaleLayout::kSwizzled128x4;
  cuda::launch_quantize_nvfp4(p, stream);
}

}  // namespace fp4moe
