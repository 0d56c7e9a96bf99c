// Persistent schedule of the wgmma kernels (wgmma_gemm.cuh): one block per SM walks the work items blockIdx.x,
// blockIdx.x + gridDim.x, ...; item i is work tile i / block_groups and block group i % block_groups. Consecutive
// items share a work tile, and consecutive tiles mostly an expert, so the blocks that run at the same time read the
// same token rows and expert weights: those reads hit the L2.
// The producer and the consumers of a block each walk the same items, in the same order.
#pragma once

#include <cstdint>

#include "cuda/gemm/wgmma_gemm.cuh"
#include "cuda/route/work_tiles.cuh"

namespace fp4moe::cuda {

// Calls body(tile, block_group) for each of this block's items that has work. The item count is read again on each
// step rather than kept (a register less across the 160-row tiles' main loop, which otherwise spilled it).
template <class Body>
__device__ __forceinline__ void wgmma_for_each_item(const WorkTiles& work, int64_t block_groups, Body&& body) {
  for (int64_t item = blockIdx.x; item < work_tile_count(work) * block_groups; item += gridDim.x) {
    RouteTile tile;
    if (work_tile(work, item / block_groups, tile)) body(tile, item % block_groups);
  }
}

// The whole block's work (call from every thread): the barriers, then per item the producer warpgroup runs
// produce(tile, block_group, ring) and each consumer warpgroup the main loop over k_tiles chunks followed by
// epilogue(tile, group, acc) for its output group 2·block_group + consumer, each role with its register budget.
// `ring` runs on over all of the role's items (WgmmaRing).
template <int kN, class Stage, class Produce, class Epilogue>
__device__ __forceinline__ void wgmma_persistent_block(WgmmaSmem<kN, Stage>& smem, const WorkTiles& work,
                                                       int64_t block_groups, int64_t k_tiles, Produce&& produce,
                                                       Epilogue&& epilogue) {
  wgmma_pipeline_init(smem);
  WgmmaRing ring;
#if defined(FP4MOE_WGMMA_PROFILE)
  WgmmaProf prof;
  const long long start = clock64();
#endif
  if (wgmma_warpgroup() == 0) {
    warpgroup_reg_dealloc<kWgmmaProducerRegs>();
    wgmma_for_each_item(work, block_groups,
                        [&](const RouteTile& tile, int64_t block_group) {
                          produce(tile, block_group, ring FP4MOE_PROF_PASS);
                        });
    cp_async_wait<0>();  // nothing of this thread in flight when it exits
#if defined(FP4MOE_WGMMA_PROFILE)
    wgmma_prof_report(prof, start, "prod", kN, k_tiles);
#endif
    return;
  }
  warpgroup_reg_alloc<kWgmmaConsumerRegs>();
  wgmma_for_each_item(work, block_groups, [&](const RouteTile& tile, int64_t block_group) {
    FP4MOE_PROF_CLOCK(ti0);
    WgmmaAcc<kN> acc;
    wgmma_consume(smem, k_tiles, tile.row_end - tile.row_begin, acc, ring FP4MOE_PROF_PASS);
    FP4MOE_PROF_CLOCK(te0);
    FP4MOE_PROF_ADD(7, te0 - ti0);
    epilogue(tile, kWgmmaConsumers * block_group + wgmma_consumer(), acc);
    FP4MOE_PROF_CLOCK(te1);
    FP4MOE_PROF_ADD(4, te1 - te0);
    FP4MOE_PROF_ADD(6, te1 - ti0);
  });
#if defined(FP4MOE_WGMMA_PROFILE)
  wgmma_prof_report(prof, start, "cons", kN, k_tiles);
#endif
}

}  // namespace fp4moe::cuda
