// The weight-streaming GEMM shared by FC1 and FC2: out[m, n] = Σ_k W[m, k] · X[n, k] for two 16-row
// tiles of one expert's FP4 weights W (fragment tiles, streamed from HBM once) and up to 8·kNT BF16 rows X (tokens,
// the narrow MMA dimension: W is the m16 A operand, X the n8 B operand, so one MMA covers 8 tokens).
//
// Block: 4 warps with the same two row tiles and the same tokens; K is split in 4 contiguous ranges of 64-wide
// chunks, one per warp, and the 4 partial sums are added in a fixed order through shared memory (deterministic).
// Per chunk a lane takes 16 code bytes + 2 scale bytes per row tile (the A fragments of 4 MMAs, no shuffles) and
// 32 bytes of each token row; weights are staged several chunks ahead per warp (weight_stager.cuh: bulk copies
// into shared memory on sm_90+, registers before), tokens one chunk ahead.
// Every work tile size sums each output in the same order (same K split, same MMA k grouping), so a token's result
// does not depend on the batch it came in.
// Roofline: decode batches: W bytes / HBM bandwidth, ALU ≈ 2.5 ops per weight; large batches: MMA issue and the
// L2 traffic of the token rows (8·kNT rows × 128 bytes per chunk and warp).
#pragma once

#include <cstdint>

#include "cuda/common/fragment_decode.cuh"
#include "cuda/common/ptx.cuh"
#include "cuda/gemm/weight_stager.cuh"

