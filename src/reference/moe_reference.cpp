// CPU reference of the fused NVFP4 MoE layer: spec §5, computed exactly as written there.
//
// What it computes, per token t and slot k with e = topk_ids[t][k] inside [expert_offset, expert_offset + E_local):
//   a    = x[t] as fp32 (W4A16: BF16 widened; W4A4: x quantized per §2 with gs1, once per token, then
//          e2m1(q)·sf without the global scale — exact in fp32)
//   c[n] = alpha1 · Σ_j a[j]·w13[n][j]             alpha1 = w13_scale_2 (W4A16) or div_rn(w13_scale_2, gs1)
//   h[i] = activation(c[i], c[I + i])              fp32; W4A16: rounded to BF16; W4A4: quantized per §2 with gs2
//                                                  (blocks of 16 along I) and used as e2m1(q)·sf
//   y[n] = alpha2 · Σ_i h[i]·w2[n][i]              alpha2 = w2_scale_2 (W4A16) or div_rn(w2_scale_2, gs2)
// where w[n][j] = e2m1(q)·sf, exact in fp32, and every product a·w / h·w is exact in fp32 as well (spec §4), so
// only the order of the sums matters. The layer output is
//   acc = 0; for k = 0..K-1 (local slots only): acc = acc + mul_rn(topk_weights[t][k], y_k[n]);
//   if accumulate: acc = acc + bf16_to_float(out[t][n]);   out[t][n] = float_to_bf16(acc)
// A token with no local slot gets +0 without accumulate and is left untouched with it (so −0 and NaN payloads
// already in `out` survive bit for bit).
//
// Summation order of every dot product (length H for FC1, I for FC2): kLanes = 16 partial sums starting at +0,
// lane l adding the products of elements j ≡ l (mod 16) in increasing j, then the lanes combined by a fixed
// pairwise tree (lane[l] += lane[l + 8] for l < 8, then l + 4, l + 2, l + 1). The order depends on nothing but the
// length, so results are independent of the thread count, of the token chunking and of which other tokens share
// the call; the 16 lanes let the compiler vectorize the loop without reassociating anything itself.
//
// Decomposition: tokens are processed in chunks (at most kMaxChunkTokens, and fewer if a chunk's buffers would
// exceed kChunkBudgetBytes). Within a chunk, one OpenMP parallel region runs these phases, separated by barriers:
//   1. activation input a for each token of the chunk (parallel over tokens);
//   2. the chunk's (token, slot) pairs sorted by local expert, a stable counting sort (one thread);
//   3. FC1: tasks = (hit expert, block of kRowBlock weight rows), dynamically scheduled; a task dequantizes its
//      rows to fp32 once (E2M1 values of each packed byte from a table, × the E4M3 scale) and computes them for
//      every pair of that expert while the rows are in cache;
//   4. activation and the rounding/quantization of h, per pair (in place over the pair's FC1 output);
//   5. FC2: tasks = (hit expert, block of kRowBlock rows of w2), as in 3, writing fp32 y per (token, slot);
//   6. the combination above, per token, in slot order.
// Every output element is computed by exactly one thread in a fixed order, so the schedule does not matter.
// Workspace: the per-chunk buffers above plus kRowBlock dequantized rows per thread; nothing else is allocated.
//
// Problem conventions beyond the header: x_ld / out_ld = 0 mean contiguous rows (H); the pre-quantized x rows are
// contiguous ([T, H/2] codes, [T, H/16] scales).
#include "reference/moe_reference.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "fp4moe/error.hpp"
#include "fp4moe/nvfp4.hpp"
#include "reference/cpu_math.hpp"

