// `fp4moe moe`: runs one MoE layer stored in safetensors files (format in README "Layer file format").
#include <cstring>
#include <iostream>
#include <optional>

#include "commands.hpp"
#include "host_forward.hpp"
#include "fp4moe/error.hpp"
#include "fp4moe/moe.hpp"
#include "fp4moe/safetensors.hpp"

namespace fp4moe::cli {

namespace {

struct MoeOptions {
  std::string layer, inputs, output;
  std::string backend = "auto";
  std::optional<std::string> mode, activation, fc1_order, scale_layout;
  std::optional<int64_t> top_k, num_experts, expert_offset;
  std::optional<float> swiglu_alpha, swiglu_beta, swiglu_limit;
  bool accumulate = false;
};

// Owned, aligned copy of a tensor from a file (file views may be unaligned).
// Copies all t.nbytes() bytes, whatever the element type T of the destination.
template <class T>
std::vector<T> copy_tensor(const TensorView& t) {
  std::vector<T> v((t.nbytes() + sizeof(T) - 1) / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), t.data, t.nbytes());
  return v;
}

int64_t metadata_int(const SafetensorsFile& f, const char* key, std::optional<int64_t> flag, int64_t fallback) {
  if (flag) return *flag;
  const auto v = f.metadata_value(key);
  if (!v) return fallback;
  try {
    size_t used = 0;
    const int64_t n = std::stoll(*v, &used);
    if (used == v->size()) return n;
  } catch (const std::exception&) {
  }
  fail_arg(std::string(f.path()) + " metadata '" + key + "'", "an integer", "'" + *v + "'");
}

std::string metadata_str(const SafetensorsFile& f, const char* key, const std::optional<std::string>& flag,
                         const char* fallback) {
  if (flag) return *flag;
  return f.metadata_value(key).value_or(fallback);
}

float scalar(const SafetensorsFile& f, const char* name) {
  const TensorView t = f.get(name, DType::kF32);
  FP4MOE_CHECK_ARG(t.numel() == 1, std::string(f.path()) + ":" + name, "one F32 value",
                   detail::concat("shape ", shape_string(t)));
  return copy_tensor<float>(t)[0];
}

MoeConfig layer_config(const SafetensorsFile& layer, const TensorView& w13, const TensorView& w2, int64_t top_k_in,
                       const MoeOptions& o) {
  FP4MOE_CHECK_ARG(w13.ndim == 3, layer.path() + ":w13", "shape [E_local, rows, H/2]", shape_string(w13));
  FP4MOE_CHECK_ARG(w2.ndim == 3, layer.path() + ":w2", "shape [E_local, H, I/2]", shape_string(w2));
  MoeConfig c;
  c.num_local_experts = w13.shape[0];
  c.hidden = w13.shape[2] * 2;
  c.intermediate = w2.shape[2] * 2;
  c.expert_offset = metadata_int(layer, "expert_offset", o.expert_offset, 0);
  c.num_experts = metadata_int(layer, "num_experts", o.num_experts, c.expert_offset + c.num_local_experts);
  c.top_k = metadata_int(layer, "top_k", o.top_k, top_k_in);
  c.activation = parse_activation(metadata_str(layer, "activation", o.activation, "silu"), "activation");
  c.fc1_order = parse_fc1_order(metadata_str(layer, "fc1_order", o.fc1_order, "gate_up"), "fc1_order");
  c.mode = parse_mode(metadata_str(layer, "mode", o.mode, "w4a16"), "mode");
  auto meta_float = [&](const char* key, std::optional<float> flag, float fallback) {
    if (flag) return *flag;
    const auto v = layer.metadata_value(key);
    return v ? std::stof(*v) : fallback;
  };
  c.swiglu.alpha = meta_float("swiglu_alpha", o.swiglu_alpha, c.swiglu.alpha);
  c.swiglu.beta = meta_float("swiglu_beta", o.swiglu_beta, c.swiglu.beta);
  c.swiglu.limit = meta_float("swiglu_limit", o.swiglu_limit, c.swiglu.limit);
  return c;
}

void run_moe_command(const MoeOptions& o) {
  const SafetensorsFile layer = SafetensorsFile::open(o.layer);
  const SafetensorsFile in = SafetensorsFile::open(o.inputs);
  const TensorView ids_view = in.get("topk_ids", DType::kI32, 2);
  const MoeConfig config = layer_config(layer, layer.get("w13", DType::kU8), layer.get("w2", DType::kU8),
                                        ids_view.shape[1], o);

  MoeWeights weights;
  ExpertGroup g;
  g.w13 = layer.get("w13");
  g.w13_scale = layer.get("w13_scale");
  g.w13_scale_2 = layer.get("w13_scale_2");
  g.w2 = layer.get("w2");
  g.w2_scale = layer.get("w2_scale");
  g.w2_scale_2 = layer.get("w2_scale_2");
  weights.groups.push_back(g);
  weights.scale_layout = parse_scale_layout(metadata_str(layer, "scale_layout", o.scale_layout, "linear"));
  if (layer.contains("input_scale")) weights.fc1_input_scale = scalar(layer, "input_scale");
  if (layer.contains("fc2_input_scale")) weights.fc2_input_scale = scalar(layer, "fc2_input_scale");
  const PreparedWeights prepared = prepare_weights(config, weights, parse_backend(o.backend, "--backend"));

  const TensorView x_view = in.get("x");
  const int64_t tokens = x_view.ndim == 2 ? x_view.shape[0] : -1;
  const auto x = copy_tensor<uint8_t>(x_view);
  const auto ids = copy_tensor<int32_t>(ids_view);
  const auto topw = copy_tensor<float>(in.get("topk_weights", DType::kF32, 2));
  std::vector<uint8_t> x_scale;
  MoeInputs inputs;
  inputs.x = x_view;
  inputs.x.data = const_cast<uint8_t*>(x.data());
  if (in.contains("x_scale")) {
    const TensorView sv = in.get("x_scale");
    x_scale = copy_tensor<uint8_t>(sv);
    inputs.x_scale = sv;
    inputs.x_scale.data = x_scale.data();
    inputs.x_global_scale = scalar(in, "x_global_scale");
  }
  inputs.topk_ids = TensorView(ids.data(), DType::kI32, {ids_view.shape[0], ids_view.shape[1]});
  inputs.topk_weights = TensorView(topw.data(), DType::kF32, {ids_view.shape[0], ids_view.shape[1]});

  std::vector<uint16_t> out(size_t(std::max<int64_t>(tokens, 0) * config.hidden), 0);
  if (o.accumulate) {
    const TensorView prev = in.get("out", DType::kBF16, 2);
    FP4MOE_CHECK_ARG(prev.numel() == int64_t(out.size()), o.inputs + ":out",
                     detail::concat("shape ", shape_string({tokens, config.hidden})), shape_string(prev));
    std::memcpy(out.data(), prev.data, out.size() * 2);
  }
  TensorView out_view(out.data(), DType::kBF16, {std::max<int64_t>(tokens, 0), config.hidden});
  forward_host_tensors(prepared, inputs, out_view, RunOptions{o.accumulate});

  SafetensorsWriter w;
  w.add("out", out_view);
  w.add_metadata("config", config.describe());
  w.write(o.output);
  std::cout << "layer: " << config.describe() << "\nbackend: " << backend_name(prepared.backend())
            << "\ntokens: " << tokens << "\nwrote " << o.output << "\n";
}

}  // namespace

