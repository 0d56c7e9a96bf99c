// Weight preparation: validates canonical (ModelOpt-style) expert weights and converts them once into the
// library's own layout. For the CPU backend that is FC1 rows in gate-up order with linear scales, per expert.
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstring>

#include "api/prepared.hpp"
#include "api/staging.hpp"
#include "cuda/common/cuda_check.hpp"
#include "format/fragment_layout.hpp"
#include "fp4moe/error.hpp"

namespace fp4moe {

namespace {

std::string tensor_arg(size_t group, std::string_view name) {
  return detail::concat("weights.groups[", group, "].", name);
}

// Validates one packed/scale pair of a group: `rows` × `k` FP4 values per expert.
void validate_matrix(size_t gi, std::string_view name, const TensorView& w,
                     const TensorView& sf, int64_t n, bool stacked, int64_t rows, int64_t k, ScaleLayout layout) {
  const std::string warg = tensor_arg(gi, name);
  const std::string sarg = tensor_arg(gi, std::string(name) + "_scale");
  check_dtype(w, warg, DType::kU8);
  if (stacked) {
    check_shape(w, warg, {n, rows, k / 2});
  } else {
    check_shape(w, warg, {rows, k / 2});
  }
  check_row_major(w, warg);
  FP4MOE_CHECK_ARG(!sf.empty(), sarg, "an F8_E4M3 tensor", "none");
  FP4MOE_CHECK_ARG(sf.dtype == DType::kE4M3 || sf.dtype == DType::kU8, sarg, "dtype F8_E4M3 (or U8 raw bytes)",
                   detail::concat("dtype ", dtype_name(sf.dtype)));
  const auto [srows, scols] = scale_shape(layout, rows, k);
  if (stacked) {
    check_shape(sf, sarg, {n, srows, scols});
  } else {
    check_shape(sf, sarg, {srows, scols});
  }
  check_row_major(sf, sarg);
  if (layout == ScaleLayout::kSwizzled128x4) {
    // The 128x4 formula addresses one expert's scales as one flat block.
    const int64_t row_stride = sf.strides[sf.ndim - 2];
    FP4MOE_CHECK_ARG(row_stride == scols, sarg, detail::concat("contiguous 128x4 blocks (row stride ", scols, ")"),
                     detail::concat("row stride ", row_stride));
  }
}

void validate_scale2(const TensorView& t, const std::string& arg, int64_t n) {
  check_dtype(t, arg, DType::kF32);
  FP4MOE_CHECK_ARG(t.numel() == n && t.ndim <= 1, arg, detail::concat("shape [", n, "]"),
                   detail::concat("shape ", shape_string(t)));
}

void validate_input_scale(float v, std::string_view arg) {
  FP4MOE_CHECK_ARG(std::isfinite(v) && v >= 0.0f, arg, "a finite value >= 0 (0 = not given)", v);
}

template <class T>
const T* element_ptr(const TensorView& t, bool stacked, int64_t expert, int64_t row) {
  const int64_t off = stacked ? expert * t.strides[0] + row * t.strides[1] : row * t.strides[0];
  return static_cast<const T*>(t.data) + off;
}

// memcpy: views into tensor files need not be 4-byte aligned.
float scalar_at(const TensorView& t, int64_t i) {
  const int64_t stride = t.ndim == 0 ? 0 : t.strides[0];
  float v;
  std::memcpy(&v, static_cast<const float*>(t.data) + i * stride, sizeof v);
  return v;
}

// Source row of FC1 that lands at row `dst` of the gate-up layout.
int64_t fc1_source_row(const MoeConfig& c, int64_t dst) {
  if (!c.gated()) return dst;
  const int64_t i = c.intermediate;
  const bool gate = dst < i;
  const int64_t j = gate ? dst : dst - i;
  switch (c.fc1_order) {
    case Fc1Order::kGateUp: return dst;
    case Fc1Order::kUpGate: return gate ? i + j : j;
    case Fc1Order::kInterleaved: return gate ? 2 * j : 2 * j + 1;
  }
  return dst;
}

// Copies one expert's matrix into linear storage: rows reordered by `source_row`, scales unswizzled.
template <class RowMap>
void copy_matrix(const TensorView& w, const TensorView& sf, bool stacked, int64_t e, int64_t rows, int64_t k,
                 ScaleLayout layout, RowMap source_row, uint8_t* dst_w, uint8_t* dst_sf) {
  const int64_t cols = k / kBlockSize;
  std::vector<uint8_t> linear_sf;
  const uint8_t* sf_base = nullptr;
  int64_t sf_ld = cols;
  if (layout == ScaleLayout::kSwizzled128x4) {
    linear_sf.resize(size_t(rows * cols));
    unswizzle_scales(element_ptr<uint8_t>(sf, stacked, e, 0), rows, cols, linear_sf.data());
    sf_base = linear_sf.data();
  }
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t src = source_row(r);
    std::memcpy(dst_w + r * (k / 2), element_ptr<uint8_t>(w, stacked, e, src), size_t(k / 2));
    const uint8_t* srow = sf_base ? sf_base + src * sf_ld : element_ptr<uint8_t>(sf, stacked, e, src);
    std::memcpy(dst_sf + r * cols, srow, size_t(cols));
  }
}

void prepare_host(const MoeConfig& c, const MoeWeights& weights, PreparedWeights::Impl& impl) {
  const int64_t el = c.num_local_experts, h = c.hidden, i = c.intermediate, r1 = c.fc1_rows();
  HostWeightStorage& s = impl.host;
  s.w13.resize(size_t(el * r1 * h / 2));
  s.w13_scale.resize(size_t(el * r1 * h / kBlockSize));
  s.w2.resize(size_t(el * h * i / 2));
  s.w2_scale.resize(size_t(el * h * i / kBlockSize));
  s.w13_scale_2.resize(size_t(el));
  s.w2_scale_2.resize(size_t(el));
  int64_t le = 0;
  for (size_t gi = 0; gi < weights.groups.size(); ++gi) {
    const ExpertGroup& g = weights.groups[gi];
    check_device(g.w13, tensor_arg(gi, "w13"), Device::cpu());
    check_device(g.w2, tensor_arg(gi, "w2"), Device::cpu());
    const bool stacked = g.w13.ndim == 3;
    for (int64_t e = 0; e < group_expert_count(g); ++e, ++le) {
      copy_matrix(g.w13, g.w13_scale, stacked, e, r1, h, weights.scale_layout,
                  [&](int64_t r) { return fc1_source_row(c, r); }, s.w13.data() + le * r1 * h / 2,
                  s.w13_scale.data() + le * r1 * h / kBlockSize);
      copy_matrix(g.w2, g.w2_scale, stacked, e, h, i, weights.scale_layout, [](int64_t r) { return r; },
                  s.w2.data() + le * h * i / 2, s.w2_scale.data() + le * h * i / kBlockSize);
      s.w13_scale_2[size_t(le)] = scalar_at(g.w13_scale_2, e);
      s.w2_scale_2[size_t(le)] = scalar_at(g.w2_scale_2, e);
    }
  }
  s.experts.resize(size_t(el));
  for (int64_t e = 0; e < el; ++e) {
    reference::HostExpert& x = s.experts[size_t(e)];
    x.w13 = s.w13.data() + e * r1 * h / 2;
    x.w13_scale = s.w13_scale.data() + e * r1 * h / kBlockSize;
    x.w13_scale_2 = s.w13_scale_2[size_t(e)];
    x.w2 = s.w2.data() + e * h * i / 2;
    x.w2_scale = s.w2_scale.data() + e * h * i / kBlockSize;
    x.w2_scale_2 = s.w2_scale_2[size_t(e)];
  }
  impl.bytes = s.w13.size() + s.w13_scale.size() + s.w2.size() + s.w2_scale.size() + 8 * size_t(el);
}

MoeWeights stage_to_host(const MoeWeights& weights, HostStaging& staging) {
  MoeWeights h = weights;
  for (ExpertGroup& g : h.groups) {
    for (TensorView* t : {&g.w13, &g.w13_scale, &g.w13_scale_2, &g.w2, &g.w2_scale, &g.w2_scale_2}) {
      *t = staging.stage(*t);
    }
  }
  return h;
}

// The CUDA device the weights go to: the sources' device when they live on one, else the current device.
int target_device(const MoeWeights& weights) {
  for (const ExpertGroup& g : weights.groups) {
    if (g.w13.device.kind == DeviceKind::kCuda) return g.w13.device.index;
  }
  int current = 0;
  FP4MOE_CUDA_CHECK(cudaGetDevice(&current));
  return current;
}

// One matrix of every expert (linear host storage, `rows` × `k` each) → fragment tiles in one device allocation,
// packed one expert at a time so the host never holds a second full copy.
cuda::FragMatrix upload_fragments(int dev, const std::vector<uint8_t>& codes, const std::vector<uint8_t>& scales,
                                  int64_t experts, int64_t rows, int64_t k, int64_t row_align, DeviceBuffer& dcodes,
                                  DeviceBuffer& dscales) {
  const format::FragShape shape = format::frag_shape(rows, k, row_align);
  const size_t cb = size_t(shape.code_bytes()), sb = size_t(shape.scale_bytes());
  dcodes = DeviceBuffer(dev, cb * size_t(experts));
  dscales = DeviceBuffer(dev, sb * size_t(experts));
  std::vector<uint8_t> tile_codes(cb), tile_scales(sb);
  for (int64_t e = 0; e < experts; ++e) {
    format::pack_fragment_tiles(codes.data() + e * rows * k / 2, scales.data() + e * rows * k / kBlockSize, shape,
                                tile_codes.data(), tile_scales.data());
    FP4MOE_CUDA_CHECK(cudaMemcpy(dcodes.as<uint8_t>() + cb * size_t(e), tile_codes.data(), cb, cudaMemcpyHostToDevice));
    FP4MOE_CUDA_CHECK(cudaMemcpy(dscales.as<uint8_t>() + sb * size_t(e), tile_scales.data(), sb, cudaMemcpyHostToDevice));
  }
  return {dcodes.as<const uint8_t>(), dscales.as<const uint8_t>(), shape.row_tiles, shape.k_tiles};
}

void upload(PreparedWeights::Impl& impl) {
  const int dev = impl.device.index;
  const MoeConfig& c = impl.config;
  const int64_t el = c.num_local_experts;
  HostWeightStorage& h = impl.host;
  DeviceWeightStorage& d = impl.cuda;
  DeviceGuard guard(dev);
  d.experts.w13 = upload_fragments(dev, h.w13, h.w13_scale, el, c.fc1_rows(), c.hidden, cuda::fc1_row_align(c.gated()),
                                   d.w13, d.w13_scale);
  d.experts.w2 = upload_fragments(dev, h.w2, h.w2_scale, el, c.hidden, c.intermediate, cuda::kFc2RowAlign, d.w2,
                                  d.w2_scale);
  d.w13_scale_2 = DeviceBuffer(dev, h.w13_scale_2.size() * sizeof(float), h.w13_scale_2.data());
  d.w2_scale_2 = DeviceBuffer(dev, h.w2_scale_2.size() * sizeof(float), h.w2_scale_2.data());
  d.experts.w13_scale_2 = d.w13_scale_2.as<const float>();
  d.experts.w2_scale_2 = d.w2_scale_2.as<const float>();
  impl.bytes = d.w13.bytes() + d.w13_scale.bytes() + d.w2.bytes() + d.w2_scale.bytes() + 8 * size_t(el);
  h = HostWeightStorage{};  // the staging copy is not needed any more
}

}  // namespace

