// Host-side interface of the wgmma path's x reorder (x_reorder_kernel.cuh): x rows into the MMA k order that FC1's
// wgmma B tiles read. Its own launch, or spare blocks of the routing launch (RouteParams::reorder), which does not
// depend on FC1 otherwise.
#pragma once

#include <cstdint>

namespace fp4moe::cuda {

// rows × k BF16 (k a multiple of 64, row strides multiples of 8) into the MMA k order; src may equal dst.
struct XReorderParams {
  const uint16_t* src = nullptr;
  int64_t src_ld = 0;
  uint16_t* dst = nullptr;
  int64_t dst_ld = 0;
  int64_t rows = 0, k = 0;
  // W4A4: quantize each 16-value block with gs (spec §2) on the way and store its exact BF16 values e2m1·sf, as the
  // quantize pass's dequantized output would be (one pass over x instead of two)
  bool quantize = false;
  float gs = 1.0f;
};
void x_reorder_launch(const XReorderParams& params, void* stream);

}  // namespace fp4moe::cuda
