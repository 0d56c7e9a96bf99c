// Micro-benchmark of another split of the wgmma work for narrow token tiles (H100/H200, sm_90a): tokens as the
// wgmma M side (64 rows, A from shared memory) and the decoded weights as N (256 rows, B from shared memory), with
// the decode in warpgroups of its own (384 threads, one block per SM):
//  - two decoder warpgroups: each decodes 8 of a chunk's 16 fragment tiles (fragment_decode.cuh) and stores the
//    BF16 operands with stmatrix into one of two 32 KB B buffers (K-major, 128-byte swizzle);
//  - one MMA warpgroup: 4 m64n256k16 SS wgmmas per 64-k chunk, one group in flight (wait_group 1), so that it
//    issues chunk c + 1 while chunk c runs; it frees a B buffer and its ring slot when their group retired.
// The copies of each chunk (64 token rows, 8 KB, from an L2-resident buffer; 16 fragment tiles, 9 KB of codes and
// scale codes, from a 1 GB buffer: HBM, or a 16 MB one: L2) go into a ring of kSlots slots, either by cp.async from
// the decoder threads or by three bulk copies from one thread of the MMA warpgroup (a 4th warpgroup as producer
// would leave 128 registers per thread at compile time, fewer than the m64n256 wgmma's 128 accumulators need).
// No warpgroup both decodes and issues, so the decode runs beside the tensor work instead of in lockstep with it as
// in the RS kernels of wgmma_gemm.cuh (bench/NOTES.md, sessions 9, 21). Each run is kept as is, or without the
// stores, or without the decode, and prints the MMA warpgroup's cycles per chunk and the weight bytes per second of
// all SMs. A chunk of the wgmma kernels at 64 tokens is the same work: 256 weight rows × 64 tokens × 64 k (512
// cycles at the full tensor rate). Results and their reading: bench/NOTES.md, session 23.
//   build/<preset>/bin/fp4moe_swap_ss
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>

#include "cuda/common/fragment_decode.cuh"
#include "cuda/common/ptx.cuh"
#include "cuda/common/wgmma.cuh"
#include "sm90_device.hpp"

