// The routing pre-pass on the GPU: its three paths (RoutePath: one block, segments, CUB sort), each forced where it
// applies, bit for bit against each other on every output buffer (all poisoned first, so an unwritten entry shows),
// and each against a host computation: stable order by local expert with the non-local pairs last, offsets,
// positions and work tiles of 8 to 64 rows. Cases: P = 1, 8, odd sizes, each block size of the one-block path, 8192
// (its largest) and 8193, one and many segments (a last one part-filled), E_local = 1, E_local at and past
// kRouteSmallMaxExperts, all pairs on one expert (a warp's whole segment on one key: its 16-bit count at its
// largest), ids out of range, random ids (fresh seed, printed on failure).
// The same launch prepares x for FC1 (every path): W4A4 quantized, bit for bit the CPU's quantization; wgmma path
// reordered (W4A4: and quantized), bit for bit x_reorder_launch's output; routing outputs unchanged either way.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <random>
#include <vector>

#include "cuda/fc1/x_reorder_launch.hpp"
#include "cuda/route/route_launch.hpp"
#include "fp4moe/nvfp4.hpp"
#include "gpu/gpu_test_util.hpp"
#include "test_util.hpp"

namespace fp4moe {
namespace {

using cuda::RouteBuffers;
using cuda::RouteParams;
using cuda::RoutePath;
using cuda::RouteTile;
using testing::DeviceBuffer;
using testing::fresh_seed;

constexpr int kPoison = 0x7f;

enum class Ids {
  kUniform,     // uniform over [0, E)
  kOneExpert,   // every pair on one local expert
  kSkewed,      // most pairs on one local expert, the others uniform over [0, E)
  kOutOfRange,  // a mix of -1, E, INT32_MIN, INT32_MAX, non-local ids in [0, E) and local ids
};

struct RouteCase {
  int64_t pairs, num_experts, local_experts, expert_offset;
  Ids ids;
  int tile_rows = 64;
};

std::vector<int32_t> make_ids(const RouteCase& c, std::mt19937_64& rng) {
  std::vector<int32_t> ids(size_t(c.pairs));
  std::uniform_int_distribution<int32_t> any_expert(0, int32_t(c.num_experts - 1));
  std::uniform_int_distribution<int32_t> local_expert(int32_t(c.expert_offset),
                                                      int32_t(c.expert_offset + c.local_experts - 1));
  const int32_t hot = int32_t(c.expert_offset + c.local_experts / 2);
  const int32_t odd[] = {-1, int32_t(c.num_experts), INT32_MIN, INT32_MAX};
  for (int32_t& id : ids) {
    switch (c.ids) {
      case Ids::kUniform: id = any_expert(rng); break;
      case Ids::kOneExpert: id = hot; break;
      case Ids::kSkewed: id = rng() % 8 != 0 ? hot : any_expert(rng); break;
      case Ids::kOutOfRange: {
        const uint64_t r = rng() % 3;
        id = r == 0 ? odd[rng() % 4] : r == 1 ? any_expert(rng) : local_expert(rng);
        break;
      }
    }
  }
  return ids;
}

// The outputs as the host computes them.
struct HostRoute {
  std::vector<int32_t> keys_sorted, pairs_sorted, offsets, position;
  std::vector<RouteTile> tiles;
};

HostRoute host_route(const RouteCase& c, const std::vector<int32_t>& ids) {
  HostRoute h;
  const int64_t e_local = c.local_experts;
  std::vector<std::vector<int32_t>> by_key(size_t(e_local + 1));
  for (int64_t i = 0; i < c.pairs; ++i) {
    const int64_t id = ids[size_t(i)];
    const int64_t local = id - c.expert_offset;
    const bool is_local = id >= 0 && id < c.num_experts && local >= 0 && local < e_local;
    by_key[size_t(is_local ? local : e_local)].push_back(int32_t(i));
  }
  h.position.assign(size_t(c.pairs), -1);
  for (int64_t e = 0; e <= e_local; ++e) {
    h.offsets.push_back(int32_t(h.pairs_sorted.size()));
    const int32_t begin = int32_t(h.pairs_sorted.size());
    for (const int32_t pair : by_key[size_t(e)]) {
      if (e < e_local) h.position[size_t(pair)] = int32_t(h.pairs_sorted.size());
      h.keys_sorted.push_back(int32_t(e));
      h.pairs_sorted.push_back(pair);
    }
    const int32_t end = int32_t(h.pairs_sorted.size());
    if (e == e_local || end == begin) continue;
    for (int32_t row = begin; row < end; row += c.tile_rows) {
      h.tiles.push_back(RouteTile{int32_t(e), row, std::min(row + c.tile_rows, end), 0});
    }
  }
  return h;
}

// Every buffer of the pre-pass, filled with kPoison bytes.
struct RouteWorkspace {
  DeviceBuffer keys_in, pairs_in, keys_sorted, pairs_sorted, offsets, position, tiles, num_tiles, tile_ready,
      sort_temp;

