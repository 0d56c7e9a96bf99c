// fp4moe: the description of one MoE layer (spec §5): shapes, expert range, activation, quantization mode.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace fp4moe {

enum class Activation : uint8_t {
  kSilu,          // gated: g·σ(g)·u
  kGeluTanh,      // gated: 0.5·g·(1 + tanh(0.7978845608·(g + 0.044715·g³)))·u
  kRelu2,         // non-gated: max(g, 0)²
  kSwigluClamped  // gated (gpt-oss): min(g, limit)·σ(alpha·min(g, limit))·(clamp(u, ±limit) + beta)
};

enum class Mode : uint8_t {
  kW4A16,  // BF16 activations × NVFP4 weights; intermediate rounded to BF16
  kW4A4    // activations quantized to NVFP4 (x with gs1, intermediate with gs2)
};

// Row order of the FC1 weight (w13) as stored in the source checkpoint. Weight preparation brings every order
// to the library's own; the result of a layer does not depend on it.
enum class Fc1Order : uint8_t {
  kGateUp,      // rows [0, I) gate, [I, 2I) up (ModelOpt / vLLM w13)
  kUpGate,      // rows [0, I) up, [I, 2I) gate
  kInterleaved  // row 2j gate j, row 2j+1 up j (gpt-oss gate_up_proj)
};

enum class Backend : uint8_t { kAuto, kCpu, kCuda };

std::string_view activation_name(Activation a);  // silu, gelu_tanh, relu2, swiglu_clamped
std::string_view mode_name(Mode m);              // w4a16, w4a4
std::string_view fc1_order_name(Fc1Order o);     // gate_up, up_gate, interleaved
std::string_view backend_name(Backend b);        // auto, cpu, cuda
Activation parse_activation(std::string_view s, std::string_view arg = "activation");
Mode parse_mode(std::string_view s, std::string_view arg = "mode");
Fc1Order parse_fc1_order(std::string_view s, std::string_view arg = "fc1_order");
Backend parse_backend(std::string_view s, std::string_view arg = "backend");

inline bool is_gated(Activation a) { return a != Activation::kRelu2; }

struct SwigluParams {
  float alpha = 1.702f;
  float beta = 1.0f;
  float limit = 7.0f;
};

struct MoeConfig {
  int64_t num_experts = 0;        // E: global expert count; top-k ids are valid in [0, E)
  int64_t num_local_experts = 0;  // E_local: experts whose weights this layer holds
  int64_t expert_offset = 0;      // global id of local expert 0 (expert parallelism)
  int64_t top_k = 0;              // K
  int64_t hidden = 0;             // H (multiple of 16)
  int64_t intermediate = 0;       // I (multiple of 16)
  Activation activation = Activation::kSilu;
  SwigluParams swiglu{};          // used by kSwigluClamped only
  Mode mode = Mode::kW4A16;
  Fc1Order fc1_order = Fc1Order::kGateUp;  // of the source weights; ignored when not gated

  bool gated() const { return is_gated(activation); }
  int64_t fc1_rows() const { return gated() ? 2 * intermediate : intermediate; }
  // Throws Error naming the first inconsistent field.
  void validate() const;
  std::string describe() const;  // one line, for logs and the CLI
};

// Model shapes from ../shared/anchors.md (E = E_local, offset 0).
struct Preset {
  std::string_view name;
  int64_t num_experts, top_k, hidden, intermediate;
  Activation activation;
};
// Known names: tiny, qwen3-30b-a3b, qwen3-235b-a22b, deepseek-v3, mixtral-8x7b, gpt-oss-120b.
const Preset& find_preset(std::string_view name);
std::string preset_names();  // comma-separated
MoeConfig config_from_preset(const Preset& p, Mode mode = Mode::kW4A16);

}  // namespace fp4moe
