// Routing pre-pass kernels. Inputs: topk_ids [P = T·K]. Outputs: pairs sorted by local expert, stably (token order is
// kept inside each expert; pairs that are not local come last, key E_local), per-expert offsets, the sorted row of
// each pair, the 64-row work tiles and the list of active experts. Bytes: a few int32 per pair; negligible next to
// the weights.
// Two paths with the same outputs bit for bit:
//  - sort path (any P): keys kernel → CUB stable radix sort → tiles kernel → positions kernel;
//  - small path (P <= kRouteSmallMaxPairs, E_local <= kRouteSmallMaxExperts): route_small_kernel, one block, one
//    launch. Keys are staged in shared memory; warp w owns the keys k with k % 32 == w (non-local key E_local
//    included) and walks the keys in order, 32 at a time: the ballot of its keys, split by value (one more ballot per
//    distinct key of the chunk), counts its keys' pairs, then, after a block scan into offsets, scatters them
//    (row = cursor + lanes of the same key below). Deterministic, no atomics. Work per warp and pass: P/32 ballots
//    plus one per distinct owned key of each chunk, whatever E_local.
#pragma once

#include <cub/block/block_scan.cuh>

#include "cuda/route/route_launch.hpp"

namespace fp4moe::cuda {

constexpr int kRouteTileThreads = 1024;
constexpr int kRouteWarps = kRouteTileThreads / 32;
constexpr unsigned kFullWarp = 0xffffffffu;

using RouteScan = cub::BlockScan<int32_t, kRouteTileThreads, cub::BLOCK_SCAN_WARP_SCANS>;

// Scratch of the block scans that write offsets, tiles and the active list.
struct RouteScanStorage {
  typename RouteScan::TempStorage offsets, tiles, active;
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

// Shared memory of route_small_kernel beyond its static part: one counter / cursor per key 0..E_local.
inline size_t route_small_dynamic_smem(int64_t local_experts) { return size_t(local_experts + 1) * sizeof(int32_t); }

static_assert(kRouteSmallMaxPairs * sizeof(int32_t) + sizeof(RouteScanStorage) +
                      (kRouteSmallMaxExperts + 1) * sizeof(int32_t) <= 48 * 1024,
              "route_small_kernel must fit the default 48 KB of shared memory");

// Keys of all pairs into shared memory; every counter to zero. Ends with a barrier.
__device__ void stage_keys(const RouteParams& p, int32_t* keys, int32_t* counters) {
  for (int64_t i = threadIdx.x; i < p.pairs; i += blockDim.x) keys[i] = route_key(p, i);
  for (int64_t e = threadIdx.x; e <= p.local_experts; e += blockDim.x) counters[e] = 0;
  __syncthreads();
}

// Walks the keys 32 at a time, in order; for each distinct key k with k % 32 == warp in a chunk, calls
// visit(k, group, pair): group = ballot of the chunk's lanes holding k (lane order = pair order), pair = this lane's
// pair index. Warp-uniform: every lane takes part in every call.
template <class Visit>
__device__ __forceinline__ void for_each_owned_group(const int32_t* keys, int32_t pairs, Visit visit) {
  const int32_t warp = int32_t(threadIdx.x) / 32, lane = int32_t(threadIdx.x) % 32;
  for (int32_t base = 0; base < pairs; base += 32) {
    const int32_t pair = base + lane;
    const int32_t key = pair < pairs ? keys[pair] : -1;
    const bool owned = key >= 0 && key % kRouteWarps == warp;
    for (unsigned pending = __ballot_sync(kFullWarp, owned); pending != 0;) {
      const int32_t k = __shfl_sync(kFullWarp, key, __ffs(pending) - 1);
      const unsigned group = __ballot_sync(kFullWarp, owned && key == k);
      visit(k, group, pair);
      pending &= ~group;
    }
  }
}

// counters[k] = pairs of key k, for the keys this warp owns (lane 0 of the owner warp alone touches them). Ends with
// a barrier.
__device__ void count_keys(const int32_t* keys, int32_t pairs, int32_t* counters) {
  const int32_t lane = int32_t(threadIdx.x) % 32;
  for_each_owned_group(keys, pairs, [&](int32_t k, unsigned group, int32_t) {
    if (lane == 0) counters[k] += __popc(group);
  });
  __syncthreads();
}

// Counts → exclusive offsets over keys 0..E_local (offsets[E_local] = local pairs), in place (they become the
// scatter cursors) and into b.offsets; then the tiles and the active list. Ends with a barrier.
__device__ void scan_offsets_and_tiles(const RouteParams& p, int32_t* counters, RouteScanStorage& storage) {
  const RouteBuffers& b = p.buffers;
  RouteTotals totals;
  for (int64_t base = 0; base <= p.local_experts; base += blockDim.x) {
    const int64_t e = base + threadIdx.x;
    const int32_t count = e <= p.local_experts ? counters[e] : 0;
    int32_t first = 0, chunk_rows = 0;
    RouteScan(storage.offsets).ExclusiveSum(count, first, chunk_rows);
    const int32_t begin = totals.rows + first;
    if (e <= p.local_experts) {
      counters[e] = begin;
      b.offsets[e] = begin;
    }
    totals.rows += chunk_rows;
    const bool local = e < p.local_experts;
    write_tiles_chunk(b, p.tile_rows, e, local ? begin : 0, local ? begin + count : 0, storage, totals);
  }
  write_tile_totals(b, totals);
}

// Each pair to its sorted row: cursor of its key + lanes of the same key below it; the cursor then advances by the
// group (lane 0 of the owner warp alone touches the cursors of its keys). keys_sorted, pairs_sorted and position (-1
// for key E_local) are written for all P pairs.
__device__ void scatter_pairs(const RouteParams& p, const int32_t* keys, int32_t* cursors) {
  const RouteBuffers& b = p.buffers;
  const int32_t lane = int32_t(threadIdx.x) % 32;
  const unsigned lanes_below = (1u << lane) - 1;
  for_each_owned_group(keys, int32_t(p.pairs), [&](int32_t k, unsigned group, int32_t pair) {
    const int32_t cursor = __shfl_sync(kFullWarp, lane == 0 ? cursors[k] : 0, 0);
    if (group >> lane & 1u) {
      const int32_t row = cursor + __popc(group & lanes_below);
      b.keys_sorted[row] = k;
      b.pairs_sorted[row] = pair;
      b.position[pair] = k < p.local_experts ? row : -1;
    }
    if (lane == 0) cursors[k] = cursor + __popc(group);
  });
}

// The whole pre-pass in one block (P <= kRouteSmallMaxPairs, E_local <= kRouteSmallMaxExperts); dynamic shared
// memory: route_small_dynamic_smem(E_local).
__global__ void __launch_bounds__(kRouteTileThreads) route_small_kernel(RouteParams p) {
  __shared__ int32_t keys[kRouteSmallMaxPairs];
  __shared__ RouteScanStorage storage;
  extern __shared__ int32_t route_counters[];
  stage_keys(p, keys, route_counters);
  count_keys(keys, int32_t(p.pairs), route_counters);
  scan_offsets_and_tiles(p, route_counters, storage);
  scatter_pairs(p, keys, route_counters);
}

}  // namespace fp4moe::cuda