namespace fp4moe::cuda {
namespace {

constexpr int kSlots = 8, kBufs = 2, kRounds = 3000, kThreads = 384;
constexpr int kTokenBytes = 64 * 128, kCodeBytes = 16 * 512, kScaleBytes = 16 * 64;
constexpr int kWeightBytes = kCodeBytes + kScaleBytes;
constexpr int kBBytes = 256 * 128;

struct alignas(1024) Smem {
  uint8_t tokens[kSlots][kTokenBytes];
  uint8_t b[kBufs][kBBytes];
  uint8_t codes[kSlots][kCodeBytes];
  uint8_t scales[kSlots][kScaleBytes];
  uint64_t full[kSlots], empty[kSlots], b_full[kBufs], b_empty[kBufs];
};

// Copies of chunk c (every decoder thread, t = 0..255): tokens from `tokens` (16 MB), weights from `weights` (this
// block's part of w_bytes); the slot's full barrier counts the 256 threads' copies.
__device__ __forceinline__ void load_chunk(Smem& s, int c, const uint8_t* tokens, const uint8_t* weights,
                                           size_t w_bytes) {
  const int t = int(threadIdx.x) % 256, slot = c % kSlots;
  mbarrier_wait_parity(&s.empty[slot], uint32_t(c / kSlots & 1) ^ 1u);
  const uint8_t* tok = tokens + size_t(c % 256) * kTokenBytes;
  const uint8_t* w = weights + size_t(c) * kWeightBytes % (w_bytes - kWeightBytes) / 1024 * 1024;
#pragma unroll
  for (int i = 0; i < kTokenBytes / 16 / 256; ++i) {
    cp_async_16(s.tokens[slot] + 16 * (t + 256 * i), tok + 16 * (t + 256 * i));
  }
#pragma unroll
  for (int i = 0; i < kCodeBytes / 16 / 256; ++i) {
    cp_async_16(s.codes[slot] + 16 * (t + 256 * i), w + 16 * (t + 256 * i));
  }
  if (t < kScaleBytes / 16) cp_async_16(s.scales[slot] + 16 * t, w + kCodeBytes + 16 * t);
  cp_async_mbarrier_arrive_noinc(&s.full[slot]);
}

// Copies of chunk c by one thread of the MMA warpgroup (kBulkFeed): three bulk copies (8 KB of tokens, 8 KB of codes,
// 1 KB of scale codes) completing on the slot's full barrier. The slot is free: the chunk before in it retired,
// and its decode (which the MMA warpgroup waited for) is done.
__device__ __forceinline__ void load_chunk_bulk(Smem& s, int c, const uint8_t* tokens, const uint8_t* weights,
                                                size_t w_bytes) {
  const int slot = c % kSlots;
  const uint8_t* w = weights + size_t(c) * kWeightBytes % (w_bytes - kWeightBytes) / 1024 * 1024;
  mbarrier_arrive_expect_tx(&s.full[slot], kTokenBytes + kWeightBytes);
  bulk_copy_to_shared(s.tokens[slot], tokens + size_t(c % 256) * kTokenBytes, kTokenBytes, &s.full[slot], 0);
  bulk_copy_to_shared(s.codes[slot], w, kCodeBytes, &s.full[slot], l2_copy_policy(true));
  bulk_copy_to_shared(s.scales[slot], w + kCodeBytes, kScaleBytes, &s.full[slot], l2_copy_policy(true));
}

// Decoder warpgroup d: tiles 8d + 2·warp and + 1 of each chunk into the B buffer (rows 16·tile ..).
// With cp.async feeding, it also issues the copies kAhead chunks ahead.
constexpr int kAhead = kSlots - 3;  // kSlots - 2 waited on the MMA warpgroup: 1344 against 1202 cycles per chunk
enum Mode { kNoDecode, kDecodeOnly, kDecodeStore };
template <int kMode, bool kBulkFeed>
__device__ __forceinline__ uint32_t decode(Smem& s, int d, const uint8_t* tokens, const uint8_t* weights,
                                           size_t w_bytes) {
  const int warp = int(threadIdx.x / 32) % 4, lane = int(threadIdx.x % 32), q = lane / 8, r8 = lane % 8;
  uint32_t kept = 0;  // kDecodeOnly: the operands' use
  if constexpr (!kBulkFeed) {
    for (int c = 0; c < kAhead; ++c) load_chunk(s, c, tokens, weights, w_bytes);
  }
  for (int c = 0; c < kRounds; ++c) {
    if (!kBulkFeed && c + kAhead < kRounds) load_chunk(s, c + kAhead, tokens, weights, w_bytes);
    const int slot = c % kSlots, buf = c % kBufs;
    mbarrier_wait_parity(&s.full[slot], uint32_t(c / kSlots & 1));
    mbarrier_wait_parity(&s.b_empty[buf], uint32_t(c / kBufs & 1) ^ 1u);
    if constexpr (kMode != kNoDecode) {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int tile = 8 * d + 2 * warp + j;
        const uint4 word = *reinterpret_cast<const uint4*>(s.codes[slot] + 512 * tile + 16 * lane);
        const FragScale scale = frag_scale(*reinterpret_cast<const uint16_t*>(s.scales[slot] + 64 * tile + 2 * lane));
        const uint32_t words[4] = {word.x, word.y, word.z, word.w};
        const uint32_t row = smem_address(s.b[buf]) + (16 * tile + 8 * (q & 1) + r8) * 128;
#pragma unroll
        for (int step = 0; step < 4; ++step) {
          uint32_t a[4];
          frag_a_operand(words[step], scale, a);
          if constexpr (kMode == kDecodeStore) {
            stmatrix_x4(row + 16 * ((2 * step + (q >> 1)) ^ r8), a);
          } else {
            kept ^= a[0] ^ a[1] ^ a[2] ^ a[3];
          }
        }
      }
    }
    fence_proxy_async_shared();
    mbarrier_arrive(&s.b_full[buf]);
    if constexpr (!kBulkFeed) mbarrier_arrive(&s.empty[slot]);
  }
  return kept;
}

// MMA warpgroup: returns its accumulators' sum (kept so that nothing is optimized away).
template <bool kBulkFeed>
__device__ __forceinline__ float mma(Smem& s, const uint8_t* tokens, const uint8_t* weights, size_t w_bytes) {
  const bool feeder = kBulkFeed && threadIdx.x == 256;
  if (feeder) {
    for (int c = 0; c < kSlots; ++c) load_chunk_bulk(s, c, tokens, weights, w_bytes);
  }
  float acc[128];
#pragma unroll
  for (int i = 0; i < 128; ++i) acc[i] = 0.0f;
  wgmma_hold(acc);
  for (int c = 0; c < kRounds; ++c) {
    const int slot = c % kSlots, buf = c % kBufs;
    mbarrier_wait_parity(&s.full[slot], uint32_t(c / kSlots & 1));
    mbarrier_wait_parity(&s.b_full[buf], uint32_t(c / kBufs & 1));
    const uint64_t da = wgmma_desc_k_sw128(s.tokens[slot]), db = wgmma_desc_k_sw128(s.b[buf]);
    wgmma_fence();
#pragma unroll
    for (int step = 0; step < 4; ++step) wgmma_m64n256k16_ss(acc, da + 2 * step, db + 2 * step);
    wgmma_commit();
    wgmma_wait<1>();
    wgmma_hold(acc);
    if (c > 0) {
      mbarrier_arrive(&s.b_empty[(c - 1) % kBufs]);
      if constexpr (kBulkFeed) {
        if (feeder && c - 1 + kSlots < kRounds) load_chunk_bulk(s, c - 1 + kSlots, tokens, weights, w_bytes);
      } else {
        mbarrier_arrive(&s.empty[(c - 1) % kSlots]);
      }
    }
  }
  wgmma_wait<0>();
  wgmma_hold(acc);
  float sum = 0.0f;
#pragma unroll
  for (int i = 0; i < 128; ++i) sum += acc[i];
  return sum;
}

template <int kMode, bool kBulkFeed>
__global__ void __launch_bounds__(kThreads, 1)
    swap_ss_kernel(const uint8_t* tokens, const uint8_t* weights, size_t w_bytes, int64_t* cycles, float* sink) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ uint8_t raw[];
  Smem& s = *reinterpret_cast<Smem*>(raw + (1024 - smem_address(raw) % 1024) % 1024);
  for (int i = int(threadIdx.x); i < kBufs * kBBytes / 4; i += kThreads) {
    reinterpret_cast<uint32_t*>(s.b)[i] = 0x3f803f80u;  // B starts finite where the decode is left out
  }
  if (threadIdx.x == 0) {
    for (int i = 0; i < kSlots; ++i) {
      mbarrier_init(&s.full[i], kBulkFeed ? 1 : 256);
      mbarrier_init(&s.empty[i], 256 + 128);
    }
    for (int i = 0; i < kBufs; ++i) {
      mbarrier_init(&s.b_full[i], 256);
      mbarrier_init(&s.b_empty[i], 128);
    }
    fence_barrier_init();
  }
  __syncthreads();
  const int wg = int(threadIdx.x) / 128;
  const size_t per_block = w_bytes / gridDim.x / 1024 * 1024;
  if (wg < 2) {
    warpgroup_reg_dealloc<104>();
    const uint32_t kept = decode<kMode, kBulkFeed>(s, wg, tokens, weights + per_block * blockIdx.x, per_block);
    cp_async_wait<0>();
    if (kept == 0x12345678u) sink[threadIdx.x] = 1.0f;
  } else {
    warpgroup_reg_alloc<240>();
    const int64_t t0 = clock64();
    const float sum = mma<kBulkFeed>(s, tokens, weights + per_block * blockIdx.x, per_block);
    if (threadIdx.x == 256) cycles[blockIdx.x] = clock64() - t0;
    if (sum == 1234.5f) sink[threadIdx.x] = sum;
  }
#endif
}

