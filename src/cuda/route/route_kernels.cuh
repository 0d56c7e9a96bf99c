// Routing pre-pass kernels. Inputs: topk_ids [P = T·K]. Outputs: pairs sorted by local expert, stably (token order is
// kept inside each expert; pairs that are not local come last, key E_local), per-expert offsets, the sorted row of
// each pair and the work tiles. Bytes: a few int32 per pair; negligible next to
// the weights.
// Three paths with the same outputs bit for bit (the segmented one: route_segment_kernels.cuh):
//  - sort path (any P and E_local): keys kernel → CUB stable radix sort → positions kernel (positions and offsets,
//    where the sorted key changes) → tiles kernel;
//  - small path (P <= kRouteSmallMaxPairs, E_local <= kRouteSmallMaxExperts): route_small_kernel, one block, one
//    launch: a counting sort. Each warp ranks a contiguous segment of pairs among equal keys (match.any) and counts
//    its keys; the counts give every key's offset and every warp's start inside it; the pairs are placed in shared
//    memory and written out in sorted order; block scans for the tiles. Deterministic, no atomics.
#pragma once

#include <cub/block/block_scan.cuh>

#include "cuda/common/launch.cuh"
#include "cuda/fc1/x_reorder_kernel.cuh"
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
// first, first + stride, ...
__device__ __forceinline__ void offsets_at_key_changes(const RouteParams& p, const int32_t* sorted, int64_t first,
                                                       int64_t stride) {
  const int32_t e_local = int32_t(p.ids.local_experts);
  for (int64_t s = first; s <= p.ids.pairs; s += stride) {
    const int32_t prev = s > 0 ? min(sorted[s - 1], e_local) : -1;
    const int32_t cur = s < p.ids.pairs ? min(sorted[s], e_local) : e_local;
    for (int32_t e = prev + 1; e <= cur; ++e) p.buffers.offsets[e] = int32_t(s);
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
  offsets_at_key_changes(p, b.keys_sorted, first, stride);
}

// Pieces of x a spare block's thread loads before it stores (x_reorder_strided).
constexpr int kRouteReorderRounds = 4;

// Spare blocks of a routing launch (`block` of `blocks` of them, kThreads threads each): x prepared for FC1
// (RouteParams::quantize or ::reorder). smem: kThreads / 32 · kXReorderWarpStageWords words where reordering.
template <int kThreads>
__device__ __forceinline__ void prepare_x_for_fc1(const RouteParams& p, int64_t block, int64_t blocks, uint8_t* smem) {
  const int64_t first = block * kThreads + threadIdx.x, stride = blocks * kThreads;
  if (p.reorder.rows > 0) {
    uint32_t* stage = reinterpret_cast<uint32_t*>(smem) + threadIdx.x / 32 * kXReorderWarpStageWords;
    x_reorder_strided<kRouteReorderRounds>(p.reorder, first, stride, stage);
  } else {
    quantize_nvfp4_blocks(p.quantize, first, stride);
  }
}

// ---- small path --------------------------------------------------------------------------------------------------

// Threads of route_small_kernel: 256 up to 256 pairs, else 512; warp w ranks pairs
// [w·32·kItems, (w + 1)·32·kItems).
// (The CUB block radix sort this replaces took two 4-bit passes of ranking and exchange for 8-bit keys.)
constexpr int kRouteSmallThreads = 256;
constexpr int kRouteWideThreads = 512;
static_assert(kRouteSmallMaxPairs % kRouteWideThreads == 0, "whole segments per warp");

// Dynamic shared memory of route_small_kernel for `pairs` pairs, keys 0..E_local (E_local: not local) and `warps`
// warps: the placed pairs [P] (key << 16 | pair), the offsets of the keys [E_local + 1], and the counts of each key
// in each warp's segment [warps][E_local + 1], 16 bits (at most 32·kItems per warp, P after the warp prefix).
struct RouteSmallLayout {
  size_t placed, offsets, counts, bytes;
};
constexpr RouteSmallLayout route_small_layout(int64_t pairs, int64_t local_experts, int warps) {
  const size_t keys = size_t(local_experts + 1);
  RouteSmallLayout l{};
  l.placed = 0;
  l.offsets = size_t(pairs) * sizeof(int32_t);
  l.counts = l.offsets + keys * sizeof(int32_t);
  l.bytes = l.counts + size_t(warps) * keys * sizeof(uint16_t);
  return l;
}
static_assert(kRouteSmallMaxPairs <= 65535 && kRouteSmallMaxExperts < 32767, "16-bit counts, pair and key");
static_assert(route_small_layout(kRouteSmallMaxPairs, kRouteSmallMaxExperts, kRouteWideThreads / 32).bytes <=
                  99 * 1024,
              "the routing block's shared memory fits every supported GPU's opt-in limit");

// A warp's pairs (lane + 32·j of its segment): their keys (-1 past P) and ranks among the segment's equal keys.
template <int kItems>
struct RouteRanks {
  int32_t key[kItems];
  int32_t rank[kItems];
};

// Ranks the warp's segment in pair order, one round of 32 pairs at a time: lanes with equal keys find each other
// (match.any), each takes the count of its key so far plus the lanes before it, and the lowest adds the round's
// number to the warp's count of that key. The block's pairs start at `base`. Ends with a block barrier (the counts
// complete).
template <int kThreads, int kItems>
__device__ __forceinline__ RouteRanks<kItems> rank_in_segments(const RouteParams& p, uint16_t* counts, int64_t base) {
  const int keys = int(p.ids.local_experts) + 1, warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  for (int i = int(threadIdx.x); i < (kThreads / 32) * keys; i += kThreads) counts[i] = 0;
  RouteRanks<kItems> r;
  const int64_t first = base + int64_t(warp) * 32 * kItems + lane;
#pragma unroll
  for (int j = 0; j < kItems; ++j) {  // the loads first, all in flight together
    const int64_t pair = first + 32 * j;
    r.key[j] = pair < p.ids.pairs ? local_expert_of(p.ids, pair) : -1;
  }
  __syncthreads();  // the counts are zero
  uint16_t* own = counts + warp * keys;
  const uint32_t lanes_before = (1u << lane) - 1u;
#pragma unroll
  for (int j = 0; j < kItems; ++j) {
    const int32_t key = r.key[j];
    const uint32_t peers = __match_any_sync(0xffffffffu, key);
    const int32_t before = __popc(peers & lanes_before);
    const int32_t so_far = key >= 0 ? int32_t(own[key]) : 0;
    __syncwarp();  // every peer read the count before the lowest one raises it
    if (key >= 0 && before == 0) own[key] = uint16_t(so_far + __popc(peers));
    __syncwarp();
    r.rank[j] = so_far + before;
  }
  __syncthreads();
  return r;
}

// Key e's counts over the block's kWarps warps (counts[w][e], `keys` per warp) become each warp's start inside the
// key (the count of key-e pairs in the warps before it); returns the block's count of key e.
template <int kWarps>
__device__ __forceinline__ int32_t warp_starts_of_key(uint16_t* counts, int keys, int e) {
  int32_t running = 0;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    const int32_t c = counts[w * keys + e];
    counts[w * keys + e] = uint16_t(running);
    running += c;
  }
  return running;
}

