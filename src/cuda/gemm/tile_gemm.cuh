// The portable tensor-core tile shared by every CUDA GEMM of the library (FC1, FC2, dense linear).
//
// Computes one 64×64 fp32 tile C = A·Bᵀ over the whole K, where A rows and B rows come from loaders that deliver
// 8 BF16 values at a time: BF16 rows read as they are, or NVFP4 rows dequantized on load to e2m1·sf (exact in
// BF16, spec §4), so the tensor cores see exact operands and only the fp32 summation order is implementation-defined.
// Tile: BM = BN = BK = 64, 128 threads = 4 warps as 2×2, each warp 32×32 = 2×4 mma.sync m16n8k16 tiles.
// Shared memory: A and B tiles as BF16 [64][72] (8 elements of padding make fragment loads conflict-free).
// Portable sm_80+ path (mma.sync, synchronous loads, no pipelining): correctness first; the Hopper fast paths
// (wgmma, TMA, multi-stage pipelines) live beside it.
#pragma once

#include <cstdint>
#include <type_traits>

#include "cuda/common/ptx.cuh"
#include "fp4moe/nvfp4.hpp"

namespace fp4moe::cuda {

struct TileShape {
  static constexpr int kM = 64, kN = 64, kK = 64;
  static constexpr int kThreads = 128;
  static constexpr int kStride = kK + 8;                                // BF16 elements per shared row
  static constexpr int kChunksPerThread = kM * kK / 8 / kThreads;        // 16-byte chunks each thread loads
  static constexpr int kRowsPerPass = kThreads / (kK / 8);               // rows covered by one chunk pass
};
static_assert(TileShape::kM == TileShape::kN, "loaders assume square row coverage");
static_assert(TileShape::kChunksPerThread * TileShape::kRowsPerPass == TileShape::kM, "chunk passes cover the tile");

struct TileSmem {
  alignas(16) uint16_t a[TileShape::kM][TileShape::kStride];
  alignas(16) uint16_t b[TileShape::kN][TileShape::kStride];
};

using Accum = float[2][4][4];  // [m16 tile][n8 tile][fragment]

// Eight consecutive FP4 codes (4 packed bytes, element 0 in the low nibble) with one E4M3 scale → 8 BF16.
__device__ __forceinline__ uint4 dequant_fp4x8(uint32_t packed, uint8_t sf) {
  const float s = e4m3_to_float(sf);
  uint32_t out[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const uint8_t byte = uint8_t(packed >> (8 * i));
    out[i] = pack_bf16x2(e2m1_to_float(byte & 0xf) * s, e2m1_to_float(byte >> 4) * s);
  }
  return make_uint4(out[0], out[1], out[2], out[3]);
}

// Rows of BF16 values (one pointer per row this thread loads; nullptr = a row past the end, read as zeros).
struct Bf16Rows {
  const uint16_t* row[TileShape::kChunksPerThread];
  __device__ __forceinline__ uint4 load(int i, int64_t k) const {
    return row[i] ? *reinterpret_cast<const uint4*>(row[i] + k) : make_uint4(0, 0, 0, 0);
  }
};

// Rows of NVFP4 values: packed codes [K/2] and linear E4M3 scales [K/16] per row.
struct Fp4Rows {
  const uint8_t* packed[TileShape::kChunksPerThread];
  const uint8_t* scale[TileShape::kChunksPerThread];
  __device__ __forceinline__ uint4 load(int i, int64_t k) const {
    if (!packed[i]) return make_uint4(0, 0, 0, 0);
    return dequant_fp4x8(*reinterpret_cast<const uint32_t*>(packed[i] + k / 2), scale[i][k / kBlockSize]);
  }
};

// Tile row and first column of the i-th 16-byte chunk this thread loads.
__device__ __forceinline__ int chunk_row(int i) { return int(threadIdx.x) / (TileShape::kK / 8) + i * TileShape::kRowsPerPass; }
__device__ __forceinline__ int chunk_col() { return (int(threadIdx.x) % (TileShape::kK / 8)) * 8; }

// Where a GEMM operand's rows live: BF16 rows (bf16 + row·ld) or NVFP4 rows (fp4 + row·k/2 codes,
// scale + row·k/16 linear E4M3 scales).
struct RowSource {
  const uint16_t* bf16 = nullptr;
  int64_t ld = 0;
  const uint8_t* fp4 = nullptr;
  const uint8_t* scale = nullptr;
  int64_t k = 0;
};

// The loader of the rows this thread stages: tile row r reads source row row_of(r), or zeros when it is < 0.
template <bool kFp4, class RowOf>
__device__ __forceinline__ auto make_row_loader(const RowSource& src, RowOf row_of) {
  std::conditional_t<kFp4, Fp4Rows, Bf16Rows> loader;
#pragma unroll
  for (int i = 0; i < TileShape::kChunksPerThread; ++i) {
    const int64_t row = row_of(chunk_row(i));
    if constexpr (kFp4) {
      loader.packed[i] = row >= 0 ? src.fp4 + row * (src.k / 2) : nullptr;
      loader.scale[i] = src.scale + (row >= 0 ? row : 0) * (src.k / kBlockSize);
    } else {
      loader.row[i] = row >= 0 ? src.bf16 + row * src.ld : nullptr;
    }
  }
  return loader;
}

template <class Loader>
__device__ __forceinline__ void stage_tile(const Loader& src, uint16_t (*dst)[TileShape::kStride], int64_t k0, int64_t k) {
  const int col = chunk_col();
#pragma unroll
  for (int i = 0; i < TileShape::kChunksPerThread; ++i) {
    const uint4 v = (k0 + col < k) ? src.load(i, k0 + col) : make_uint4(0, 0, 0, 0);
    *reinterpret_cast<uint4*>(&dst[chunk_row(i)][col]) = v;
  }
}

// One BK slice from shared memory: each warp issues 2×4 MMAs per 16-wide k step.
__device__ __forceinline__ void mma_slice(const TileSmem& s, Accum& acc) {
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const int g = lane / 4, t = lane % 4;
  const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;
#pragma unroll
  for (int kk = 0; kk < TileShape::kK; kk += 16) {
    uint32_t a[2][4], b[4][2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int r = wm + i * 16 + g;
      a[i][0] = *reinterpret_cast<const uint32_t*>(&s.a[r][kk + 2 * t]);
      a[i][1] = *reinterpret_cast<const uint32_t*>(&s.a[r + 8][kk + 2 * t]);
      a[i][2] = *reinterpret_cast<const uint32_t*>(&s.a[r][kk + 2 * t + 8]);
      a[i][3] = *reinterpret_cast<const uint32_t*>(&s.a[r + 8][kk + 2 * t + 8]);
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int c = wn + j * 8 + g;
      b[j][0] = *reinterpret_cast<const uint32_t*>(&s.b[c][kk + 2 * t]);
      b[j][1] = *reinterpret_cast<const uint32_t*>(&s.b[c][kk + 2 * t + 8]);
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
#pragma unroll
      for (int j = 0; j < 4; ++j) mma_bf16_16x8x16(acc[i][j], a[i], b[j]);
    }
  }
}

// acc = Σ over K of A·Bᵀ for the tile (acc zeroed first). Every thread of the block must call it.
template <class ALoader, class BLoader>
__device__ void tile_mainloop(const ALoader& a, const BLoader& b, int64_t k, TileSmem& smem, Accum& acc) {
#pragma unroll
  for (int i = 0; i < 2; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
      for (int f = 0; f < 4; ++f) acc[i][j][f] = 0.0f;
    }
  }
  for (int64_t k0 = 0; k0 < k; k0 += TileShape::kK) {
    stage_tile(a, smem.a, k0, k);
    stage_tile(b, smem.b, k0, k);
    __syncthreads();
    mma_slice(smem, acc);
    __syncthreads();
  }
}

// Position of accumulator element (i, j, f) of this thread inside the 64×64 tile.
struct FragCoord {
  int row, col;
};
__device__ __forceinline__ FragCoord frag_coord(int i, int j, int f) {
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  return {(warp / 2) * 32 + i * 16 + lane / 4 + (f >= 2 ? 8 : 0), (warp % 2) * 32 + j * 8 + (lane % 4) * 2 + (f & 1)};
}

}  // namespace fp4moe::cuda
