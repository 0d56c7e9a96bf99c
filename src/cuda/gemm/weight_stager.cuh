// How a warp of the weight-streaming GEMM (stream_gemm.cuh) gets its FP4 weight chunks: one chunk = the 64-wide k
// tile of two 16-row weight tiles, 2 × (512 code bytes + 64 scale bytes), of which each lane takes its 16 code
// bytes and 2 scale bytes per row tile (the A fragments of 4 MMAs).
//  - BulkStagerOf<kStages> (sm_90+): bulk asynchronous copies (the copy engine) into shared memory, kStages stages
//    of kStageChunks chunks per warp, each stage completing on its own barrier. No registers hold data in flight,
//    so more warps fit on an SM and more bytes are in flight per SM.
//  - RegisterStager (sm_80-sm_89): kDepth chunks per warp in flight as 16-byte loads into registers.
// Both hold kDepth stages of kStageChunks chunks. start() issues the first stages (before the kernel waits for its
// predecessor: weights do not depend on it); take(slot, sub, out) returns chunk `sub` of the stage in `slot`
// (stage s of the warp's range sits in slot s % kDepth); release(slot, c), called once the chunks of the stage
// that starts at chunk c were used, refills the slot with the stage kDepth stages later. Callers pass slots that
// unrolling makes constants (the register stager indexes a register array with them).
#pragma once

#include <cstdint>
#include <type_traits>

#include "cuda/common/frag_matrix.hpp"
#include "cuda/common/ptx.cuh"
#include "format/fragment_layout.hpp"

namespace fp4moe::cuda {

inline constexpr int kStreamRowTiles = 2;  // 16-row weight tiles per block
inline constexpr int kStreamWarps = 4;

// The two weight row tiles of a block: chunk c at codes[i] + c·512 and scales[i] + c·64.
struct StreamWeights {
  const uint8_t* codes[kStreamRowTiles];
  const uint8_t* scales[kStreamRowTiles];
};

__device__ __forceinline__ StreamWeights stream_weights(const FragMatrix& m, int64_t expert, int64_t tile0,
                                                        int64_t tile1) {
  StreamWeights w;
  const int64_t tiles[kStreamRowTiles] = {tile0, tile1};
#pragma unroll
  for (int i = 0; i < kStreamRowTiles; ++i) {
    const int64_t t = m.first_tile(expert, tiles[i]);
    w.codes[i] = m.codes + t * format::kFragCodeBytes;
    w.scales[i] = m.scales + t * format::kFragScaleBytes;
  }
  return w;
}

// One lane's part of a chunk.
struct WeightChunk {
  uint4 codes[kStreamRowTiles];
  uint32_t scales[kStreamRowTiles];
};

// A warp's range of K chunks.
struct StreamRange {
  int64_t begin, end;
};

// ---- sm_80-sm_89: registers -------------------------------------------------------------------------------------

struct RegisterStager {
  static constexpr int kDepth = 4;
  static constexpr int kStageChunks = 1;
  struct Smem {};

  const uint8_t* codes[kStreamRowTiles];  // this lane's bytes of chunk 0
  const uint8_t* scales[kStreamRowTiles];
  StreamRange range;
  WeightChunk buf[kDepth];

  __device__ __forceinline__ void load(int64_t c, WeightChunk& out) const {
#pragma unroll
    for (int i = 0; i < kStreamRowTiles; ++i) {
      out.codes[i] = __ldcs(reinterpret_cast<const uint4*>(codes[i] + c * format::kFragCodeBytes));
      out.scales[i] = __ldcs(reinterpret_cast<const unsigned short*>(scales[i] + c * format::kFragScaleBytes));
    }
  }

  __device__ __forceinline__ void start(const StreamWeights& w, StreamRange r, Smem&) {
    const int lane = int(threadIdx.x) % 32;
#pragma unroll
    for (int i = 0; i < kStreamRowTiles; ++i) {
      codes[i] = w.codes[i] + lane * 16;
      scales[i] = w.scales[i] + lane * 2;
    }
    range = r;
#pragma unroll
    for (int d = 0; d < kDepth; ++d) {
      if (r.begin + d < r.end) load(r.begin + d, buf[d]);
    }
  }

