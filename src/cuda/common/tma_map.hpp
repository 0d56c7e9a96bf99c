// Tensor maps for the Hopper tensor memory accelerator (TMA, cp.async.bulk.tensor), encoded on the host and passed
// to kernels as __grid_constant__ parameters. Plain C++: kernels see only the opaque 128-byte object.
#pragma once

#include <cstdint>

namespace fp4moe::cuda {

// A CUtensorMap (tma_map.cpp checks size and alignment against the driver's type).
struct alignas(128) TmaMap {
  uint64_t opaque[16];
};

// A row-major BF16 matrix [rows, cols] (row stride `ld` elements, a multiple of 8) in boxes of 64 columns ×
// `box_rows` rows, stored 128-byte swizzled in shared memory (16-byte piece p of box row r at 16 · (p ^ r % 8)).
TmaMap bf16_rows_tma_map(const uint16_t* base, int64_t rows, int64_t cols, int64_t ld, int box_rows);

}  // namespace fp4moe::cuda