int64_t group_expert_count(const ExpertGroup& group) { return group.w13.ndim == 3 ? group.w13.shape[0] : 1; }

void validate_weights(const MoeConfig& c, const MoeWeights& weights) {
  c.validate();
  FP4MOE_CHECK_ARG(!weights.groups.empty(), "weights.groups", "at least one expert group", "none");
  int64_t total = 0;
  const Device device = weights.groups[0].w13.device;
  for (size_t gi = 0; gi < weights.groups.size(); ++gi) {
    const ExpertGroup& g = weights.groups[gi];
    for (const auto& [t, name] : {std::pair{&g.w13, "w13"}, {&g.w13_scale, "w13_scale"}, {&g.w13_scale_2, "w13_scale_2"},
                                  {&g.w2, "w2"}, {&g.w2_scale, "w2_scale"}, {&g.w2_scale_2, "w2_scale_2"}}) {
      if (!t->empty()) check_device(*t, tensor_arg(gi, name), device);  // one device for every source tensor
    }
    FP4MOE_CHECK_ARG(g.w13.ndim == 2 || g.w13.ndim == 3, tensor_arg(gi, "w13"),
                     "a 3-D [n, rows, H/2] or 2-D [rows, H/2] tensor", detail::concat("shape ", shape_string(g.w13)));
    const bool stacked = g.w13.ndim == 3;
    const int64_t n = group_expert_count(g);
    FP4MOE_CHECK_ARG(n >= 1, tensor_arg(gi, "w13"), "at least one expert", detail::concat("shape ", shape_string(g.w13)));
    validate_matrix(gi, "w13", g.w13, g.w13_scale, n, stacked, c.fc1_rows(), c.hidden, weights.scale_layout);
    validate_matrix(gi, "w2", g.w2, g.w2_scale, n, stacked, c.hidden, c.intermediate, weights.scale_layout);
    validate_scale2(g.w13_scale_2, tensor_arg(gi, "w13_scale_2"), n);
    validate_scale2(g.w2_scale_2, tensor_arg(gi, "w2_scale_2"), n);
    total += n;
  }
  FP4MOE_CHECK_ARG(total == c.num_local_experts, "weights.groups",
                   detail::concat(c.num_local_experts, " experts in all (num_local_experts)"),
                   detail::concat(total, " experts"));
  validate_input_scale(weights.fc1_input_scale, "weights.fc1_input_scale");
  validate_input_scale(weights.fc2_input_scale, "weights.fc2_input_scale");
}

