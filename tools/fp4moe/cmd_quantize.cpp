// `fp4moe quantize`: every 2-D BF16/F16/F32 tensor N of a safetensors file (K = shape[1] a multiple of 16)
// becomes N (U8 packed [rows, K/2]), N_scale (F8_E4M3, linear or 128x4) and N_scale_2 (F32 scalar = 1/gs, the
// ModelOpt convention). Other tensors are copied unchanged, each with a note on stdout.
#include <cmath>
#include <iostream>
#include <string>

#include "commands.hpp"
#include "fp4moe/error.hpp"
#include "fp4moe/format.hpp"
#include "fp4moe/safetensors.hpp"

namespace fp4moe::cli {

namespace {

struct QuantizeOptions {
  std::string input, output;
  std::string global_scale = "auto";
  std::string scale_layout = "linear";
};

bool quantizable(const TensorView& t) {
  const bool float_type = t.dtype == DType::kBF16 || t.dtype == DType::kF16 || t.dtype == DType::kF32;
  return float_type && t.ndim == 2 && t.shape[1] % kBlockSize == 0 && t.shape[1] > 0;
}

float parse_global_scale(const std::string& s) {
  if (s == "auto") return 0.0f;
  size_t used = 0;
  float v = 0;
  try {
    v = std::stof(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  FP4MOE_CHECK_ARG(used == s.size() && std::isfinite(v) && v > 0, "--global-scale", "auto or a finite value > 0",
                   "'" + s + "'");
  return v;
}

void run_quantize(const QuantizeOptions& o) {
  const float fixed_gs = parse_global_scale(o.global_scale);
  const ScaleLayout layout = parse_scale_layout(o.scale_layout, "--scale-layout");
  const SafetensorsFile in = SafetensorsFile::open(o.input);
  SafetensorsWriter out;
  for (const auto& [key, value] : in.metadata()) out.add_metadata(key, value);
  out.add_metadata("fp4moe_scale_layout", std::string(scale_layout_name(layout)));
  int quantized = 0;
  for (const std::string& name : in.names()) {
    const TensorView t = in.get(name);
    if (!quantizable(t)) {
      std::cout << "copied unchanged: " << name << " (" << dtype_name(t.dtype) << " " << shape_string(t)
                << ": only 2-D BF16/F16/F32 tensors with K a multiple of 16 are quantized)\n";
      out.add(name, t);
      continue;
    }
    const int64_t rows = t.shape[0], k = t.shape[1];
    const std::vector<float> x = to_float(t, name);
    const float gs = fixed_gs > 0 ? fixed_gs : auto_global_scale(x.data(), int64_t(x.size()));
    FP4MOE_CHECK(std::isfinite(gs) && gs > 0, "tensor '", name, "': global scale ", gs, " is not usable");
    const Nvfp4Matrix q = quantize_matrix(x.data(), rows, k, gs);
    const auto [srows, scols] = scale_shape(layout, rows, k);
    std::vector<uint8_t> scales = q.scales;
    if (layout == ScaleLayout::kSwizzled128x4) {
      scales.assign(size_t(srows * scols), 0);
      swizzle_scales(q.scales.data(), rows, k / kBlockSize, scales.data());
    }
    const float scale_2 = 1.0f / gs;
    out.add(name, TensorView(q.packed.data(), DType::kU8, {rows, k / 2}));
    out.add(name + "_scale", TensorView(scales.data(), DType::kE4M3, {srows, scols}));
    TensorView s2(&scale_2, DType::kF32, {});
    out.add(name + "_scale_2", s2);
    std::cout << "quantized: " << name << " " << shape_string(t) << " gs=" << gs << "\n";
    ++quantized;
  }
  out.write(o.output);
  std::cout << "wrote " << o.output << " (" << quantized << " tensors quantized, scale layout "
            << scale_layout_name(layout) << ")\n";
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  auto opts = std::make_shared<QuantizeOptions>();
  CLI::App* cmd = app.add_subcommand("quantize", "Quantize the 2-D float tensors of a safetensors file to NVFP4");
  cmd->add_option("--input", opts->input, "Input .safetensors file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--output", opts->output, "Output .safetensors file")->required();
  cmd->add_option("--global-scale", opts->global_scale,
                  "auto (gs = 448*6/amax per tensor) or one value used for every tensor")
      ->capture_default_str();
  cmd->add_option("--scale-layout", opts->scale_layout, "linear or 128x4")
      ->check(CLI::IsMember({"linear", "128x4"}))
      ->capture_default_str();
  cmd->callback([opts] { run_quantize(*opts); });
}

}  // namespace fp4moe::cli