// Keys per thread of the offset scan: every key of the largest E_local.
template <int kThreads>
inline constexpr int kRouteKeysPerThread = int((kRouteSmallMaxExperts + 1 + kThreads - 1) / kThreads);

// The keys' offsets from their totals: thread i takes keys kRouteKeysPerThread·i.. (a block scan of their sums orders
// them). total(e) is called for each of the thread's keys before offset(e, first sorted row of key e) for any.
template <int kThreads, class Total, class Offset>
__device__ __forceinline__ void scan_key_offsets(int keys, Total&& total_of, Offset&& offset,
                                                 typename RouteScan<kThreads>::TempStorage& scan) {
  constexpr int kKeys = kRouteKeysPerThread<kThreads>;
  int32_t total[kKeys], sum = 0;
#pragma unroll
  for (int i = 0; i < kKeys; ++i) {
    const int e = int(threadIdx.x) * kKeys + i;
    total[i] = e < keys ? total_of(e) : 0;
    sum += total[i];
  }
  int32_t first = 0;
  RouteScan<kThreads>(scan).ExclusiveSum(sum, first);
#pragma unroll
  for (int i = 0; i < kKeys; ++i) {
    const int e = int(threadIdx.x) * kKeys + i;
    if (e < keys) offset(e, first);
    first += total[i];
  }
}

