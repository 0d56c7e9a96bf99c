// Runner: per-call validation of inputs and dispatch to the backend (today the CPU reference).
#include <omp.h>

#include <cmath>

#include "api/prepared.hpp"
#include "cuda/moe/heuristics.hpp"
#include "cuda/moe/moe_launch.hpp"
#include "fp4moe/error.hpp"

namespace fp4moe {

namespace {

struct CallShape {
  int64_t tokens = 0;
  bool prequantized = false;
};

CallShape validate_inputs(const MoeConfig& c, Device device, const MoeInputs& in, const TensorView& out) {
  CallShape s;
  FP4MOE_CHECK_ARG(in.x.ndim == 2, "x", "a 2-D tensor [T, H]", detail::concat("shape ", shape_string(in.x)));
  s.tokens = in.x.shape[0];
  s.prequantized = in.x.dtype == DType::kU8;
  check_device(in.x, "x", device);
  check_row_major(in.x, "x");
  if (s.prequantized) {
    FP4MOE_CHECK_ARG(c.mode == Mode::kW4A4, "x", "dtype BF16 (pre-quantized U8 x needs mode w4a4)",
                     "dtype U8 with mode w4a16");
    check_shape(in.x, "x", {s.tokens, c.hidden / 2});
    check_contiguous(in.x, "x");
    FP4MOE_CHECK_ARG(!in.x_scale.empty(), "x_scale", "E4M3 scales [T, H/16] for pre-quantized x", "none");
    FP4MOE_CHECK_ARG(in.x_scale.dtype == DType::kE4M3 || in.x_scale.dtype == DType::kU8, "x_scale",
                     "dtype F8_E4M3", detail::concat("dtype ", dtype_name(in.x_scale.dtype)));
    check_shape(in.x_scale, "x_scale", {s.tokens, c.hidden / kBlockSize});
    check_contiguous(in.x_scale, "x_scale");
    check_device(in.x_scale, "x_scale", device);
    FP4MOE_CHECK_ARG(std::isfinite(in.x_global_scale) && in.x_global_scale > 0, "x_global_scale",
                     "a finite value > 0 for pre-quantized x", in.x_global_scale);
  } else {
    check_dtype(in.x, "x", DType::kBF16);
    check_shape(in.x, "x", {s.tokens, c.hidden});
    FP4MOE_CHECK_ARG(in.x_scale.empty(), "x_scale", "none with BF16 x", "a tensor");
  }
  check_dtype(in.topk_ids, "topk_ids", DType::kI32);
  check_shape(in.topk_ids, "topk_ids", {s.tokens, c.top_k});
  check_contiguous(in.topk_ids, "topk_ids");
  check_device(in.topk_ids, "topk_ids", device);
  check_dtype(in.topk_weights, "topk_weights", DType::kF32);
  check_shape(in.topk_weights, "topk_weights", {s.tokens, c.top_k});
  check_contiguous(in.topk_weights, "topk_weights");
  check_device(in.topk_weights, "topk_weights", device);
  check_dtype(out, "out", DType::kBF16);
  check_shape(out, "out", {s.tokens, c.hidden});
  check_row_major(out, "out");
  check_device(out, "out", device);
  return s;
}

// The CPU backend reads ids on the host, so it can name the first one outside [0, E).
void check_topk_ids_host(const MoeConfig& c, const int32_t* ids, int64_t tokens) {
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t k = 0; k < c.top_k; ++k) {
      const int32_t id = ids[t * c.top_k + k];
      if (id < 0 || id >= c.num_experts) {
        fail_arg("topk_ids", detail::concat("ids in [0, ", c.num_experts, ")"),
                 detail::concat("id ", id, " at (token ", t, ", slot ", k, ")"));
      }
    }
  }
}

// The CUDA backend cannot read ids on the host without a synchronization; ids outside [0, E) add nothing there.
void run_cuda(const PreparedWeights::Impl& w, const MoeInputs& in, bool prequantized, int64_t tokens, TensorView out,
              void* workspace, size_t workspace_bytes, void* stream, RunOptions options) {
  cuda::MoeLaunch l;
  l.config = &w.config;
  l.experts = w.cuda.experts;
  l.gs2 = w.gs2;
  l.tokens = tokens;
  if (prequantized) {
    l.x_fp4 = in.x.ptr<const uint8_t>();
    l.x_scale = in.x_scale.ptr<const uint8_t>();
    l.gs1 = in.x_global_scale;
  } else {
    l.x = in.x.ptr<const uint16_t>();
    l.x_ld = tokens > 1 ? in.x.strides[0] : w.config.hidden;
    l.gs1 = w.gs1 > 0 ? w.gs1 : 1.0f;
  }
  l.topk_ids = in.topk_ids.ptr<const int32_t>();
  l.topk_weights = in.topk_weights.ptr<const float>();
  l.out = out.ptr<uint16_t>();
  l.out_ld = tokens > 1 ? out.strides[0] : w.config.hidden;
  l.accumulate = options.accumulate;
  l.force_tile_rows = options.tile_rows;
  l.force_weight_rows_per_block = options.weight_rows_per_block;
  l.workspace = workspace;
  l.workspace_bytes = workspace_bytes;
  DeviceGuard guard(w.device.index);
  cuda::moe_launch(l, stream);
}

}  // namespace

