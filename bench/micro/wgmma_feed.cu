// Micro-benchmark of the wgmma kernels' two limits (H100/H200, sm_90a), apart from the MoE around them:
//  - consumers: two warpgroups that decode FP4 fragment words from shared memory into A registers and issue
//    8 RS m64n128k16 wgmmas per 64-k chunk, as wgmma_gemm.cuh does, with the data already in shared memory;
//  - feed: a producer warpgroup that meanwhile streams 25 KB per chunk (one chunk of the wgmma kernels: 16 KB of
//    token rows + 9 KB of weight tiles) from global memory into a 5-slot ring, by per-thread cp.async or by
//    bulk copies on the copy engine, from a buffer that fits in the L2 (16 MB) or one that does not (1 GB).
// It prints the consumers' cycles per chunk (1024 at the full tensor rate of both) and the bytes per cycle per SM
// the producer got while all 132 SMs pulled at once. Results and their reading: bench/NOTES.md, session 10.
//   build/<preset>/bench/fp4moe_wgmma_feed
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>

#include "cuda/common/fragment_decode.cuh"
#include "cuda/common/ptx.cuh"
#include "cuda/gemm/wgmma_gemm.cuh"
#include "sm90_device.hpp"

namespace fp4moe::cuda {
namespace {

constexpr int kChunkBytes = 25 * 1024, kSlots = 5, kConsumerBytes = 64 * 1024, kRounds = 4000;
enum Feed { kNone = 0, kCpAsync = 1, kBulk = 2 };

// Producer warpgroup: chunk after chunk into the ring until the consumers are done; returns its bytes.
template <int kFeed>
__device__ int64_t feed(uint8_t* ring, const uint8_t* src, size_t per_block, uint64_t* bars, const volatile int& done) {
  int64_t c = 0;
  for (; !done; ++c) {
    const int slot = int(c % kSlots);
    const size_t off = size_t(c) * kChunkBytes % (per_block - kChunkBytes) / 16 * 16;
    if constexpr (kFeed == kCpAsync) {
      for (int i = int(threadIdx.x); i < kChunkBytes / 16; i += 128) {
        cp_async_16(ring + slot * kChunkBytes + 16 * i, src + off + 16 * i, 16);
      }
      cp_async_commit();
      cp_async_wait<kSlots - 1>();
    } else if (threadIdx.x == 0) {
      if (c >= kSlots) mbarrier_wait_parity(&bars[slot], uint32_t((c / kSlots - 1) & 1));
      mbarrier_arrive_expect_tx(&bars[slot], kChunkBytes);
      bulk_copy_to_shared(ring + slot * kChunkBytes, src + off, kChunkBytes, &bars[slot], l2_copy_policy(true));
    }
  }
  if constexpr (kFeed == kCpAsync) cp_async_wait<0>();
  if (kFeed == kBulk && threadIdx.x == 0) {
    for (int64_t last = c - 1; last >= 0 && last >= c - kSlots; --last) {
      mbarrier_wait_parity(&bars[last % kSlots], uint32_t((last / kSlots) & 1));
    }
  }
  return c * kChunkBytes;
}

// Consumer warpgroup: kRounds chunks of decode + 8 wgmmas + wait, as wgmma_consume; the codes and token tiles
// rotate over a few places so that nothing is hoisted out of the loop.
__device__ float consume(const uint8_t* base) {
  const int warp = int(threadIdx.x / 32) % 4, lane = int(threadIdx.x % 32);
  WgmmaAcc<128> acc;
#pragma unroll
  for (int h = 0; h < kWgmmaHalves; ++h) {
#pragma unroll
    for (int i = 0; i < 64; ++i) acc[h][i] = 0.0f;
  }
  const uint64_t desc = wgmma_desc_k_sw128(base);
  for (int r = 0; r < kRounds; ++r) {
    const uint8_t* codes = base + 32768 + (r % 4) * 4096;
    WgmmaChunkA a;
#pragma unroll
    for (int h = 0; h < kWgmmaHalves; ++h) {
      const uint4 word = *reinterpret_cast<const uint4*>(codes + (4 * h + warp) * 512 + 16 * lane);
      const FragScale scale = frag_scale(*reinterpret_cast<const uint16_t*>(codes + 2048 + 2 * lane));
      frag_a_operand(word.x, scale, a[0][h]);
      frag_a_operand(word.y, scale, a[1][h]);
      frag_a_operand(word.z, scale, a[2][h]);
      frag_a_operand(word.w, scale, a[3][h]);
    }
    const uint64_t d = desc + (r % 2) * (16384 >> 4);
    wgmma_fence();
#pragma unroll
    for (int s = 0; s < 4; ++s) {
#pragma unroll
      for (int h = 0; h < kWgmmaHalves; ++h) wgmma_bf16_m64n128k16_rs(acc[h], a[s][h], d + 2 * s, 1);
    }
    wgmma_commit();
    wgmma_wait<0>();
    wgmma_hold_a(a);
#pragma unroll
    for (int h = 0; h < kWgmmaHalves; ++h) wgmma_hold(acc[h]);
  }
  float sum = 0.0f;
#pragma unroll
  for (int h = 0; h < kWgmmaHalves; ++h) {
#pragma unroll
    for (int i = 0; i < 64; ++i) sum += acc[h][i];
  }
  return sum;
}

// out[4·block + 0]: consumer cycles, + 1: producer cycles, + 2: producer bytes.
template <int kFeed>
__global__ void __launch_bounds__(384, 1) feed_kernel(const uint8_t* src, size_t src_bytes, int64_t* out, float* sink) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ uint8_t raw[];
  uint8_t* base = raw + (1024 - smem_address(raw) % 1024) % 1024;
  __shared__ uint64_t bars[kSlots];
  __shared__ volatile int done;
  for (int i = int(threadIdx.x); i < kConsumerBytes / 4; i += blockDim.x) {
    reinterpret_cast<uint32_t*>(base)[i] = (uint32_t(i) * 2654435761u) & 0x37773777u;  // finite BF16 and codes
  }
  if (threadIdx.x == 0) {
    for (auto& b : bars) mbarrier_init(&b, 1);
    done = 0;
    fence_barrier_init();
  }
  __syncthreads();
  if (threadIdx.x < 128) {
    warpgroup_reg_dealloc<40>();
    if constexpr (kFeed != kNone) {
      const size_t per_block = src_bytes / gridDim.x / 1024 * 1024;
      const int64_t t0 = clock64();
      const int64_t bytes = feed<kFeed>(base + kConsumerBytes, src + per_block * blockIdx.x, per_block, bars, done);
      if (threadIdx.x == 0) {
        out[4 * blockIdx.x + 1] = clock64() - t0;
        out[4 * blockIdx.x + 2] = bytes;
      }
    }
    return;
  }
  warpgroup_reg_alloc<232>();
  const int64_t t0 = clock64();
  const float sum = consume(base);
  const int64_t t1 = clock64();
  named_barrier_sync(1, 256);
  if (threadIdx.x == 128) {
    out[4 * blockIdx.x] = t1 - t0;
    done = 1;
  }
  if (sum == 1234.5f) sink[threadIdx.x] = sum;
#endif
}

template <int kFeed>
void run(const char* name, const uint8_t* src, size_t src_bytes, int blocks, int64_t* d_out, float* d_sink) {
  const int smem = kConsumerBytes + kSlots * kChunkBytes + 1024;
  cudaFuncSetAttribute(feed_kernel<kFeed>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  cudaMemset(d_out, 0, sizeof(int64_t) * 4 * blocks);
  for (int i = 0; i < 2; ++i) feed_kernel<kFeed><<<blocks, 384, smem>>>(src, src_bytes, d_out, d_sink);
  const cudaError_t e = cudaDeviceSynchronize();
  if (e != cudaSuccess) {
    std::printf("%s: %s\n", name, cudaGetErrorString(e));
    return;
  }
  int64_t out[4 * 1024];
  cudaMemcpy(out, d_out, sizeof(int64_t) * 4 * blocks, cudaMemcpyDeviceToHost);
  double cycles = 0, feed_cycles = 0, feed_bytes = 0;
  for (int b = 0; b < blocks; ++b) {
    cycles += double(out[4 * b]);
    feed_cycles += double(out[4 * b + 1]);
    feed_bytes += double(out[4 * b + 2]);
  }
  const double per_chunk = cycles / blocks / kRounds;
  std::printf("%-10s %8zu MB   consumer cycles/chunk %7.1f (tensor busy %.2f)   feed %5.1f B/cycle/SM\n", name,
              src_bytes >> 20, per_chunk, 1024.0 / per_chunk, feed_cycles > 0 ? feed_bytes / feed_cycles : 0.0);
}

}  // namespace
}  // namespace fp4moe::cuda

int main() {
  using namespace fp4moe::cuda;
  cudaDeviceProp prop{};
  const int blocks = fp4moe::micro::sm90_multiprocessors("fp4moe_wgmma_feed", &prop);
  if (blocks == 0) return 0;
  std::printf("%s, %d SMs, one block per SM\n", prop.name, blocks);
  const size_t big = size_t(1) << 30;
  uint8_t* src = nullptr;
  int64_t* out = nullptr;
  float* sink = nullptr;
  cudaMalloc(&src, big);
  cudaMalloc(&out, sizeof(int64_t) * 4 * 1024);
  cudaMalloc(&sink, 4096);
  cudaMemset(src, 0x11, big);
  for (const size_t bytes : {size_t(16) << 20, big}) {
    run<kNone>("no feed", src, bytes, blocks, out, sink);
    run<kCpAsync>("cp.async", src, bytes, blocks, out, sink);
    run<kBulk>("bulk copy", src, bytes, blocks, out, sink);
  }
  cudaFree(src);
  cudaFree(out);
  cudaFree(sink);
  return 0;
}
