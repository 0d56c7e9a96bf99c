// Host-side interface of the routing pre-pass: (token, slot) pairs sorted by local expert, stably (token order is
// kept inside each expert), per-expert offsets and the list of 64-row work tiles. All on the device.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fp4moe::cuda {

inline constexpr int kRouteTileRows = 64;  // rows of one FC1/FC2 work tile (TileShape::kM)

// One work tile: rows [row_begin, row_end) of the sorted pairs, all routed to local expert `expert`.
struct RouteTile {
  int32_t expert, row_begin, row_end, pad;
};

struct RouteBuffers {
  int32_t* keys_in = nullptr;       // [P] local expert of each pair (E_local = not local)
  int32_t* pairs_in = nullptr;      // [P] 0..P-1
  int32_t* keys_sorted = nullptr;   // [P]
  int32_t* pairs_sorted = nullptr;  // [P] pair index t·K + k of each sorted row
  int32_t* offsets = nullptr;       // [E_local + 1] first sorted row of each local expert; offsets[E_local] = local pairs
  int32_t* position = nullptr;      // [P] sorted row of each pair, -1 if not local
  RouteTile* tiles = nullptr;       // [max_tiles]
  int32_t* num_tiles = nullptr;     // [1]
  void* sort_temp = nullptr;
  size_t sort_temp_bytes = 0;
};

// Upper bound of work tiles for P pairs and E_local experts (each expert adds at most one partial tile).
int64_t max_route_tiles(int64_t pairs, int64_t local_experts);
// Bytes of CUB sort scratch for P pairs.
size_t route_sort_temp_bytes(int64_t pairs);

struct RouteParams {
  const int32_t* topk_ids = nullptr;  // [P]; ids outside [0, E) and outside the local range are not local
  int64_t pairs = 0;
  int64_t num_experts = 0, local_experts = 0, expert_offset = 0;
  RouteBuffers buffers;
};

void route_launch(const RouteParams& params, void* stream);

}  // namespace fp4moe::cuda
