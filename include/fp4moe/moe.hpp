// fp4moe: the fused NVFP4 MoE layer: weight preparation (once), a runner on a caller-supplied workspace, and a
// convenience call with a bounded internal workspace cache. The numerics are spec §5.
//
// Typical use:
//   fp4moe::MoeConfig cfg = ...;                       // shapes, expert range, activation, mode
//   auto prepared = fp4moe::prepare_weights(cfg, src);  // once, at model load
//   fp4moe::Runner runner(prepared);
//   std::vector<std::byte> ws(runner.workspace_size(max_tokens));
//   runner.run(inputs, out, ws.data(), ws.size(), stream);   // per call: no allocation
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fp4moe/config.hpp"
#include "fp4moe/format.hpp"
#include "fp4moe/tensor.hpp"

namespace fp4moe {

// Experts [first, first + n) of the local range whose weights are stored together. A group's tensors are either
// stacked ([n, ...], n >= 1) or, for a single expert, 2-D without the expert dimension. Rows must be contiguous
// (innermost stride 1); the expert and row strides are free, so slices of larger buffers work.
struct ExpertGroup {
  TensorView w13;          // U8 [n, fc1_rows, H/2]       (fc1_rows = 2I gated, I non-gated)
  TensorView w13_scale;    // E4M3 linear [n, fc1_rows, H/16] or 128x4 [n, pad128(fc1_rows), pad4(H/16)]
  TensorView w13_scale_2;  // F32 [n] (or [1] / 0-d for a single expert): ModelOpt weight_scale_2 = 1/gs
  TensorView w2;           // U8 [n, H, I/2]
  TensorView w2_scale;     // E4M3 linear [n, H, I/16] or 128x4 [n, pad128(H), pad4(I/16)]
  TensorView w2_scale_2;   // F32 [n]
};

// Canonical (ModelOpt-style) expert weights. `groups` cover the local experts in order; their expert counts sum
// to E_local. One group = one stacked tensor; several = split along the expert dimension (any count); one group
// per expert = arbitrary per-expert placement. All give bitwise-identical results.
struct MoeWeights {
  std::vector<ExpertGroup> groups;
  ScaleLayout scale_layout = ScaleLayout::kLinear;
  // W4A4 only (ModelOpt convention, = 1/gs): FC1 activation scale (required in W4A4 unless x comes pre-quantized)
  // and FC2 activation scale. 0 means "not given"; gs2 then defaults to 1.
  float fc1_input_scale = 0.0f;
  float fc2_input_scale = 0.0f;
};

// Expert weights in the library's own layout for one backend and device. Immutable, cheap to copy (shared).
class PreparedWeights {
 public:
  struct Impl;
  PreparedWeights() = default;
  explicit PreparedWeights(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

  const MoeConfig& config() const;
  Backend backend() const;  // kCpu or kCuda (never kAuto)
  Device device() const;
  size_t bytes() const;     // memory held
  const Impl& impl() const;
  bool valid() const { return impl_ != nullptr; }

 private:
  std::shared_ptr<const Impl> impl_;
};

// Validates the source against the config and converts it once. `backend` kAuto picks CUDA on a GPU of SM80 or newer,
// else the CPU. All source tensors live on one device: the CPU (any backend) or a CUDA GPU (CUDA backend). The CUDA
// backend places the prepared weights on the sources' GPU, or on the current device for host sources.
PreparedWeights prepare_weights(const MoeConfig& config, const MoeWeights& weights, Backend backend = Backend::kAuto);

// Per-call inputs. T = x.shape[0] may be 0.
struct MoeInputs {
  TensorView x;             // BF16 [T, H]; or pre-quantized (W4A4 only): U8 [T, H/2]
  TensorView x_scale;       // pre-quantized only: E4M3 linear [T, H/16]
  float x_global_scale = 0;  // pre-quantized only: gs of x (the scale itself, not its inverse)
  TensorView topk_ids;      // I32 [T, K]
  TensorView topk_weights;  // F32 [T, K]
};

struct RunOptions {
  bool accumulate = false;  // out[t] += layer(x)[t] (added in fp32, rounded once) instead of out[t] = ...
  // CUDA: sorted (token, slot) rows per work tile; 0 = chosen from the batch shape. Each expert's weights are
  // streamed once per tile, so the best size follows the rows each expert gets.
  //  - 8, 16, 24 or 32: the weight-streaming kernels (every GPU); these sizes give bitwise-identical results.
  //  - 64, 128 or 160: the tensor-core (wgmma) kernels for large batches; only on compute capability 9.0 (sm_90a
  //    code), with H a multiple of 64 and I a multiple of 64 (128 when not gated), else run() throws naming
  //    options.tile_rows. These sizes give bitwise-identical results, which differ from the streaming kernels'
  //    only in fp32 summation order (spec §6). The automatic choice takes this path above ~20 rows per expert, so
  //    a token's result can differ in rounding between a small and a large batch.
  // Ignored by the CPU backend.
  int tile_rows = 0;
  // CUDA, weight-streaming kernels (tile_rows 8-32): weight rows per block; 0 = chosen from the batch shape.
  //  - 32: each block streams 32 rows of an expert's weights, its 4 warps splitting K (many blocks: small batches);
  //  - 128: 4 warps × 32 rows share one copy of the work tile's token rows in shared memory (a quarter of the L2
  //    traffic for tokens: batches with more than ~6 rows per expert).
  // Both give bitwise-identical results. Ignored by the wgmma kernels (tile_rows 64-160) and the CPU backend.
  int weight_rows_per_block = 0;
};

// Top-k id semantics (all backends):
//  - an id in [expert_offset, expert_offset + E_local) selects that local expert;
//  - an id in [0, E) outside the local range adds nothing (expert-parallel partial sum);
//  - ids outside [0, E): the CPU backend rejects them, naming the first bad (token, slot, id); the CUDA backend
//    cannot inspect ids on the host without a synchronization, so it treats them as non-local (they add nothing
//    and are never used to address memory);
//  - duplicate ids within one token's top-k are independent slots: each adds its weight × expert output, so an
//    expert listed twice contributes twice.
// Tokens none of whose slots hit a local expert get 0 (or keep out[t] with accumulate).
class Runner {
 public:
  explicit Runner(PreparedWeights weights);

