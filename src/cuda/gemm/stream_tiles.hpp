// Host side of the weight-streaming kernels: their instantiation table. A work tile of 8, 16, 24 or 32 sorted rows
// is kNT = 1..4 tiles of 8 tokens (the MMA's n8 side); every launcher of FC1 and FC2, in both block shapes, picks its
// instantiation here.
#pragma once

#include <type_traits>

#include "fp4moe/error.hpp"

namespace fp4moe::cuda {

// Calls fn(std::integral_constant<int, kNT>{}) for a work tile of `tile_rows` rows; `gemm` names the caller in the
// error for any other size.
template <class Fn>
void with_stream_tile(int tile_rows, const char* gemm, Fn&& fn) {
  switch (tile_rows) {
    case 8: return fn(std::integral_constant<int, 1>{});
    case 16: return fn(std::integral_constant<int, 2>{});
    case 24: return fn(std::integral_constant<int, 3>{});
    case 32: return fn(std::integral_constant<int, 4>{});
    default: FP4MOE_CHECK(false, gemm, " work tile rows must be 8, 16, 24 or 32, got ", tile_rows);
  }
}

}  // namespace fp4moe::cuda