template <int kMode, bool kBulkFeed>
void run(const char* name, const uint8_t* tokens, const uint8_t* weights, size_t w_bytes, int blocks,
         int64_t* d_cycles, float* d_sink) {
  const int smem = int(sizeof(Smem)) + 1024;
  cudaFuncSetAttribute(swap_ss_kernel<kMode, kBulkFeed>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  swap_ss_kernel<kMode, kBulkFeed><<<blocks, kThreads, smem>>>(tokens, weights, w_bytes, d_cycles, d_sink);
  cudaEventRecord(e0);
  swap_ss_kernel<kMode, kBulkFeed><<<blocks, kThreads, smem>>>(tokens, weights, w_bytes, d_cycles, d_sink);
  cudaEventRecord(e1);
  const cudaError_t e = cudaDeviceSynchronize();
  if (e != cudaSuccess) {
    std::printf("%s: %s\n", name, cudaGetErrorString(e));
    return;
  }
  float ms = 0;
  cudaEventElapsedTime(&ms, e0, e1);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  int64_t cycles[1024];
  cudaMemcpy(cycles, d_cycles, sizeof(int64_t) * blocks, cudaMemcpyDeviceToHost);
  double sum = 0;
  for (int b = 0; b < blocks; ++b) sum += double(cycles[b]);
  const double bytes = double(blocks) * kRounds * kWeightBytes;
  std::printf("%-22s weights %5zu MB   MMA cycles/chunk %7.1f (tensor busy %.2f)   weights %.2f TB/s\n", name,
              w_bytes >> 20, sum / blocks / kRounds, 512.0 / (sum / blocks / kRounds), bytes / (ms * 1e-3) / 1e12);
}

}  // namespace
}  // namespace fp4moe::cuda

