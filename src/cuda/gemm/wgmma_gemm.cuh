// The Hopper tensor-core GEMM shared by the large-batch FC1 and FC2 (sm_90a): out[m, n] = Σ_k W[m, k] · X[n, k] for
// 128 rows of one expert's FP4 weights W (8 fragment tiles, two 64-row wgmma A operands) and a work tile of kN
// (64 or 128) BF16 token rows X (the wgmma N side).
//
// Block: one warpgroup (4 warps, 128 threads). Warp w decodes the fragment tiles of rows 16w.. of both 64-row
// halves in registers (fragment_decode.cuh: a lane's 16 code bytes are its A registers of 4 k16 steps) and the
// warpgroup issues one wgmma per half and k16 step, with the token rows as the shared-memory B operand.
// Pipeline: kWgmmaStages slots, each one 64-k chunk: the kN token rows (cp.async from their gathered addresses,
// stored 128-byte swizzled in the MMA k order, fragment_k_slot) and the 8 weight tiles (codes + scales). Copies run
// kWgmmaStages - 1 chunks ahead; a slot is refilled only after every warp's wgmmas on it completed (one barrier per
// chunk). A chunk's 8 wgmmas form one group, retired before the next chunk is decoded; 2 blocks per SM overlap
// one block's decode and copies with the other's wgmmas.
// Every output sums its k16 steps in the same order for both tile widths and for any batch, on this path.
// Roofline: 2 · 128 · kN · 64 flops per chunk against 4.6 KB of weights and kN · 128 bytes of tokens from L2.
#pragma once

#include <cstdint>

#include "cuda/common/frag_matrix.hpp"
#include "cuda/common/fragment_decode.cuh"
#include "cuda/common/wgmma.cuh"
#include "format/fragment_layout.hpp"

