// MoeConfig validation, enum spellings and the model presets of ../shared/anchors.md.
#include "fp4moe/config.hpp"

#include <array>
#include <cmath>
#include <sstream>

#include "fp4moe/error.hpp"

namespace fp4moe {

namespace {

template <class Enum, size_t N>
Enum parse_enum(std::string_view s, std::string_view arg, const std::array<std::pair<std::string_view, Enum>, N>& table) {
  std::string choices;
  for (const auto& [name, value] : table) {
    if (name == s) return value;
    choices += (choices.empty() ? "" : "|") + std::string(name);
  }
  fail_arg(arg, "one of " + choices, "'" + std::string(s) + "'");
}

constexpr std::array<std::pair<std::string_view, Activation>, 4> kActivations{{
    {"silu", Activation::kSilu},
    {"gelu_tanh", Activation::kGeluTanh},
    {"relu2", Activation::kRelu2},
    {"swiglu_clamped", Activation::kSwigluClamped},
}};
constexpr std::array<std::pair<std::string_view, Mode>, 2> kModes{{{"w4a16", Mode::kW4A16}, {"w4a4", Mode::kW4A4}}};
constexpr std::array<std::pair<std::string_view, Fc1Order>, 3> kFc1Orders{{
    {"gate_up", Fc1Order::kGateUp},
    {"up_gate", Fc1Order::kUpGate},
    {"interleaved", Fc1Order::kInterleaved},
}};
constexpr std::array<std::pair<std::string_view, Backend>, 3> kBackends{{
    {"auto", Backend::kAuto},
    {"cpu", Backend::kCpu},
    {"cuda", Backend::kCuda},
}};

template <class Enum, size_t N>
std::string_view enum_name(Enum v, const std::array<std::pair<std::string_view, Enum>, N>& table) {
  for (const auto& [name, value] : table) {
    if (value == v) return name;
  }
  return "?";
}

constexpr std::array<Preset, 6> kPresets{{
    {"tiny", 8, 2, 256, 128, Activation::kSilu},
    {"qwen3-30b-a3b", 128, 8, 2048, 768, Activation::kSilu},
    {"qwen3-235b-a22b", 128, 8, 4096, 1536, Activation::kSilu},
    {"deepseek-v3", 256, 8, 7168, 2048, Activation::kSilu},
    {"mixtral-8x7b", 8, 2, 4096, 14336, Activation::kSilu},
    {"gpt-oss-120b", 128, 4, 2880, 2880, Activation::kSwigluClamped},
}};

}  // namespace

std::string_view activation_name(Activation a) { return enum_name(a, kActivations); }
std::string_view mode_name(Mode m) { return enum_name(m, kModes); }
std::string_view fc1_order_name(Fc1Order o) { return enum_name(o, kFc1Orders); }
std::string_view backend_name(Backend b) { return enum_name(b, kBackends); }
Activation parse_activation(std::string_view s, std::string_view arg) { return parse_enum(s, arg, kActivations); }
Mode parse_mode(std::string_view s, std::string_view arg) { return parse_enum(s, arg, kModes); }
Fc1Order parse_fc1_order(std::string_view s, std::string_view arg) { return parse_enum(s, arg, kFc1Orders); }
Backend parse_backend(std::string_view s, std::string_view arg) { return parse_enum(s, arg, kBackends); }

void MoeConfig::validate() const {
  FP4MOE_CHECK_ARG(num_experts >= 1, "num_experts", ">= 1", num_experts);
  FP4MOE_CHECK_ARG(num_local_experts >= 1, "num_local_experts", ">= 1", num_local_experts);
  FP4MOE_CHECK_ARG(expert_offset >= 0 && expert_offset + num_local_experts <= num_experts, "expert_offset",
                   detail::concat("a value in [0, ", num_experts - num_local_experts,
                                  "] (num_experts - num_local_experts)"),
                   expert_offset);
  FP4MOE_CHECK_ARG(top_k >= 1 && top_k <= num_experts, "top_k",
                   detail::concat("a value in [1, ", num_experts, "] (num_experts)"), top_k);
  FP4MOE_CHECK_ARG(hidden >= 16 && hidden % 16 == 0, "hidden", "a positive multiple of 16", hidden);
  FP4MOE_CHECK_ARG(intermediate >= 16 && intermediate % 16 == 0, "intermediate", "a positive multiple of 16",
                   intermediate);
  if (activation == Activation::kSwigluClamped) {
    FP4MOE_CHECK_ARG(std::isfinite(swiglu.alpha), "swiglu.alpha", "a finite value", swiglu.alpha);
    FP4MOE_CHECK_ARG(std::isfinite(swiglu.beta), "swiglu.beta", "a finite value", swiglu.beta);
    FP4MOE_CHECK_ARG(std::isfinite(swiglu.limit) && swiglu.limit > 0, "swiglu.limit", "a finite value > 0",
                     swiglu.limit);
  }
}

std::string MoeConfig::describe() const {
  std::ostringstream os;
  os << "E=" << num_experts << " E_local=" << num_local_experts << " offset=" << expert_offset << " K=" << top_k
     << " H=" << hidden << " I=" << intermediate << " activation=" << activation_name(activation);
  if (activation == Activation::kSwigluClamped) {
    os << "(alpha=" << swiglu.alpha << ",beta=" << swiglu.beta << ",limit=" << swiglu.limit << ")";
  }
  os << " mode=" << mode_name(mode);
  if (gated()) os << " fc1_order=" << fc1_order_name(fc1_order);
  return os.str();
}

const Preset& find_preset(std::string_view name) {
  for (const Preset& p : kPresets) {
    if (p.name == name) return p;
  }
  fail_arg("preset", "one of " + preset_names(), "'" + std::string(name) + "'");
}

std::string preset_names() {
  std::string s;
  for (const Preset& p : kPresets) s += (s.empty() ? "" : ", ") + std::string(p.name);
  return s;
}

MoeConfig config_from_preset(const Preset& p, Mode mode) {
  MoeConfig c;
  c.num_experts = p.num_experts;
  c.num_local_experts = p.num_experts;
  c.expert_offset = 0;
  c.top_k = p.top_k;
  c.hidden = p.hidden;
  c.intermediate = p.intermediate;
  c.activation = p.activation;
  c.mode = mode;
  return c;
}

}  // namespace fp4moe
