// x rows into the MMA k order of the wgmma path: within every 64-column chunk, column l moves to
// format::fragment_k_slot(l), so FC1's wgmma B tiles are plain 16-byte copies of the stored rows. Pairs of columns
// (2i, 2i+1) stay together, so the kernel moves 32-bit words.
// Threads: one per 16-byte piece (8 per chunk, 4 chunks per warp), so a warp's loads and stores are whole 128-byte
// lines. Each thread puts its 4 words at their output places in the warp's shared-memory stage; after the warp's
// barrier it stores the piece found at its own place. src may equal dst: every piece of a chunk is loaded before
// the barrier and stored after it, by the same warp. (One thread per chunk, with 8 strided 16-byte loads each, ran
// at a third of the copy bandwidth: 105 µs for 16384 × 2048, bench/NOTES.md.)
// W4A4 (XReorderParams::quantize): the two threads of a 16-value block quantize it on the way (quantize_half_block,
// the arithmetic of the quantize pass's dequantized output).
// Roofline: reads and writes rows·k·2 bytes once.
#pragma once

#include <cstdint>

#include "cuda/common/launch.cuh"
#include "cuda/fc1/x_reorder_launch.hpp"
#include "cuda/quantize/quantize_blocks.cuh"
#include "format/fragment_layout.hpp"
#include "fp4moe/nvfp4.hpp"

namespace fp4moe::cuda {

inline constexpr int kXReorderBlock = 256;
inline constexpr int kXReorderPieces = format::kFragK / 8;  // 16-byte pieces per chunk
// Words per staged chunk: 32, plus 4 so that the 4 chunks of a warp start 4 banks apart and its stores to the stage
// (words 16·(j%2) + j/2 + 8·(e/2) + 4·(e%2) of piece j, word e) land in 32 different banks.
inline constexpr int kXReorderPitch = format::kFragK / 2 + 4;
static_assert(kXReorderBlock % 32 == 0 && 32 % kXReorderPieces == 0, "a warp holds whole chunks");
static_assert(2 * 8 == kBlockSize, "a quantization block is two 16-byte pieces: lanes 2i and 2i + 1");

// 16-byte pieces of x (one per thread and round).
__host__ __device__ inline int64_t x_reorder_pieces(const XReorderParams& p) {
  return p.rows * (p.k / format::kFragK) * kXReorderPieces;
}

// Stage words of one warp: its 4 chunks.
inline constexpr int kXReorderWarpStageWords = 32 / kXReorderPieces * kXReorderPitch;

// Pieces first, first + stride, ... of x_reorder_pieces(p). Called by all 32 lanes of a warp together, with
// consecutive `first` starting at a multiple of 32 and `stride` a multiple of 32, so that each round the warp holds
// 4 whole chunks; warp_stage: the warp's kXReorderWarpStageWords words of shared memory. A thread loads kRounds
// pieces (first, first + stride, ...) before it stores any: the routing launch's spare blocks (route_kernels.cuh), of
// which fewer fit on an SM than of the reorder's own launch, take 4 to keep enough bytes in flight.
template <int kRounds>
__device__ __forceinline__ void x_reorder_strided(const XReorderParams& p, int64_t first, int64_t stride,
                                                  uint32_t* warp_stage) {
  const int64_t total = x_reorder_pieces(p), chunks = p.k / format::kFragK;
  const int lane = int(threadIdx.x) % 32, piece = lane % kXReorderPieces;
  uint32_t* words = warp_stage + lane / kXReorderPieces * kXReorderPitch;
  for (int64_t base = first; base - lane < total; base += kRounds * stride) {
    uint4 v[kRounds];
#pragma unroll
    for (int u = 0; u < kRounds; ++u) {
      const int64_t index = base + u * stride, chunk_index = index / kXReorderPieces;
      const int64_t row = chunk_index / chunks, col = (chunk_index % chunks) * format::kFragK + 8 * piece;
      v[u] = index < total ? *reinterpret_cast<const uint4*>(p.src + row * p.src_ld + col) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kRounds; ++u) {
      const int64_t index = base + u * stride, chunk_index = index / kXReorderPieces;
      if (index - lane >= total) break;  // the warp's rounds past the end (every lane alike)
      const bool valid = index < total;  // every lane of the warp reaches the barriers
      const int64_t row = chunk_index / chunks, col = (chunk_index % chunks) * format::kFragK + 8 * piece;
      uint32_t in[4] = {v[u].x, v[u].y, v[u].z, v[u].w};
      if (p.quantize) quantize_half_block(in, p.gs);  // both lanes of a block are valid or neither (k % 64 == 0)
      if (valid) {
#pragma unroll
        for (int e = 0; e < 4; ++e) words[format::fragment_k_slot(2 * (4 * piece + e)) / 2] = in[e];
      }
      __syncwarp();
      if (valid) {
        *reinterpret_cast<uint4*>(p.dst + row * p.dst_ld + col) = *reinterpret_cast<const uint4*>(words + 4 * piece);
      }
      __syncwarp();  // the stage is read before the next round writes it
    }
  }
}

}  // namespace fp4moe::cuda
