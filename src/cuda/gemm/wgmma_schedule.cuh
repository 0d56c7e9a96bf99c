// Persistent schedule of the wgmma kernels (wgmma_gemm.cuh): one block per SM walks the work items blockIdx.x,
// blockIdx.x + gridDim.x, ...; item i is work tile i / block_groups and block group i % block_groups. Consecutive
// items share a work tile, and consecutive tiles mostly an expert, so the blocks that run at the same time read the
// same token rows and expert weights: those reads hit the L2.
// The producer and the consumers of a block each walk the same items, in the same order.
#pragma once

#include <cstdint>

#include "cuda/route/work_tiles.cuh"

namespace fp4moe::cuda {

// Calls body(tile, block_group) for each of this block's items that has work.
template <class Body>
__device__ __forceinline__ void wgmma_for_each_item(const WorkTiles& work, int64_t block_groups, Body&& body) {
  const int64_t items = work_tile_count(work) * block_groups;
  for (int64_t item = blockIdx.x; item < items; item += gridDim.x) {
    RouteTile tile;
    if (work_tile(work, item / block_groups, tile)) body(tile, item % block_groups);
  }
}

}  // namespace fp4moe::cuda