Runner::Runner(PreparedWeights weights) : weights_(std::move(weights)), cpu_threads_(omp_get_max_threads()) {
  weights_.impl();  // throws on an empty PreparedWeights
}

size_t Runner::workspace_size(int64_t max_tokens) const {
  FP4MOE_CHECK_ARG(max_tokens >= 0, "max_tokens", ">= 0", max_tokens);
  if (weights_.backend() == Backend::kCuda) return cuda::moe_workspace_size(weights_.config(), max_tokens);
  return reference::workspace_size(weights_.config(), max_tokens, cpu_threads_);
}

void Runner::run(const MoeInputs& inputs, TensorView out, void* workspace, size_t workspace_bytes, void* stream,
                 RunOptions options) const {
  const PreparedWeights::Impl& w = weights_.impl();
  const MoeConfig& c = w.config;
  const CallShape s = validate_inputs(c, w.device, inputs, out);
  const size_t need = workspace_size(s.tokens);
  FP4MOE_CHECK_ARG(workspace_bytes >= need, "workspace_bytes", detail::concat(">= ", need, " bytes"),
                   detail::concat(workspace_bytes, " bytes"));
  FP4MOE_CHECK_ARG(workspace != nullptr || need == 0, "workspace", "a buffer", "nullptr");
  FP4MOE_CHECK_ARG(options.tile_rows == 0 || cuda::is_tile_rows_choice(options.tile_rows), "options.tile_rows",
                   "0, 8, 16, 24, 32, 64, 128 or 160", options.tile_rows);
  FP4MOE_CHECK_ARG(options.weight_rows_per_block == 0 ||
                       cuda::is_weight_rows_per_block_choice(options.weight_rows_per_block),
                   "options.weight_rows_per_block", "0, 32 or 128", options.weight_rows_per_block);
  if (s.tokens == 0) return;
  if (!s.prequantized) {
    FP4MOE_CHECK_ARG(c.mode != Mode::kW4A4 || w.gs1 > 0, "weights.fc1_input_scale",
                     "a value > 0 (1/gs1) in mode w4a4 with BF16 x", "0 (not given)");
  }
  if (w.backend == Backend::kCuda) {
    // The kernels read x rows with 16-byte vector loads and packed rows with 4-byte loads.
    check_aligned(inputs.x, "x", s.prequantized ? 4 : 16);
    const int64_t x_ld = s.tokens > 1 ? inputs.x.strides[0] : c.hidden;
    FP4MOE_CHECK_ARG(s.prequantized || x_ld % 8 == 0, "x", "a row stride that is a multiple of 8 elements", x_ld);
    run_cuda(w, inputs, s.prequantized, s.tokens, out, workspace, workspace_bytes, stream, options);
    return;
  }
  check_topk_ids_host(c, inputs.topk_ids.ptr<const int32_t>(), s.tokens);

  reference::Problem p;
  p.config = &c;
  p.experts = w.host.experts.data();
  p.gs2 = w.gs2;
  p.tokens = s.tokens;
  if (s.prequantized) {
    p.x_fp4 = inputs.x.ptr<const uint8_t>();
    p.x_scale = inputs.x_scale.ptr<const uint8_t>();
    p.gs1 = inputs.x_global_scale;
  } else {
    p.x = inputs.x.ptr<const uint16_t>();
    p.x_ld = inputs.x.strides[0];
    p.gs1 = w.gs1;
  }
  p.topk_ids = inputs.topk_ids.ptr<const int32_t>();
  p.topk_weights = inputs.topk_weights.ptr<const float>();
  p.out = out.ptr<uint16_t>();
  p.out_ld = out.strides[0];
  p.accumulate = options.accumulate;
  reference::run_moe(p, workspace, workspace_bytes, cpu_threads_);
}

}  // namespace fp4moe
