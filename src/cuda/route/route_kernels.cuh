// Routing pre-pass kernels. Inputs: topk_ids [P = T·K]. Outputs: pairs sorted by local expert, stably (token order is
// kept inside each expert; pairs that are not local come last, key E_local), per-expert offsets, the sorted row of
// each pair, the 64-row work tiles and the list of active experts. Bytes: a few int32 per pair; negligible next to
// the weights.
// Two paths with the same outputs bit for bit:
//  - sort path (any P): keys kernel → CUB stable radix sort → tiles kernel → positions kernel;
//  - small path (P <= kRouteSmallMaxPairs, E_local <= kRouteSmallMaxExperts): route_small_kernel, one block, one
//    launch: a stable CUB block radix sort of (key, pair) in registers, offsets where the sorted key changes, block
//    scans for the tiles and the active list. Deterministic, no atomics.
#pragma once

#include <cub/block/block_radix_sort.cuh>
#include <cub/block/block_scan.cuh>

#include "cuda/common/launch.cuh"
#include "cuda/route/route_launch.hpp"

namespace fp4moe::cuda {

constexpr int kRouteTileThreads = 1024;

using RouteScan = cub::BlockScan<int32_t, kRouteTileThreads, cub::BLOCK_SCAN_WARP_SCANS>;

// Scratch of the block scans that write offsets, tiles and the active list.
struct RouteScanStorage {
  typename RouteScan::TempStorage tiles, active;
};

// Running totals over the chunks of experts: sorted rows, tiles and active experts so far.
struct RouteTotals {
  int32_t rows = 0, tiles = 0, active = 0;
};

// Key of pair i: its local expert, or E_local when the id is outside [0, E) or outside the local range.
__device__ __forceinline__ int32_t route_key(const RouteParams& p, int64_t i) {
  const int64_t id = p.topk_ids[i];
  const int64_t local = id - p.expert_offset;
  const bool is_local = id >= 0 && id < p.num_experts && local >= 0 && local < p.local_experts;
  return int32_t(is_local ? local : p.local_experts);
}

__global__ void route_keys_kernel(RouteParams p) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < p.pairs; i += int64_t(gridDim.x) * blockDim.x) {
    p.buffers.keys_in[i] = route_key(p, i);
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

// One chunk of kRouteTileThreads experts, thread = expert e with rows [begin, end) (empty past E_local): block scans
// of tile counts and activity place its tiles and its entry of the active list after those of the chunks before.
// Ends with a barrier (the scan storage is reused by the next chunk).
__device__ void write_tiles_chunk(const RouteBuffers& b, int32_t tile_rows, int64_t e, int32_t begin, int32_t end,
                                  RouteScanStorage& storage, RouteTotals& totals) {
  const int32_t count = (end - begin + tile_rows - 1) / tile_rows;
  const int32_t active = end > begin ? 1 : 0;
  int32_t first_tile = 0, chunk_tiles = 0, first_active = 0, chunk_active = 0;
  RouteScan(storage.tiles).ExclusiveSum(count, first_tile, chunk_tiles);
  RouteScan(storage.active).ExclusiveSum(active, first_active, chunk_active);
  first_tile += totals.tiles;
  for (int32_t j = 0; j < count; ++j) {
    const int32_t row = begin + j * tile_rows;
    b.tiles[first_tile + j] = RouteTile{int32_t(e), row, min(row + tile_rows, end), 0};
  }
  if (active) b.active_experts[totals.active + first_active] = int32_t(e);
  totals.tiles += chunk_tiles;
  totals.active += chunk_active;
  __syncthreads();
}

__device__ __forceinline__ void write_tile_totals(const RouteBuffers& b, const RouteTotals& totals) {
  if (threadIdx.x == 0) {
    *b.num_tiles = totals.tiles;
    *b.num_active = totals.active;
  }
}

// One block: offsets by binary search in the sorted keys, then the tiles and the active list.
__global__ void __launch_bounds__(kRouteTileThreads) route_tiles_kernel(RouteParams p) {
  __shared__ RouteScanStorage storage;
  const RouteBuffers& b = p.buffers;
  for (int64_t e = threadIdx.x; e <= p.local_experts; e += blockDim.x) {
    b.offsets[e] = lower_bound_key(b.keys_sorted, p.pairs, int32_t(e));
  }
  __syncthreads();
  RouteTotals totals;
  for (int64_t base = 0; base < p.local_experts; base += blockDim.x) {
    const int64_t e = base + threadIdx.x;
    const bool local = e < p.local_experts;
    write_tiles_chunk(b, p.tile_rows, e, local ? b.offsets[e] : 0, local ? b.offsets[e + 1] : 0, storage, totals);
  }
  write_tile_totals(b, totals);
}

// Sorted row of each pair (-1 for pairs that are not local).
__global__ void route_positions_kernel(RouteParams p) {
  const RouteBuffers& b = p.buffers;
  for (int64_t s = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; s < p.pairs; s += int64_t(gridDim.x) * blockDim.x) {
    b.position[b.pairs_sorted[s]] = b.keys_sorted[s] < p.local_experts ? int32_t(s) : -1;
  }
}

// ---- small path --------------------------------------------------------------------------------------------------

constexpr int kRouteSmallThreads = 256;

// Dynamic shared memory of route_small_kernel: the offsets of keys 0..E_local.
constexpr size_t route_small_dynamic_smem(int64_t local_experts) { return size_t(local_experts + 1) * sizeof(int32_t); }

template <int kItems>
struct RouteSmallStorage {
  using Sort = cub::BlockRadixSort<int32_t, kRouteSmallThreads, kItems, int32_t>;
  using Scan = cub::BlockScan<int32_t, kRouteSmallThreads, cub::BLOCK_SCAN_WARP_SCANS>;
  union {
    typename Sort::TempStorage sort;
    struct {
      int32_t keys[kRouteSmallThreads * kItems];  // sorted keys
      typename Scan::TempStorage tiles, active;
    } after;
  };
};

// Sorts (key, pair) of all pairs in the block (stable CUB block radix sort; padding keys E_local + 1 sort last) and
// writes keys_sorted, pairs_sorted and position; the sorted keys stay in shared memory. Ends with a barrier.
template <int kItems>
__device__ void sort_pairs_in_block(const RouteParams& p, RouteSmallStorage<kItems>& smem, int end_bit) {
  int32_t keys[kItems], pairs[kItems];
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    const int32_t pair = int32_t(threadIdx.x) * kItems + i;
    keys[i] = pair < p.pairs ? route_key(p, pair) : int32_t(p.local_experts + 1);
    pairs[i] = pair;
  }
  typename RouteSmallStorage<kItems>::Sort(smem.sort).Sort(keys, pairs, 0, end_bit);
  __syncthreads();  // the sort storage becomes the sorted-key array
  const RouteBuffers& b = p.buffers;
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    const int32_t s = int32_t(threadIdx.x) * kItems + i;
    smem.after.keys[s] = keys[i];
    if (s < p.pairs) {
      b.keys_sorted[s] = keys[i];
      b.pairs_sorted[s] = pairs[i];
      b.position[pairs[i]] = keys[i] < p.local_experts ? s : -1;
    }
  }
  __syncthreads();
}

