// The weight-streaming GEMM with a shared token tile, for 16-32 rows per expert: out[m, n] = Σ_k W[m, k] · X[n, k]
// for 128 weight rows of one expert (4 warps × two 16-row fragment tiles) and up to 8·kNT BF16 token rows X. The
// block copies the token tile into shared memory once per 4-chunk stage (cp.async) and all 4 warps read it; each
// warp streams all of K for its own 32 rows, through the same weight stagers as stream_gemm.cuh.
//
// Why: stream_block_gemm gives each 32 weight rows a block of their own, with K split over its 4 warps, so every
// block reads the whole token tile from L2: at 16 token rows, 32 bytes per k against 18 bytes of weights. ncu on
// the H100, deepseek-v3 FC1 at T = 512 (16 rows per expert): 16 GB of L2 traffic in 2.0 ms for 4.2 GB of weights.
// Here the token tile is read once per 128 weight rows: 10.3 GB of L2 traffic and 1.95 ms at that point, the layer
// at 0.66 of its floor instead of 0.61; the decode's ALU work (once per 16-row tile) is what limits next.
//
// Same bits as stream_block_gemm: a warp keeps the partial sums of the four K ranges that stream_block_gemm's warps
// own (stream_warp_range) apart and adds them in warp order as each range ends; inside a range its MMAs run in the
// same chunk, step and k order. So the two layouts are interchangeable (RunOptions::weight_rows_per_block).
//
// Token tile in shared memory: [buffer][chunk of the stage][row][16-byte piece], piece p of row n stored at
// p ^ (n % 8), so the copies (8 threads per row) and the B fragment loads (lane 4g + t: row 8j + g, pieces 2t and
// 2t + 1) are free of bank conflicts. Rows past the tile and k past K are zero-filled (padded weights are zero, and
// 0 · garbage could be NaN).
// Roofline: W bytes / HBM bandwidth (each weight once per work tile); 8·kNT × 128 token bytes per chunk and block
// from L2; ALU as stream_gemm.cuh per weight, with 2·kNT MMAs per decoded fragment.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda/common/ptx.cuh"
#include "cuda/gemm/stream_gemm.cuh"

