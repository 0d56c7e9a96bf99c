// CPU reference of the dense NVFP4 linear layer: spec §4 computed as written there.
//
//   x̂[m][j] = bf16_to_float(x[m][j])                 (BF16 x, exact)
//           = e2m1(qx[m][j]) · sfx[m][j/16]           (pre-quantized x, without its global scale; exact in fp32)
//   ŵ[n][j] = e2m1(qw[n][j]) · sfw[n][j/16]           (without the global scale; exact in fp32)
//   out[m][n] = float_to_bf16(mul_rn(alpha, Σ_j x̂[m][j]·ŵ[n][j]))
// Every product x̂·ŵ is exact in fp32 (spec §4), so only the summation order matters. It is fixed:
// kLanes = 16 partial sums starting at +0, lane l adding the products of the elements j ≡ l (mod 16) in increasing
// j, then the lanes combined by a pairwise tree (lane[l] += lane[l + 8] for l < 8, then + 4, + 2, + 1). The order
// depends on K alone — not on the thread count, the row blocking or M — and is the MoE reference's order.
//
// Decomposition: x is processed in chunks of at most kChunkRows rows. Per chunk, one OpenMP parallel region
//   1. widens / dequantizes the chunk's x rows to fp32 (parallel over rows), then
//   2. runs tasks of kRowBlock weight rows (dynamically scheduled): a task dequantizes its rows to fp32 once
//      (a 16-entry E2M1 table × the E4M3 block scale) and computes them against every x row of the chunk.
// Each output element is written by exactly one thread, so the schedule does not change any bit.
#include "reference/linear_reference.hpp"

#include <algorithm>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "fp4moe/error.hpp"
#include "fp4moe/nvfp4.hpp"
#include "reference/cpu_math.hpp"

namespace fp4moe::reference {
namespace {

constexpr int64_t kChunkRows = 256;  // x rows converted to fp32 at a time (bounds the scratch)
constexpr int64_t kRowBlock = 8;     // weight rows dequantized together by one task

// Row m of x as fp32 x̂ (see the top of the file).
void load_x_row(const LinearProblem& p, int64_t m, float* dst) {
  const int64_t k = p.k;
  if (p.x_fp4 != nullptr) {
    dequantize_row(p.x_fp4 + m * (k / 2), p.x_scale + m * (k / kBlockSize), k, dst);
    return;
  }
  const uint16_t* x = p.x + m * (p.x_ld > 0 ? p.x_ld : k);
  for (int64_t j = 0; j < k; ++j) dst[j] = bf16_to_float(x[j]);
}

// Weight rows [r0, r1) against x rows [m0, m0 + rows) held as fp32 in `xf` ([rows, K]).
void compute_block(const LinearProblem& p, const float* xf, int64_t m0, int64_t rows, int64_t r0, int64_t r1,
                   float* wf) {
  const int64_t k = p.k, out_ld = p.out_ld > 0 ? p.out_ld : p.n;
  for (int64_t r = r0; r < r1; ++r) {
    dequantize_row(p.w + r * (k / 2), p.w_scale + r * (k / kBlockSize), k, wf + (r - r0) * k);
  }
  for (int64_t i = 0; i < rows; ++i) {
    uint16_t* out = p.out + (m0 + i) * out_ld;
    for (int64_t r = r0; r < r1; ++r) {
      out[r] = float_to_bf16(mul_rn(p.alpha, dot(xf + i * k, wf + (r - r0) * k, k)));
    }
  }
}

}  // namespace

void run_linear(const LinearProblem& p, int threads) {
  FP4MOE_CHECK_ARG(p.k > 0 && p.k % kBlockSize == 0, "k", "a positive multiple of 16", p.k);
  FP4MOE_CHECK(p.m >= 0 && p.n >= 0, "run_linear: negative size m = ", p.m, ", n = ", p.n);
  FP4MOE_CHECK(p.w != nullptr && p.w_scale != nullptr && p.out != nullptr, "run_linear: missing weight/out pointer");
  FP4MOE_CHECK((p.x != nullptr) != (p.x_fp4 != nullptr && p.x_scale != nullptr),
               "run_linear: give either BF16 x or pre-quantized x with its scales");
  if (p.m == 0 || p.n == 0) return;
  if (threads <= 0) threads = max_threads();
  const int64_t k = p.k, chunk = std::min(p.m, kChunkRows);
  const int64_t blocks = (p.n + kRowBlock - 1) / kRowBlock;
  std::vector<float> xf(size_t(chunk * k));
  std::vector<float> wf(size_t(threads) * size_t(kRowBlock * k));
  for (int64_t m0 = 0; m0 < p.m; m0 += chunk) {
    const int64_t rows = std::min(chunk, p.m - m0);
#pragma omp parallel num_threads(threads)
    {
      float* rows_f = wf.data() + size_t(thread_index()) * size_t(kRowBlock * k);
#pragma omp for schedule(static)
      for (int64_t i = 0; i < rows; ++i) load_x_row(p, m0 + i, xf.data() + i * k);
#pragma omp for schedule(dynamic)
      for (int64_t b = 0; b < blocks; ++b) {
        compute_block(p, xf.data(), m0, rows, b * kRowBlock, std::min(p.n, (b + 1) * kRowBlock), rows_f);
      }
    }
  }
}

}  // namespace fp4moe::reference