// offsets[e] = first sorted row with key >= e, for e = 0..E_local: each row where the key changes sets the offsets
// of the keys it skips over (each key is set exactly once). Ends with a barrier.
__device__ void offsets_from_sorted_keys(const RouteParams& p, const int32_t* sorted, int32_t* offsets) {
  const int32_t e_local = int32_t(p.local_experts), pairs = int32_t(p.pairs);
  for (int32_t s = int32_t(threadIdx.x); s <= pairs; s += blockDim.x) {
    const int32_t prev = s > 0 ? min(sorted[s - 1], e_local) : -1;
    const int32_t cur = s < pairs ? min(sorted[s], e_local) : e_local;
    for (int32_t e = prev + 1; e <= cur; ++e) {
      offsets[e] = s;
      p.buffers.offsets[e] = s;
    }
  }
  __syncthreads();
}

// Work tiles and the active list from the offsets, experts in chunks of the block size (block scans place each
// expert's tiles after those of the experts before).
template <int kItems>
__device__ void tiles_from_offsets(const RouteParams& p, const int32_t* offsets, RouteSmallStorage<kItems>& smem) {
  using Scan = typename RouteSmallStorage<kItems>::Scan;
  const RouteBuffers& b = p.buffers;
  int32_t tiles_before = 0, active_before = 0;
  for (int64_t base = 0; base < p.local_experts; base += blockDim.x) {
    const int64_t e = base + threadIdx.x;
    const int32_t begin = e < p.local_experts ? offsets[e] : 0, end = e < p.local_experts ? offsets[e + 1] : 0;
    const int32_t count = (end - begin + p.tile_rows - 1) / p.tile_rows, active = end > begin ? 1 : 0;
    int32_t first_tile = 0, chunk_tiles = 0, first_active = 0, chunk_active = 0;
    Scan(smem.after.tiles).ExclusiveSum(count, first_tile, chunk_tiles);
    Scan(smem.after.active).ExclusiveSum(active, first_active, chunk_active);
    for (int32_t j = 0; j < count; ++j) {
      const int32_t row = begin + j * p.tile_rows;
      b.tiles[tiles_before + first_tile + j] = RouteTile{int32_t(e), row, min(row + p.tile_rows, end), 0};
    }
    if (active) b.active_experts[active_before + first_active] = int32_t(e);
    tiles_before += chunk_tiles;
    active_before += chunk_active;
    __syncthreads();  // the scan storage is reused by the next chunk
  }
  if (threadIdx.x == 0) {
    *b.num_tiles = tiles_before;
    *b.num_active = active_before;
  }
}

static_assert(sizeof(RouteSmallStorage<kRouteSmallMaxPairs / kRouteSmallThreads>) +
                      route_small_dynamic_smem(kRouteSmallMaxExperts) <= 48 * 1024,
              "route_small_kernel must fit the default 48 KB of shared memory");

// The whole pre-pass in one block of kRouteSmallThreads threads, P <= kRouteSmallThreads · kItems; dynamic shared
// memory: route_small_dynamic_smem(E_local). end_bit: bits of the largest key (E_local + 1).
template <int kItems>
__global__ void __launch_bounds__(kRouteSmallThreads) route_small_kernel(RouteParams p, int end_bit) {
  __shared__ RouteSmallStorage<kItems> smem;
  extern __shared__ int32_t route_offsets[];
  griddep_wait();  // topk_ids may come from the caller's previous kernel
  griddep_launch_dependents();
  sort_pairs_in_block<kItems>(p, smem, end_bit);
  offsets_from_sorted_keys(p, smem.after.keys, route_offsets);
  tiles_from_offsets<kItems>(p, route_offsets, smem);
}

}  // namespace fp4moe::cuda