  // Exact bytes of workspace that run() needs for up to max_tokens tokens.
  size_t workspace_size(int64_t max_tokens) const;

  // Computes out = moe(x) (BF16 [T, H], same device as the weights). No allocation, no host synchronization on
  // the CUDA backend, so the call can be captured in a CUDA graph and replayed with new routing; `stream` is a
  // cudaStream_t (nullptr = default stream), ignored by the CPU backend. CUDA: x must be 16-byte aligned with a
  // row stride that is a multiple of 8 elements (4-byte aligned when pre-quantized). Deterministic on both
  // backends: the same inputs give bitwise-identical output, whatever else is in the batch.
  void run(const MoeInputs& inputs, TensorView out, void* workspace, size_t workspace_bytes,
           void* stream = nullptr, RunOptions options = {}) const;

  const PreparedWeights& weights() const { return weights_; }

 private:
  PreparedWeights weights_;
  int cpu_threads_ = 1;  // fixed at construction so workspace_size() and run() agree
};

// Convenience: run() with a workspace from an internal cache (one buffer per device, grown on demand). Requests
// larger than the cache limit use a one-off buffer that is released after the call.
void moe_forward(const PreparedWeights& weights, const MoeInputs& inputs, TensorView out, void* stream = nullptr,
                 RunOptions options = {});
size_t workspace_cache_bytes();           // bytes currently cached
void set_workspace_cache_limit(size_t bytes);  // default 1 GiB
void clear_workspace_cache();

// The backend that kAuto resolves to on this machine, and why (for `fp4moe info`).
Backend resolve_backend(Backend requested, std::string* reason = nullptr);

}  // namespace fp4moe