  __device__ __forceinline__ void take(int slot, int, WeightChunk& out) const {
    out = buf[slot];
  }
  __device__ __forceinline__ void release(int slot, int64_t c) {
    if (c + kDepth < range.end) load(c + kDepth, buf[slot]);
  }
  __device__ __forceinline__ void next_round() {}
};

// ---- sm_90+: bulk copies into shared memory ---------------------------------------------------------------------

template <int kStages>
struct BulkStagerOf {
  // Stages of 4 consecutive chunks per warp: the fragment tiles of a row tile are contiguous along k, so one copy
  // per row tile and kind moves all 4, and lane 0's issue work (~20 instructions per copy: its operands go to
  // uniform registers one by one) drops to a quarter per weight byte. With one stage the warp refills it only after
  // using all 4 chunks; the other resident warps (kStreamMinBlocks) keep the bytes in flight and hide the decode's
  // latency. H100 (bench/NOTES.md): against 1 chunk per copy with 2 stages, floor ratio qwen3-30b T=64 0.70 → 0.77,
  // qwen3-235b T=64 0.83 → 0.90, deepseek-v3 T=8 0.86 → 0.93; 2 or 3 chunks per stage with 2 stages fell between.
  static constexpr int kDepth = kStages;
  static constexpr int kStageChunks = 4;
  struct alignas(128) Stage {
    uint8_t codes[kStreamRowTiles][kStageChunks * format::kFragCodeBytes];
    uint8_t scales[kStreamRowTiles][kStageChunks * format::kFragScaleBytes];
  };
  static constexpr uint32_t kChunkBytes = kStreamRowTiles * (format::kFragCodeBytes + format::kFragScaleBytes);
  struct Smem {
    Stage stage[kStreamWarps][kDepth];
    uint64_t full[kStreamWarps][kDepth];
  };

  StreamWeights w;
  StreamRange range;
  Stage* stage;
  uint64_t* full;
  uint64_t policy;
  uint32_t phase;  // parity of the current round of kDepth stages

  // Lane 0: stage `slot` ← the chunks c.. (kStageChunks of them, fewer at the end of the range).
  __device__ __forceinline__ void issue(int slot, int64_t c) const {
    const uint32_t n = uint32_t(min(int64_t(kStageChunks), range.end - c));
    mbarrier_arrive_expect_tx(full + slot, n * kChunkBytes);
#pragma unroll
    for (int i = 0; i < kStreamRowTiles; ++i) {
      bulk_copy_to_shared(stage[slot].codes[i], w.codes[i] + c * format::kFragCodeBytes, n * format::kFragCodeBytes,
                          full + slot, policy);
      bulk_copy_to_shared(stage[slot].scales[i], w.scales[i] + c * format::kFragScaleBytes,
                          n * format::kFragScaleBytes, full + slot, policy);
    }
  }

  __device__ __forceinline__ void start(const StreamWeights& weights, StreamRange r, Smem& smem) {
    const int warp = int(threadIdx.x) / 32;
    w = weights;
    range = r;
    stage = smem.stage[warp];
    full = smem.full[warp];
    phase = 0;
    policy = 0;
    if (threadIdx.x % 32 == 0) {
      policy = l2_copy_policy(true);
#pragma unroll
      for (int d = 0; d < kDepth; ++d) mbarrier_init(full + d, 1);
      fence_barrier_init();
#pragma unroll
      for (int d = 0; d < kDepth; ++d) {
        if (r.begin + d * kStageChunks < r.end) issue(d, r.begin + d * kStageChunks);
      }
    }
    __syncwarp();  // the barriers are initialized before any lane waits on them
  }

  // Chunk `sub` of stage `slot` (the stage's first take waits for its copies).
  __device__ __forceinline__ void take(int slot, int sub, WeightChunk& out) const {
    const int lane = int(threadIdx.x) % 32;
    if (sub == 0) mbarrier_wait_parity(full + slot, phase);
#pragma unroll
    for (int i = 0; i < kStreamRowTiles; ++i) {
      out.codes[i] = *reinterpret_cast<const uint4*>(stage[slot].codes[i] + sub * format::kFragCodeBytes + lane * 16);
      out.scales[i] =
          *reinterpret_cast<const unsigned short*>(stage[slot].scales[i] + sub * format::kFragScaleBytes + lane * 2);
    }
  }
  // Called once the chunks of the stage that starts at chunk c were used: every lane's reads of the slot are
  // complete. The proxy fence orders them before later async-proxy writes, the warp barrier orders all lanes before
  // lane 0 issues the copy that overwrites it.
  __device__ __forceinline__ void release(int slot, int64_t c) const {
    const int64_t next = c + kDepth * kStageChunks;
    if (next >= range.end) return;
    fence_proxy_async_shared();
    __syncwarp();
    if (threadIdx.x % 32 == 0) issue(slot, next);
  }
  __device__ __forceinline__ void next_round() { phase ^= 1; }
};

// kStages bulk stages per warp on sm_90+; register staging elsewhere. One stage is the default: 8 blocks of the
// 8-row kernels fit an SM, and their warps keep the bytes in flight. A grid of at most 5 blocks per SM (one token
// on few experts or small experts: mixtral-8x7b FC2 at T = 1 has 2) has too few warps for that, so those launches
// take 2 stages: the next 4 chunks arrive while the warp uses the current ones (heuristics.cpp: plan_weight_stages).
template <int kStages>
using StagerOf = std::conditional_t<kHasBulkCopy, BulkStagerOf<kStages>, RegisterStager>;
using BulkStager = BulkStagerOf<1>;
using WeightStager = StagerOf<1>;

}  // namespace fp4moe::cuda