namespace fp4moe::reference {
namespace {

constexpr int64_t kAlign = 64;                     // every workspace section starts on a cache line
constexpr int64_t kMaxChunkTokens = 256;           // bounds the workspace and keeps the per-chunk buffers warm
constexpr int64_t kChunkBudgetBytes = 64ll << 20;  // per-chunk buffer budget for very wide layers
constexpr int64_t kRowBlock = 8;                   // weight rows dequantized together by one task

int64_t align_up(int64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

// Byte offsets of the workspace sections, relative to the first 64-byte-aligned address of the workspace.
struct Layout {
  int64_t chunk = 0;        // tokens per chunk
  int64_t x = 0;            // float [chunk, H]: activation input a
  int64_t offsets = 0;      // int64 [E_local + 1]: first sorted pair of each local expert
  int64_t cursor = 0;       // int64 [E_local + 1]: sort cursor, then the list of hit experts
  int64_t pairs = 0;        // int32 [chunk · K]: pair ids (t_local·K + k) sorted by local expert
  int64_t fc1 = 0;          // float [chunk · K, fc1_rows]: FC1 output, then h in its first I entries
  int64_t y = 0;            // float [chunk · K, H]: FC2 output per pair
  int64_t rows = 0;         // float [threads][kRowBlock · max(H, I)]: dequantized weight rows
  int64_t rows_stride = 0;  // floats per thread in `rows`
  int64_t total = 0;        // bytes, including kAlign of slack for aligning the base pointer
};

void check_config(const MoeConfig& c) {
  FP4MOE_CHECK_ARG(c.hidden > 0 && c.hidden % kBlockSize == 0, "config.hidden", "a positive multiple of 16", c.hidden);
  FP4MOE_CHECK_ARG(c.intermediate > 0 && c.intermediate % kBlockSize == 0, "config.intermediate",
                   "a positive multiple of 16", c.intermediate);
  FP4MOE_CHECK_ARG(c.top_k > 0, "config.top_k", "a positive count", c.top_k);
  FP4MOE_CHECK_ARG(c.num_local_experts > 0, "config.num_local_experts", "a positive count", c.num_local_experts);
}

Layout make_layout(const MoeConfig& c, int64_t tokens, int threads) {
  const int64_t h = c.hidden, k = c.top_k;
  const int64_t per_token = h * 4 + k * (4 + c.fc1_rows() * 4 + h * 4);
  const int64_t budget_tokens = std::max<int64_t>(1, kChunkBudgetBytes / per_token);
  Layout l;
  l.chunk = std::min({tokens, kMaxChunkTokens, budget_tokens});
  l.rows_stride = align_up(kRowBlock * std::max(h, c.intermediate) * 4) / 4;
  int64_t at = 0;
  auto section = [&at](int64_t bytes) {
    const int64_t start = at;
    at += align_up(bytes);
    return start;
  };
  l.x = section(l.chunk * h * 4);
  l.offsets = section((c.num_local_experts + 1) * 8);
  l.cursor = section((c.num_local_experts + 1) * 8);
  l.pairs = section(l.chunk * k * 4);
  l.fc1 = section(l.chunk * k * c.fc1_rows() * 4);
  l.y = section(l.chunk * k * h * 4);
  l.rows = section(int64_t(threads) * l.rows_stride * 4);
  l.total = at + kAlign;
  return l;
}

// The workspace sections of one call.
struct Buffers {
  float* x;
  int64_t* offsets;
  int64_t* cursor;
  int32_t* pairs;
  float* fc1;
  float* y;
  float* rows;
};

Buffers carve(const Layout& l, void* workspace) {
  const uintptr_t raw = reinterpret_cast<uintptr_t>(workspace);
  char* base = reinterpret_cast<char*>((raw + kAlign - 1) / kAlign * kAlign);
  return {reinterpret_cast<float*>(base + l.x),        reinterpret_cast<int64_t*>(base + l.offsets),
          reinterpret_cast<int64_t*>(base + l.cursor), reinterpret_cast<int32_t*>(base + l.pairs),
          reinterpret_cast<float*>(base + l.fc1),      reinterpret_cast<float*>(base + l.y),
          reinterpret_cast<float*>(base + l.rows)};
}

// Quantizes 16 fp32 values per §2 and writes back their dequantized-without-global-scale values e2m1(q)·sf.
void quantize_dequantize_block(const float* src, float gs, float* dst) {
  uint8_t packed[kBlockSize / 2];
  const uint8_t sf = quantize_block(src, gs, packed);
  dequantize_row(packed, &sf, kBlockSize, dst);
}

// Everything a phase needs about the call, resolved once.
struct Call {
  const Problem* p;
  const MoeConfig* c;
  Buffers b;
  int64_t t0 = 0;  // first token of the chunk
  int64_t tc = 0;  // tokens in the chunk
  bool w4a4 = false;
  int64_t n_hit = 0;  // local experts with at least one pair in this chunk (listed in b.cursor)
};

// Phase 1: a = x[t] as fp32 (W4A16), or x quantized with gs1 and dequantized without the global scale (W4A4).
void load_activation_input(const Call& call, int64_t tl) {
  const Problem& p = *call.p;
  const int64_t h = call.c->hidden, t = call.t0 + tl;
  float* a = call.b.x + tl * h;
  if (p.x_fp4 != nullptr) {
    dequantize_row(p.x_fp4 + t * (h / 2), p.x_scale + t * (h / kBlockSize), h, a);
    return;
  }
  const uint16_t* x = p.x + t * (p.x_ld > 0 ? p.x_ld : h);
  for (int64_t j = 0; j < h; ++j) a[j] = bf16_to_float(x[j]);
  if (call.w4a4) {
    for (int64_t j = 0; j < h; j += kBlockSize) quantize_dequantize_block(a + j, p.gs1, a + j);
  }
}

// Phase 2: stable counting sort of the chunk's local pairs by expert; fills offsets, pairs and the hit list.
void group_pairs(Call& call) {
  const Problem& p = *call.p;
  const int64_t k = call.c->top_k, el = call.c->num_local_experts, lo = call.c->expert_offset;
  int64_t* offsets = call.b.offsets;
  int64_t* cursor = call.b.cursor;
  std::fill(offsets, offsets + el + 1, 0);
  const int32_t* ids = p.topk_ids + call.t0 * k;
  const int64_t n = call.tc * k;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t le = int64_t(ids[i]) - lo;
    if (le >= 0 && le < el) ++offsets[le + 1];
  }
  for (int64_t e = 0; e < el; ++e) offsets[e + 1] += offsets[e];
  std::copy(offsets, offsets + el, cursor);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t le = int64_t(ids[i]) - lo;
    if (le >= 0 && le < el) call.b.pairs[cursor[le]++] = int32_t(i);
  }
  call.n_hit = 0;
  for (int64_t e = 0; e < el; ++e) {
    if (offsets[e + 1] > offsets[e]) cursor[call.n_hit++] = e;
  }
}

// Phases 3 and 5: rows [r0, r0 + kRowBlock) of one expert's weight matrix ([rows, cols] packed, linear scales)
// against the inputs of every pair of that expert: dst[pair · dst_ld + r] = alpha · dot(row r, input(pair)).
struct GemmTask {
  const uint8_t* w;
  const uint8_t* sf;
  int64_t rows, cols;
  float alpha;
  const float* in;   // input rows
  int64_t in_ld;     // floats between consecutive inputs
  bool in_by_token;  // input row index = token (FC1) or pair id (FC2)
  float* dst;
  int64_t dst_ld;
};

void run_gemm_rows(const Call& call, const GemmTask& g, int64_t le, int64_t r0, float* row_buf) {
  const int64_t r1 = std::min(r0 + kRowBlock, g.rows);
  for (int64_t r = r0; r < r1; ++r) {
    dequantize_row(g.w + r * (g.cols / 2), g.sf + r * (g.cols / kBlockSize), g.cols, row_buf + (r - r0) * g.cols);
  }
  const int64_t k = call.c->top_k;
  for (int64_t i = call.b.offsets[le]; i < call.b.offsets[le + 1]; ++i) {
    const int64_t pair = call.b.pairs[i];
    const float* in = g.in + (g.in_by_token ? pair / k : pair) * g.in_ld;
    float* dst = g.dst + pair * g.dst_ld;
    for (int64_t r = r0; r < r1; ++r) dst[r] = mul_rn(g.alpha, dot(row_buf + (r - r0) * g.cols, in, g.cols));
  }
}

GemmTask fc1_task(const Call& call, int64_t le) {
  const MoeConfig& c = *call.c;
  const HostExpert& ex = call.p->experts[le];
  const float alpha = call.w4a4 ? div_rn(ex.w13_scale_2, call.p->gs1) : ex.w13_scale_2;
  return {ex.w13, ex.w13_scale, c.fc1_rows(), c.hidden, alpha, call.b.x, c.hidden, true, call.b.fc1, c.fc1_rows()};
}

GemmTask fc2_task(const Call& call, int64_t le) {
  const MoeConfig& c = *call.c;
  const HostExpert& ex = call.p->experts[le];
  const float alpha = call.w4a4 ? div_rn(ex.w2_scale_2, call.p->gs2) : ex.w2_scale_2;
  return {ex.w2, ex.w2_scale, c.hidden, c.intermediate, alpha, call.b.fc1, c.fc1_rows(), false, call.b.y, c.hidden};
}

// Phase 4: h = activation(gate, up), then BF16 rounding (W4A16) or §2 quantization with gs2 (W4A4), written in
// place over the first I entries of the pair's FC1 output. Element i reads i and I + i before anything at or past
// i is written, so the in-place update is safe.
void activate_pair(const Call& call, int64_t pair) {
  const MoeConfig& c = *call.c;
  const int64_t inter = c.intermediate;
  float* v = call.b.fc1 + pair * c.fc1_rows();
  const bool gated = c.gated();
  for (int64_t j0 = 0; j0 < inter; j0 += kBlockSize) {
    float h[kBlockSize];
    for (int i = 0; i < kBlockSize; ++i) {
      const int64_t j = j0 + i;
      h[i] = activation(c, v[j], gated ? v[inter + j] : 0.0f);
    }
    if (call.w4a4) {
      quantize_dequantize_block(h, call.p->gs2, v + j0);
    } else {
      for (int i = 0; i < kBlockSize; ++i) v[j0 + i] = bf16_to_float(float_to_bf16(h[i]));
    }
  }
}

// Phase 6: out[t] from the pairs' y in slot order (see the top of the file).
void combine_token(const Call& call, int64_t tl) {
  const Problem& p = *call.p;
  const MoeConfig& c = *call.c;
  const int64_t h = c.hidden, k = c.top_k, t = call.t0 + tl;
  const int32_t* ids = p.topk_ids + t * k;
  const float* weights = p.topk_weights + t * k;
  uint16_t* out = p.out + t * (p.out_ld > 0 ? p.out_ld : h);
  bool any_local = false;
  for (int64_t s = 0; s < k; ++s) {
    const int64_t le = int64_t(ids[s]) - c.expert_offset;
    any_local = any_local || (le >= 0 && le < c.num_local_experts);
  }
  if (!any_local && p.accumulate) return;
  for (int64_t n = 0; n < h; ++n) {
    float acc = 0.0f;
    for (int64_t s = 0; s < k; ++s) {
      const int64_t le = int64_t(ids[s]) - c.expert_offset;
      if (le >= 0 && le < c.num_local_experts) acc = acc + mul_rn(weights[s], call.b.y[(tl * k + s) * h + n]);
    }
    if (p.accumulate) acc = acc + bf16_to_float(out[n]);
    out[n] = float_to_bf16(acc);
  }
}

void run_chunk(Call& call, int threads, int64_t rows_stride) {
  const MoeConfig& c = *call.c;
  const int64_t fc1_blocks = (c.fc1_rows() + kRowBlock - 1) / kRowBlock;
  const int64_t fc2_blocks = (c.hidden + kRowBlock - 1) / kRowBlock;
#pragma omp parallel num_threads(threads)
  {
    float* row_buf = call.b.rows + thread_index() * rows_stride;
#pragma omp for schedule(static)
    for (int64_t tl = 0; tl < call.tc; ++tl) load_activation_input(call, tl);
#pragma omp single
    group_pairs(call);
    const int64_t n_pairs = call.b.offsets[c.num_local_experts];
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < call.n_hit * fc1_blocks; ++task) {
      const int64_t le = call.b.cursor[task / fc1_blocks];
      run_gemm_rows(call, fc1_task(call, le), le, (task % fc1_blocks) * kRowBlock, row_buf);
    }
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n_pairs; ++i) activate_pair(call, call.b.pairs[i]);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < call.n_hit * fc2_blocks; ++task) {
      const int64_t le = call.b.cursor[task / fc2_blocks];
      run_gemm_rows(call, fc2_task(call, le), le, (task % fc2_blocks) * kRowBlock, row_buf);
    }
