// Building blocks shared by the CPU references (MoE and dense linear): OpenMP thread queries, exact FP4 row
// dequantization and the fixed-order dot product that makes results independent of the thread count.
#pragma once

#include <cstdint>

namespace fp4moe::reference {

inline constexpr int kLanes = 16;  // independent partial sums of a dot product

int max_threads();   // the OpenMP default (1 without OpenMP)
int thread_index();  // within a parallel region (0 without OpenMP)

// Σ a[j]·b[j] over n (a multiple of kLanes): kLanes partial sums starting at +0, lane l adding the products of
// elements j ≡ l (mod kLanes) in increasing j, then combined by a fixed pairwise tree (lane[l] += lane[l + 8],
// then + 4, + 2, + 1). The order depends on nothing but n; the lanes let the compiler vectorize without
// reassociating anything itself.
float dot(const float* a, const float* b, int64_t n);

// Row of `cols` packed E2M1 codes with linear E4M3 scales → fp32 e2m1(q)·sf (exact; no global scale).
void dequantize_row(const uint8_t* packed, const uint8_t* scales, int64_t cols, float* dst);

}  // namespace fp4moe::reference