  explicit RouteWorkspace(const RouteCase& c)
      : keys_in(ints(c.pairs), kPoison),
        pairs_in(ints(c.pairs), kPoison),
        keys_sorted(ints(c.pairs), kPoison),
        pairs_sorted(ints(c.pairs), kPoison),
        offsets(ints(c.local_experts + 1), kPoison),
        position(ints(c.pairs), kPoison),
        tiles(size_t(cuda::max_route_tiles(c.pairs, c.local_experts, c.tile_rows)) * sizeof(RouteTile), kPoison),
        num_tiles(ints(1), kPoison),
        tile_ready(ints(c.pairs), kPoison),
        sort_temp(cuda::route_sort_temp_bytes(c.pairs, c.local_experts), kPoison) {}

  static size_t ints(int64_t n) { return size_t(n) * sizeof(int32_t); }

  RouteBuffers buffers() const {
    RouteBuffers b;
    b.keys_in = static_cast<int32_t*>(keys_in.get());
    b.pairs_in = static_cast<int32_t*>(pairs_in.get());
    b.keys_sorted = static_cast<int32_t*>(keys_sorted.get());
    b.pairs_sorted = static_cast<int32_t*>(pairs_sorted.get());
    b.offsets = static_cast<int32_t*>(offsets.get());
    b.position = static_cast<int32_t*>(position.get());
    b.tiles = static_cast<RouteTile*>(tiles.get());
    b.num_tiles = static_cast<int32_t*>(num_tiles.get());
    b.tile_ready = static_cast<int32_t*>(tile_ready.get());
    b.sort_temp = sort_temp.get();
    b.sort_temp_bytes = sort_temp.bytes();
    return b;
  }
};

// The paths that take the case (the sort path takes every one).
std::vector<RoutePath> paths_for(const RouteCase& c) {
  std::vector<RoutePath> paths;
  if (c.local_experts <= cuda::kRouteSmallMaxExperts) {
    if (c.pairs <= cuda::kRouteSmallMaxPairs) paths.push_back(RoutePath::kOneBlock);
    paths.push_back(RoutePath::kSegments);
  }
  paths.push_back(RoutePath::kSort);
  return paths;
}

const char* path_name(RoutePath path) {
  switch (path) {
    case RoutePath::kOneBlock: return "one block";
    case RoutePath::kSegments: return "segments";
    case RoutePath::kSort: return "sort";
    default: return "auto";
  }
}

void run_route(const RouteCase& c, const DeviceBuffer& ids, const RouteWorkspace& ws, RoutePath path,
               const cuda::QuantizeParams* quantize = nullptr, const cuda::XReorderParams* reorder = nullptr) {
  RouteParams p;
  if (quantize) p.quantize = *quantize;
  if (reorder) p.reorder = *reorder;
  p.ids.topk_ids = static_cast<const int32_t*>(ids.get());
  p.ids.pairs = c.pairs;
  p.ids.num_experts = c.num_experts;
  p.ids.local_experts = c.local_experts;
  p.ids.expert_offset = c.expert_offset;
  p.tile_rows = c.tile_rows;
  p.buffers = ws.buffers();
  p.path = path;
  cuda::route_launch(p, nullptr);
  FP4MOE_CUDA_CHECK(cudaDeviceSynchronize());
}

// The output buffers of two runs, byte for byte (entries past num_tiles stay poisoned in both).
void expect_same_outputs(const RouteWorkspace& small, const RouteWorkspace& sort) {
  auto same = [](const DeviceBuffer& a, const DeviceBuffer& b, const char* name) {
    const auto x = a.to_host<uint8_t>(), y = b.to_host<uint8_t>();
    EXPECT_TRUE(x == y) << name << " differs between the two runs";
  };
  same(small.keys_sorted, sort.keys_sorted, "keys_sorted");
  same(small.pairs_sorted, sort.pairs_sorted, "pairs_sorted");
  same(small.offsets, sort.offsets, "offsets");
  same(small.position, sort.position, "position");
  same(small.tiles, sort.tiles, "tiles");
  same(small.num_tiles, sort.num_tiles, "num_tiles");
  same(small.tile_ready, sort.tile_ready, "tile_ready");
}

bool same_tile(const RouteTile& a, const RouteTile& b) {
  return a.expert == b.expert && a.row_begin == b.row_begin && a.row_end == b.row_end && a.pad == b.pad;
}

void expect_matches_host(const RouteWorkspace& ws, const HostRoute& h) {
  EXPECT_EQ(ws.keys_sorted.to_host<int32_t>(), h.keys_sorted);
  EXPECT_EQ(ws.pairs_sorted.to_host<int32_t>(), h.pairs_sorted);
  EXPECT_EQ(ws.offsets.to_host<int32_t>(), h.offsets);
  EXPECT_EQ(ws.position.to_host<int32_t>(), h.position);
  const int32_t num_tiles = ws.num_tiles.to_host<int32_t>()[0];
  ASSERT_EQ(num_tiles, int32_t(h.tiles.size()));
  const auto tiles = ws.tiles.to_host<RouteTile>();
  // The FC1 → FC2 counter of each tile, at its first sorted row, starts at 0; the other rows stay poisoned.
  std::vector<int32_t> ready_expected(size_t(h.keys_sorted.size()), 0);
  std::memset(ready_expected.data(), kPoison, ready_expected.size() * sizeof(int32_t));
  for (const RouteTile& t : h.tiles) ready_expected[size_t(t.row_begin)] = 0;
  EXPECT_EQ(ws.tile_ready.to_host<int32_t>(), ready_expected);
  for (int32_t j = 0; j < num_tiles; ++j) {
    EXPECT_TRUE(same_tile(tiles[size_t(j)], h.tiles[size_t(j)]))
        << "tile " << j << ": {" << tiles[size_t(j)].expert << ", " << tiles[size_t(j)].row_begin << ", "
        << tiles[size_t(j)].row_end << "}, expected {" << h.tiles[size_t(j)].expert << ", "
        << h.tiles[size_t(j)].row_begin << ", " << h.tiles[size_t(j)].row_end << "}";
  }
}

void check_case(const RouteCase& c, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "P=" << c.pairs << " E=" << c.num_experts << " E_local=" << c.local_experts
                                    << " offset=" << c.expert_offset << " ids=" << int(c.ids) << " seed=" << seed);
  std::mt19937_64 rng(seed);
  const std::vector<int32_t> ids = make_ids(c, rng);
  const DeviceBuffer d_ids = DeviceBuffer::from_host(ids);
  const HostRoute h = host_route(c, ids);
  const RouteWorkspace sort(c);
  run_route(c, d_ids, sort, RoutePath::kSort);
  expect_matches_host(sort, h);
  for (const RoutePath path : paths_for(c)) {
    if (path == RoutePath::kSort) continue;
    SCOPED_TRACE(path_name(path));
    const RouteWorkspace ws(c);
    run_route(c, d_ids, ws, path);
    expect_same_outputs(ws, sort);
    expect_matches_host(ws, h);
  }
}

constexpr RouteCase kCases[] = {
    {1, 8, 8, 0, Ids::kUniform},
    {1, 8, 8, 0, Ids::kOutOfRange},
    {8, 256, 256, 0, Ids::kUniform},
    {8, 16, 1, 3, Ids::kUniform},
    {8, 16, 1, 3, Ids::kOneExpert},
    {64, 128, 128, 0, Ids::kOneExpert},
    {65, 128, 128, 0, Ids::kOneExpert},
    {129, 8, 8, 0, Ids::kUniform},
    {256, 128, 128, 0, Ids::kSkewed},   // the largest of 256 threads
    {257, 128, 128, 0, Ids::kUniform},  // each size of the routing block: 512 threads × 1, 2, 4, 8, 16 pairs
    {512, 128, 128, 0, Ids::kOneExpert},
    {513, 64, 64, 0, Ids::kSkewed},
    {1000, 300, 100, 200, Ids::kOutOfRange},
    {1024, 256, 256, 0, Ids::kUniform},
    {1025, 300, 100, 200, Ids::kOutOfRange},
    {2048, 128, 128, 0, Ids::kUniform},
    {1023, 64, 64, 0, Ids::kSkewed},
    {2049, 128, 32, 96, Ids::kUniform},
    {4096, 256, 256, 0, Ids::kUniform},
    {4096, 256, 32, 64, Ids::kUniform},
    {4096, 256, 256, 0, Ids::kOneExpert},
    {4096, 64, 64, 0, Ids::kSkewed},
    {4096, 64, 16, 16, Ids::kOutOfRange},
    {4096, 8, 1, 7, Ids::kOutOfRange},
    {4097, 128, 128, 0, Ids::kUniform},
    {6000, 512, 512, 0, Ids::kSkewed},
    {8192, 128, 128, 0, Ids::kUniform},  // largest P of the small path
    {8192, 256, 256, 0, Ids::kOneExpert},
    {8192, 8, 1, 7, Ids::kOutOfRange},
    {8192, 2048, cuda::kRouteSmallMaxExperts, 1000, Ids::kUniform},  // both limits at once
    {300, 8192, cuda::kRouteSmallMaxExperts, 1000, Ids::kUniform},   // largest E_local of the small path
    {300, 8192, cuda::kRouteSmallMaxExperts + 1, 1000, Ids::kUniform},  // sort path only
    {8193, 256, 256, 0, Ids::kUniform},                                 // sort path only
    {8193, 256, 256, 0, Ids::kOneExpert},
    {20000, 64, 16, 16, Ids::kOutOfRange},
    {2048, 128, 128, 0, Ids::kOneExpert},  // one whole segment on one key: its block prefix at its largest
    {32768, 128, 128, 0, Ids::kUniform},   // segments: qwen3 at T = 4096
    {40000, 1100, cuda::kRouteSmallMaxExperts, 50, Ids::kOutOfRange},
    {65537, 256, 256, 0, Ids::kSkewed},
    {131072, 256, 256, 0, Ids::kOneExpert},
};

TEST(RouteGpu, PathsMatchEachOtherAndTheHost) {
  FP4MOE_REQUIRE_GPU();
  const uint64_t seed = fresh_seed();
  for (size_t i = 0; i < std::size(kCases); ++i) check_case(kCases[i], seed + i);
}

TEST(RouteGpu, RandomShapes) {
  FP4MOE_REQUIRE_GPU();
  const uint64_t seed = fresh_seed();
  std::mt19937_64 rng(seed);
  for (int n = 0; n < 40; ++n) {
    RouteCase c;
    c.pairs = 1 + int64_t(rng() % (3 * cuda::kRouteSmallMaxPairs));
    c.num_experts = 1 + int64_t(rng() % 512);
    c.local_experts = 1 + int64_t(rng() % uint64_t(c.num_experts));
    c.expert_offset = int64_t(rng() % uint64_t(c.num_experts - c.local_experts + 1));
    c.ids = Ids(rng() % 4);
    c.tile_rows = 8 << (rng() % 4);  // 8..64: the pre-pass takes any size
    check_case(c, seed + 1000 + uint64_t(n));
  }
}

// W4A4: the routing launch also quantizes x (RouteParams::quantize: spare blocks of the one-block and segmented
// paths, a quantize launch after the sort path). x is strided; its dequantized values must equal the CPU's
// quantize_block bit for bit, and the routing outputs must equal a run without it.
TEST(RouteGpu, QuantizesXInTheSameLaunch) {
  FP4MOE_REQUIRE_GPU();
  const uint64_t seed = fresh_seed();
  std::mt19937_64 rng(seed);
  SCOPED_TRACE(::testing::Message() << "seed=" << seed);
  constexpr int64_t kRows = 37, kK = 2048, kLd = kK + 8;
  std::vector<uint16_t> x(size_t(kRows * kLd));
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (uint16_t& v : x) v = float_to_bf16(normal(rng));
  const std::vector<uint16_t> expected = testing::host_dequant_rows(x, kRows, kK, kLd, 2.5f);
  const DeviceBuffer d_x = DeviceBuffer::from_host(x);
  for (const RouteCase& c : {RouteCase{8, 64, 64, 0, Ids::kUniform}, RouteCase{512, 128, 128, 0, Ids::kUniform},
                             RouteCase{8192, 256, 256, 0, Ids::kUniform},
                             RouteCase{8193, 256, 256, 0, Ids::kUniform},
                             RouteCase{20000, 128, 128, 0, Ids::kUniform}}) {
    for (const RoutePath path : paths_for(c)) {
      SCOPED_TRACE(::testing::Message() << "P=" << c.pairs << " " << path_name(path));
      const DeviceBuffer d_ids = DeviceBuffer::from_host(make_ids(c, rng));
      DeviceBuffer dequant(size_t(kRows * kK) * 2, kPoison);
      const cuda::QuantizeParams q = testing::dequant_only_params(d_x, kRows, kK, kLd, 2.5f, dequant);
      const RouteWorkspace with(c), without(c);
      run_route(c, d_ids, with, path, &q);
      run_route(c, d_ids, without, path);
      expect_same_outputs(with, without);
      EXPECT_TRUE(dequant.to_host<uint16_t>() == expected) << "x quantized by the routing launch";
    }
  }
}

// wgmma path: the routing launch also puts x into the MMA k order (RouteParams::reorder: spare blocks of the one-block
// and segmented paths, x_reorder_launch after the sort path), W4A4 quantizing on the way. x is strided; the result
// must equal x_reorder_launch's own (test_x_reorder_gpu.cpp checks that against the host) bit for bit, and the routing
// outputs must equal a run without it. 2050 × 8192 takes more pieces than the spare blocks' cap (they stride).
TEST(RouteGpu, ReordersXInTheSameLaunch) {
  FP4MOE_REQUIRE_GPU();
  const uint64_t seed = fresh_seed();
  std::mt19937_64 rng(seed);
  SCOPED_TRACE(::testing::Message() << "seed=" << seed);
  struct Shape {
    int64_t rows, k;
  };
  for (const Shape shape : {Shape{37, 2048}, Shape{2050, 8192}}) {
    const int64_t ld = shape.k + 8;
    std::vector<uint16_t> x(size_t(shape.rows * ld));
    std::normal_distribution<float> normal(0.0f, 3.0f);
    for (uint16_t& v : x) v = float_to_bf16(normal(rng));
    const DeviceBuffer d_x = DeviceBuffer::from_host(x);
    for (const bool quantize : {false, true}) {
      cuda::XReorderParams r;
      r.src = static_cast<const uint16_t*>(d_x.get());
      r.src_ld = ld;
      r.dst_ld = shape.k;
      r.rows = shape.rows;
      r.k = shape.k;
      r.quantize = quantize;
      r.gs = 2.5f;
      DeviceBuffer want(size_t(shape.rows * shape.k) * 2, kPoison);
      r.dst = static_cast<uint16_t*>(want.get());
      cuda::x_reorder_launch(r, nullptr);
      FP4MOE_CUDA_CHECK(cudaDeviceSynchronize());
      const std::vector<uint16_t> expected = want.to_host<uint16_t>();
      for (const RouteCase& c : {RouteCase{512, 128, 128, 0, Ids::kUniform},
                                 RouteCase{20000, 128, 128, 0, Ids::kUniform}}) {
        const DeviceBuffer d_ids = DeviceBuffer::from_host(make_ids(c, rng));
        for (const RoutePath path : paths_for(c)) {
          SCOPED_TRACE(::testing::Message() << "rows=" << shape.rows << " k=" << shape.k << " quantize=" << quantize
                                            << " P=" << c.pairs << " " << path_name(path));
          DeviceBuffer got(size_t(shape.rows * shape.k) * 2, kPoison);
          r.dst = static_cast<uint16_t*>(got.get());
          const RouteWorkspace with(c), without(c);
          run_route(c, d_ids, with, path, nullptr, &r);
          run_route(c, d_ids, without, path);
          expect_same_outputs(with, without);
          EXPECT_TRUE(got.to_host<uint16_t>() == expected) << "x reordered by the routing launch";
        }
      }
    }
  }
}

}  // namespace
}  // namespace fp4moe
