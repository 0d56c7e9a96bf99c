// Launcher of the routing pre-pass: one single-block launch for small batches, else keys → CUB stable radix sort →
// tiles and positions. Same outputs either way; no host sync.
#include <cuda_runtime.h>

#include <algorithm>
#include <bit>
#include <cub/device/device_radix_sort.cuh>

#include "cuda/common/cuda_check.hpp"
#include "cuda/route/route_kernels.cuh"
#include "fp4moe/error.hpp"

namespace fp4moe::cuda {

namespace {

unsigned grid_for(int64_t n, int threads) {
  return unsigned(std::clamp<int64_t>((n + threads - 1) / threads, 1, 4096));
}

bool use_small_path(const RouteParams& p) {
  return !p.force_sort && p.ids.pairs <= kRouteSmallMaxPairs && p.ids.local_experts <= kRouteSmallMaxExperts;
}

// The one-launch path with kThreads threads of kItems pairs each. The shared-memory limit is set once per kernel, for
// the most it can need (kThreads · kItems pairs, kRouteSmallMaxExperts); each launch asks for what P and E_local need.
template <int kThreads, int kItems>
void launch_small(const RouteParams& p, cudaStream_t stream) {
  constexpr auto kKernel = route_small_kernel<kThreads, kItems>;
  constexpr int kWarps = kThreads / 32;
  allow_dynamic_shared_memory<kKernel>(route_small_layout(kThreads * kItems, kRouteSmallMaxExperts, kWarps).bytes);
  const size_t smem = route_small_layout(p.ids.pairs, p.ids.local_experts, kWarps).bytes;
  const unsigned grid = 1 + (p.quantize.rows > 0 ? quantize_grid(p.quantize, kThreads) : 0);
  launch_pdl(kKernel, grid, kThreads, smem, stream, p);
}

}  // namespace

int64_t max_route_tiles(int64_t pairs, int64_t local_experts, int tile_rows) {
  return std::min(pairs, (pairs + tile_rows - 1) / tile_rows + local_experts);
}

size_t route_sort_temp_bytes(int64_t pairs) {
  size_t bytes = 0;
  FP4MOE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, bytes, static_cast<const int32_t*>(nullptr),
                                                    static_cast<int32_t*>(nullptr),
                                                    static_cast<const int32_t*>(nullptr),
                                                    static_cast<int32_t*>(nullptr), std::max<int64_t>(pairs, 1)));
  return bytes;
}

void route_launch(const RouteParams& p, void* stream_ptr) {
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  if (p.ids.pairs == 0) return;
  // The 128x4 scale layout needs its padding zeroed first, which only launch_quantize_nvfp4 does.
  FP4MOE_CHECK(p.quantize.rows == 0 || !(p.quantize.swizzled && p.quantize.scales),
               "the routing launch quantizes x only into linear scales or dequantized values");
  if (use_small_path(p)) {
    // A warp ranks its 32·kItems pairs one round of 32 after another, so P takes the fewest items per thread that
    // hold it (the rounds are the block's critical path).
    const int64_t items = (p.ids.pairs + kRouteWideThreads - 1) / kRouteWideThreads;
    if (p.ids.pairs <= kRouteSmallThreads) {
      launch_small<kRouteSmallThreads, 1>(p, stream);
    } else if (items <= 1) {
      launch_small<kRouteWideThreads, 1>(p, stream);
    } else if (items <= 2) {
      launch_small<kRouteWideThreads, 2>(p, stream);
    } else if (items <= 4) {
      launch_small<kRouteWideThreads, 4>(p, stream);
    } else if (items <= 8) {
      launch_small<kRouteWideThreads, 8>(p, stream);
    } else {
      launch_small<kRouteWideThreads, int(kRouteSmallMaxPairs / kRouteWideThreads)>(p, stream);
    }
    return;
  }
  constexpr int kThreads = 256;
  route_keys_kernel<<<grid_for(p.ids.pairs, kThreads), kThreads, 0, stream>>>(p);
  FP4MOE_CUDA_CHECK(cudaGetLastError());
  // Keys lie in [0, E_local]: sorting only their low bits keeps the sort short.
  const int end_bit = std::max(1, int(std::bit_width(uint64_t(p.ids.local_experts))));
  size_t temp_bytes = p.buffers.sort_temp_bytes;
  FP4MOE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(p.buffers.sort_temp, temp_bytes, p.buffers.keys_in,
                                                    p.buffers.keys_sorted, p.buffers.pairs_in,
                                                    p.buffers.pairs_sorted, p.ids.pairs, 0, end_bit, stream));
  route_positions_kernel<<<grid_for(p.ids.pairs + 1, kThreads), kThreads, 0, stream>>>(p);
  FP4MOE_CUDA_CHECK(cudaGetLastError());
  route_tiles_kernel<<<1, kRouteTileThreads, 0, stream>>>(p);
  FP4MOE_CUDA_CHECK(cudaGetLastError());
  if (p.quantize.rows > 0) launch_quantize_nvfp4(p.quantize, stream);
}

}  // namespace fp4moe::cuda
