// The CUDA fused-MoE path on the host side: workspace layout and the launch sequence
// route (its spare blocks: W4A4 streaming path: quantize x; wgmma path: x into the MMA k order, W4A4 quantized on the
// way) → [quantize x (W4A4 pair tiles; pre-quantized x: dequantize, then on the wgmma path the reorder)] → fc1 → fc2
// → combine, all on one stream without host synchronization.
#include <algorithm>

#include "cuda/combine/combine_launch.hpp"
#include "cuda/common/device_info.hpp"
#include "cuda/fc1/fc1_launch.hpp"
#include "cuda/fc2/fc2_launch.hpp"
#include "cuda/moe/heuristics.hpp"
#include "cuda/moe/moe_launch.hpp"
#include "cuda/quantize/quantize_launch.hpp"
#include "cuda/route/route_launch.hpp"
#include "fp4moe/error.hpp"
#include "fp4moe/nvfp4.hpp"

namespace fp4moe::cuda {

namespace {

constexpr size_t kAlign = 256;

// Byte offsets of the workspace sections for T tokens (each section 256-byte aligned).
struct Layout {
  size_t keys_in = 0, pairs_in = 0, keys_sorted = 0, pairs_sorted = 0, position = 0, offsets = 0;
  size_t tiles = 0, num_tiles = 0, tile_ready = 0, sort_temp = 0, sort_temp_bytes = 0;
  size_t x_staged = 0;  // W4A4: x quantized with gs1, as exact BF16 values e2m1·sf; wgmma path: x in the MMA k order
  size_t h = 0;      // BF16 h per sorted row
  size_t y = 0;
  size_t total = 0;
};

Layout make_layout(const MoeConfig& c, int64_t tokens) {
  const int64_t pairs = tokens * c.top_k;
  Layout l;
  size_t at = 0;
  auto take = [&](size_t bytes) {
    const size_t here = at;
    at += (bytes + kAlign - 1) / kAlign * kAlign;
    return here;
  };
  const size_t ints = size_t(pairs) * sizeof(int32_t);
  l.keys_in = take(ints);
  l.pairs_in = take(ints);
  l.keys_sorted = take(ints);
  l.pairs_sorted = take(ints);
  l.position = take(ints);
  l.offsets = take(size_t(c.num_local_experts + 1) * sizeof(int32_t));
  l.tiles = take(size_t(max_route_tiles(pairs, c.num_local_experts, kTileRowChoices[0])) * sizeof(RouteTile));
  l.num_tiles = take(sizeof(int32_t));
  l.tile_ready = take(ints);
  l.sort_temp_bytes = route_sort_temp_bytes(pairs, c.num_local_experts);
  l.sort_temp = take(l.sort_temp_bytes);
  const bool w4a4 = c.mode == Mode::kW4A4;
  l.h = take(size_t(pairs * c.intermediate) * sizeof(uint16_t));
  if (w4a4 || wgmma_shape_supported(c)) l.x_staged = take(size_t(tokens * c.hidden) * sizeof(uint16_t));
  l.y = take(size_t(pairs * c.hidden) * sizeof(float));
  l.total = at;
  return l;
}

template <class T>
T* section(void* base, size_t offset) {
  return reinterpret_cast<T*>(static_cast<char*>(base) + offset);
}

}  // namespace

size_t moe_workspace_size(const MoeConfig& config, int64_t max_tokens) {
  return max_tokens == 0 ? 0 : make_layout(config, max_tokens).total;
}

namespace {

RouteBuffers route_buffers(void* ws, const Layout& l) {
  RouteBuffers rb;
  rb.keys_in = section<int32_t>(ws, l.keys_in);
  rb.pairs_in = section<int32_t>(ws, l.pairs_in);
  rb.keys_sorted = section<int32_t>(ws, l.keys_sorted);
  rb.pairs_sorted = section<int32_t>(ws, l.pairs_sorted);
  rb.offsets = section<int32_t>(ws, l.offsets);
  rb.position = section<int32_t>(ws, l.position);
  rb.tiles = section<RouteTile>(ws, l.tiles);
  rb.num_tiles = section<int32_t>(ws, l.num_tiles);
  rb.tile_ready = section<int32_t>(ws, l.tile_ready);
  rb.sort_temp = section<void>(ws, l.sort_temp);
  rb.sort_temp_bytes = l.sort_temp_bytes;
  return rb;
}

// W4A4, BF16 x: the quantize pass that writes x with gs1 as exact BF16 values e2m1·sf, which FC1 reads like W4A16 x.
QuantizeParams x_quantize_params(const MoeLaunch& m, const Layout& l) {
  QuantizeParams q;
  q.x = m.x;
  q.rows = m.tokens;
  q.k = m.config->hidden;
  q.x_ld = m.x_ld;
  q.global_scale = m.gs1;
  q.dequant = section<uint16_t>(m.workspace, l.x_staged);
  return q;
}

// W4A4: x quantized with gs1 (or the caller's pre-quantized x) as exact BF16 values, launched on its own.
const uint16_t* dequantized_x(const MoeLaunch& m, const Layout& l, void* stream) {
  const MoeConfig& c = *m.config;
  uint16_t* deq = section<uint16_t>(m.workspace, l.x_staged);
  if (m.x_fp4) {
    launch_dequantize_nvfp4({m.x_fp4, m.x_scale, m.tokens, c.hidden, deq}, stream);
  } else {
    launch_quantize_nvfp4(x_quantize_params(m, l), stream);
  }
  return deq;
}

// wgmma path: x in the MMA k order, rows of H, from src (W4A4 BF16 x: quantized with gs1 by the reorder itself).
XReorderParams x_reorder_params(const MoeLaunch& m, const Layout& l, const uint16_t* src, int64_t src_ld,
                                bool quantize) {
  const MoeConfig& c = *m.config;
  XReorderParams r;
  r.src = src;
  r.src_ld = src_ld;
  r.quantize = quantize;
  r.gs = m.gs1;
  r.dst = section<uint16_t>(m.workspace, l.x_staged);
  r.dst_ld = c.hidden;
  r.rows = m.tokens;
  r.k = c.hidden;
  return r;
}

// wgmma path, W4A4 with pre-quantized x: dequantized first, in place, then reordered, by launches of their own after
// the routing. (BF16 x is reordered by the routing launch's spare blocks instead: RouteParams::reorder.)
const uint16_t* reordered_prequantized_x(const MoeLaunch& m, const Layout& l, void* stream) {
  const XReorderParams r = x_reorder_params(m, l, dequantized_x(m, l, stream), m.config->hidden, false);
  x_reorder_launch(r, stream);
  return r.dst;
}

// The work tile size, checked against the wgmma path's conditions when a caller forces one of its sizes. The wgmma
// producers address the reordered x and h by 32-bit offsets in 16-byte units (wgmma_gemm.cuh): under 64 GiB each.
int work_tile_rows(const MoeConfig& c, int64_t tokens, int force_rows) {
  constexpr int64_t kMaxRowUnits = int64_t(1) << 32;
  const bool offsets_fit = tokens * c.hidden / 8 < kMaxRowUnits && tokens * c.top_k * c.intermediate / 8 < kMaxRowUnits;
  const bool wgmma = wgmma_shape_supported(c) && offsets_fit && wgmma_path_available();
  if (force_rows > 0 && is_wgmma_tile_rows(force_rows)) {
    FP4MOE_CHECK_ARG(wgmma, "options.tile_rows",
                     "8, 16, 24 or 32 here (64, 128 and 160 need compute capability 9.0 with sm_90a code, H a "
                     "multiple of 64 and I a multiple of 64, or 128 when not gated, and x and h under 64 GiB)",
                     detail::concat(force_rows, " (H = ", c.hidden, ", I = ", c.intermediate, ")"));
  }
  return plan_tile_rows(c, tokens, wgmma, force_rows);
}

}  // namespace

void moe_launch(const MoeLaunch& m, void* stream) {
  const MoeConfig& c = *m.config;
  if (m.tokens == 0) return;
  const Layout l = make_layout(c, m.tokens);
  FP4MOE_CHECK_ARG(m.workspace_bytes >= l.total, "workspace_bytes", detail::concat(">= ", l.total, " bytes"),
                   detail::concat(m.workspace_bytes, " bytes"));
  void* ws = m.workspace;
  const int64_t pairs = m.tokens * c.top_k;
  const bool pair_tiles = plan_pair_tiles(m.tokens, m.force_tile_rows);
  const int tile_rows = pair_tiles ? kTileRowChoices[0] : work_tile_rows(c, m.tokens, m.force_tile_rows);
  const bool wgmma = is_wgmma_tile_rows(tile_rows);
  const int64_t max_tiles = pair_tiles ? pairs : max_route_tiles(pairs, c.num_local_experts, tile_rows);

  RouteParams route;
  route.ids = {m.topk_ids, pairs, c.num_experts, c.num_local_experts, c.expert_offset};
  route.tile_rows = tile_rows;
  route.buffers = route_buffers(ws, l);
  const bool w4a4 = c.mode == Mode::kW4A4;
  // W4A4 with BF16 x on the streaming path: the routing launch quantizes x as well, one launch fewer before FC1.
  const bool x_in_route = w4a4 && !m.x_fp4 && !wgmma && !pair_tiles;
  if (x_in_route) route.quantize = x_quantize_params(m, l);
  // wgmma path, BF16 x: reordered (W4A4: and quantized) by the routing launch's spare blocks, beside the routing.
  const bool reorder_in_route = wgmma && !(w4a4 && m.x_fp4);
  if (reorder_in_route) route.reorder = x_reorder_params(m, l, m.x, m.x_ld, w4a4);
  const RouteBuffers& rb = route.buffers;
  if (!pair_tiles) route_launch(route, stream);
  WorkTiles work;
  work.pair_tiles = pair_tiles;
  work.tiles = rb.tiles;
  work.num_tiles = rb.num_tiles;
  work.pairs_sorted = rb.pairs_sorted;
  work.position = rb.position;
  work.ids = route.ids;

  const int sms = wgmma ? 0 : current_multiprocessor_count();  // plan_weight_stages gives wgmma tiles 1 stage
  const int fc1_rows_per_block =
      wgmma ? 0 : plan_weight_rows_per_block(c, m.tokens, tile_rows, StreamGemm::kFc1, m.force_weight_rows_per_block);
  const int fc2_rows_per_block =
      wgmma ? 0 : plan_weight_rows_per_block(c, m.tokens, tile_rows, StreamGemm::kFc2, m.force_weight_rows_per_block);
  const int fc2_stages =
      plan_weight_stages(max_tiles * fc2_output_groups(c.hidden), tile_rows, fc2_rows_per_block, sms);
  // The FC1 → FC2 handoff per tile needs sorted tiles (the routing launch zeroes its counters).
  if (!pair_tiles && !wgmma && plan_tile_handoff(c, max_tiles, fc2_rows_per_block, fc2_stages)) {
    work.tile_ready = rb.tile_ready;
    work.tile_ready_groups = int32_t(fc1_output_groups(c.intermediate, c.gated()));
  }

  Fc1Params f1;
  f1.work = work;
  f1.max_tiles = max_tiles;
  f1.tile_rows = tile_rows;
  f1.weight_rows_per_block = fc1_rows_per_block;
  f1.weight_stages = plan_weight_stages(max_tiles * fc1_output_groups(c.intermediate, c.gated()), tile_rows,
                                        f1.weight_rows_per_block, sms);
  f1.top_k = c.top_k;
  f1.weights_evict_first = wgmma && plan_weights_evict_first(c, m.tokens, tile_rows);
  // A quantize pass of its own between the routing and FC1 waits for its predecessor before FC1 launches.
  f1.tiles_ready_early = w4a4 && !x_in_route && !reorder_in_route;
  f1.x = reorder_in_route ? route.reorder.dst
         : wgmma          ? reordered_prequantized_x(m, l, stream)
         : x_in_route     ? route.quantize.dequant
         : w4a4           ? dequantized_x(m, l, stream)
                          : m.x;
  f1.x_ld = wgmma || w4a4 ? c.hidden : m.x_ld;
  f1.w4a4 = w4a4;
  f1.gs1 = m.gs1;
  f1.gs2 = m.gs2;
  f1.w13 = m.experts.w13;
  f1.w13_scale_2 = m.experts.w13_scale_2;
  f1.hidden = c.hidden;
  f1.intermediate = c.intermediate;
  f1.gated = c.gated();
  f1.activation = c.activation;
  f1.swiglu = c.swiglu;
  f1.h = section<uint16_t>(ws, l.h);
  wgmma ? fc1_wgmma_launch(f1, stream) : fc1_launch(f1, stream);

  Fc2Params f2;
  f2.work = work;
  f2.max_tiles = max_tiles;
  f2.tile_rows = tile_rows;
  f2.weight_rows_per_block = fc2_rows_per_block;
  f2.weight_stages = fc2_stages;
  f2.weights_evict_first = f1.weights_evict_first;
  f2.h = f1.h;
  f2.h_rows = pairs;
  f2.w4a4 = w4a4;
  f2.gs2 = m.gs2;
  f2.w2 = m.experts.w2;
  f2.w2_scale_2 = m.experts.w2_scale_2;
  f2.hidden = c.hidden;
  f2.intermediate = c.intermediate;
  f2.y = section<float>(ws, l.y);
  wgmma ? fc2_wgmma_launch(f2, stream) : fc2_launch(f2, stream);

  CombineParams cb;
  cb.tokens = m.tokens;
  cb.top_k = c.top_k;
  cb.hidden = c.hidden;
  cb.work = work;
  cb.topk_weights = m.topk_weights;
  cb.y = f2.y;
  cb.out = m.out;
  cb.out_ld = m.out_ld;
  cb.accumulate = m.accumulate;
  combine_launch(cb, stream);
}

}  // namespace fp4moe::cuda