#pragma omp for schedule(static)
    for (int64_t tl = 0; tl < call.tc; ++tl) combine_token(call, tl);
  }
}

void check_problem(const Problem& p) {
  const MoeConfig& c = *p.config;
  const bool w4a4 = c.mode == Mode::kW4A4;
  FP4MOE_CHECK_ARG(p.experts != nullptr, "experts", "num_local_experts host experts", "null");
  FP4MOE_CHECK_ARG((p.x != nullptr) != (p.x_fp4 != nullptr), "x", "exactly one of BF16 x and pre-quantized x",
                   p.x != nullptr ? "both" : "neither");
  FP4MOE_CHECK_ARG(p.x_fp4 == nullptr || w4a4, "x_fp4", "BF16 x in W4A16 mode", "pre-quantized x");
  FP4MOE_CHECK_ARG(p.x_fp4 == nullptr || p.x_scale != nullptr, "x_scale", "scales for pre-quantized x", "null");
  FP4MOE_CHECK_ARG(p.x_ld == 0 || p.x_ld >= c.hidden, "x_ld", "0 (contiguous) or >= hidden", p.x_ld);
  FP4MOE_CHECK_ARG(p.out_ld == 0 || p.out_ld >= c.hidden, "out_ld", "0 (contiguous) or >= hidden", p.out_ld);
  FP4MOE_CHECK_ARG(p.topk_ids != nullptr, "topk_ids", "an int32 [T, K] array", "null");
  FP4MOE_CHECK_ARG(p.topk_weights != nullptr, "topk_weights", "an fp32 [T, K] array", "null");
  FP4MOE_CHECK_ARG(p.out != nullptr, "out", "a BF16 [T, H] array", "null");
  if (w4a4) {
    FP4MOE_CHECK_ARG(std::isfinite(p.gs1) && p.gs1 > 0.0f, "gs1", "a positive finite global scale", p.gs1);
    FP4MOE_CHECK_ARG(std::isfinite(p.gs2) && p.gs2 > 0.0f, "gs2", "a positive finite global scale", p.gs2);
  }
  for (int64_t e = 0; e < c.num_local_experts; ++e) {
    const HostExpert& ex = p.experts[e];
    FP4MOE_CHECK(ex.w13 && ex.w13_scale && ex.w2 && ex.w2_scale, "reference::run_moe: local expert ", e,
                 " has a null weight or scale pointer");
  }
}

}  // namespace