void add_moe_command(CLI::App& app) {
  auto o = std::make_shared<MoeOptions>();
  CLI::App* cmd = app.add_subcommand("moe", "Run one MoE layer from safetensors files");
  cmd->add_option("--layer", o->layer, "Layer file (w13, w13_scale, w13_scale_2, w2, w2_scale, w2_scale_2, ...)")
      ->required()->check(CLI::ExistingFile);
  cmd->add_option("--inputs", o->inputs, "Inputs file (x, topk_ids, topk_weights[, x_scale, x_global_scale, out])")
      ->required()->check(CLI::ExistingFile);
  cmd->add_option("--output", o->output, "Output file (out [T, H] BF16)")->required();
  cmd->add_option("--backend", o->backend, "auto, cpu or cuda")->capture_default_str();
  cmd->add_option("--mode", o->mode, "w4a16 or w4a4 (overrides metadata 'mode'; default w4a16)");
  cmd->add_option("--activation", o->activation, "silu|gelu_tanh|relu2|swiglu_clamped (overrides metadata)");
  cmd->add_option("--fc1-order", o->fc1_order, "gate_up|up_gate|interleaved (overrides metadata)");
  cmd->add_option("--scale-layout", o->scale_layout, "linear|128x4 (overrides metadata 'scale_layout')");
  cmd->add_option("--top-k", o->top_k, "Top-k (overrides metadata; default topk_ids.shape[1])");
  cmd->add_option("--num-experts", o->num_experts, "Global expert count E (overrides metadata)");
  cmd->add_option("--expert-offset", o->expert_offset, "Global id of local expert 0 (overrides metadata)");
  cmd->add_option("--swiglu-alpha", o->swiglu_alpha, "swiglu_clamped alpha (default 1.702)");
  cmd->add_option("--swiglu-beta", o->swiglu_beta, "swiglu_clamped beta (default 1.0)");
  cmd->add_option("--swiglu-limit", o->swiglu_limit, "swiglu_clamped limit (default 7.0)");
  cmd->add_flag("--accumulate", o->accumulate, "Add into the inputs file's 'out' tensor instead of overwriting");
  cmd->callback([o] { run_moe_command(*o); });
}

}  // namespace fp4moe::cli
