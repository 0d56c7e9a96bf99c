// Diagnostic build switch for the wgmma kernels (off by default; compiled out entirely): with FP4MOE_WGMMA_PROFILE
// defined (-DCMAKE_CUDA_FLAGS=-DFP4MOE_WGMMA_PROFILE, a separate build), each role of a block sums clock64 cycles
// per stage (the decode's registers held before the clock: its loads are counted in b) and warp 0 of every role in
// every 33rd block prints them when the kernel ends:
//   consumer: a = waiting for a full slot, b = decode, c = wgmma issue, d = wgmma wait, e = epilogue, n = chunks,
//             f = whole items (main loop + epilogue), g = main loops (total − f: between items; f − a..e: the rest);
//   producer: a = waiting for an empty slot, b = issuing a chunk's copies, n = chunks.
// bench/NOTES.md reads these as cycles per chunk. Timing in such a build is not representative.
#pragma once

#include <cstdint>
#include <cstdio>

namespace fp4moe::cuda {

#if defined(FP4MOE_WGMMA_PROFILE)
struct WgmmaProf {
  long long v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
};
#define FP4MOE_PROF_ARG , WgmmaProf& prof
#define FP4MOE_PROF_PASS , prof
#define FP4MOE_PROF_CLOCK(name) const long long name = clock64()
#define FP4MOE_PROF_ADD(i, x) prof.v[i] += (x)
#define FP4MOE_PROF_HOLD(x) x

// Warp 0 of the role, every 33rd block: the sums since `start` (kernel-wide totals; bench/NOTES.md divides by n).
__device__ __forceinline__ void wgmma_prof_report(const WgmmaProf& prof, long long start, const char* role, int kn,
                                                  int64_t k_tiles) {
  const long long total = clock64() - start;
  if (threadIdx.x % 128 == 0 && blockIdx.x % 33 == 0) {
    printf("PROF k%d kt %d %s blk %d total %lld a %lld b %lld c %lld d %lld e %lld n %lld f %lld g %lld\n", kn,
           int(k_tiles), role, int(blockIdx.x), total, prof.v[0], prof.v[1], prof.v[2], prof.v[3], prof.v[4],
           prof.v[5], prof.v[6], prof.v[7]);
  }
}
#else
#define FP4MOE_PROF_ARG
#define FP4MOE_PROF_PASS
#define FP4MOE_PROF_CLOCK(name)
#define FP4MOE_PROF_ADD(i, x)
#define FP4MOE_PROF_HOLD(x)
#endif

}  // namespace fp4moe::cuda
