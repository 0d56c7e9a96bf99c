// fp4moe: NVFP4 quantization on the GPU (spec §2), bit-exact with the host quantize_rows() in format.hpp.
#pragma once

#include "fp4moe/format.hpp"
#include "fp4moe/tensor.hpp"

namespace fp4moe {

// Quantizes BF16 x [rows, K] (K % 16 == 0, CUDA memory, rows 16-byte aligned) with global scale gs into
// packed U8 [rows, K/2] and E4M3 scales in `layout` (linear [rows, K/16] or 128x4 [pad128(rows), pad4(K/16)],
// padding written as 0). Asynchronous on `stream` (a cudaStream_t; nullptr = default stream); no allocation, so
// it can be captured in a CUDA graph.
void quantize_nvfp4_cuda(const TensorView& x, float global_scale, const TensorView& packed, const TensorView& scales,
                         ScaleLayout layout, void* stream = nullptr);

}  // namespace fp4moe