namespace fp4moe::cuda {

struct StreamShape {
  static constexpr int kWarps = kStreamWarps;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kRowTiles = kStreamRowTiles;
};
static_assert(WeightStager::kDepth * WeightStager::kStageChunks % 2 == 0,
              "token buffers alternate between two slots");

// Blocks per SM the register budget must allow (8-row tiles need the most warps in flight per byte). Staging in
// shared memory frees the registers that hold weights in flight, so on sm_90/sm_100 8 (8-row tiles) and 5 (16-row)
// blocks fit without spills (measured on the H100, weight_stager.cuh); sm_12x's code spills at that budget and
// keeps the budget of register staging.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && __CUDA_ARCH__ < 1200
inline constexpr bool kStreamManyBlocks = true;
#else
inline constexpr bool kStreamManyBlocks = false;
#endif
// Two weight stages per warp (small grids, heuristics.hpp: plan_weight_stages) take the shared memory of 5 blocks
// per SM at most, so they get the registers of 5: at the budget of 8 the gated 8-row FC1 spilled on sm_100a.
template <int kNT, int kStages = 1>
inline constexpr int kStreamMinBlocks =
    kStreamManyBlocks ? (kNT == 1 ? (kStages == 1 ? 8 : 5) : kNT == 2 ? 5 : 2) : (kNT == 1 ? 5 : kNT == 2 ? 3 : 2);

// A streaming block's work item: (work tile, block of output groups). Tile-major grids (x = group block, y = tile;
// stream_grid in stream_tiles.hpp, with the FC1 → FC2 handoff) launch the blocks of a tile side by side:
// its FC1 groups finish close together, and FC2's blocks, launched in the same order, find their tiles' h early
// (WorkTiles::tile_ready). Both come from block indices, which the kernels re-read instead of holding in registers.
__device__ __forceinline__ int64_t stream_item_tile(bool tile_major) { return tile_major ? blockIdx.y : blockIdx.x; }
__device__ __forceinline__ int64_t stream_item_group_block(bool tile_major) {
  return tile_major ? blockIdx.x : blockIdx.y;
}

template <int kNT>
using StreamAcc = float[StreamShape::kRowTiles][kNT][4];  // [row tile][8-token tile][MMA fragment]

// This lane's token rows: row[j] = 16 BF16 values at k 16t.. of token g of 8-token tile j (nullptr = zeros).
template <int kNT>
struct StreamTokens {
  const uint16_t* row[kNT];
};

template <int kNT>
using TokenChunk = uint4[kNT][2];

// 32 bytes of each token row for chunk c; zeros past K (K is a multiple of 16, so a lane's 16 values are all in or
// all out) or for missing tokens.
template <int kNT>
__device__ __forceinline__ void load_token_chunk(const StreamTokens<kNT>& x, int64_t c, int64_t k, TokenChunk<kNT>& out) {
  const int64_t k0 = c * format::kFragK + 16 * (int(threadIdx.x) % 4);
#pragma unroll
  for (int j = 0; j < kNT; ++j) {
    if (x.row[j] && k0 < k) {
      const uint4* src = reinterpret_cast<const uint4*>(x.row[j] + c * format::kFragK);
      out[j][0] = src[0];
      out[j][1] = src[1];
    } else {
      out[j][0] = out[j][1] = make_uint4(0, 0, 0, 0);
    }
  }
}

__device__ __forceinline__ uint32_t word_of(const uint4& v, int i) { return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w; }

// The 4 MMA steps of one chunk: weights decoded into A fragments, token words used as B fragments directly.
template <int kNT>
__device__ __forceinline__ void mma_chunk(const WeightChunk& w, const TokenChunk<kNT>& x, StreamAcc<kNT>& acc) {
#pragma unroll
  for (int i = 0; i < StreamShape::kRowTiles; ++i) {
    const FragScale s = frag_scale(w.scales[i]);
#pragma unroll
    for (int step = 0; step < 4; ++step) {
      uint32_t a[4];
      frag_a_operand(word_of(w.codes[i], step), s, a);
#pragma unroll
      for (int j = 0; j < kNT; ++j) {
        const uint4& v = x[j][step / 2];
        const uint32_t b[2] = {word_of(v, (step % 2) * 2), word_of(v, (step % 2) * 2 + 1)};
        mma_bf16_16x8x16(acc[i][j], a, b);
      }
    }
  }
}

// This warp's range of K chunks: K is split in kWarps contiguous ranges.
__device__ __forceinline__ StreamRange stream_warp_range(int64_t k_tiles) {
  const int warp = int(threadIdx.x) / 32;
  return {k_tiles * warp / StreamShape::kWarps, k_tiles * (warp + 1) / StreamShape::kWarps};
}

template <int kNT>
__device__ __forceinline__ void zero_acc(StreamAcc<kNT>& acc) {
#pragma unroll
  for (int i = 0; i < StreamShape::kRowTiles; ++i) {
#pragma unroll
    for (int j = 0; j < kNT; ++j) {
#pragma unroll
      for (int f = 0; f < 4; ++f) acc[i][j][f] = 0.0f;
    }
  }
}

// acc = this warp's partial sum over the chunks of its range (zeroed first); the stager was started.
template <int kNT, class Stager>
__device__ __forceinline__ void stream_mainloop(Stager& stager, const StreamTokens<kNT>& x, int64_t k,
                                                StreamRange r, StreamAcc<kNT>& acc) {
  constexpr int kDepth = Stager::kDepth, kSub = Stager::kStageChunks;
  zero_acc<kNT>(acc);
  TokenChunk<kNT> xbuf[2];
  if (r.begin < r.end) load_token_chunk(x, r.begin, k, xbuf[0]);
  for (int64_t c = r.begin; c < r.end; c += kDepth * kSub) {
#pragma unroll
    for (int d = 0; d < kDepth; ++d) {
#pragma unroll
      for (int u = 0; u < kSub; ++u) {
        const int64_t cc = c + d * kSub + u;
        if (cc < r.end) {
          if (cc + 1 < r.end) load_token_chunk(x, cc + 1, k, xbuf[(d * kSub + u + 1) % 2]);
          WeightChunk w;
          stager.take(d, u, w);
          mma_chunk<kNT>(w, xbuf[(d * kSub + u) % 2], acc);
          // One-chunk stages (register staging, sm_80-sm_89) refill right after their chunk: released after the
          // range check instead, the 8-row kernels spill 4 bytes on sm_80 at their 96-register budget.
          if constexpr (kSub == 1) stager.release(d, cc);
        }
      }
      if constexpr (kSub > 1) stager.release(d, c + d * kSub);
    }
    stager.next_round();
  }
}

template <int kNT, int kStages>
struct StreamSmem {
  typename StagerOf<kStages>::Smem weights;
  float partial[StreamShape::kWarps - 1][StreamShape::kRowTiles][kNT][4][32];
};

// The whole block's sum over all K chunks, left in warp 0's `acc` (other warps' acc is consumed). The weight
// prefetch is issued first; then `tokens()` is called (it waits for the previous kernel where the tokens come from
// it) and returns the token rows. Warps add in warp order, so the result does not depend on timing.
template <int kNT, int kStages, class TokensFn>
__device__ __forceinline__ void stream_block_gemm(const StreamWeights& w, TokensFn&& tokens, int64_t k,
                                                  int64_t k_tiles, StreamSmem<kNT, kStages>& smem,
                                                  StreamAcc<kNT>& acc) {
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const StreamRange range = stream_warp_range(k_tiles);
  StagerOf<kStages> stager;
  stager.start(w, range, smem.weights);
  const StreamTokens<kNT> x = tokens();
  stream_mainloop<kNT>(stager, x, k, range, acc);
  if (warp > 0) {
#pragma unroll
    for (int i = 0; i < StreamShape::kRowTiles; ++i) {
#pragma unroll
      for (int j = 0; j < kNT; ++j) {
#pragma unroll
        for (int f = 0; f < 4; ++f) smem.partial[warp - 1][i][j][f][lane] = acc[i][j][f];
      }
    }
  }
  __syncthreads();
  if (warp == 0) {
#pragma unroll
    for (int v = 0; v < StreamShape::kWarps - 1; ++v) {
#pragma unroll
      for (int i = 0; i < StreamShape::kRowTiles; ++i) {
#pragma unroll
        for (int j = 0; j < kNT; ++j) {
#pragma unroll
          for (int f = 0; f < 4; ++f) acc[i][j][f] += smem.partial[v][i][j][f][lane];
        }
      }
    }
  }
}

// Position of accumulator (j, f) of this lane: row (0..15) inside its row tile and token (0..8·kNT-1).
__device__ __forceinline__ int stream_row(int f) { return (int(threadIdx.x) % 32) / 4 + (f >= 2 ? 8 : 0); }
__device__ __forceinline__ int stream_token(int j, int f) { return j * 8 + 2 * (int(threadIdx.x) % 4) + (f & 1); }

}  // namespace fp4moe::cuda
