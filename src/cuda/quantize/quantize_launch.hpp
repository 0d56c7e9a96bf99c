// Host-side interface of the NVFP4 quantize kernel (no CUDA syntax: included by plain C++ files).
#pragma once

#include <cstdint>

namespace fp4moe::cuda {

struct QuantizeParams {
  const uint16_t* x = nullptr;  // BF16 bits [rows, k], row stride x_ld elements (x_ld % 8 == 0)
  int64_t rows = 0;
  int64_t k = 0;
  int64_t x_ld = 0;
  float global_scale = 1.0f;
  uint8_t* packed = nullptr;    // [rows, k/2] contiguous (nullptr: not written)
  uint8_t* scales = nullptr;    // linear [rows, k/16] or 128x4 (nullptr: not written)
  bool swizzled = false;
  uint16_t* dequant = nullptr;  // optional: BF16 [rows, k] contiguous, e2m1 · sf of each element (exact)
};

// Pre-quantized NVFP4 rows (packed [rows, k/2], linear scales [rows, k/16], both contiguous) → BF16 e2m1 · sf.
struct DequantizeParams {
  const uint8_t* packed = nullptr;
  const uint8_t* scales = nullptr;
  int64_t rows = 0;
  int64_t k = 0;
  uint16_t* out = nullptr;  // [rows, k] contiguous
};

// Blocks of `threads` threads for the quantize pass (one thread per 16-value block; the threads stride over the
// rest past the cap). The routing launch sizes its quantizing blocks with it too.
unsigned quantize_grid(const QuantizeParams& params, int threads);

// Enqueues the kernel (and, for the 128x4 layout, the zeroing of the padding) on `stream`. Throws Error on a
// launch failure.
void launch_quantize_nvfp4(const QuantizeParams& params, void* stream);
void launch_dequantize_nvfp4(const DequantizeParams& params, void* stream);

}  // namespace fp4moe::cuda
