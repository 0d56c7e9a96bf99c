// TensorView helpers: sizes, dtype names, layout queries and the argument checks used by every API entry point.
#include "fp4moe/tensor.hpp"

#include <sstream>

#include "fp4moe/error.hpp"

namespace fp4moe {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kBF16:
    case DType::kF16: return 2;
    case DType::kF32:
    case DType::kI32: return 4;
    case DType::kU8:
    case DType::kE4M3: return 1;
  }
  return 0;
}

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kBF16: return "BF16";
    case DType::kF16: return "F16";
    case DType::kF32: return "F32";
    case DType::kI32: return "I32";
    case DType::kU8: return "U8";
    case DType::kE4M3: return "F8_E4M3";
  }
  return "?";
}

DType parse_dtype(std::string_view name, std::string_view arg) {
  for (DType d : {DType::kBF16, DType::kF16, DType::kF32, DType::kI32, DType::kU8, DType::kE4M3}) {
    if (dtype_name(d) == name) return d;
  }
  fail_arg(arg, "one of BF16, F16, F32, I32, U8, F8_E4M3", std::string(name));
}

std::string device_name(Device device) {
  return device.is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(device.index);
}

namespace {

TensorView make_contiguous(void* data, DType dtype, std::initializer_list<int64_t> shape, Device device) {
  FP4MOE_CHECK(shape.size() <= size_t(kMaxDims), "tensors have at most ", kMaxDims, " dimensions, got ",
               shape.size());
  TensorView t;
  t.data = data;
  t.dtype = dtype;
  t.ndim = int(shape.size());
  t.device = device;
  int d = 0;
  for (int64_t s : shape) t.shape[d++] = s;
  int64_t stride = 1;
  for (int i = t.ndim - 1; i >= 0; --i) {
    t.strides[i] = stride;
    stride *= t.shape[i];
  }
  return t;
}

}  // namespace

TensorView::TensorView(void* p, DType dt, std::initializer_list<int64_t> s, Device dev)
    : TensorView(make_contiguous(p, dt, s, dev)) {}

TensorView::TensorView(const void* p, DType dt, std::initializer_list<int64_t> s, Device dev)
    : TensorView(make_contiguous(const_cast<void*>(p), dt, s, dev)) {}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) n *= shape[d];
  return n;
}

bool TensorView::is_contiguous() const {
  int64_t expected = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    if (shape[d] != 1 && strides[d] != expected) return false;
    expected *= shape[d];
  }
  return true;
}

int64_t TensorView::offset(std::initializer_list<int64_t> index) const {
  FP4MOE_CHECK(int(index.size()) == ndim, "index of rank ", index.size(), " into a tensor of rank ", ndim);
  int64_t off = 0;
  int d = 0;
  for (int64_t i : index) off += i * strides[d++];
  return off;
}

TensorView TensorView::select(int64_t i) const {
  FP4MOE_CHECK(ndim >= 1 && i >= 0 && i < shape[0], "select(", i, ") out of range for shape ", shape_string(*this));
  TensorView t = *this;
  t.data = static_cast<char*>(data) + i * strides[0] * int64_t(dtype_size(dtype));
  for (int d = 1; d < ndim; ++d) {
    t.shape[d - 1] = shape[d];
    t.strides[d - 1] = strides[d];
  }
  t.ndim = ndim - 1;
  t.shape[t.ndim] = 0;
  t.strides[t.ndim] = 0;
  return t;
}

std::string shape_string(const TensorView& t) {
  std::ostringstream os;
  os << '[';
  for (int d = 0; d < t.ndim; ++d) os << (d ? ", " : "") << t.shape[d];
  os << ']';
  return os.str();
}

std::string shape_string(std::initializer_list<int64_t> shape) {
  std::ostringstream os;
  os << '[';
  int d = 0;
  for (int64_t s : shape) os << (d++ ? ", " : "") << s;
  os << ']';
  return os.str();
}

void check_dtype(const TensorView& t, std::string_view arg, DType expected) {
  FP4MOE_CHECK_ARG(!t.empty(), arg, detail::concat("a ", dtype_name(expected), " tensor"), "none");
  FP4MOE_CHECK_ARG(t.dtype == expected, arg, detail::concat("dtype ", dtype_name(expected)),
                   detail::concat("dtype ", dtype_name(t.dtype)));
}

void check_shape(const TensorView& t, std::string_view arg, std::initializer_list<int64_t> expected) {
  bool same = int(expected.size()) == t.ndim;
  int d = 0;
  for (int64_t s : expected) same = same && t.shape[d++] == s;
  FP4MOE_CHECK_ARG(same, arg, detail::concat("shape ", shape_string(expected)),
                   detail::concat("shape ", shape_string(t)));
}

void check_contiguous(const TensorView& t, std::string_view arg) {
  FP4MOE_CHECK_ARG(t.is_contiguous(), arg, "a contiguous (row-major) tensor",
                   detail::concat("strides that are not row-major for shape ", shape_string(t)));
}

void check_row_major(const TensorView& t, std::string_view arg) {
  const bool ok = t.ndim == 0 || t.shape[t.ndim - 1] <= 1 || t.strides[t.ndim - 1] == 1;
  FP4MOE_CHECK_ARG(ok, arg, "innermost stride 1", detail::concat("stride ", t.strides[t.ndim - 1]));
}

void check_device(const TensorView& t, std::string_view arg, Device expected) {
  FP4MOE_CHECK_ARG(t.device == expected, arg, detail::concat("memory on ", device_name(expected)),
                   detail::concat("memory on ", device_name(t.device)));
}

void check_aligned(const TensorView& t, std::string_view arg, size_t bytes) {
  const auto addr = reinterpret_cast<uintptr_t>(t.data);
  FP4MOE_CHECK_ARG(addr % bytes == 0, arg, detail::concat("a ", bytes, "-byte aligned pointer"),
                   detail::concat("address ", t.data));
}

}  // namespace fp4moe
