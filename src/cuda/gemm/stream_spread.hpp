// Host side of the weight-streaming kernels (stream_gemm.cuh): keeping a small grid spread over the SMs.
//
// With PDL the next kernel's blocks are placed while the current kernel drains, on whichever SMs free up first, up
// to the register limit (8 blocks of FC2 per SM). When a grid has at most two blocks per SM, each block streams for
// the whole kernel, so such a pile-up sets the kernel's time: mixtral-8x7b at T = 1 (256 FC2 blocks, 224 chunks
// each) took 146 µs with PDL against 99 µs without it (H100, bench/NOTES.md). Asking for enough dynamic shared
// memory that no SM can hold more than ceil(blocks / SMs) of them restores the even spread and keeps the overlap.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <mutex>

#include "cuda/common/cuda_check.hpp"
#include "cuda/common/launch.cuh"

namespace fp4moe::cuda {

inline constexpr int64_t kSpreadMaxBlocksPerSm = 2;  // larger grids rebalance as blocks finish (measured: 4 was slower)

// Dynamic shared memory for kKernel so that a grid of `blocks` blocks puts at most ceil(blocks / SMs) on one SM; 0
// when that bound is above kSpreadMaxBlocksPerSm or without PDL (launches then wait for the whole previous grid).
template <auto kKernel>
size_t spread_smem_bytes(int64_t blocks) {
  if (!pdl_supported()) return 0;
  const int sms = current_device_attribute(cudaDevAttrMultiProcessorCount);
  const int smem_per_sm = current_device_attribute(cudaDevAttrMaxSharedMemoryPerMultiprocessor);
  const int64_t per_sm = (blocks + sms - 1) / sms;
  if (per_sm > kSpreadMaxBlocksPerSm) return 0;
  constexpr int64_t kReservedPerBlock = 1024;  // the runtime's own shared memory per block (sm_80+)
  static std::once_flag flags[kMaxCachedDevices];
  static int64_t static_bytes[kMaxCachedDevices];  // the kernel's own shared memory in this device's code
  const int device = current_device();
  const int slot = device < kMaxCachedDevices ? device : 0;  // beyond: once_per_device runs the query every call
  constexpr int64_t kSlack = 16;
  once_per_device(flags, [&] {
    cudaFuncAttributes attributes{};
    FP4MOE_CUDA_CHECK(cudaFuncGetAttributes(&attributes, kKernel));
    static_bytes[slot] = int64_t(attributes.sharedSizeBytes);
    FP4MOE_CUDA_CHECK(cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           int(smem_per_sm / 2 + kSlack - kReservedPerBlock - static_bytes[slot])));
  });
  const int64_t block_bytes = smem_per_sm / (per_sm + 1) + kSlack;  // per_sm + 1 blocks no longer fit
  return size_t(std::max<int64_t>(0, block_bytes - kReservedPerBlock - static_bytes[slot]));
}

}  // namespace fp4moe::cuda
