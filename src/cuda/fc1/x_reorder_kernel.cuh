// x rows into the MMA k order of the wgmma path: within every 64-column chunk, column l moves to
// format::fragment_k_slot(l), so FC1's wgmma B tiles are plain 16-byte copies of the stored rows. Pairs of columns
// (2i, 2i+1) stay together, so the kernel moves 32-bit words.
// Threads: one per 16-byte piece (8 per chunk, 4 chunks per warp), so a warp's loads and stores are whole 128-byte
// lines. Each thread puts its 4 words at their output places in the warp's shared-memory stage; after the warp's
// barrier it stores the piece found at its own place. src may equal dst: every piece of a chunk is loaded before
// the barrier and stored after it, by the same warp. (One thread per chunk, with 8 strided 16-byte loads each, ran
// at a third of the copy bandwidth: 105 µs for 16384 × 2048, bench/NOTES.md.)
// Roofline: reads and writes rows·k·2 bytes once.
#pragma once

#include <cstdint>

#include "cuda/common/launch.cuh"
#include "cuda/fc1/fc1_launch.hpp"
#include "format/fragment_layout.hpp"

namespace fp4moe::cuda {

inline constexpr int kXReorderBlock = 256;
inline constexpr int kXReorderPieces = format::kFragK / 8;  // 16-byte pieces per chunk
// Words per staged chunk: 32, plus 4 so that the 4 chunks of a warp start 4 banks apart and its stores to the stage
// (words 16·(j%2) + j/2 + 8·(e/2) + 4·(e%2) of piece j, word e) land in 32 different banks.
inline constexpr int kXReorderPitch = format::kFragK / 2 + 4;
static_assert(kXReorderBlock % 32 == 0 && 32 % kXReorderPieces == 0, "a warp holds whole chunks");

__global__ void __launch_bounds__(kXReorderBlock) x_reorder_kernel(XReorderParams p) {
  __shared__ __align__(16) uint32_t stage[kXReorderBlock / kXReorderPieces][kXReorderPitch];
  griddep_wait();
  griddep_launch_dependents();
  const int64_t chunks = p.k / format::kFragK;
  const int64_t index = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t chunk_index = index / kXReorderPieces;
  const int piece = int(index % kXReorderPieces);
  const bool valid = chunk_index < p.rows * chunks;  // every thread reaches the warp barrier
  const int64_t row = chunk_index / chunks, col = (chunk_index % chunks) * format::kFragK + 8 * piece;
  uint32_t* words = stage[threadIdx.x / kXReorderPieces];
  if (valid) {
    const uint4 v = *reinterpret_cast<const uint4*>(p.src + row * p.src_ld + col);
    const uint32_t in[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int e = 0; e < 4; ++e) words[format::fragment_k_slot(2 * (4 * piece + e)) / 2] = in[e];
  }
  __syncwarp();
  if (valid) {
    *reinterpret_cast<uint4*>(p.dst + row * p.dst_ld + col) = *reinterpret_cast<const uint4*>(words + 4 * piece);
  }
}

}  // namespace fp4moe::cuda
