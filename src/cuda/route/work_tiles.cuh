// Device side of WorkTiles (route_launch.hpp): the work tile of a block, the pair of a sorted row, the sorted row of
// a pair, for either source. Pair tiles need no routing launch: tile i is pair i, one row, if its id is local.
#pragma once

#include <cstdint>

#include "cuda/common/ptx.cuh"
#include "cuda/route/route_launch.hpp"

namespace fp4moe::cuda {

// Local expert of pair i, or local_experts when the id is outside [0, E) or outside the local range.
__device__ __forceinline__ int32_t local_expert_of(const ExpertIds& ids, int64_t i) {
  const int64_t id = ids.topk_ids[i];
  const int64_t local = id - ids.expert_offset;
  const bool is_local = id >= 0 && id < ids.num_experts && local >= 0 && local < ids.local_experts;
  return int32_t(is_local ? local : ids.local_experts);
}

// Work tiles of the routing (pair tiles: one per pair, some of which may have no work).
__device__ __forceinline__ int64_t work_tile_count(const WorkTiles& w) {
  return w.pair_tiles ? w.ids.pairs : *w.num_tiles;
}

// Work tile `index` of the grid; false when the block has no work (past the routing's tiles, or a pair whose
// expert is not local).
__device__ __forceinline__ bool work_tile(const WorkTiles& w, int64_t index, RouteTile& tile) {
  if (!w.pair_tiles) {
    if (index >= *w.num_tiles) return false;
    tile = w.tiles[index];
    return true;
  }
  if (index >= w.ids.pairs) return false;
  const int32_t e = local_expert_of(w.ids, index);
  tile = RouteTile{e, int32_t(index), int32_t(index) + 1, 0};
  return e < w.ids.local_experts;
}

// Pair t·K + k of sorted row `row`.
__device__ __forceinline__ int32_t sorted_pair(const WorkTiles& w, int64_t row) {
  return w.pair_tiles ? int32_t(row) : w.pairs_sorted[row];
}

// Sorted row of pair `pair`, -1 if it is not local.
__device__ __forceinline__ int32_t pair_position(const WorkTiles& w, int64_t pair) {
  if (!w.pair_tiles) return w.position[pair];
  return local_expert_of(w.ids, pair) < w.ids.local_experts ? int32_t(pair) : -1;
}

// FC1 → FC2 handoff per tile (WorkTiles::tile_ready). FC1: one thread per block, after a barrier that follows the
// block's h stores, adds the output groups it finished. The release makes those stores visible to whoever acquires
// the count.
__device__ __forceinline__ void tile_ready_add(const WorkTiles& w, const RouteTile& tile, int32_t groups) {
  red_release_gpu_add(w.tile_ready + tile.row_begin, groups);
}

// FC2, called by every thread of the block: returns once every FC1 output group of the tile stored its h. Thread 0
// polls (one poller per block keeps the acquire loads few) and the barrier orders the other threads' loads of h
// after its acquire. Cannot wait forever: FC2 launches only after every FC1 block started (FC1 lets its dependents
// launch once it is running), so every block it waits for is resident or done.
__device__ __forceinline__ void tile_ready_wait(const WorkTiles& w, const RouteTile& tile) {
  if (threadIdx.x == 0) {
    while (ld_acquire_gpu(w.tile_ready + tile.row_begin) < w.tile_ready_groups) __nanosleep(128);
  }
  __syncthreads();
}

}  // namespace fp4moe::cuda