PreparedWeights prepare_weights(const MoeConfig& config, const MoeWeights& weights, Backend backend) {
  validate_weights(config, weights);
  auto impl = std::make_shared<PreparedWeights::Impl>();
  impl->config = config;
  impl->backend = resolve_backend(backend);
  impl->gs1 = weights.fc1_input_scale > 0 ? global_scale_from_inverse(weights.fc1_input_scale) : 0.0f;
  impl->gs2 = weights.fc2_input_scale > 0 ? global_scale_from_inverse(weights.fc2_input_scale) : 1.0f;
  HostStaging staging;
  if (impl->backend == Backend::kCuda) {
    impl->device = Device::cuda(target_device(weights));
    prepare_host(config, stage_to_host(weights, staging), *impl);
  } else {
    impl->device = Device::cpu();
    prepare_host(config, weights, *impl);
  }
  // The scale_2 values came from the caller's memory: check them once here rather than on every call.
  for (int64_t e = 0; e < config.num_local_experts; ++e) {
    const float a = impl->host.w13_scale_2[size_t(e)], b = impl->host.w2_scale_2[size_t(e)];
    FP4MOE_CHECK_ARG(std::isfinite(a) && a > 0, detail::concat("w13_scale_2[", e, "]"), "a finite value > 0", a);
    FP4MOE_CHECK_ARG(std::isfinite(b) && b > 0, detail::concat("w2_scale_2[", e, "]"), "a finite value > 0", b);
  }
  if (impl->backend == Backend::kCuda) upload(*impl);
  return PreparedWeights(std::move(impl));
}

const MoeConfig& PreparedWeights::config() const { return impl().config; }
Backend PreparedWeights::backend() const { return impl().backend; }
Device PreparedWeights::device() const { return impl().device; }
size_t PreparedWeights::bytes() const { return impl().bytes; }
const PreparedWeights::Impl& PreparedWeights::impl() const {
  FP4MOE_CHECK(impl_ != nullptr, "PreparedWeights is empty (default-constructed); call prepare_weights()");
  return *impl_;
}

}  // namespace fp4moe
