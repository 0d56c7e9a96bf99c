// The Hopper tensor-core GEMM shared by the large-batch FC1 and FC2 (sm_90a): out[m, n] = Σ_k W[m, k] · X[n, k] for
// 256 rows of one expert's FP4 weights W (16 fragment tiles) and a work tile of kN (64, 128 or 160) BF16 token rows X
// (the wgmma N side; the wgmmas are as wide as the tile's rows need, 32 to kN in steps of 32). 160-row tiles decode
// each weight chunk for 25 % more tokens than 128-row ones, and take an expert's rows that just pass 128 in one
// weight pass instead of two (bench/NOTES.md session 13).
//
// Block: three warpgroups (384 threads), warp-specialized. Warpgroup 0 is the producer: it gathers each 64-k chunk
// of the kN token rows (cp.async; FC2's contiguous h rows by tensor copies; stored 128-byte swizzled in the MMA k
// order, fragment_k_slot) and the chunk of the 16 weight tiles (codes + scales, cp.async) into one of kWgmmaStages
// slots. Warpgroups 1 and 2 are the consumers: each owns 128 weight rows (8 fragment tiles, two 64-row wgmma A
// operands), decodes its tiles in registers (fragment_decode.cuh: a lane's 16 code bytes are its A registers of 4
// k16 steps) and issues one wgmma per half and k16 step with the slot's token rows as the shared-memory B operand.
// Both consumers read the same token tile, so each token byte fetched from L2 feeds 256 weight rows.
// Slots hand over through mbarriers: full (the producer's copies landed) and empty (every consumer thread retired
// its wgmmas on the slot). The consumers are not tied to each other, so one's decode can run during the other's
// wgmmas (measured: only in part, bench/NOTES.md).
// The kernels are persistent (wgmma_schedule.cuh): the slot ring (WgmmaRing) runs on across a block's work items, so
// the producer fills the next item's slots while the consumers run the epilogue of the current one.
// Instruction issue is part of the limit: a producer warp shares each scheduler with two consumer warps, so the
// per-chunk loops carry no index arithmetic beyond pointer increments (halving the producer's instructions and
// dropping the consumers' 64-bit slot arithmetic took 10-18 % off the layer, bench/NOTES.md session 12).
// Registers: setmaxnreg gives the consumers kWgmmaConsumerRegs (accumulators: kN per thread, + 32 A operands), the
// producer few (WgmmaSources keeps its per-item state small, so no kernel spills on sm_90a).
// Every output sums its k16 steps in the same order for every tile size and width and for any batch, on this path.
// Roofline per chunk: 2 · 256 · kN · 64 flops against 9.2 KB of weights and kN · 128 bytes of tokens from L2.
#pragma once

#include <cstdint>
#include <type_traits>

#include "cuda/common/frag_matrix.hpp"
#include "cuda/common/tma_map.hpp"
#include "cuda/common/fragment_decode.cuh"
#include "cuda/common/wgmma.cuh"
#include "cuda/gemm/wgmma_profile.cuh"
#include "format/fragment_layout.hpp"

