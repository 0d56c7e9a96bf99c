// Launcher of the routing pre-pass: one single-block launch for small batches, two launches of the segmented
// counting sort past them, the CUB sort path for E_local past kRouteSmallMaxExperts. Same outputs on every path; no
// host sync.
#include <cuda_runtime.h>

#include <algorithm>
#include <bit>
#include <cub/device/device_radix_sort.cuh>

#include "cuda/common/cuda_check.hpp"
#include "cuda/common/device_info.hpp"
#include "cuda/route/route_kernels.cuh"
#include "cuda/route/route_segment_kernels.cuh"
#include "fp4moe/error.hpp"

namespace fp4moe::cuda {

namespace {

size_t cub_sort_temp_bytes(int64_t pairs) {
  size_t bytes = 0;
  FP4MOE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, bytes, static_cast<const int32_t*>(nullptr),
                                                    static_cast<int32_t*>(nullptr),
                                                    static_cast<const int32_t*>(nullptr),
                                                    static_cast<int32_t*>(nullptr), std::max<int64_t>(pairs, 1)));
  return bytes;
}

unsigned grid_for(int64_t n, int threads) {
  return unsigned(std::clamp<int64_t>((n + threads - 1) / threads, 1, 4096));
}

// P up to which one routing block is used rather than the segmented path's two launches. At P = 4096 and 8192
// (qwen3-30b T = 512 and 1024, wgmma path) the segmented path, its spare blocks reordering x beside the count launch,
// took the layer from 207 to 204 µs and from 295 to 281 (bench/NOTES.md, session 26). Up to 2048 pairs (T <= 256 at
// top-8: the streaming path, no reorder) the one block took 3.7-5.5 µs.
constexpr int64_t kRouteOneBlockMaxPairs = 2048;
static_assert(kRouteOneBlockMaxPairs <= kRouteSmallMaxPairs, "the one-block path's limit");

RoutePath route_path(const RouteParams& p) {
  const bool one_block = p.ids.pairs <= kRouteSmallMaxPairs && p.ids.local_experts <= kRouteSmallMaxExperts;
  const bool segments = p.ids.local_experts <= kRouteSmallMaxExperts;
  switch (p.path) {
    case RoutePath::kOneBlock:
      FP4MOE_CHECK(one_block, "the one-block routing path takes P <= ", kRouteSmallMaxPairs, " and E_local <= ",
                   kRouteSmallMaxExperts, ", got P = ", p.ids.pairs, ", E_local = ", p.ids.local_experts);
      return RoutePath::kOneBlock;
    case RoutePath::kSegments:
      FP4MOE_CHECK(segments, "the segmented routing path takes E_local <= ", kRouteSmallMaxExperts, ", got ",
                   p.ids.local_experts);
      return RoutePath::kSegments;
    case RoutePath::kSort: return RoutePath::kSort;
    case RoutePath::kAuto: break;
  }
  if (!segments) return RoutePath::kSort;
  return p.ids.pairs <= kRouteOneBlockMaxPairs ? RoutePath::kOneBlock : RoutePath::kSegments;
}

// Spare blocks of `threads` threads that prepare x for FC1 in a routing launch (prepare_x_for_fc1), and the shared
// memory each needs. Quantizing: one thread per 16-value block. Reordering: as many blocks as `per_sm` per SM, or
// fewer where each thread would have less than kRouteReorderRounds pieces: one wave, every thread with several pieces
// in flight (one piece per thread in 4 waves of the one-block launch's spare blocks took 20 µs for 4 MB at
// qwen3-30b T=1024; bench/NOTES.md, session 26).
unsigned spare_blocks(const RouteParams& p, int threads, int per_sm) {
  if (p.quantize.rows > 0) return quantize_grid(p.quantize, threads);
  if (p.reorder.rows == 0) return 0;
  const int64_t per_block = int64_t(threads) * kRouteReorderRounds;
  const int64_t wave = int64_t(current_multiprocessor_count()) * per_sm;
  return unsigned(std::clamp<int64_t>((x_reorder_pieces(p.reorder) + per_block - 1) / per_block, 1, wave));
}
size_t spare_smem(const RouteParams& p, int threads) {
  return p.reorder.rows > 0 ? size_t(threads / 32) * kXReorderWarpStageWords * sizeof(uint32_t) : 0;
}

// The one-launch path with kThreads threads of kItems pairs each. The shared-memory limit is set once per kernel, for
// the most it can need (kThreads · kItems pairs, kRouteSmallMaxExperts); each launch asks for what P and E_local need.
// Spare blocks per SM: the one-block launch's 70-92 registers per thread leave room for one 512-thread block (or two
// of 256), the place launch's 32 for four.
constexpr int kOneBlockSpareBlocksPerSm = 1;
constexpr int kPlaceSpareBlocksPerSm = 4;

template <int kThreads, int kItems>
void launch_small(const RouteParams& p, cudaStream_t stream) {
  constexpr auto kKernel = route_small_kernel<kThreads, kItems>;
  constexpr int kWarps = kThreads / 32;
  allow_dynamic_shared_memory<kKernel>(route_small_layout(kThreads * kItems, kRouteSmallMaxExperts, kWarps).bytes);
  const size_t smem = std::max(route_small_layout(p.ids.pairs, p.ids.local_experts, kWarps).bytes,
                               spare_smem(p, kThreads));
  launch_pdl(kKernel, 1 + spare_blocks(p, kThreads, kOneBlockSpareBlocksPerSm), kThreads, smem, stream, p);
}

