// Routing pre-pass kernels. Inputs: topk_ids [P = T·K]. Outputs: pairs sorted by local expert, stably (token order is
// kept inside each expert; pairs that are not local come last, key E_local), per-expert offsets, the sorted row of
// each pair and the work tiles. Bytes: a few int32 per pair; negligible next to
// the weights.
// Two paths with the same outputs bit for bit:
//  - sort path (any P): keys kernel → CUB stable radix sort → positions kernel (positions and offsets, where the
//    sorted key changes) → tiles kernel;
//  - small path (P <= kRouteSmallMaxPairs, E_local <= kRouteSmallMaxExperts): route_small_kernel, one block, one
//    launch: a stable CUB block radix sort of (key, pair) in registers, offsets where the sorted key changes, block
//    scans for the tiles. Deterministic, no atomics.
#pragma once

#include <cub/block/block_radix_sort.cuh>
#include <cub/block/block_scan.cuh>

#include "cuda/common/launch.cuh"
#include "cuda/quantize/quantize_blocks.cuh"
#include "cuda/route/route_launch.hpp"
#include "cuda/route/work_tiles.cuh"

namespace fp4moe::cuda {

constexpr int kRouteTileThreads = 1024;

template <int kThreads>
using RouteScan = cub::BlockScan<int32_t, kThreads, cub::BLOCK_SCAN_WARP_SCANS>;

// Work tiles from the per-expert offsets (kThreads = the block size): experts in chunks of kThreads, a block scan of
// tile counts places each expert's tiles after those of the experts before. Both routing paths end here.
template <int kThreads>
__device__ void write_tiles(const RouteParams& p, const int32_t* offsets,
                            typename RouteScan<kThreads>::TempStorage& storage) {
  const RouteBuffers& b = p.buffers;
  int32_t tiles_before = 0;
  for (int64_t base = 0; base < p.ids.local_experts; base += kThreads) {
    const int64_t e = base + threadIdx.x;
    const int32_t begin = e < p.ids.local_experts ? offsets[e] : 0, end = e < p.ids.local_experts ? offsets[e + 1] : 0;
    const int32_t count = (end - begin + p.tile_rows - 1) / p.tile_rows;
    int32_t first = 0, chunk_tiles = 0;
    RouteScan<kThreads>(storage).ExclusiveSum(count, first, chunk_tiles);
    for (int32_t j = 0; j < count; ++j) {
      const int32_t row = begin + j * p.tile_rows;
      b.tiles[tiles_before + first + j] = RouteTile{int32_t(e), row, min(row + p.tile_rows, end), 0};
      if (b.tile_ready) b.tile_ready[row] = 0;
    }
    tiles_before += chunk_tiles;
    __syncthreads();  // the scan storage is reused by the next chunk
  }
  if (threadIdx.x == 0) *b.num_tiles = tiles_before;
}

// Sort path inputs: the key of each pair (its local expert, E_local when not local) and the pair index.
__global__ void route_keys_kernel(RouteParams p) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < p.ids.pairs; i += stride) {
    p.buffers.keys_in[i] = local_expert_of(p.ids, i);
    p.buffers.pairs_in[i] = int32_t(i);
  }
}

// offsets[e] = first sorted row with key >= e, for e = 0..E_local: each row s of 0..P (P standing for the end) where
// the key changes sets the offsets of the keys it skips over, so each key is set exactly once. This call takes rows
// first, first + stride, ...; the offsets go to global memory and, where `copy` is given, to it as well.
__device__ __forceinline__ void offsets_at_key_changes(const RouteParams& p, const int32_t* sorted, int32_t* copy,
                                                       int64_t first, int64_t stride) {
  const int32_t e_local = int32_t(p.ids.local_experts);
  for (int64_t s = first; s <= p.ids.pairs; s += stride) {
    const int32_t prev = s > 0 ? min(sorted[s - 1], e_local) : -1;
    const int32_t cur = s < p.ids.pairs ? min(sorted[s], e_local) : e_local;
    for (int32_t e = prev + 1; e <= cur; ++e) {
      if (copy) copy[e] = int32_t(s);
      p.buffers.offsets[e] = int32_t(s);
    }
  }
}

// Sort path, one block: the tiles from the offsets (route_positions_kernel wrote them).
__global__ void __launch_bounds__(kRouteTileThreads) route_tiles_kernel(RouteParams p) {
  __shared__ typename RouteScan<kRouteTileThreads>::TempStorage storage;
  write_tiles<kRouteTileThreads>(p, p.buffers.offsets, storage);
}

