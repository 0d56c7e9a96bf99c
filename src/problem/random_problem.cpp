// Random MoE problems: weights drawn from N(0, 0.02²) and quantized per expert with gs = 448·6/amax,
// x ~ N(0, 1) in BF16, top-k = K distinct experts per token, weights = softmax of random logits.
#include "problem/random_problem.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "fp4moe/error.hpp"

namespace fp4moe {

namespace {

// splitmix64: a tiny, fast generator, so that big layers (10^9 weights) fill in seconds.
struct FastRng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform() { return float(next() >> 40) * 0x1.0p-24f + 0x1.0p-25f; }  // (0, 1)
  // Box-Muller pair: N(0, 1) samples.
  std::pair<float, float> normal_pair() {
    const float r = std::sqrt(-2.0f * std::log(uniform()));
    const float t = 6.283185307f * uniform();
    return {r * std::cos(t), r * std::sin(t)};
  }
};

// Quantizes `count` experts of rows × k values from N(0, 0.02²) into the stacked buffers. Each expert has its own
// generator seeded from (seed, expert), so the result does not depend on the thread count.
void fill_random_experts(uint64_t seed, int64_t count, int64_t rows, int64_t k, std::vector<uint8_t>& packed,
                         std::vector<uint8_t>& scales, std::vector<float>& scale_2) {
  packed.resize(size_t(count * rows * k / 2));
  scales.resize(size_t(count * rows * k / kBlockSize));
  scale_2.resize(size_t(count));
#pragma omp parallel
  {
    std::vector<float> w(size_t(rows * k));
#pragma omp for schedule(dynamic)
    for (int64_t e = 0; e < count; ++e) {
      FastRng rng{seed * 0x2545F4914F6CDD1Dull + uint64_t(e) * 0x9E3779B97F4A7C15ull};
      for (size_t i = 0; i + 1 < w.size(); i += 2) {
        const auto [a, b] = rng.normal_pair();
        w[i] = 0.02f * a;
        w[i + 1] = 0.02f * b;
      }
      const float gs = auto_global_scale(w.data(), int64_t(w.size()));
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t b = 0; b < k / kBlockSize; ++b) {
          const int64_t blk = (e * rows + r) * (k / kBlockSize) + b;
          scales[size_t(blk)] = quantize_block(&w[size_t(r * k + b * kBlockSize)], gs, &packed[size_t(blk * 8)]);
        }
      }
      scale_2[size_t(e)] = 1.0f / gs;
    }
  }
}

}  // namespace

MoeWeights HostLayer::view() const {
  const MoeConfig& c = config;
  const int64_t el = c.num_local_experts, h = c.hidden, i = c.intermediate, r1 = c.fc1_rows();
  ExpertGroup g;
  g.w13 = TensorView(w13.data(), DType::kU8, {el, r1, h / 2});
  g.w13_scale = TensorView(w13_scale.data(), DType::kE4M3, {el, r1, h / kBlockSize});
  g.w13_scale_2 = TensorView(w13_scale_2.data(), DType::kF32, {el});
  g.w2 = TensorView(w2.data(), DType::kU8, {el, h, i / 2});
  g.w2_scale = TensorView(w2_scale.data(), DType::kE4M3, {el, h, i / kBlockSize});
  g.w2_scale_2 = TensorView(w2_scale_2.data(), DType::kF32, {el});
  MoeWeights w;
  w.groups.push_back(g);
  w.fc1_input_scale = fc1_input_scale;
  w.fc2_input_scale = fc2_input_scale;
  return w;
}

MoeInputs HostInputs::view() const {
  MoeInputs in;
  in.x = TensorView(x.data(), DType::kBF16, {tokens, hidden});
  in.topk_ids = TensorView(topk_ids.data(), DType::kI32, {tokens, top_k});
  in.topk_weights = TensorView(topk_weights.data(), DType::kF32, {tokens, top_k});
  return in;
}

HostLayer make_random_layer(const MoeConfig& config, uint64_t seed) {
  config.validate();
  HostLayer layer;
  layer.config = config;
  fill_random_experts(seed, config.num_local_experts, config.fc1_rows(), config.hidden, layer.w13, layer.w13_scale,
                      layer.w13_scale_2);
  fill_random_experts(~seed, config.num_local_experts, config.hidden, config.intermediate, layer.w2, layer.w2_scale,
                      layer.w2_scale_2);
  if (config.mode == Mode::kW4A4) {
    layer.fc1_input_scale = kRandomXAmax / (kE4M3Max * kE2M1Max);
    layer.fc2_input_scale = kRandomIntermediateAmax / (kE4M3Max * kE2M1Max);
  }
  return layer;
}

HostInputs make_random_inputs(const MoeConfig& c, int64_t tokens, uint64_t seed) {
  HostInputs in;
  in.tokens = tokens;
  in.top_k = c.top_k;
  in.hidden = c.hidden;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  in.x.resize(size_t(tokens * c.hidden));
  for (uint16_t& v : in.x) v = float_to_bf16(normal(rng));
  in.topk_ids.resize(size_t(tokens * c.top_k));
  in.topk_weights.resize(size_t(tokens * c.top_k));
  std::vector<int32_t> ids(size_t(c.num_experts));
  for (int64_t t = 0; t < tokens; ++t) {
    // Partial Fisher-Yates: the first K entries are K distinct experts, uniformly drawn.
    std::iota(ids.begin(), ids.end(), 0);
    float total = 0.0f;
    for (int64_t k = 0; k < c.top_k; ++k) {
      std::uniform_int_distribution<int64_t> pick(k, c.num_experts - 1);
      std::swap(ids[size_t(k)], ids[size_t(pick(rng))]);
      in.topk_ids[size_t(t * c.top_k + k)] = ids[size_t(k)];
      const float w = std::exp(normal(rng));
      in.topk_weights[size_t(t * c.top_k + k)] = w;
      total += w;
    }
    for (int64_t k = 0; k < c.top_k; ++k) in.topk_weights[size_t(t * c.top_k + k)] /= total;
  }
  return in;
}

ErrorStats compare_bf16(const uint16_t* actual, const uint16_t* expected, int64_t n) {
  ErrorStats s;
  double diff2 = 0, ref2 = 0, sum_abs = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double a = bf16_to_float(actual[i]), r = bf16_to_float(expected[i]);
    if (!std::isfinite(a)) {
      ++s.nonfinite;
      continue;
    }
    const double d = std::fabs(a - r);
    s.max_abs = std::max(s.max_abs, d);
    sum_abs += d;
    diff2 += d * d;
    ref2 += r * r;
  }
  s.mean_abs = n > 0 ? sum_abs / double(n) : 0.0;
  s.rel_l2 = ref2 > 0 ? std::sqrt(diff2 / ref2) : (diff2 > 0 ? INFINITY : 0.0);
  return s;
}

double rel_l2_tolerance(Mode mode) { return mode == Mode::kW4A16 ? 1e-3 : 1e-2; }

}  // namespace fp4moe
