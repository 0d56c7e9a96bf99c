// The CUDA benchmark instrument behind `fp4moe bench --backend cuda` (host interface; no CUDA syntax).
//
// Method (see docs of the CLI command): every point is timed with CUDA events around one call at a time, each call
// preceded by an untimed write of a buffer twice the L2 size (cold L2: weights come from HBM as in a real model
// step); warm-up first, then at least `min_runs` runs and at least `min_total_ms` of timed GPU time; the median is
// reported with p10/p90. The device ceilings (copy bandwidth, BF16 GEMM rate) are measured in the same process and
// the roofline floor of ../shared/anchors.md is computed from them, with A = the distinct local experts that the
// point's routing actually hits.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "fp4moe/config.hpp"

namespace fp4moe::bench {

struct Ceilings {
  double copy_tbps = 0;    // device-to-device copy, (bytes read + written) / time, median
  double bf16_tflops = 0;  // cuBLAS BF16 GEMM 8192³ (fp32 accumulate) on random data, median
};

struct TimingOptions {
  int warmup = 3;
  int min_runs = 20;
  int max_runs = 2000;
  double min_total_ms = 200;  // keep timing until this much GPU time is covered (within max_runs)
  bool flush_l2 = true;
};

struct Timing {
  double median_us = 0, p10_us = 0, p90_us = 0;
  int runs = 0;
};

// Work of one call and its floor: max(bytes / copy bandwidth, FLOPs / BF16 peak).
struct Roofline {
  double flops = 0, bytes = 0, floor_us = 0;
};
// anchors.md: FLOPs = 2·T·K·(fc1_rows·H + H·I); bytes = A·(fc1_rows·H + H·I)·(1/2 + 1/16) + T·H·2 (x) + T·H·2 (out).
Roofline moe_roofline(const MoeConfig& config, int64_t tokens, int64_t hit_experts, const Ceilings& ceilings);
// FLOPs = 2·M·N·K; bytes = N·K·(1/2 + 1/16) + x (M·K·2, or M·K·(1/2 + 1/16) pre-quantized) + M·N·2.
Roofline linear_roofline(int64_t m, int64_t n, int64_t k, bool fp4_x, const Ceilings& ceilings);

std::string gpu_name(int device);
// Measures both ceilings on `device` (needs about 2.5 GB of free device memory, released before returning).
Ceilings measure_ceilings(int device);

// How the baseline runs its per-expert GEMMs: one cublasGemmGroupedBatchedEx per layer GEMM (experts with equal
// row counts share a group), a loop of cublasGemmEx per hit expert, both (the faster is reported), or none.
enum class BaselineKind : uint8_t { kNone, kGrouped, kLoop, kBest };
BaselineKind parse_baseline_kind(std::string_view name);  // none, grouped, loop, best
std::string_view baseline_kind_name(BaselineKind kind);

struct BaselineResult {
  Timing timing;
  std::string impl;    // "grouped" or "loop": the variant timed (the faster one for kBest)
  bool graph = false;  // timed as CUDA graph replays (false when capture was asked for but failed)
  double rel_l2 = 0;   // ‖ours − baseline‖ / ‖baseline‖ over the point's output (a sanity check, not a verdict)
};

struct MoeBenchSpec {
  MoeConfig config;
  uint64_t seed = 0;
  int64_t max_tokens = 0;  // buffers are sized for this many tokens
  int device = 0;
  bool graph = false;      // time replays of a CUDA graph captured once per point (ours and the baseline)
  int tile_rows = 0;       // RunOptions::tile_rows (0 = the library's choice)
  int weight_rows_per_block = 0;  // RunOptions::weight_rows_per_block (0 = the library's choice)
  BaselineKind baseline = BaselineKind::kBest;
  TimingOptions timing;
};

struct MoePoint {
  int64_t tokens = 0;
  int64_t hit_experts = 0;  // A: distinct local experts in the point's routing
  Timing ours;
  Roofline roofline;
  std::optional<BaselineResult> baseline;
};

// One layer on one GPU: random canonical NVFP4 weights made on the device, prepared for the CUDA backend, and (when
// asked and when memory allows) their BF16 dequantization for the cuBLAS baseline.
class MoeBench {
 public:
  MoeBench(const MoeBenchSpec& spec, const Ceilings& ceilings);
  ~MoeBench();
  MoeBench(const MoeBench&) = delete;
  MoeBench& operator=(const MoeBench&) = delete;

  // Routing: top-k distinct experts per token drawn uniformly, weights = normalized exp(N(0, 1)); x ~ N(0, 1).
  MoePoint measure(int64_t tokens);
  // Empty when the baseline runs; else why it does not (not asked for, or not enough device memory).
  const std::string& baseline_status() const;
  size_t prepared_bytes() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

struct LinearBenchSpec {
  int64_t n = 0, k = 0;  // W [N, K]
  int64_t max_m = 0;
  Mode mode = Mode::kW4A16;  // kW4A4: x pre-quantized to NVFP4 once per point (outside the timing)
  uint64_t seed = 0;
  int device = 0;
  bool graph = false;
  bool baseline = true;  // cublasGemmEx BF16 x · BF16 Wᵀ (fp32 accumulate) with W dequantized
  TimingOptions timing;
};

struct LinearPoint {
  int64_t m = 0;
  Timing ours;
  Roofline roofline;
  std::optional<BaselineResult> baseline;
};

class LinearBench {
 public:
  LinearBench(const LinearBenchSpec& spec, const Ceilings& ceilings);
  ~LinearBench();
  LinearBench(const LinearBench&) = delete;
  LinearBench& operator=(const LinearBench&) = delete;

  LinearPoint measure(int64_t m);

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace fp4moe::bench