namespace fp4moe::cuda {

inline constexpr int kWgmmaThreads = 128;
inline constexpr int kWgmmaStages = 5;
inline constexpr int kWgmmaHalves = 2;                    // two 64-row A operands per block
inline constexpr int kWgmmaTiles = 4 * kWgmmaHalves;      // fragment tiles per chunk: tile 4·half + warp
inline constexpr int kWgmmaRows = 16 * kWgmmaTiles;       // weight rows per block
inline constexpr int kWgmmaChunkBytes = 2 * format::kFragK;  // one token row of a chunk, BF16

template <int kN>
struct WgmmaSmem {
  static_assert(kN == 64 || kN == 128, "work tiles of 64 or 128 rows");
  uint8_t tokens[kWgmmaStages][kN * kWgmmaChunkBytes];  // first member: 1024-byte aligned (wgmma_smem)
  uint8_t codes[kWgmmaStages][kWgmmaTiles][format::kFragCodeBytes];
  uint8_t scales[kWgmmaStages][kWgmmaTiles][format::kFragScaleBytes];
  const uint16_t* rows[kN];  // start of each token row (nullptr: zeros)
};
static_assert(kWgmmaChunkBytes * 8 == 1024, "a swizzle atom is 8 token rows of one chunk");

// Dynamic shared memory to request for WgmmaSmem<kN>: its size plus the slack to align it to 1024 bytes.
template <int kN>
inline constexpr size_t kWgmmaSmemBytes = sizeof(WgmmaSmem<kN>) + 1024;

template <int kN>
__device__ __forceinline__ WgmmaSmem<kN>& wgmma_smem(uint8_t* raw) {
  const uint32_t misalign = smem_address(raw) % 1024u;
  return *reinterpret_cast<WgmmaSmem<kN>*>(raw + (misalign ? 1024u - misalign : 0u));
}

// Where the block's 8 weight tiles come from: tile 4·half + warp is fragment row tile first[half]'s k tiles
// (first tile index of that row tile, -1 when past the matrix: zeros).
struct WgmmaWeights {
  const uint8_t* codes = nullptr;
  const uint8_t* scales = nullptr;
  int64_t first[kWgmmaHalves];
};

// Fragment row tile of half h for this warp when the block's 128 rows are consecutive: tile 8·group + 4h + warp.
__device__ __forceinline__ int64_t wgmma_row_tile(int64_t group, int h) {
  return group * kWgmmaTiles + 4 * h + int(threadIdx.x) / 32;
}

// The block's weight tiles of expert `expert` in `m`: half h is fragment row tile row_tile(h) of this warp.
template <class RowTile>
__device__ __forceinline__ WgmmaWeights wgmma_weights(const FragMatrix& m, int64_t expert, RowTile&& row_tile) {
  WgmmaWeights w;
  w.codes = m.codes;
  w.scales = m.scales;
#pragma unroll
  for (int h = 0; h < kWgmmaHalves; ++h) {
    const int64_t rt = row_tile(h);
    w.first[h] = rt < m.row_tiles ? m.first_tile(expert, rt) : -1;
  }
  return w;
}

template <int kN>
using WgmmaAcc = float[kWgmmaHalves][kN / 2];

// Issues the copies of chunk c into slot `slot`: token pieces (row tid/8 + 16j, 16-byte piece tid % 8), this lane's
// 16 code bytes of both tiles of its warp, and (lanes 0-7) the scale pieces of those tiles.
template <int kN>
__device__ __forceinline__ void wgmma_load_chunk(WgmmaSmem<kN>& smem, const WgmmaWeights& w, int slot, int64_t c) {
  const int tid = int(threadIdx.x), warp = tid / 32, lane = tid % 32, piece = tid % 8;
#pragma unroll
  for (int j = 0; j < kN / 16; ++j) {
    const int r = tid / 8 + 16 * j;
    const uint16_t* row = smem.rows[r];
    uint8_t* dst = smem.tokens[slot] + r * kWgmmaChunkBytes + ((piece ^ (r % 8)) << 4);
    const void* src = row ? static_cast<const void*>(row + c * format::kFragK + 8 * piece) : w.codes;
    cp_async_16(dst, src, row ? 16u : 0u);
  }
#pragma unroll
  for (int h = 0; h < kWgmmaHalves; ++h) {
    const int64_t first = w.first[h];
    cp_async_16(smem.codes[slot][4 * h + warp] + 16 * lane,
                w.codes + (first >= 0 ? (first + c) * format::kFragCodeBytes + 16 * lane : 0), first >= 0 ? 16u : 0u);
  }
  if (lane < 4 * kWgmmaHalves) {
    static_assert(kWgmmaHalves == 2, "the half of a scale piece is selected without indexing (no local memory)");
    const int h = lane / 4, q = lane % 4;
    const int64_t first = h == 0 ? w.first[0] : w.first[1];
    cp_async_16(smem.scales[slot][4 * h + warp] + 16 * q,
                w.scales + (first >= 0 ? (first + c) * format::kFragScaleBytes + 16 * q : 0), first >= 0 ? 16u : 0u);
  }
}

// A operands of one chunk: both halves' fragments for its 4 k16 steps.
using WgmmaChunkA = uint32_t[4][kWgmmaHalves][4];

// Decodes this warp's two fragment tiles of the chunk in `slot` into A operands (e2m1 · sf · 2^-9, BF16).
template <int kN>
__device__ __forceinline__ void wgmma_decode_chunk(const WgmmaSmem<kN>& smem, int slot, WgmmaChunkA& a) {
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
#pragma unroll
  for (int h = 0; h < kWgmmaHalves; ++h) {
    const uint4 codes = *reinterpret_cast<const uint4*>(smem.codes[slot][4 * h + warp] + 16 * lane);
    const FragScale scale = frag_scale(*reinterpret_cast<const uint16_t*>(smem.scales[slot][4 * h + warp] + 2 * lane));
    frag_a_operand(codes.x, scale, a[0][h]);
    frag_a_operand(codes.y, scale, a[1][h]);
    frag_a_operand(codes.z, scale, a[2][h]);
    frag_a_operand(codes.w, scale, a[3][h]);
  }
}

// Keeps a chunk's A registers unchanged up to this point (a use the compiler must honour).
__device__ __forceinline__ void wgmma_hold_a(const WgmmaChunkA& a) {
#pragma unroll
  for (int s = 0; s < 4; ++s) {
#pragma unroll
    for (int h = 0; h < kWgmmaHalves; ++h) {
      asm volatile("" ::"r"(a[s][h][0]), "r"(a[s][h][1]), "r"(a[s][h][2]), "r"(a[s][h][3]) : "memory");
    }
  }
}

// Issues the chunk's 8 wgmmas (4 k16 steps × 2 halves) as one group.
template <int kN>
__device__ __forceinline__ void wgmma_issue_chunk(const WgmmaSmem<kN>& smem, int slot, const WgmmaChunkA& a,
                                                  WgmmaAcc<kN>& acc) {
  const uint64_t desc = wgmma_desc_k_sw128(smem.tokens[slot]);
  wgmma_fence();
#pragma unroll
  for (int step = 0; step < 4; ++step) {
#pragma unroll
    for (int h = 0; h < kWgmmaHalves; ++h) {
      if constexpr (kN == 128) {
        wgmma_bf16_m64n128k16_rs(acc[h], a[step][h], desc + 2 * step, 1);
      } else {
        wgmma_bf16_m64n64k16_rs(acc[h], a[step][h], desc + 2 * step, 1);
      }
    }
  }
  wgmma_commit();
}

// acc = the block's sum over all k_tiles chunks (smem.rows filled and visible before the call).
template <int kN>
__device__ __forceinline__ void wgmma_block_gemm(WgmmaSmem<kN>& smem, const WgmmaWeights& w, int64_t k_tiles,
                                                 WgmmaAcc<kN>& acc) {
  constexpr int kAhead = kWgmmaStages - 1;
#pragma unroll
  for (int h = 0; h < kWgmmaHalves; ++h) {
#pragma unroll
    for (int i = 0; i < kN / 2; ++i) acc[h][i] = 0.0f;
  }
#pragma unroll
  for (int s = 0; s < kAhead; ++s) {
    if (s < k_tiles) wgmma_load_chunk(smem, w, s, s);
    cp_async_commit();
  }
  for (int64_t c = 0; c < k_tiles; ++c) {
    cp_async_wait<kAhead - 1>();
    fence_proxy_async_shared();  // the copies were generic-proxy writes; wgmma reads through the async proxy
    __syncthreads();             // chunk c visible to all; every warp retired chunk c - 1, whose slot is refilled
    if (c + kAhead < k_tiles) wgmma_load_chunk(smem, w, int((c + kAhead) % kWgmmaStages), c + kAhead);
    cp_async_commit();
    // The hardware reads A registers and writes the accumulators after issue, so the chunk retires (wait) before
    // the loop moves on: no register the wgmmas use is in flight across the loop edge, where the compiler may move
    // values between registers. The other block on the SM keeps the tensor cores busy meanwhile.
    const int slot = int(c % kWgmmaStages);
    WgmmaChunkA a;
    wgmma_decode_chunk(smem, slot, a);
    wgmma_issue_chunk(smem, slot, a, acc);
    wgmma_wait<0>();
    wgmma_hold_a(a);
#pragma unroll
    for (int h = 0; h < kWgmmaHalves; ++h) wgmma_hold(acc[h]);
  }
}

// Position of accumulator i of half h: the row (0..15) inside the warp's fragment tile and the token (0..kN-1).
__device__ __forceinline__ int wgmma_row(int i) { return (int(threadIdx.x) % 32) / 4 + ((i % 4) >= 2 ? 8 : 0); }
__device__ __forceinline__ int wgmma_token(int i) { return 8 * (i / 4) + 2 * (int(threadIdx.x) % 4) + (i % 2); }

}  // namespace fp4moe::cuda
