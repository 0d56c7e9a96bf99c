// The routing's segmented path (RoutePath::kSegments): a counting sort of any number of pairs P over segments of
// kRouteSegmentPairs, E_local <= kRouteSmallMaxExperts, in two launches; the same outputs as the other paths, bit
// for bit (route_kernels.cuh), deterministic, no global atomics.
//  1. route_segment_count_kernel: block b ranks pairs [b·S, (b + 1)·S) as the one-block path ranks its own
//     (rank_in_segments: per warp, then a prefix over the block's warps), and writes the block's count of each key
//     (seg_counts[b][key], RouteBuffers::sort_temp), each pair's key (keys_in) and its rank among the block's pairs
//     of that key (pairs_in).
//  2. route_segment_place_kernel: block b < segments adds up the counts of every segment (key totals; a block scan
//     gives the offsets) and of the segments before b (where b's pairs start inside each key), then places its
//     pairs: row = offset + start + rank (position, pairs_sorted, keys_sorted). Block 0 writes the offsets and the
//     tiles. Spare blocks past the segments prepare x for FC1, from the start of the count launch on (see the
//     kernel), so that the routing's two launches hide behind it.
// Before it, P = 2049..8192 took the one block (8.7-15 µs at P = 4096-8192) and P past 8192 the CUB sort path (7-10
// launches and memsets, ~32 µs at P = 32768) in the layer's graph (bench/NOTES.md, session 26). Bytes: a few int32 per
// pair, and segments · (E_local + 1) counts.
#pragma once

#include "cuda/route/route_kernels.cuh"

namespace fp4moe::cuda {

constexpr int kRouteSegmentThreads = kRouteWideThreads;
constexpr int kRouteSegmentItems = int(kRouteSegmentPairs / kRouteSegmentThreads);
static_assert(kRouteSegmentPairs % kRouteSegmentThreads == 0, "whole segments per warp");
static_assert(kRouteSegmentPairs < 32768, "16-bit counts per warp and their block prefix");

// Dynamic shared memory of route_segment_count_kernel: the per-warp counts.
constexpr size_t route_segment_count_smem(int64_t local_experts) {
  return size_t(kRouteSegmentThreads / 32) * size_t(local_experts + 1) * sizeof(uint16_t);
}

// Dynamic shared memory of route_segment_place_kernel's routing blocks: start and offset of each key.
constexpr size_t route_segment_place_smem(int64_t local_experts) {
  return 2 * size_t(local_experts + 1) * sizeof(int32_t);
}

__global__ void __launch_bounds__(kRouteSegmentThreads) route_segment_count_kernel(RouteParams p) {
  extern __shared__ __align__(16) uint8_t route_smem[];
  griddep_wait();  // topk_ids may come from the caller's previous kernel
  griddep_launch_dependents();
  constexpr int kWarps = kRouteSegmentThreads / 32;
  auto* counts = reinterpret_cast<uint16_t*>(route_smem);
  const int keys = int(p.ids.local_experts) + 1, warp = int(threadIdx.x) / 32;
  const int64_t base = int64_t(blockIdx.x) * kRouteSegmentPairs;
  const RouteRanks<kRouteSegmentItems> r =
      rank_in_segments<kRouteSegmentThreads, kRouteSegmentItems>(p, counts, base);
  int32_t* seg_counts = static_cast<int32_t*>(p.buffers.sort_temp) + int64_t(blockIdx.x) * keys;
  for (int e = int(threadIdx.x); e < keys; e += kRouteSegmentThreads) {
    seg_counts[e] = warp_starts_of_key<kWarps>(counts, keys, e);
  }
  __syncthreads();
  const int64_t first = base + int64_t(warp) * 32 * kRouteSegmentItems + int(threadIdx.x) % 32;
#pragma unroll
  for (int j = 0; j < kRouteSegmentItems; ++j) {
    const int32_t key = r.key[j];
    if (key < 0) continue;
    const int64_t pair = first + 32 * j;
    p.buffers.keys_in[pair] = key;
    p.buffers.pairs_in[pair] = int32_t(counts[warp * keys + key]) + r.rank[j];
  }
}

// start[e] = the offset of key e plus its pairs in the segments before this block; offsets[e] = the offset (both
// shared). Every segment's count is one independent load; the sums go through shared-memory atomics (integer adds:
// the same totals in any order). Ends with a block barrier.
__device__ __forceinline__ void segment_starts(const RouteParams& p, int32_t segments, int32_t* start, int32_t* offsets,
                                               RouteScan<kRouteSegmentThreads>::TempStorage& scan) {
  const int keys = int(p.ids.local_experts) + 1;
  for (int e = int(threadIdx.x); e < keys; e += kRouteSegmentThreads) {
    start[e] = 0;    // pairs before this segment
    offsets[e] = 0;  // pairs in every segment
  }
  __syncthreads();
  const auto* seg_counts = static_cast<const int32_t*>(p.buffers.sort_temp);
  const int64_t all = int64_t(segments) * keys, before = int64_t(blockIdx.x) * keys;
  for (int64_t i = threadIdx.x; i < all; i += kRouteSegmentThreads) {
    const int32_t c = seg_counts[i];
    const int e = int(i % keys);
    if (c == 0) continue;
    atomicAdd(&offsets[e], c);
    if (i < before) atomicAdd(&start[e], c);
  }
  __syncthreads();
  scan_key_offsets<kRouteSegmentThreads>(
      keys, [&](int e) { return offsets[e]; },
      [&](int e, int32_t first) {
        offsets[e] = first;
        start[e] += first;
        if (blockIdx.x == 0) p.buffers.offsets[e] = first;
      },
      scan);
  __syncthreads();
}

// Spare blocks (blockIdx >= segments) read x before their griddep_wait: x comes from the caller, two launches back,
// and the count launch waited for the caller before it let this one launch (launch.cuh's rule). So they reorder x
// while the count launch runs, and wait only before they exit (FC1 then waits for them as for this whole launch).
__global__ void __launch_bounds__(kRouteSegmentThreads) route_segment_place_kernel(RouteParams p, int32_t segments) {
  __shared__ typename RouteScan<kRouteSegmentThreads>::TempStorage scan;
  extern __shared__ __align__(16) uint8_t route_smem[];
  if (int32_t(blockIdx.x) >= segments) {
    prepare_x_for_fc1<kRouteSegmentThreads>(p, blockIdx.x - segments, gridDim.x - segments, route_smem);
    griddep_wait();
    return;
  }
  griddep_wait();  // the counts, keys and ranks of the count launch
  griddep_launch_dependents();
  const int keys = int(p.ids.local_experts) + 1;
  auto* start = reinterpret_cast<int32_t*>(route_smem);
  int32_t* offsets = start + keys;
  segment_starts(p, segments, start, offsets, scan);
  const RouteBuffers& b = p.buffers;
  const int64_t base = int64_t(blockIdx.x) * kRouteSegmentPairs;
  const int64_t end = base + kRouteSegmentPairs < p.ids.pairs ? base + kRouteSegmentPairs : p.ids.pairs;
  for (int64_t i = base + threadIdx.x; i < end; i += kRouteSegmentThreads) {
    const int32_t key = b.keys_in[i];
    const int32_t row = start[key] + b.pairs_in[i];
    b.pairs_sorted[row] = int32_t(i);
    b.keys_sorted[row] = key;
    b.position[i] = key < p.ids.local_experts ? row : -1;
  }
  if (blockIdx.x == 0) write_tiles<kRouteSegmentThreads>(p, offsets, scan);
}

}  // namespace fp4moe::cuda
