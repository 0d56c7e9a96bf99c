// Tensor maps for the Hopper copy engine (TMA), host side: a 2-D BF16 row-major matrix read as boxes of 64 columns
// (128 bytes) × box_rows rows, stored in shared memory with the 128-byte swizzle that wgmma B operands use (the
// 16-byte piece j of box row r lands at piece j ^ (r % 8)). Rows past the matrix read as zeros.
// The map is encoded on the host (no device work, no synchronization) and passed to the kernel inside its
// __grid_constant__ parameters.
#pragma once

#include <cstdint>

namespace fp4moe::cuda {

// Opaque storage of a CUtensorMap (tma_map.cpp checks size and alignment against the driver's type).
struct alignas(128) TmaMap {
  uint64_t words[16];
};

// rows × cols BF16 at `base` with `row_stride` elements between rows (cols and row_stride multiples of 8, base
// 16-byte aligned, rows ≥ 1); boxes of 64 × box_rows (1..256). Throws fp4moe::Error naming the failed check.
TmaMap make_tma_map_bf16_rows(const void* base, int64_t rows, int64_t cols, int64_t row_stride, int box_rows);

}  // namespace fp4moe::cuda
