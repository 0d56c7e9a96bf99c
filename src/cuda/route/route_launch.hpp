// Host-side interface of the routing pre-pass: (token, slot) pairs sorted by local expert, stably (token order is
// kept inside each expert), per-expert offsets and the work tiles (tile_rows rows each). All on the device. Three
// paths write the same outputs bit for bit (RoutePath): small batches take one launch (one routing block that counts
// and places the pairs); larger ones a counting sort in two launches over segments of the pairs; E_local past
// kRouteSmallMaxExperts a CUB radix sort. A launch of either counting path also prepares x for FC1 in its spare
// blocks (RouteParams::quantize, ::reorder). WorkTiles tells the GEMM and combine kernels where their tiles
// come from.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda/fc1/x_reorder_launch.hpp"
#include "cuda/quantize/quantize_launch.hpp"

namespace fp4moe::cuda {

// Limits of the one-launch path: its sorted pairs, per-expert offsets and per-warp expert counts live in shared
// memory (69 KB at both limits, within the 99 KB a block may opt into on every supported GPU).
inline constexpr int64_t kRouteSmallMaxPairs = 8192;
inline constexpr int64_t kRouteSmallMaxExperts = 1024;
// The segmented path: each block of its first launch ranks this many pairs (512 threads × 4).
inline constexpr int64_t kRouteSegmentPairs = 2048;

// One work tile: rows [row_begin, row_end) of the sorted pairs, all routed to local expert `expert`.
struct RouteTile {
  int32_t expert, row_begin, row_end, pad;
};

struct RouteBuffers {
  int32_t* keys_in = nullptr;       // [P] local expert of each pair (E_local = not local); sort path scratch
  int32_t* pairs_in = nullptr;      // [P] 0..P-1; sort path scratch
  int32_t* keys_sorted = nullptr;   // [P]
  int32_t* pairs_sorted = nullptr;  // [P] pair index t·K + k of each sorted row
  int32_t* offsets = nullptr;       // [E_local + 1] first sorted row of each local expert; offsets[E_local] = local pairs
  int32_t* position = nullptr;      // [P] sorted row of each pair, -1 if not local
  RouteTile* tiles = nullptr;       // [max_tiles]
  int32_t* num_tiles = nullptr;     // [1]
  int32_t* tile_ready = nullptr;    // [P] or nullptr: 0 at the first sorted row of each tile (WorkTiles::tile_ready)
  void* sort_temp = nullptr;        // scratch: the CUB sort's, or the counting sort's per-segment key counts
  size_t sort_temp_bytes = 0;
};

// Upper bound of work tiles of tile_rows rows for P pairs and E_local experts (each expert adds at most one partial
// tile).
int64_t max_route_tiles(int64_t pairs, int64_t local_experts, int tile_rows);
// Bytes of routing scratch (RouteBuffers::sort_temp) for P pairs and E_local experts: enough for any path.
size_t route_sort_temp_bytes(int64_t pairs, int64_t local_experts);

// The routing's input: topk_ids [P = T·K] and the local expert range. Ids outside [0, E) and outside the local
// range are not local.
struct ExpertIds {
  const int32_t* topk_ids = nullptr;
  int64_t pairs = 0;
  int64_t num_experts = 0, local_experts = 0, expert_offset = 0;
};

// Where the FC1/FC2/combine kernels find their work: the routing's sorted tiles, or (pair tiles, one token) each
// (token, slot) pair as its own one-row tile straight from topk_ids, with no routing launch: a token's experts are
// distinct, so nothing is streamed twice, and the kernels start fetching weights as soon as they have read the ids.
struct WorkTiles {
  bool pair_tiles = false;
  // Sorted tiles (from RouteBuffers)
  const RouteTile* tiles = nullptr;
  const int32_t* num_tiles = nullptr;
  const int32_t* pairs_sorted = nullptr;  // pair t·K + k of each sorted row
  const int32_t* position = nullptr;      // sorted row of each pair, -1 if not local
  // Sorted tiles on the streaming path (else nullptr): FC1 adds the output groups whose h it stored to its tile's
  // counter (at the tile's first sorted row, zeroed by the routing), and an FC2 block reads its tile's h once the
  // count reaches tile_ready_groups, instead of waiting for the whole FC1 grid (work_tiles.cuh).
  int32_t* tile_ready = nullptr;
  int32_t tile_ready_groups = 0;
  // Pair tiles: row = pair, expert = the pair's local id
  ExpertIds ids;
};

// The routing's paths, all with the same outputs (kAuto: route_launch.cu picks by P and E_local).
enum class RoutePath {
  kAuto,
  kOneBlock,  // P <= kRouteSmallMaxPairs, E_local <= kRouteSmallMaxExperts: one block counts and places every pair
  kSegments,  // E_local <= kRouteSmallMaxExperts: blocks count segments of kRouteSegmentPairs, then place them
  kSort,      // any: CUB stable radix sort
};

struct RouteParams {
  ExpertIds ids;
  int tile_rows = 64;  // rows of one work tile
  RouteBuffers buffers;
  RoutePath path = RoutePath::kAuto;  // tests force each path
  // x prepared for FC1 in a routing launch (the one block's, the segmented path's place launch), by blocks besides
  // the routing blocks, so that FC1 waits for the routing alone and the two overlap (the CUB path launches it after
  // the sort). At most one, rows > 0: W4A4 streaming path: x quantized (dequantized values); wgmma path: x into the
  // MMA k order (W4A4: quantized too).
  QuantizeParams quantize;
  XReorderParams reorder;
};

void route_launch(const RouteParams& params, void* stream);

}  // namespace fp4moe::cuda