namespace fp4moe::cuda {

// Chunks per token stage: one round of the weight stager (4 one-chunk stages in registers, or one 4-chunk bulk
// stage). H100: against two 2-chunk bulk stages per warp with 2-chunk token stages, 3-5 % faster at 16 and 32 rows
// per work tile (bench/NOTES.md).
inline constexpr int kGroupStageChunks = WeightStager::kDepth * WeightStager::kStageChunks;

inline constexpr int kGroupRows = StreamShape::kWarps * StreamShape::kRowTiles * format::kFragRows;  // 128
inline constexpr int kPiecesPerChunkRow = format::kFragK / 8;  // 16-byte pieces of one token row in one chunk

// Blocks per SM the register budget must allow: where the weights are staged in shared memory (sm_90/sm_100), 4
// for 8, 16 and 24 token rows and 3 for 32 (as many as their shared memory allows); 2 elsewhere.
template <int kNT>
inline constexpr int kGroupMinBlocks = kStreamManyBlocks ? (kNT == 4 ? 3 : 4) : 2;

// total: each warp's sum of the K ranges closed so far (shared memory rather than registers: with it in registers
// the 32-row kernels spill even at 168 registers).
template <int kNT, class Stager>
struct GroupSmemOf {
  typename Stager::Smem weights;
  alignas(128) uint4 tokens[2][kGroupStageChunks][8 * kNT][kPiecesPerChunkRow];
  float total[StreamShape::kWarps][StreamShape::kRowTiles][kNT][4][32];
};
template <int kNT>
using GroupSmem = GroupSmemOf<kNT, WeightStager>;

// The dynamic shared memory a launch gives the kernel. The host cannot tell which stager the device code it runs
// was compiled with (a newer GPU may run code JIT-compiled from sm_80 PTX), so it asks for the larger layout.
template <int kNT>
inline constexpr size_t kGroupSmemBytes =
    sizeof(GroupSmemOf<kNT, BulkStager>) > sizeof(GroupSmemOf<kNT, RegisterStager>)
        ? sizeof(GroupSmemOf<kNT, BulkStager>)
        : sizeof(GroupSmemOf<kNT, RegisterStager>);

// The token pieces this thread copies per stage. 8, 16 and 32 rows: 8 consecutive threads copy one row's 128 bytes
// of one chunk, 16 rows per pass of the block, so copy m of thread `tid` is piece tid % 8 of row (r0 + 16·m) % kRows
// of chunk (r0 + 16·m) / kRows, r0 = tid / 8: rows r0 % kRows (8, 16) or r0 and r0 + 16 (32). 24 rows (not a whole
// number of passes): threads 0..95 copy pieces 2·(tid % 4) and 2·(tid % 4) + 1 of row tid / 4 in every chunk, so
// each thread keeps one row.
template <int kNT>
struct GroupTokenCopier {
  static constexpr int kRows = 8 * kNT;
  static constexpr int kRowsPerPass = StreamShape::kThreads / kPiecesPerChunkRow;  // 16
  static constexpr bool kPairs = kRows % kRowsPerPass != 0 && kRowsPerPass % kRows != 0;  // 24 rows
  static constexpr int kPairThreadsPerRow = kPiecesPerChunkRow / 2;
  static constexpr int kRowSlots = !kPairs && kRows > kRowsPerPass ? kRows / kRowsPerPass : 1;
  static constexpr int kCopies = kGroupStageChunks * kRows * kPiecesPerChunkRow / StreamShape::kThreads;
  static_assert(kGroupStageChunks * kRows * kPiecesPerChunkRow % StreamShape::kThreads == 0, "whole copies");
  static_assert(!kPairs || kRows * kPairThreadsPerRow <= StreamShape::kThreads, "one row per copying thread");

  const uint16_t* row[kRowSlots];  // this thread's rows at k = 0; nullptr = no token (or no row to copy)
  const uint16_t* fallback;        // a valid address for zero-filling copies (not read)

  // Row and chunk of copy m (8, 16, 32 rows), written so that the slot is a compile-time constant (r0 < 16).
  __device__ __forceinline__ static int row_of_copy(int m) {
    const int r0 = int(threadIdx.x) / kPiecesPerChunkRow;
    return kRows >= kRowsPerPass ? r0 + kRowsPerPass * (m % kRowSlots) : r0 % kRows;
  }
  __device__ __forceinline__ static int chunk_of_copy(int m) {
    const int r0 = int(threadIdx.x) / kPiecesPerChunkRow;
    return kRows >= kRowsPerPass ? m / kRowSlots : r0 / kRows + (kRowsPerPass / kRows) * m;
  }
  // Row held in slot s (24 rows: -1 for threads that copy nothing).
  __device__ __forceinline__ static int row_of_slot(int s) {
    if constexpr (kPairs) {
      const int r = int(threadIdx.x) / kPairThreadsPerRow;
      return r < kRows ? r : -1;
    } else {
      return row_of_copy(s);
    }
  }

  __device__ __forceinline__ void copy(int u, int n, int piece, const uint16_t* src, int64_t kk, int64_t k,
                                       uint4 (*dst)[kRows][kPiecesPerChunkRow]) const {
    const bool in = src != nullptr && kk < k;
    cp_async_16(&dst[u][n][piece ^ (n % 8)], in ? src + kk : fallback, in ? 16u : 0u);
  }

