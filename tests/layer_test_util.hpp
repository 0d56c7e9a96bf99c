// Host-side variants of a random layer's weights for placement and layout tests (CPU and GPU test binaries):
// expert groups sliced from one stacked group, FC1 row orders, 128x4 scales and strided w13. Each variant holds the
// same values, so every backend must give the same output for all of them.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "fp4moe/format.hpp"
#include "fp4moe/moe.hpp"
#include "fp4moe/nvfp4.hpp"
#include "problem/random_problem.hpp"

namespace fp4moe::testing {

// Experts [first, first + n) of a stacked group, as a stacked group viewing the same memory.
inline ExpertGroup slice_group(const ExpertGroup& g, int64_t first, int64_t n) {
  auto slice = [&](TensorView t) {
    t.data = static_cast<char*>(t.data) + first * t.strides[0] * int64_t(dtype_size(t.dtype));
    t.shape[0] = n;
    return t;
  };
  return {slice(g.w13), slice(g.w13_scale), slice(g.w13_scale_2), slice(g.w2), slice(g.w2_scale),
          slice(g.w2_scale_2)};
}

// The one-group `stacked` weights split into consecutive stacked groups of the given expert counts.
inline MoeWeights split_weights(const MoeWeights& stacked, const std::vector<int64_t>& sizes) {
  MoeWeights w = stacked;
  w.groups.clear();
  int64_t first = 0;
  for (int64_t n : sizes) {
    w.groups.push_back(slice_group(stacked.groups[0], first, n));
    first += n;
  }
  return w;
}

// The layer's experts [first, first + n) as weights of their own (for expert-parallel shards).
inline MoeWeights expert_range(const MoeWeights& stacked, int64_t first, int64_t n) {
  MoeWeights w = stacked;
  w.groups = {slice_group(stacked.groups[0], first, n)};
  return w;
}

// One group per expert with 2-D tensors (scale_2 alternating between shape [1] and 0-d), viewing `stacked`.
inline MoeWeights per_expert_weights(const MoeWeights& stacked) {
  const ExpertGroup& g = stacked.groups[0];
  MoeWeights w = stacked;
  w.groups.clear();
  for (int64_t e = 0; e < g.w13.shape[0]; ++e) {
    ExpertGroup one{g.w13.select(e), g.w13_scale.select(e), g.w13_scale_2.select(e),
                    g.w2.select(e),  g.w2_scale.select(e),  g.w2_scale_2.select(e)};
    if (e % 2 == 0) {  // [1] instead of 0-d
      one.w13_scale_2.ndim = 1;
      one.w13_scale_2.shape[0] = 1;
      one.w13_scale_2.strides[0] = 1;
    }
    w.groups.push_back(one);
  }
  return w;
}

// A copy of a gate-up layer with its FC1 rows (and their scales) stored in `order`.
inline HostLayer reorder_fc1(const HostLayer& layer, Fc1Order order) {
  const MoeConfig& c = layer.config;
  const int64_t el = c.num_local_experts, i = c.intermediate, rows = 2 * i;
  const int64_t wc = c.hidden / 2, sc = c.hidden / kBlockSize;
  HostLayer r = layer;
  r.config.fc1_order = order;
  for (int64_t e = 0; e < el; ++e) {
    for (int64_t src = 0; src < rows; ++src) {
      const bool gate = src < i;
      const int64_t j = gate ? src : src - i;
      const int64_t dst = order == Fc1Order::kGateUp ? src
                          : order == Fc1Order::kUpGate ? (gate ? i + j : j)
                                                       : (gate ? 2 * j : 2 * j + 1);
      std::memcpy(&r.w13[size_t((e * rows + dst) * wc)], &layer.w13[size_t((e * rows + src) * wc)], size_t(wc));
      std::memcpy(&r.w13_scale[size_t((e * rows + dst) * sc)], &layer.w13_scale[size_t((e * rows + src) * sc)],
                  size_t(sc));
    }
  }
  return r;
}

// A layer's weights with 128x4 swizzled scales (owning the swizzled copies; movable, not copyable).
struct SwizzledWeights {
  std::vector<uint8_t> w13_scale, w2_scale;
  MoeWeights weights;

  explicit SwizzledWeights(const HostLayer& layer) : weights(layer.view()) {
    const MoeConfig& c = layer.config;
    const int64_t el = c.num_local_experts;
    auto swizzle = [&](const std::vector<uint8_t>& linear, int64_t rows, int64_t k, std::vector<uint8_t>& out,
                       TensorView& view) {
      const auto [pr, pc] = scale_shape(ScaleLayout::kSwizzled128x4, rows, k);
      out.assign(size_t(el * pr * pc), 0xEE);  // swizzle_scales writes the padding (0)
      for (int64_t e = 0; e < el; ++e) {
        swizzle_scales(&linear[size_t(e * rows * (k / kBlockSize))], rows, k / kBlockSize, &out[size_t(e * pr * pc)]);
      }
      view = TensorView(out.data(), DType::kE4M3, {el, pr, pc});
    };
    weights.scale_layout = ScaleLayout::kSwizzled128x4;
    swizzle(layer.w13_scale, c.fc1_rows(), c.hidden, w13_scale, weights.groups[0].w13_scale);
    swizzle(layer.w2_scale, c.hidden, c.intermediate, w2_scale, weights.groups[0].w2_scale);
  }
  SwizzledWeights(const SwizzledWeights&) = delete;
  SwizzledWeights& operator=(const SwizzledWeights&) = delete;
};

// A copy of the layer's w13 with padding after every row and every expert (0xEE bytes), and the layer's weights
// viewing it through those strides (owning the copy; not copyable, the view points into it).
struct StridedW13 {
  std::vector<uint8_t> padded;
  MoeWeights weights;

  StridedW13(const HostLayer& layer, int64_t row_pad, int64_t expert_pad) : weights(layer.view()) {
    const MoeConfig& c = layer.config;
    const int64_t el = c.num_local_experts, rows = c.fc1_rows(), cols = c.hidden / 2;
    const int64_t row_stride = cols + row_pad, expert_stride = rows * row_stride + expert_pad;
    padded.assign(size_t(el * expert_stride), 0xEE);
    for (int64_t e = 0; e < el; ++e) {
      for (int64_t r = 0; r < rows; ++r) {
        std::memcpy(&padded[size_t(e * expert_stride + r * row_stride)], &layer.w13[size_t((e * rows + r) * cols)],
                    size_t(cols));
      }
    }
    weights.groups[0].w13.data = padded.data();
    weights.groups[0].w13.strides = {expert_stride, row_stride, 1, 0};
  }
  StridedW13(const StridedW13&) = delete;
  StridedW13& operator=(const StridedW13&) = delete;
};

}  // namespace fp4moe::testing
