// fp4moe: non-owning tensor views, the currency of the public API.
//
// A TensorView is a pointer plus dtype, shape and strides (in elements) and where the memory lives. Packed FP4
// data is U8 with the packed shape (a [rows, K] FP4 matrix is U8 [rows, K/2]); E4M3 scales are E4M3.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace fp4moe {

enum class DType : uint8_t { kBF16, kF16, kF32, kI32, kU8, kE4M3 };

// Size in bytes of one element.
size_t dtype_size(DType dtype);
// Safetensors spelling: BF16, F16, F32, I32, U8, F8_E4M3.
std::string_view dtype_name(DType dtype);
// Parses the safetensors spelling; throws Error naming `arg` for anything else.
DType parse_dtype(std::string_view name, std::string_view arg = "dtype");

enum class DeviceKind : uint8_t { kCpu, kCuda };

struct Device {
  DeviceKind kind = DeviceKind::kCpu;
  int index = 0;  // CUDA ordinal; 0 for the CPU

  static Device cpu() { return {}; }
  static Device cuda(int ordinal = 0) { return {DeviceKind::kCuda, ordinal}; }
  bool is_cpu() const { return kind == DeviceKind::kCpu; }
  bool operator==(const Device&) const = default;
};

std::string device_name(Device device);  // "cpu" or "cuda:N"

inline constexpr int kMaxDims = 4;
using Shape = std::array<int64_t, kMaxDims>;

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::kU8;
  int ndim = 0;
  Shape shape{};    // shape[0..ndim)
  Shape strides{};  // in elements; shape[d] == 1 makes strides[d] irrelevant
  Device device{};

  TensorView() = default;
  // A contiguous (row-major) view.
  TensorView(void* data, DType dtype, std::initializer_list<int64_t> shape, Device device = Device::cpu());
  TensorView(const void* data, DType dtype, std::initializer_list<int64_t> shape, Device device = Device::cpu());

  // True for a default-constructed view, which stands for "not given" in optional arguments.
  bool empty() const { return ndim == 0 && data == nullptr; }
  int64_t numel() const;
  int64_t size(int d) const { return shape[d]; }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype); }
  bool is_contiguous() const;  // row-major, no gaps

  template <class T>
  T* ptr() const {
    return static_cast<T*>(data);
  }
  // Element offset of an index tuple (len == ndim).
  int64_t offset(std::initializer_list<int64_t> index) const;
  // The sub-view at index i of dimension 0 (ndim - 1 dims).
  TensorView select(int64_t i) const;
};

// "[4, 2048]"
std::string shape_string(const TensorView& t);
std::string shape_string(std::initializer_list<int64_t> shape);

// Argument checks that throw fp4moe::Error naming the argument, the expected and the actual value.
void check_dtype(const TensorView& t, std::string_view arg, DType expected);
void check_shape(const TensorView& t, std::string_view arg, std::initializer_list<int64_t> expected);
void check_contiguous(const TensorView& t, std::string_view arg);
// Innermost stride 1 and rows may be strided (e.g. a slice of a larger buffer).
void check_row_major(const TensorView& t, std::string_view arg);
void check_device(const TensorView& t, std::string_view arg, Device expected);
void check_aligned(const TensorView& t, std::string_view arg, size_t bytes);

}  // namespace fp4moe