void launch_one_block(const RouteParams& p, cudaStream_t stream) {
  // A warp ranks its 32·kItems pairs one round of 32 after another, so P takes the fewest items per thread that
  // hold it (the rounds are the block's critical path).
  const int64_t items = (p.ids.pairs + kRouteWideThreads - 1) / kRouteWideThreads;
  if (p.ids.pairs <= kRouteSmallThreads) return launch_small<kRouteSmallThreads, 1>(p, stream);
  if (items <= 1) return launch_small<kRouteWideThreads, 1>(p, stream);
  if (items <= 2) return launch_small<kRouteWideThreads, 2>(p, stream);
  if (items <= 4) return launch_small<kRouteWideThreads, 4>(p, stream);
  if (items <= 8) return launch_small<kRouteWideThreads, 8>(p, stream);
  launch_small<kRouteWideThreads, int(kRouteSmallMaxPairs / kRouteWideThreads)>(p, stream);
}

int64_t route_segments(int64_t pairs) { return (pairs + kRouteSegmentPairs - 1) / kRouteSegmentPairs; }

// Scratch of the segmented path: every segment's count of every key.
size_t segment_count_bytes(int64_t pairs, int64_t local_experts) {
  return size_t(route_segments(pairs)) * size_t(local_experts + 1) * sizeof(int32_t);
}

// The scratch a path needs, against what the caller gave (RouteBuffers::sort_temp_bytes).
void check_scratch(const RouteParams& p, size_t needed) {
  FP4MOE_CHECK(p.buffers.sort_temp_bytes >= needed, "routing scratch (RouteBuffers::sort_temp_bytes): needs ",
               needed, " bytes, got ", p.buffers.sort_temp_bytes);
}

void launch_segments(const RouteParams& p, cudaStream_t stream) {
  const int64_t segments = route_segments(p.ids.pairs);
  FP4MOE_CHECK(segments <= INT32_MAX / 2, "too many pairs for the segmented routing path: ", p.ids.pairs);
  check_scratch(p, segment_count_bytes(p.ids.pairs, p.ids.local_experts));
  launch_pdl(route_segment_count_kernel, unsigned(segments), kRouteSegmentThreads,
             route_segment_count_smem(p.ids.local_experts), stream, p);
  const size_t place_smem =
      std::max(route_segment_place_smem(p.ids.local_experts), spare_smem(p, kRouteSegmentThreads));
  const unsigned spare = spare_blocks(p, kRouteSegmentThreads, kPlaceSpareBlocksPerSm);
  launch_pdl(route_segment_place_kernel, unsigned(segments) + spare, kRouteSegmentThreads, place_smem, stream, p,
             int32_t(segments));
}

void launch_sort(const RouteParams& p, cudaStream_t stream) {
  size_t temp_bytes = cub_sort_temp_bytes(p.ids.pairs);
  check_scratch(p, temp_bytes);
  constexpr int kThreads = 256;
  route_keys_kernel<<<grid_for(p.ids.pairs, kThreads), kThreads, 0, stream>>>(p);
  FP4MOE_CUDA_CHECK(cudaGetLastError());
  // Keys lie in [0, E_local]: sorting only their low bits keeps the sort short.
  const int end_bit = std::max(1, int(std::bit_width(uint64_t(p.ids.local_experts))));
  FP4MOE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(p.buffers.sort_temp, temp_bytes, p.buffers.keys_in,
                                                    p.buffers.keys_sorted, p.buffers.pairs_in,
                                                    p.buffers.pairs_sorted, p.ids.pairs, 0, end_bit, stream));
  route_positions_kernel<<<grid_for(p.ids.pairs + 1, kThreads), kThreads, 0, stream>>>(p);
  FP4MOE_CUDA_CHECK(cudaGetLastError());
  route_tiles_kernel<<<1, kRouteTileThreads, 0, stream>>>(p);
  FP4MOE_CUDA_CHECK(cudaGetLastError());
  if (p.quantize.rows > 0) launch_quantize_nvfp4(p.quantize, stream);
  if (p.reorder.rows > 0) x_reorder_launch(p.reorder, stream);
}

}  // namespace

int64_t max_route_tiles(int64_t pairs, int64_t local_experts, int tile_rows) {
  return std::min(pairs, (pairs + tile_rows - 1) / tile_rows + local_experts);
}

size_t route_sort_temp_bytes(int64_t pairs, int64_t local_experts) {
  return std::max(cub_sort_temp_bytes(pairs), segment_count_bytes(pairs, local_experts));
}

void route_launch(const RouteParams& p, void* stream_ptr) {
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  if (p.ids.pairs == 0) return;
  // The 128x4 scale layout needs its padding zeroed first, which only launch_quantize_nvfp4 does.
  FP4MOE_CHECK(p.quantize.rows == 0 || !(p.quantize.swizzled && p.quantize.scales),
               "the routing launch quantizes x only into linear scales or dequantized values");
  FP4MOE_CHECK(p.quantize.rows == 0 || p.reorder.rows == 0,
               "the routing launch prepares x one way: quantized or reordered, not both");
  switch (route_path(p)) {
    case RoutePath::kOneBlock: return launch_one_block(p, stream);
    case RoutePath::kSegments: return launch_segments(p, stream);
    default: return launch_sort(p, stream);
  }
}

}  // namespace fp4moe::cuda