// From the counts: counts[w][e] becomes the number of key-e pairs in the segments before w, offsets[e] (shared and
// global) the first sorted row of key e. Ends with a block barrier.
template <int kThreads>
__device__ __forceinline__ void key_offsets(const RouteParams& p, uint16_t* counts, int32_t* offsets,
                                            typename RouteScan<kThreads>::TempStorage& scan) {
  const int keys = int(p.ids.local_experts) + 1;
  scan_key_offsets<kThreads>(
      keys, [&](int e) { return warp_starts_of_key<kThreads / 32>(counts, keys, e); },
      [&](int e, int32_t first) {
        offsets[e] = first;
        p.buffers.offsets[e] = first;
      },
      scan);
  __syncthreads();
}

// Each pair's sorted row: its key's offset + the key's pairs in earlier segments + its rank. Writes position
// (coalesced: lanes hold consecutive pairs) and places (key, pair) in shared memory; then writes pairs_sorted and
// keys_sorted from there in sorted order, so those stores coalesce too.
template <int kThreads, int kItems>
__device__ __forceinline__ void place_pairs(const RouteParams& p, const RouteRanks<kItems>& r,
                                            const uint16_t* counts, const int32_t* offsets, int32_t* placed) {
  const int keys = int(p.ids.local_experts) + 1, warp = int(threadIdx.x) / 32;
  const int64_t first = int64_t(warp) * 32 * kItems + int(threadIdx.x) % 32;
#pragma unroll
  for (int j = 0; j < kItems; ++j) {
    const int32_t key = r.key[j];
    if (key < 0) continue;
    const int32_t pair = int32_t(first + 32 * j);
    const int32_t row = offsets[key] + int32_t(counts[warp * keys + key]) + r.rank[j];
    placed[row] = key << 16 | pair;
    p.buffers.position[pair] = key < p.ids.local_experts ? row : -1;
  }
  __syncthreads();
  for (int64_t s = threadIdx.x; s < p.ids.pairs; s += kThreads) {
    const int32_t v = placed[s];
    p.buffers.pairs_sorted[s] = v & 0xffff;
    p.buffers.keys_sorted[s] = v >> 16;
  }
}

// The whole pre-pass in block 0 of kThreads threads, P <= kThreads · kItems, E_local <= kRouteSmallMaxExperts;
// dynamic shared memory: route_small_layout(P, E_local, kThreads / 32).bytes (and the reorder's stage). Blocks 1..
// prepare x (prepare_x_for_fc1), so that FC1 waits for one launch instead of two. One block per SM is all the launch
// bound asks for (the 512-thread block spilled on sm_80/sm_89 at the 64 registers of two).
template <int kThreads, int kItems>
__global__ void __launch_bounds__(kThreads, 1) route_small_kernel(RouteParams p) {
  __shared__ typename RouteScan<kThreads>::TempStorage scan;
  extern __shared__ __align__(16) uint8_t route_smem[];
  griddep_wait();  // topk_ids and x may come from the caller's previous kernel
  griddep_launch_dependents();
  if (blockIdx.x > 0) {
    prepare_x_for_fc1<kThreads>(p, blockIdx.x - 1, gridDim.x - 1, route_smem);
    return;
  }
  const RouteSmallLayout l = route_small_layout(p.ids.pairs, p.ids.local_experts, kThreads / 32);
  auto* placed = reinterpret_cast<int32_t*>(route_smem + l.placed);
  auto* offsets = reinterpret_cast<int32_t*>(route_smem + l.offsets);
  auto* counts = reinterpret_cast<uint16_t*>(route_smem + l.counts);
  const RouteRanks<kItems> r = rank_in_segments<kThreads, kItems>(p, counts, 0);
  key_offsets<kThreads>(p, counts, offsets, scan);
  place_pairs<kThreads, kItems>(p, r, counts, offsets, placed);
  write_tiles<kThreads>(p, offsets, scan);
}

}  // namespace fp4moe::cuda
