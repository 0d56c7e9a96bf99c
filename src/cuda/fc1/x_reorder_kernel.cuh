// x rows into the MMA k order of the wgmma path: within every 64-column chunk, column l moves to
// format::fragment_k_slot(l), so FC1's wgmma B tiles are plain 16-byte copies of the stored rows. Pairs of columns
// (2i, 2i+1) stay together, so the kernel moves 32-bit words. One thread per (row, chunk); src may equal dst (each
// thread reads its whole chunk before it writes).
// Roofline: reads and writes rows·k·2 bytes once (a few µs for thousands of tokens, against milliseconds of FC1).
#pragma once

#include <cstdint>

#include "cuda/common/launch.cuh"
#include "cuda/fc1/fc1_launch.hpp"
#include "format/fragment_layout.hpp"

namespace fp4moe::cuda {

__global__ void x_reorder_kernel(XReorderParams p) {
  griddep_wait();
  griddep_launch_dependents();
  constexpr int kWords = format::kFragK / 2;
  const int64_t chunks = p.k / format::kFragK;
  const int64_t index = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= p.rows * chunks) return;
  const int64_t row = index / chunks, chunk = index % chunks;
  const uint4* src = reinterpret_cast<const uint4*>(p.src + row * p.src_ld + chunk * format::kFragK);
  uint4* dst = reinterpret_cast<uint4*>(p.dst + row * p.dst_ld + chunk * format::kFragK);
  uint32_t in[kWords], out[kWords];
#pragma unroll
  for (int i = 0; i < kWords / 4; ++i) {
    const uint4 v = src[i];
    in[4 * i] = v.x, in[4 * i + 1] = v.y, in[4 * i + 2] = v.z, in[4 * i + 3] = v.w;
  }
#pragma unroll
  for (int i = 0; i < kWords; ++i) out[format::fragment_k_slot(2 * i) / 2] = in[i];
#pragma unroll
  for (int i = 0; i < kWords / 4; ++i) dst[i] = make_uint4(out[4 * i], out[4 * i + 1], out[4 * i + 2], out[4 * i + 3]);
}

}  // namespace fp4moe::cuda