  __device__ __forceinline__ void issue(int64_t c, int64_t k, uint4 (*dst)[kRows][kPiecesPerChunkRow]) const {
    if constexpr (kPairs) {
      const int n = int(threadIdx.x) / kPairThreadsPerRow, piece = 2 * (int(threadIdx.x) % kPairThreadsPerRow);
      if (n >= kRows) return;
#pragma unroll
      for (int u = 0; u < kGroupStageChunks; ++u) {
#pragma unroll
        for (int h = 0; h < 2; ++h) copy(u, n, piece + h, row[0], (c + u) * format::kFragK + 8 * (piece + h), k, dst);
      }
    } else {
      const int piece = int(threadIdx.x) % kPiecesPerChunkRow;
#pragma unroll
      for (int m = 0; m < kCopies; ++m) {
        const int u = chunk_of_copy(m);
        copy(u, row_of_copy(m), piece, row[m % kRowSlots], (c + u) * format::kFragK + 8 * piece, k, dst);
      }
    }
  }
};

// row_of(n) = token row n of the tile at k = 0, or nullptr.
template <int kNT, class RowOf>
__device__ __forceinline__ GroupTokenCopier<kNT> group_token_copier(RowOf&& row_of, const uint16_t* fallback) {
  using Copier = GroupTokenCopier<kNT>;
  Copier copier;
#pragma unroll
  for (int s = 0; s < Copier::kRowSlots; ++s) {
    const int n = Copier::row_of_slot(s);
    copier.row[s] = n >= 0 ? row_of(n) : nullptr;
  }
  copier.fallback = fallback;
  return copier;
}

// The MMAs of one chunk with the token fragments read from shared memory, half a chunk (16 k per lane) at a time:
// per accumulator the same steps in the same order as mma_chunk.
template <int kNT>
__device__ __forceinline__ void mma_chunk_shared(const WeightChunk& w, const uint4 (*x)[kPiecesPerChunkRow],
                                                 StreamAcc<kNT>& acc) {
  const int lane = int(threadIdx.x) % 32, g = lane / 4, t = lane % 4;
  FragScale scale[StreamShape::kRowTiles];
#pragma unroll
  for (int i = 0; i < StreamShape::kRowTiles; ++i) scale[i] = frag_scale(w.scales[i]);
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    uint4 v[kNT];
#pragma unroll
    for (int j = 0; j < kNT; ++j) v[j] = x[8 * j + g][(2 * t + half) ^ g];
#pragma unroll
    for (int i = 0; i < StreamShape::kRowTiles; ++i) {
#pragma unroll
      for (int step = 2 * half; step < 2 * half + 2; ++step) {
        uint32_t a[4];
        frag_a_operand(word_of(w.codes[i], step), scale[i], a);
#pragma unroll
        for (int j = 0; j < kNT; ++j) {
          const uint32_t b[2] = {word_of(v[j], (step % 2) * 2), word_of(v[j], (step % 2) * 2 + 1)};
          mma_bf16_16x8x16(acc[i][j], a, b);
        }
      }
    }
  }
}

// K range `r` of stream_warp_range ended: total = its sum (r = 0) or total + its sum, the order in which
// stream_block_gemm adds its warps' partial sums; acc restarts from zero for the next range.
template <int kNT>
__device__ __forceinline__ void close_k_range(int r, float (&total)[StreamShape::kRowTiles][kNT][4][32],
                                              StreamAcc<kNT>& acc) {
  const int lane = int(threadIdx.x) % 32;
#pragma unroll
  for (int i = 0; i < StreamShape::kRowTiles; ++i) {
#pragma unroll
    for (int j = 0; j < kNT; ++j) {
#pragma unroll
      for (int f = 0; f < 4; ++f) {
        total[i][j][f][lane] = r == 0 ? acc[i][j][f] : total[i][j][f][lane] + acc[i][j][f];
        acc[i][j][f] = 0.0f;
      }
    }
  }
}

// The ranges of stream_warp_range, closed in order as chunks complete.
struct KRanges {
  int64_t k_tiles;
  int next = 0;          // the range that ends next
  int64_t end_of_next;   // its end chunk