float activation(const MoeConfig& config, float gate, float up) {
  // σ(v) = 1 / (1 + e^-v); for very negative v, e^-v overflows to +Inf and σ becomes exactly 0 (no NaN).
  const auto sigmoid = [](float v) { return div_rn(1.0f, 1.0f + std::exp(-v)); };
  switch (config.activation) {
    case Activation::kSilu:
      return mul_rn(mul_rn(gate, sigmoid(gate)), up);
    case Activation::kGeluTanh: {
      const float cube = mul_rn(mul_rn(gate, gate), gate);
      const float inner = mul_rn(0.7978845608f, gate + mul_rn(0.044715f, cube));
      return mul_rn(mul_rn(mul_rn(0.5f, gate), 1.0f + std::tanh(inner)), up);
    }
    case Activation::kRelu2: {
      const float r = gate < 0.0f ? 0.0f : gate;  // written so that NaN propagates
      return mul_rn(r, r);
    }
    case Activation::kSwigluClamped: {
      const SwigluParams& s = config.swiglu;
      const float g = std::min(gate, s.limit);
      const float u = std::clamp(up, -s.limit, s.limit);
      return mul_rn(mul_rn(g, sigmoid(mul_rn(s.alpha, g))), u + s.beta);
    }
  }
  fail("reference::activation: unknown activation ", int(config.activation));
}