// Sort path: the sorted row of each pair (-1 for pairs that are not local) and the per-expert offsets, found where
// the sorted key changes as in the small path (before: a binary search per expert in the one-block tiles kernel,
// 8-10 µs under ncu at P = 8192-32768; the layer's time did not move measurably, bench/NOTES.md session 16).
__global__ void route_positions_kernel(RouteParams p) {
  const RouteBuffers& b = p.buffers;
  const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t s = first; s < p.ids.pairs; s += stride) {
    b.position[b.pairs_sorted[s]] = b.keys_sorted[s] < p.ids.local_experts ? int32_t(s) : -1;
  }
  offsets_at_key_changes(p, b.keys_sorted, nullptr, first, stride);
}

// ---- small path --------------------------------------------------------------------------------------------------

// Threads of route_small_kernel: up to 256 pairs, one per thread; more, 8 per thread in 512 threads (H100, against
// 16 in 256: qwen3-235b-a22b T=512 722.6 → 712.2 µs, qwen3-30b-a3b T=64 143.2 → 142.1, T=256 195.9 → 194.4; 4 in
// 1024 gained less; bench/NOTES.md).
constexpr int kRouteSmallThreads = 256;
constexpr int kRouteWideThreads = 512;

// Dynamic shared memory of route_small_kernel: the offsets of keys 0..E_local.
constexpr size_t route_small_dynamic_smem(int64_t local_experts) { return size_t(local_experts + 1) * sizeof(int32_t); }

template <int kThreads, int kItems>
struct RouteSmallStorage {
  using Sort = cub::BlockRadixSort<int32_t, kThreads, kItems, int32_t>;
  union {
    typename Sort::TempStorage sort;
    struct {
      int32_t keys[kThreads * kItems];  // sorted keys
      typename RouteScan<kThreads>::TempStorage scan;
    } after;
  };
};

// Sorts (key, pair) of all pairs in the block (stable CUB block radix sort; padding keys E_local + 1 sort last) and
// writes keys_sorted, pairs_sorted and position; the sorted keys stay in shared memory. Ends with a barrier.
template <int kThreads, int kItems>
__device__ void sort_pairs_in_block(const RouteParams& p, RouteSmallStorage<kThreads, kItems>& smem, int end_bit) {
  int32_t keys[kItems], pairs[kItems];
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    const int32_t pair = int32_t(threadIdx.x) * kItems + i;
    keys[i] = pair < p.ids.pairs ? local_expert_of(p.ids, pair) : int32_t(p.ids.local_experts + 1);
    pairs[i] = pair;
  }
  typename RouteSmallStorage<kThreads, kItems>::Sort(smem.sort).Sort(keys, pairs, 0, end_bit);
  __syncthreads();  // the sort storage becomes the sorted-key array
  const RouteBuffers& b = p.buffers;
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    const int32_t s = int32_t(threadIdx.x) * kItems + i;
    smem.after.keys[s] = keys[i];
    if (s < p.ids.pairs) {
      b.keys_sorted[s] = keys[i];
      b.pairs_sorted[s] = pairs[i];
      b.position[pairs[i]] = keys[i] < p.ids.local_experts ? s : -1;
    }
  }
  __syncthreads();
}

template <int kThreads, int kItems>
inline constexpr bool kRouteSmallFits =
    sizeof(RouteSmallStorage<kThreads, kItems>) + route_small_dynamic_smem(kRouteSmallMaxExperts) <= 48 * 1024;
static_assert(kRouteSmallMaxPairs % kRouteWideThreads == 0, "whole items per thread");

// The whole pre-pass in block 0 of kThreads threads, P <= kThreads · kItems; dynamic shared memory:
// route_small_dynamic_smem(E_local). end_bit: bits of the largest key (E_local + 1). Blocks 1.. quantize x
// (RouteParams::quantize), so that FC1 waits for one launch instead of two. One block per SM is all the launch
// bound asks for: without it ptxas kept the 512-thread kernel at 64 registers on sm_80/sm_89 and spilled.
template <int kThreads, int kItems>
__global__ void __launch_bounds__(kThreads, 1) route_small_kernel(RouteParams p, int end_bit) {
  static_assert(kRouteSmallFits<kThreads, kItems>, "route_small_kernel must fit the default 48 KB of shared memory");
  __shared__ RouteSmallStorage<kThreads, kItems> smem;
  extern __shared__ int32_t route_offsets[];
  griddep_wait();  // topk_ids and x may come from the caller's previous kernel
  griddep_launch_dependents();
  if (blockIdx.x > 0) {
    quantize_nvfp4_blocks(p.quantize, int64_t(blockIdx.x - 1) * blockDim.x + threadIdx.x,
                          int64_t(gridDim.x - 1) * blockDim.x);
    return;
  }
  sort_pairs_in_block<kThreads, kItems>(p, smem, end_bit);
  offsets_at_key_changes(p, smem.after.keys, route_offsets, threadIdx.x, blockDim.x);
  __syncthreads();
  write_tiles<kThreads>(p, route_offsets, smem.after.scan);
}

}  // namespace fp4moe::cuda