  __device__ __forceinline__ explicit KRanges(int64_t tiles) : k_tiles(tiles), end_of_next(tiles / StreamShape::kWarps) {}

  // Closes every range that ends once `done` chunks are complete (empty ranges, K < 4 chunks, close at once).
  template <int kNT>
  __device__ __forceinline__ void complete(int64_t done, float (&total)[StreamShape::kRowTiles][kNT][4][32],
                                           StreamAcc<kNT>& acc) {
    while (next < StreamShape::kWarps && end_of_next == done) {
      close_k_range<kNT>(next, total, acc);
      ++next;
      end_of_next = k_tiles * (next + 1) / StreamShape::kWarps;
    }
  }
};

// acc = this warp's 32 rows × the tile's tokens over all of K (during the loop: the sum of the open K range). All threads of the block call it (token copies and
// block barriers); an inactive warp (rows past the matrix) copies tokens but streams no weights.
template <int kNT>
__device__ __forceinline__ void group_mainloop(WeightStager& stager, bool active, const GroupTokenCopier<kNT>& copier,
                                               int64_t k, int64_t k_tiles, GroupSmem<kNT>& smem,
                                               StreamAcc<kNT>& acc) {
  constexpr int kDepth = WeightStager::kDepth, kSub = WeightStager::kStageChunks;
  auto& total = smem.total[int(threadIdx.x) / 32];
  zero_acc<kNT>(acc);
  KRanges ranges(k_tiles);
  ranges.complete<kNT>(0, total, acc);
  copier.issue(0, k, smem.tokens[0]);
  cp_async_commit();
  int buf = 0;
  for (int64_t c = 0; c < k_tiles; c += kGroupStageChunks, buf ^= 1) {
    cp_async_wait<0>();
    __syncthreads();  // this stage's tokens are visible to every warp, and every warp is done with the other buffer
    if (c + kGroupStageChunks < k_tiles) copier.issue(c + kGroupStageChunks, k, smem.tokens[buf ^ 1]);
    cp_async_commit();
#pragma unroll
    for (int d = 0; d < kDepth; ++d) {
      // Not unrolled over a bulk stage's chunks: unrolled, the 32-row kernels need 168+ registers and spill.
#pragma unroll 1
      for (int u = 0; u < kSub; ++u) {
        const int64_t cc = c + d * kSub + u;
        if (cc < k_tiles) {
          if (active) {
            WeightChunk w;
            stager.take(d, u, w);
            mma_chunk_shared<kNT>(w, smem.tokens[buf][d * kSub + u], acc);
            if constexpr (kSub == 1) stager.release(d, cc);
          }
          ranges.complete<kNT>(cc + 1, total, acc);
        }
      }
      if constexpr (kSub > 1) {
        if (active) stager.release(d, c + d * kSub);
      }
    }
    stager.next_round();
  }
  const int lane = int(threadIdx.x) % 32;
#pragma unroll
  for (int i = 0; i < StreamShape::kRowTiles; ++i) {
#pragma unroll
    for (int j = 0; j < kNT; ++j) {
#pragma unroll
      for (int f = 0; f < 4; ++f) acc[i][j][f] = total[i][j][f][lane];
    }
  }
}

// The block's GEMM: weights are prefetched first; then `tokens()` is called (it waits for the previous kernel where
// the tokens come from it) and returns the token copier.
template <int kNT, class TokensFn>
__device__ __forceinline__ void stream_group_gemm(const StreamWeights& w, bool active, TokensFn&& tokens, int64_t k,
                                                  int64_t k_tiles, GroupSmem<kNT>& smem, StreamAcc<kNT>& acc) {
  WeightStager stager;
  if (active) stager.start(w, StreamRange{0, k_tiles}, smem.weights);
  const GroupTokenCopier<kNT> copier = tokens();
  group_mainloop<kNT>(stager, active, copier, k, k_tiles, smem, acc);
}

}  // namespace fp4moe::cuda