size_t workspace_size(const MoeConfig& config, int64_t max_tokens, int threads) {
  check_config(config);
  FP4MOE_CHECK_ARG(max_tokens >= 0, "max_tokens", "a count >= 0", max_tokens);
  return size_t(make_layout(config, max_tokens, threads > 0 ? threads : max_threads()).total);
}

void run_moe(const Problem& problem, void* workspace, size_t workspace_bytes, int threads) {
  FP4MOE_CHECK_ARG(problem.config != nullptr, "config", "a MoeConfig", "null");
  const MoeConfig& c = *problem.config;
  check_config(c);
  FP4MOE_CHECK_ARG(problem.tokens >= 0, "tokens", "a count >= 0", problem.tokens);
  if (problem.tokens == 0) return;
  check_problem(problem);
  const int n_threads = threads > 0 ? threads : max_threads();
  const Layout layout = make_layout(c, problem.tokens, n_threads);
  if (workspace == nullptr || workspace_bytes < size_t(layout.total)) {
    fail("reference::run_moe: workspace too small: expected at least ", layout.total, " bytes for ", problem.tokens,
         " tokens and ", n_threads, " threads, got ", workspace == nullptr ? 0 : workspace_bytes);
  }
  Call call;
  call.p = &problem;
  call.c = &c;
  call.b = carve(layout, workspace);
  call.w4a4 = c.mode == Mode::kW4A4;
  for (int64_t t0 = 0; t0 < problem.tokens; t0 += layout.chunk) {
    call.t0 = t0;
    call.tc = std::min(layout.chunk, problem.tokens - t0);
    run_chunk(call, n_threads, layout.rows_stride);
  }
}

}  // namespace fp4moe::reference