namespace fp4moe::cuda {

inline constexpr int kWgmmaThreads = 384;                  // producer warpgroup + 2 consumer warpgroups
inline constexpr int kWgmmaConsumers = 2;
inline constexpr int kWgmmaStages = 5;  // 6 measured no faster
inline constexpr int kWgmmaHalves = 2;                     // two 64-row A operands per consumer
inline constexpr int kWgmmaConsumerTiles = 4 * kWgmmaHalves;  // fragment tiles per consumer: 4·half + warp
inline constexpr int kWgmmaTiles = kWgmmaConsumers * kWgmmaConsumerTiles;
inline constexpr int kWgmmaConsumerRows = 16 * kWgmmaConsumerTiles;  // weight rows per consumer
inline constexpr int kWgmmaRows = 16 * kWgmmaTiles;                  // weight rows per block
inline constexpr int kWgmmaChunkBytes = 2 * format::kFragK;          // one token row of a chunk, BF16
// Registers per thread: the launch gives each thread kWgmmaLaunchRegs (one block per SM), then the producer hands
// some back and the consumers take them (setmaxnreg moves registers inside the block's own pool).
inline constexpr int kWgmmaLaunchRegs = 65536 / kWgmmaThreads / 8 * 8;
inline constexpr int kWgmmaProducerRegs = 56;
inline constexpr int kWgmmaConsumerRegs = 224;  // 216 serialized the 160-row tiles' wgmmas (ptxas C7512)
static_assert(kWgmmaProducerRegs + kWgmmaConsumers * kWgmmaConsumerRegs <= (1 + kWgmmaConsumers) * kWgmmaLaunchRegs,
              "the consumers take only what the producer gave back");
static_assert(kWgmmaChunkBytes * 8 == 1024, "a swizzle atom is 8 token rows of one chunk");

// Named barriers (0 is __syncthreads): the producer's warps, and each consumer alone.
inline constexpr int kWgmmaBarProducer = 1;
inline constexpr int kWgmmaBarConsumer0 = 2;

template <int kN>
struct WgmmaPipe {
  uint8_t tokens[kWgmmaStages][kN * kWgmmaChunkBytes];  // first member: 1024-byte aligned (wgmma_smem)
  uint8_t codes[kWgmmaStages][kWgmmaTiles][format::kFragCodeBytes];
  uint8_t scales[kWgmmaStages][kWgmmaTiles][format::kFragScaleBytes];
};

template <int kN, class Stage>
struct WgmmaSmem {
  static_assert(kN == 64 || kN == 128 || kN == 160, "work tiles of 64, 128 or 160 rows");
  WgmmaPipe<kN> pipe;
  Stage stage[kWgmmaConsumers];  // each consumer's epilogue scratch (the slots hold the next item meanwhile)
  uint64_t full[kWgmmaStages];   // the producer's copies of the slot landed (128 arrivals; tensor copies' bytes)
  uint64_t empty[kWgmmaStages];  // every consumer thread retired its wgmmas on the slot (256 arrivals)
  uint32_t rows[kN];             // start of each token row: 16-byte units from the token matrix (wgmma_produce)
};

// Dynamic shared memory to request for WgmmaSmem: its size plus the slack to align it to 1024 bytes.
template <class Smem>
inline constexpr size_t kWgmmaSmemBytes = sizeof(Smem) + 1024;
inline constexpr size_t kWgmmaSmemLimit = 227 * 1024;  // dynamic shared memory per block on sm_90

template <class Smem>
__device__ __forceinline__ Smem& wgmma_smem(uint8_t* raw) {
  const uint32_t misalign = smem_address(raw) % 1024u;
  return *reinterpret_cast<Smem*>(raw + (misalign ? 1024u - misalign : 0u));
}

// Roles: warpgroup 0 produces, warpgroups 1 and 2 are consumers 0 and 1; warp and thread inside the warpgroup.
__device__ __forceinline__ int wgmma_warpgroup() { return int(threadIdx.x) / 128; }
__device__ __forceinline__ int wgmma_consumer() { return wgmma_warpgroup() - 1; }
__device__ __forceinline__ int wgmma_warp() { return (int(threadIdx.x) / 32) % 4; }
__device__ __forceinline__ int wgmma_thread() { return int(threadIdx.x) % 128; }

// Where the producer thread's 4 weight tiles come from: tile i (consumer i / 2, half i % 2, warp wgmma_warp()) is
// fragment row tile first[i]'s k tiles (first tile index, -1 when past the matrix: zeros).
struct WgmmaWeights {
  const uint8_t* codes = nullptr;
  const uint8_t* scales = nullptr;
  int64_t first[kWgmmaConsumers * kWgmmaHalves];
  bool evict_first = false;  // copied as first to evict from the L2 (plan_weights_evict_first)
};

// Fragment row tile of half h of a consumer when its 128 rows are consecutive: tile 8·group + 4h + warp.
__device__ __forceinline__ int64_t wgmma_row_tile(int64_t group, int h) {
  return group * kWgmmaConsumerTiles + 4 * h + wgmma_warp();
}

// The weight tiles of expert `expert` in `m` this producer thread copies: row_tile(consumer, h) for its warp, or
// anything at or past m.row_tiles for none; evict_first: WgmmaWeights::evict_first.
template <class RowTile>
__device__ __forceinline__ WgmmaWeights wgmma_weights(const FragMatrix& m, int64_t expert, RowTile&& row_tile,
                                                      bool evict_first) {
  WgmmaWeights w;
  w.codes = m.codes;
  w.scales = m.scales;
  w.evict_first = evict_first;
#pragma unroll
  for (int i = 0; i < kWgmmaConsumers * kWgmmaHalves; ++i) {
    const int64_t rt = row_tile(i / kWgmmaHalves, i % kWgmmaHalves);
    w.first[i] = rt < m.row_tiles ? m.first_tile(expert, rt) : -1;
  }
  return w;
}

// Barriers initialized and visible to the block (call from every thread before the roles split).
template <class Smem>
__device__ __forceinline__ void wgmma_pipeline_init(Smem& smem) {
  if (threadIdx.x == 0) {
#pragma unroll
    for (int s = 0; s < kWgmmaStages; ++s) {
      mbarrier_init(&smem.full[s], 128);
      mbarrier_init(&smem.empty[s], 128 * kWgmmaConsumers);
    }
    fence_barrier_init();
  }
  __syncthreads();
}

// Token width of the wgmmas for a work tile of `rows` rows (1..kN): 32, 64, 96 or 128, at most kN.
template <int kN>
__device__ __forceinline__ int wgmma_width(int rows) {
  const int width = (rows + 31) / 32 * 32;
  return width < kN ? width : kN;
}

// Where a role is in the ring of slots: the slot of its next chunk and the parity of that slot's current round.
// Each role advances it once per chunk over all of the block's items, so slots and phases run on. (Deriving both
// from a 64-bit chunk count cost ~30 integer instructions per chunk in every warp: division by kWgmmaStages.)
struct WgmmaRing {
  int slot = 0;
  uint32_t phase = 0;
  __device__ __forceinline__ void advance() {
    if (++slot == kWgmmaStages) {
      slot = 0;
      phase ^= 1u;
    }
  }
};

// A producer thread's copy sources for one item, moved on by one chunk after each chunk: its token pieces (row
// t/8 + 16j, 16-byte piece t % 8) as 16-byte offsets from `tokens`, its 16 code bytes of the warp's 4 tiles and
// (lanes 0-15) one scale piece. Set up once per item, so a chunk's copies are pointer increments: reading the row
// table and checking for null rows on every chunk took ~16 instructions per 16-byte copy. Every copy moves 16 bytes:
// token rows past the tile's rows re-read its first row, and tiles past the matrix read the matrix's first tile,
// because nothing that depends on them is stored (a token's outputs depend on its own row only, an output row on
// its own weight row). Offsets instead of pointers (the token matrix under 64 GiB: moe_cuda.cpp checks) and no
// zero-fill sizes keep the producer within its 56 registers.
template <int kN>
struct WgmmaSources {
  const uint8_t* tokens;  // the token matrix, at the chunk's k
  uint32_t token[kN / 16];
  const uint8_t* code[kWgmmaConsumers * kWgmmaHalves];
  const uint8_t* scale;
  uint64_t policy;  // L2 policy of the weight copies (WgmmaWeights::evict_first)
};

// The sources of chunk 0 over the token matrix `tokens` (token rows: smem.rows filled and visible to the producer;
// none with kTmaTokens, whose rows come by tensor copies).
template <bool kTmaTokens, int kN, class Stage>
__device__ __forceinline__ WgmmaSources<kN> wgmma_sources(const WgmmaSmem<kN, Stage>& smem, const WgmmaWeights& w,
                                                          const void* tokens) {
  const int t = wgmma_thread(), lane = t % 32;
  WgmmaSources<kN> s;
  s.tokens = static_cast<const uint8_t*>(tokens);
  if constexpr (!kTmaTokens) {
#pragma unroll
    for (int j = 0; j < kN / 16; ++j) s.token[j] = smem.rows[t / 8 + 16 * j] + uint32_t(t % 8);
  }
#pragma unroll
  for (int i = 0; i < kWgmmaConsumers * kWgmmaHalves; ++i) {
    const int64_t first = w.first[i];
    s.code[i] = w.codes + (first >= 0 ? first * format::kFragCodeBytes : 0) + 16 * lane;
  }
  const int i = (lane % 16) / 4;
  int64_t first = w.first[0];  // selected without dynamic indexing (no local memory)
#pragma unroll
  for (int k = 1; k < 4; ++k) first = i == k ? w.first[k] : first;
  s.scale = w.scales + (first >= 0 ? first * format::kFragScaleBytes : 0) + 16 * (lane % 4);
  s.policy = l2_copy_policy(w.evict_first);
  return s;
}

// The sources of the next chunk.
template <int kN>
__device__ __forceinline__ void wgmma_next_sources(WgmmaSources<kN>& s) {
  s.tokens += kWgmmaChunkBytes;
#pragma unroll
  for (int i = 0; i < kWgmmaConsumers * kWgmmaHalves; ++i) s.code[i] += format::kFragCodeBytes;
  s.scale += format::kFragScaleBytes;
}

// Producer: issues this thread's copies of a chunk into slot `slot`: the token pieces of the `width` rows the wgmmas
// read (stored 128-byte swizzled: row r's piece p at 16 · (p ^ r % 8); none with kTmaTokens), the code pieces and
// the scale piece.
template <bool kTmaTokens, int kN, class Stage>
__device__ __forceinline__ void wgmma_load_chunk(WgmmaSmem<kN, Stage>& smem, const WgmmaSources<kN>& s, int width,
                                                 int slot) {
  const int t = wgmma_thread(), warp = wgmma_warp(), lane = t % 32;
  if constexpr (!kTmaTokens) {
    uint8_t* tokens = smem.pipe.tokens[slot] + (t / 8) * kWgmmaChunkBytes + (((t % 8) ^ (t / 8 % 8)) << 4);
#pragma unroll
    for (int j = 0; j < kN / 16; ++j) {
      if (16 * j >= width) break;  // rows the wgmmas never read (a whole warp's rows: 16j..16j+15)
      cp_async_16(tokens + 16 * j * kWgmmaChunkBytes, s.tokens + (uint64_t(s.token[j]) << 4));
    }
  }
#pragma unroll
  for (int i = 0; i < kWgmmaConsumers * kWgmmaHalves; ++i) {
    cp_async_16_with_policy(smem.pipe.codes[slot][4 * i + warp] + 16 * lane, s.code[i], s.policy);
  }
  if (lane < 16) {
    cp_async_16_with_policy(smem.pipe.scales[slot][4 * (lane / 4) + warp] + 16 * (lane % 4), s.scale, s.policy);
  }
}

// Producer warpgroup: fills the slots with one item's chunks, refilling a slot once every consumer thread released
// it. The first round's waits pass at once: a fresh barrier counts the phase before its first as complete.
// Token rows: gathered by every thread with cp.async (smem.rows filled with offsets into `tokens` and visible to the
// producer before the call), or, with kTmaTokens (contiguous rows from token_row on: FC2's h), brought by thread 0 in
// tensor copies of kWgmmaTokenBoxRows rows from `token_map` (tma_map.hpp). Their bytes are counted on the full
// barrier: thread 0 raises its byte count before the copies, and its arrival stays the one of its cp.async. FC2's h
// by tensor copies (fc2_wgmma_kernel.cuh: kFc2HByTma) leaves a producer thread 4.5 copies per chunk instead of 14.5.
inline constexpr int kWgmmaTokenBoxRows = 32;
static_assert(kWgmmaTokenBoxRows * kWgmmaChunkBytes % 1024 == 0, "token boxes keep the 128-byte swizzle's alignment");

template <bool kTmaTokens, int kN, class Stage>
__device__ __forceinline__ void wgmma_produce(WgmmaSmem<kN, Stage>& smem, const WgmmaWeights& w, const void* tokens,
                                              const TmaMap* token_map, int token_row, int64_t k_tiles, int rows,
                                              WgmmaRing& ring FP4MOE_PROF_ARG) {
  const int width = wgmma_width<kN>(rows);
  WgmmaSources<kN> s = wgmma_sources<kTmaTokens>(smem, w, tokens);
  for (int64_t c = 0; c < k_tiles; ++c) {
    FP4MOE_PROF_CLOCK(t0);
    mbarrier_wait_parity(&smem.empty[ring.slot], ring.phase ^ 1u);
    FP4MOE_PROF_CLOCK(t1);
    if constexpr (kTmaTokens) {
      if (wgmma_thread() == 0) {
        mbarrier_expect_tx(&smem.full[ring.slot], uint32_t(width * kWgmmaChunkBytes));
        for (int b = 0; b < width / kWgmmaTokenBoxRows; ++b) {
          tma_load_2d(smem.pipe.tokens[ring.slot] + b * kWgmmaTokenBoxRows * kWgmmaChunkBytes, token_map,
                      int(c) * format::kFragK, token_row + b * kWgmmaTokenBoxRows, &smem.full[ring.slot]);
        }
      }
    }
    wgmma_load_chunk<kTmaTokens>(smem, s, width, ring.slot);
    cp_async_mbarrier_arrive_noinc(&smem.full[ring.slot]);
    wgmma_next_sources(s);
    ring.advance();
    FP4MOE_PROF_CLOCK(t2);
    FP4MOE_PROF_ADD(0, t1 - t0);
    FP4MOE_PROF_ADD(1, t2 - t1);
    FP4MOE_PROF_ADD(5, 1);
  }
}

// A operands of one chunk: both halves' fragments for its 4 k16 steps.
using WgmmaChunkA = uint32_t[4][kWgmmaHalves][4];

template <int kN>
using WgmmaAcc = float[kWgmmaHalves][kN / 2];

// Consumer: decodes this warp's two fragment tiles of the chunk in `slot` into A operands (e2m1 · sf · 2^-9, BF16).
template <int kN, class Stage>
__device__ __forceinline__ void wgmma_decode_chunk(const WgmmaSmem<kN, Stage>& smem, int slot, WgmmaChunkA& a) {
  const int tile0 = kWgmmaConsumerTiles * wgmma_consumer() + wgmma_warp(), lane = int(threadIdx.x) % 32;
#pragma unroll
  for (int h = 0; h < kWgmmaHalves; ++h) {
    const uint8_t* codes = smem.pipe.codes[slot][tile0 + 4 * h];
    const uint8_t* scales = smem.pipe.scales[slot][tile0 + 4 * h];
    const uint4 word = *reinterpret_cast<const uint4*>(codes + 16 * lane);
    const FragScale scale = frag_scale(*reinterpret_cast<const uint16_t*>(scales + 2 * lane));
    frag_a_operand(word.x, scale, a[0][h]);
    frag_a_operand(word.y, scale, a[1][h]);
    frag_a_operand(word.z, scale, a[2][h]);
    frag_a_operand(word.w, scale, a[3][h]);
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

// Issues the chunk's 8 wgmmas (4 k16 steps × 2 halves) of token width kWidth as one group.
template <int kN, int kWidth, class Stage>
__device__ __forceinline__ void wgmma_issue_chunk(const WgmmaSmem<kN, Stage>& smem, int slot, const WgmmaChunkA& a,
                                                  WgmmaAcc<kN>& acc) {
  const uint64_t desc = wgmma_desc_k_sw128(smem.pipe.tokens[slot]);
  wgmma_fence();
#pragma unroll
  for (int step = 0; step < 4; ++step) {
#pragma unroll
    for (int h = 0; h < kWgmmaHalves; ++h) wgmma_bf16_rs<kWidth>(acc[h], a[step][h], desc + 2 * step, 1);
  }
  wgmma_commit();
}

// Consumer: waits until the producer filled the ring's slot, then decodes this warp's tiles of it into `a`.
template <int kN, class Stage>
__device__ __forceinline__ void wgmma_take_chunk(WgmmaSmem<kN, Stage>& smem, const WgmmaRing& ring,
                                                 WgmmaChunkA& a FP4MOE_PROF_ARG) {
  FP4MOE_PROF_CLOCK(t0);
  mbarrier_wait_parity(&smem.full[ring.slot], ring.phase);
  FP4MOE_PROF_CLOCK(t1);
  fence_proxy_async_shared();  // the copies were generic-proxy writes; wgmma reads through the async proxy
  wgmma_decode_chunk(smem, ring.slot, a);
  FP4MOE_PROF_HOLD(wgmma_hold_a(a));
  FP4MOE_PROF_CLOCK(t2);
  FP4MOE_PROF_ADD(0, t1 - t0);
  FP4MOE_PROF_ADD(1, t2 - t1);
}

// Consumer: hands the slot back to the producer (this warp's wgmmas on it retired). Every thread arrives, each
// releasing its own decode loads of the slot to the producer's copies that refill it. With one arrival per warp
// (lane 0 after __syncwarp), compute-sanitizer racecheck reported every other lane's loads as racing with those
// copies (bench/NOTES.md, session 20).
template <int kN, class Stage>
__device__ __forceinline__ void wgmma_release_chunk(WgmmaSmem<kN, Stage>& smem, int slot) {
  mbarrier_arrive(&smem.empty[slot]);
}

// Slot release: with 64-row tiles a chunk's slot goes back to the producer only after the next chunk is decoded,
// so the producer's refill (a burst of cp.async from 128 threads) runs while the consumers issue wgmmas rather than
// while their decode loads compete with it for the load/store pipe: 1.5-3 % off the layer at 32 rows per expert
// (deepseek-v3 and gpt-oss-120b T=1024, qwen3-235b T=512, mixtral T=128). Wider tiles lose 4-11 % that way
// (mixtral T=256, qwen3-30b T=1024-16384, deepseek-v3 T=4096): their slots are 20-29 KB, and holding one more of
// the 5 shortens the producer's lead (bench/NOTES.md, session 21).
template <int kN>
inline constexpr bool kWgmmaLateRelease = kN == 64;

// One chunk's wgmmas issued and retired, the accumulators kept in place.
template <int kN, int kWidth, class Stage>
__device__ __forceinline__ void wgmma_run_chunk(WgmmaSmem<kN, Stage>& smem, int slot, const WgmmaChunkA& a,
                                                WgmmaAcc<kN>& acc FP4MOE_PROF_ARG) {
  // The hardware reads A registers and writes the accumulators after issue, so the chunk retires (wait) before the
  // loop moves on; the other consumer keeps the tensor cores busy meanwhile. Measured alternatives, all slower: two
  // A buffers with wait_group 1 (7 % at qwen3-30b T=1024), a fence and issue per k16 step, and A decoded into shared
  // memory for wgmmas with both operands there (session 21).
  FP4MOE_PROF_CLOCK(t0);
  wgmma_issue_chunk<kN, kWidth>(smem, slot, a, acc);
  FP4MOE_PROF_CLOCK(t1);
  wgmma_wait<0>();
  FP4MOE_PROF_CLOCK(t2);
  FP4MOE_PROF_ADD(2, t1 - t0);
  FP4MOE_PROF_ADD(3, t2 - t1);
  FP4MOE_PROF_ADD(5, 1);
  wgmma_hold_a(a);
#pragma unroll
  for (int h = 0; h < kWgmmaHalves; ++h) wgmma_hold(acc[h]);
}

// Consumer main loop with wgmmas of token width kWidth (the accumulators of later tokens stay zero).
template <int kN, int kWidth, class Stage>
__device__ __forceinline__ void wgmma_consume_width(WgmmaSmem<kN, Stage>& smem, int64_t k_tiles, WgmmaAcc<kN>& acc,
                                                    WgmmaRing& ring FP4MOE_PROF_ARG) {
  if constexpr (kWgmmaLateRelease<kN>) {
    WgmmaChunkA a;
    wgmma_take_chunk(smem, ring, a FP4MOE_PROF_PASS);
    for (int left = int(k_tiles) - 1;; --left) {  // K / 64 chunks: 32 bits, a register less across the loop
      wgmma_run_chunk<kN, kWidth>(smem, ring.slot, a, acc FP4MOE_PROF_PASS);
      const int done = ring.slot;
      ring.advance();
      if (left == 0) {
        wgmma_release_chunk(smem, done);
        return;
      }
      wgmma_take_chunk(smem, ring, a FP4MOE_PROF_PASS);
      wgmma_release_chunk(smem, done);
    }
  } else {
    for (int left = int(k_tiles); left > 0; --left) {
      WgmmaChunkA a;
      wgmma_take_chunk(smem, ring, a FP4MOE_PROF_PASS);
      wgmma_run_chunk<kN, kWidth>(smem, ring.slot, a, acc FP4MOE_PROF_PASS);
      wgmma_release_chunk(smem, ring.slot);
      ring.advance();
    }
  }
}

// Consumer warpgroup: acc = its 128 rows' sum over one item's k_tiles chunks, for a work tile of `rows` token rows
// (1..kN). The wgmmas are only as wide as the tile needs, in steps of 32 tokens: the last tile of an expert is
// mostly part-filled (an expert with 130 rows has a second 128-row tile of 2), and a wgmma's time grows with its
// width.
template <int kN, class Stage>
__device__ __forceinline__ void wgmma_consume(WgmmaSmem<kN, Stage>& smem, int64_t k_tiles, int rows,
                                              WgmmaAcc<kN>& acc, WgmmaRing& ring FP4MOE_PROF_ARG) {
#pragma unroll
  for (int h = 0; h < kWgmmaHalves; ++h) {
#pragma unroll
    for (int i = 0; i < kN / 2; ++i) acc[h][i] = 0.0f;
  }
  const int width = wgmma_width<kN>(rows);
  if (width == 32) {
    wgmma_consume_width<kN, 32>(smem, k_tiles, acc, ring FP4MOE_PROF_PASS);
  } else if (kN == 64 || width == 64) {
    wgmma_consume_width<kN, 64>(smem, k_tiles, acc, ring FP4MOE_PROF_PASS);
  } else if constexpr (kN >= 128) {
    if (width == 96) {
      wgmma_consume_width<kN, 96>(smem, k_tiles, acc, ring FP4MOE_PROF_PASS);
    } else if (kN == 128 || width == 128) {
      wgmma_consume_width<kN, 128>(smem, k_tiles, acc, ring FP4MOE_PROF_PASS);
    } else if constexpr (kN == 160) {
      wgmma_consume_width<kN, 160>(smem, k_tiles, acc, ring FP4MOE_PROF_PASS);
    }
  }
}

// Position of accumulator i of half h: the row (0..15) inside the warp's fragment tile and the token (0..kN-1).
__device__ __forceinline__ int wgmma_row(int i) { return (int(threadIdx.x) % 32) / 4 + ((i % 4) >= 2 ? 8 : 0); }
__device__ __forceinline__ int wgmma_token(int i) { return 8 * (i / 4) + 2 * (int(threadIdx.x) % 4) + (i % 2); }

// Calls pass(std::integral_constant<int, k>{}) for each epilogue pass of kTokens tokens that a tile of `rows` rows
// needs: pass 0, then 1 and 2 where the tile size and its rows reach them (the whole consumer takes the same branches).
template <int kN, int kTokens, class Pass>
__device__ __forceinline__ void wgmma_epilogue_passes(int rows, Pass&& pass) {
  static_assert(kN <= 3 * kTokens, "at most three passes");
  pass(std::integral_constant<int, 0>{});
  if constexpr (kN > kTokens) {
    if (rows > kTokens) pass(std::integral_constant<int, 1>{});
  }
  if constexpr (kN > 2 * kTokens) {
    if (rows > 2 * kTokens) pass(std::integral_constant<int, 2>{});
  }
}

// Epilogue staging of one pass (every thread of a consumer): waits until the consumer's previous pass (or item) is
// done reading its stage, calls put(h, n, r, alpha · acc) for the accumulators of tokens kPass·kTokens.. (half h,
// token n − kPass·kTokens, row r = 16·warp + wgmma_row(i) of the half's 64), then waits until the stage is whole.
// kBulkRead: the stage is then read by bulk copies (async proxy), so each thread fences its writes first; a thread
// that issued bulk copies from the stage waits for their reads (bulk_wait_read) before calling this.
// Accumulator i holds token 8·(i / 4) + ..., so a pass is accumulators (kTokens / 2)·kPass .. + kTokens / 2 − 1
// (fewer in the last pass of a 160-row tile).
template <int kN, int kPass, int kTokens, bool kBulkRead = false, class Put>
__device__ __forceinline__ void wgmma_stage_acc(const WgmmaAcc<kN>& acc, float alpha, Put&& put) {
  constexpr int kAccPerPass = kTokens / 2;
  const int barrier = kWgmmaBarConsumer0 + wgmma_consumer();
  const int warp = wgmma_warp();
  named_barrier_sync(barrier, 128);
#pragma unroll
  for (int h = 0; h < kWgmmaHalves; ++h) {
#pragma unroll
    for (int i = kPass * kAccPerPass; i < (kPass + 1) * kAccPerPass && i < kN / 2; ++i) {
      put(h, wgmma_token(i) - kPass * kTokens, 16 * warp + wgmma_row(i), __fmul_rn(alpha, acc[h][i]));
    }
  }
  if constexpr (kBulkRead) fence_proxy_async_shared();
  named_barrier_sync(barrier, 128);
}

}  // namespace fp4moe::cuda