int main() {
  using namespace fp4moe::cuda;
  cudaDeviceProp prop{};
  const int blocks = fp4moe::micro::sm90_multiprocessors("fp4moe_swap_ss", &prop);
  if (blocks == 0) return 0;
  std::printf("%s, %d SMs, one block of %d threads per SM, %zu bytes of shared memory\n", prop.name, blocks, kThreads,
              sizeof(Smem));
  const size_t big = size_t(1) << 30, tok = size_t(16) << 20;
  uint8_t *weights = nullptr, *tokens = nullptr;
  int64_t* cycles = nullptr;
  float* sink = nullptr;
  cudaMalloc(&weights, big);
  cudaMalloc(&tokens, tok);
  cudaMalloc(&cycles, sizeof(int64_t) * 1024);
  cudaMalloc(&sink, 4096);
  cudaMemset(weights, 0x35, big);  // codes 3 and 5, scale code 0x35: finite operands
  cudaMemset(tokens, 0x3c, tok);
  for (const size_t bytes : {size_t(16) << 20, big}) {
    run<kNoDecode, false>("cp.async: no decode", tokens, weights, bytes, blocks, cycles, sink);
    run<kDecodeOnly, false>("cp.async: no stores", tokens, weights, bytes, blocks, cycles, sink);
    run<kDecodeStore, false>("cp.async: stmatrix", tokens, weights, bytes, blocks, cycles, sink);
    run<kNoDecode, true>("bulk: no decode", tokens, weights, bytes, blocks, cycles, sink);
    run<kDecodeOnly, true>("bulk: no stores", tokens, weights, bytes, blocks, cycles, sink);
    run<kDecodeStore, true>("bulk: stmatrix", tokens, weights, bytes, blocks, cycles, sink);
  }
  cudaFree(weights);
  cudaFree(tokens);
  cudaFree(cycles);
  cudaFree(sink);
  return 0;
}
