// The wgmma path's x reorder (x_reorder_launch) against the host permutation, bit for bit: every column l of a
// 64-column chunk lands at format::fragment_k_slot(l) of the same chunk, for random BF16 bits (fresh seed, printed
// on failure). Cases: one chunk of one row, rows that do not fill a warp or a block, strided rows whose gaps must
// stay untouched, in place (src == dst), and layer-sized rows (H = 2048 and 7168); zero rows launch nothing. With
// W4A4's quantization on the way: against the quantize pass (its dequantized output, which test_quantize_gpu.cpp
// checks against the host's quantize_block) followed by the plain reorder, bit for bit (random bits take in NaNs,
// infinities, subnormals and huge values, so every path of a block's arithmetic is hit).
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "cuda/fc1/fc1_launch.hpp"
#include "format/fragment_layout.hpp"
#include "fp4moe/nvfp4.hpp"
#include "gpu/gpu_test_util.hpp"
#include "test_util.hpp"

namespace fp4moe {
namespace {

using testing::DeviceBuffer;
using testing::fresh_seed;

constexpr uint16_t kGap = 0xABAB;  // DeviceBuffer's poison, as 16-bit words

struct ReorderCase {
  int64_t rows, k, src_ld, dst_ld;
  bool in_place;
};

std::vector<uint16_t> random_rows(const ReorderCase& c, std::mt19937_64& rng) {
  std::vector<uint16_t> src(size_t(c.rows * c.src_ld), kGap);
  for (int64_t r = 0; r < c.rows; ++r) {
    for (int64_t i = 0; i < c.k; ++i) src[size_t(r * c.src_ld + i)] = uint16_t(rng());
  }
  return src;
}

cuda::XReorderParams reorder_params(const void* src, int64_t src_ld, void* dst, int64_t dst_ld, int64_t rows,
                                    int64_t k) {
  cuda::XReorderParams p;
  p.src = static_cast<const uint16_t*>(src);
  p.src_ld = src_ld;
  p.dst = static_cast<uint16_t*>(dst);
  p.dst_ld = dst_ld;
  p.rows = rows;
  p.k = k;
  return p;
}

// Case c's launch: its rows of d_src into d_dst, or back into d_src in place.
cuda::XReorderParams case_params(const ReorderCase& c, DeviceBuffer& d_src, DeviceBuffer& d_dst) {
  return c.in_place ? reorder_params(d_src.get(), c.src_ld, d_src.get(), c.src_ld, c.rows, c.k)
                    : reorder_params(d_src.get(), c.src_ld, d_dst.get(), c.dst_ld, c.rows, c.k);
}

::testing::Message case_trace(const ReorderCase& c, uint64_t seed) {
  return ::testing::Message() << "seed " << seed << " rows " << c.rows << " k " << c.k << " src_ld " << c.src_ld
                              << " dst_ld " << c.dst_ld << (c.in_place ? " in place" : "");
}

void check_reorder(const ReorderCase& c) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(case_trace(c, seed));
  std::mt19937_64 rng(seed);
  const std::vector<uint16_t> src = random_rows(c, rng);
  DeviceBuffer d_src = DeviceBuffer::from_host(src);
  DeviceBuffer d_dst(size_t(c.rows * c.dst_ld) * sizeof(uint16_t));
  const cuda::XReorderParams p = case_params(c, d_src, d_dst);
  cuda::x_reorder_launch(p, nullptr);
  FP4MOE_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<uint16_t> got = (c.in_place ? d_src : d_dst).to_host<uint16_t>();
  int64_t from[format::kFragK];  // source column of each slot of a chunk
  for (int l = 0; l < format::kFragK; ++l) from[format::fragment_k_slot(l)] = l;
  int64_t bad = 0;
  for (int64_t r = 0; r < c.rows; ++r) {
    for (int64_t i = 0; i < p.dst_ld; ++i) {
      const int64_t l = i % format::kFragK, base = i - l;
      uint16_t want = kGap;
      if (i < c.k) {
        want = src[size_t(r * c.src_ld + base + from[l])];
      } else if (c.in_place) {
        want = src[size_t(r * c.src_ld + i)];
      }
      const uint16_t have = got[size_t(r * p.dst_ld + i)];
      if (have != want && ++bad <= 5) ADD_FAILURE() << "row " << r << " col " << i << ": " << have << " != " << want;
    }
  }
  EXPECT_EQ(bad, 0);
}

TEST(XReorderGpu, MatchesTheFragmentKOrder) {
  FP4MOE_REQUIRE_GPU();
  check_reorder({1, 64, 64, 64, false});
  check_reorder({3, 192, 192, 192, false});      // 9 chunks: part of one warp
  check_reorder({37, 192, 200, 264, false});     // strided rows, gaps untouched
  check_reorder({37, 192, 200, 200, true});      // in place
  check_reorder({4099, 2048, 2048, 2048, false});
  check_reorder({513, 7168, 7168, 7168, true});
}

// W4A4: the reorder that quantizes on the way against the quantize pass (dequantized output) followed by the plain
// reorder, bit for bit, gaps and in place included.
void check_quantizing_reorder(const ReorderCase& c, float gs) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(case_trace(c, seed) << " gs " << gs);
  std::mt19937_64 rng(seed);
  std::vector<uint16_t> src = random_rows(c, rng);
  std::normal_distribution<float> normal(0.0f, 1.0f);  // odd rows: activations-like values instead of random bits
  for (int64_t r = 1; r < c.rows; r += 2) {
    for (int64_t i = 0; i < c.k; ++i) src[size_t(r * c.src_ld + i)] = float_to_bf16(normal(rng));
  }
  DeviceBuffer d_src = DeviceBuffer::from_host(src);
  DeviceBuffer d_dequant(size_t(c.rows * c.k) * sizeof(uint16_t));
  DeviceBuffer d_want(size_t(c.rows * c.dst_ld) * sizeof(uint16_t));
  cuda::launch_quantize_nvfp4(testing::dequant_only_params(d_src, c.rows, c.k, c.src_ld, gs, d_dequant), nullptr);
  cuda::x_reorder_launch(reorder_params(d_dequant.get(), c.k, d_want.get(), c.dst_ld, c.rows, c.k), nullptr);
  DeviceBuffer d_dst(size_t(c.rows * c.dst_ld) * sizeof(uint16_t));
  cuda::XReorderParams p = case_params(c, d_src, d_dst);
  p.quantize = true;
  p.gs = gs;
  cuda::x_reorder_launch(p, nullptr);
  FP4MOE_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<uint16_t> got = (c.in_place ? d_src : d_dst).to_host<uint16_t>();
  const std::vector<uint16_t> want = d_want.to_host<uint16_t>();
  int64_t bad = 0, nonzero = 0;
  for (int64_t r = 0; r < c.rows; ++r) {
    for (int64_t i = 0; i < p.dst_ld; ++i) {
      const uint16_t expect = i < c.k      ? want[size_t(r * c.dst_ld + i)]
                              : c.in_place ? src[size_t(r * c.src_ld + i)]
                                           : kGap;
      const uint16_t have = got[size_t(r * p.dst_ld + i)];
      nonzero += r % 2 == 1 && i < c.k && (have & 0x7fffu) != 0;
      if (have != expect && ++bad <= 5) {
        ADD_FAILURE() << "row " << r << " col " << i << ": " << have << " != " << expect;
      }
    }
  }
  EXPECT_EQ(bad, 0);
  if (c.rows > 1) {
    EXPECT_GT(nonzero, c.rows / 2 * c.k / 2) << "most quantized values of the normal rows are not zero";
  }
}

TEST(XReorderGpu, QuantizesOnTheWayAsTheQuantizePass) {
  FP4MOE_REQUIRE_GPU();
  check_quantizing_reorder({1, 64, 64, 64, false}, 1.0f);
  check_quantizing_reorder({37, 192, 200, 264, false}, 0.37f);         // strided rows, gaps untouched
  check_quantizing_reorder({37, 192, 200, 200, true}, 1.0f / 3.0f);    // in place
  check_quantizing_reorder({4099, 2048, 2048, 2048, false}, 2688.0f);  // a checkpoint-like gs: 448 · 6 / amax 1
}

TEST(XReorderGpu, ZeroRowsLaunchNothing) {
  FP4MOE_REQUIRE_GPU();
  cuda::XReorderParams p;
  p.k = 2048;
  cuda::x_reorder_launch(p, nullptr);  // a launch with no blocks would be an error
  FP4MOE_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace
}  // namespace fp4moe
