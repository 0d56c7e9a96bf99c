// Routing pre-pass kernels. Inputs: topk_ids [P = T·K]. Outputs: pairs sorted by local expert (a stable CUB radix
// sort on the expert key, so token order is kept inside each expert), per-expert offsets, the sorted row of each
// pair, and the 64-row work tiles. Bytes: a few int32 per pair; negligible next to the weights.
#pragma once

#include <cub/block/block_scan.cuh>

#include "cuda/route/route_launch.hpp"

namespace fp4moe::cuda {

// Key of each pair: its local expert, or E_local when the id is outside [0, E) or outside the local range.
__global__ void route_keys_kernel(RouteParams p) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < p.pairs; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t id = p.topk_ids[i];
    const int64_t local = id - p.expert_offset;
    const bool is_local = id >= 0 && id < p.num_experts && local >= 0 && local < p.local_experts;
    p.buffers.keys_in[i] = int32_t(is_local ? local : p.local_experts);
    p.buffers.pairs_in[i] = int32_t(i);
  }
}

// First sorted row whose key is >= e.
__device__ __forceinline__ int32_t lower_bound_key(const int32_t* keys, int64_t n, int32_t e) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (keys[mid] < e) lo = mid + 1; else hi = mid;
  }
  return int32_t(lo);
}

constexpr int kRouteTileThreads = 1024;

// One block: offsets by binary search, then a block scan of per-expert tile counts writes the tile list.
__global__ void __launch_bounds__(kRouteTileThreads) route_tiles_kernel(RouteParams p) {
  using Scan = cub::BlockScan<int32_t, kRouteTileThreads>;
  __shared__ typename Scan::TempStorage scan_storage;
  __shared__ int32_t carry;
  const RouteBuffers& b = p.buffers;
  if (threadIdx.x == 0) carry = 0;
  for (int64_t e = threadIdx.x; e <= p.local_experts; e += blockDim.x) {
    b.offsets[e] = lower_bound_key(b.keys_sorted, p.pairs, int32_t(e));
  }
  __syncthreads();
  for (int64_t base = 0; base < p.local_experts; base += blockDim.x) {
    const int64_t e = base + threadIdx.x;
    const int32_t begin = e < p.local_experts ? b.offsets[e] : 0;
    const int32_t end = e < p.local_experts ? b.offsets[e + 1] : 0;
    const int32_t count = (end - begin + kRouteTileRows - 1) / kRouteTileRows;
    int32_t first = 0, total = 0;
    Scan(scan_storage).ExclusiveSum(count, first, total);
    first += carry;
    for (int32_t j = 0; j < count; ++j) {
      const int32_t row = begin + j * kRouteTileRows;
      b.tiles[first + j] = RouteTile{int32_t(e), row, min(row + kRouteTileRows, end), 0};
    }
    __syncthreads();  // everyone read `carry` and the scan storage before they change
    if (threadIdx.x == 0) carry += total;
    __syncthreads();
  }
  if (threadIdx.x == 0) *b.num_tiles = carry;
}

// Sorted row of each pair (-1 for pairs that are not local).
__global__ void route_positions_kernel(RouteParams p) {
  const RouteBuffers& b = p.buffers;
  for (int64_t s = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; s < p.pairs; s += int64_t(gridDim.x) * blockDim.x) {
    b.position[b.pairs_sorted[s]] = b.keys_sorted[s] < p.local_experts ? int32_t(s) : -1;
  }
}

}  // namespace fp4moe::cuda
