// Random MoE problems in host memory (spec §6's test distribution) shared by the CLI's check/bench and the tests:
// weights quantized from N(0, 0.02²), x ~ N(0, 1), routing = K distinct experts drawn uniformly per token.
#pragma once

#include <cstdint>
#include <vector>

#include "fp4moe/moe.hpp"

namespace fp4moe {

// Canonical layer weights owned in host memory: stacked [E_local, ...] tensors, FC1 rows in `config.fc1_order`,
// linear scales.
struct HostLayer {
  MoeConfig config;
  std::vector<uint8_t> w13, w13_scale, w2, w2_scale;
  std::vector<float> w13_scale_2, w2_scale_2;
  float fc1_input_scale = 0.0f;
  float fc2_input_scale = 0.0f;

  MoeWeights view() const;  // one group spanning every local expert
};

struct HostInputs {
  int64_t tokens = 0;
  int64_t top_k = 0;
  int64_t hidden = 0;
  std::vector<uint16_t> x;  // BF16 bits [T, H]
  std::vector<int32_t> topk_ids;
  std::vector<float> topk_weights;

  MoeInputs view() const;
};

// Activation calibration used for W4A4 random layers: input_scale = amax / (448·6) with these amax values.
inline constexpr float kRandomXAmax = 8.0f;
inline constexpr float kRandomIntermediateAmax = 32.0f;

HostLayer make_random_layer(const MoeConfig& config, uint64_t seed);
HostInputs make_random_inputs(const MoeConfig& config, int64_t tokens, uint64_t seed);

struct ErrorStats {
  double max_abs = 0, mean_abs = 0, rel_l2 = 0;
  int64_t nonfinite = 0;  // elements of `actual` that are NaN/Inf
};
// Compares BF16 outputs; rel_l2 = ‖a − r‖ / ‖r‖ (in double).
ErrorStats compare_bf16(const uint16_t* actual, const uint16_t* expected, int64_t n);
// Spec §6 threshold on rel_l2: 1e-3 for W4A16, 1e-2 for W4A4.
double rel_l2_tolerance(Mode mode);

}  // namespace fp4moe
