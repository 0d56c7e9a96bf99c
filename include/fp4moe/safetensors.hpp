// fp4moe: reading and writing safetensors files.
//
// Layout: an 8-byte little-endian header length N, N bytes of JSON header, then the data section. The header
// maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data
// section) and may hold a "__metadata__" object of string -> string.
//
// SafetensorsFile maps a file read-only and validates the whole header in open(), so every later call works
// on checked entries; get() hands out CPU TensorViews that point into the mapping and stay valid while the
// SafetensorsFile lives (and while nobody truncates the file in place, which no mapping survives). The format
// does not align tensors, so a view of a multi-byte dtype may be unaligned when the file was written by a tool
// that packs tensors of different sizes back to back.
// SafetensorsWriter copies tensors and metadata and writes them as one file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fp4moe/tensor.hpp"

namespace fp4moe {

// Largest header SafetensorsFile::open accepts; anything longer is corrupt (real headers are kilobytes).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = uint64_t{100} << 20;

namespace detail {

// One tensor of a safetensors header; [begin, end) is a byte range of the data section.
struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::kU8;
  int ndim = 0;
  Shape shape{};
  uint64_t begin = 0;
  uint64_t end = 0;
};

}  // namespace detail

class SafetensorsFile {
 public:
  // Maps and validates `path`; throws Error naming the file (and tensor) on any malformation.
  static SafetensorsFile open(const std::string& path);

  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  // Tensor names in data-offset order (header order among equal offsets).
  std::vector<std::string> names() const;
  size_t size() const { return entries_.size(); }
  bool contains(std::string_view name) const;

  // A contiguous CPU view into the mapping. The data is read-only although TensorView::data is not const:
  // writing through it is undefined. Throws Error naming the tensor and the file if absent.
  TensorView get(std::string_view name) const;
  // As get(name), and throws Error naming the tensor and the file unless the dtype is `expected_dtype` and
  // the rank is `expected_ndim` (-1 accepts any rank).
  TensorView get(std::string_view name, DType expected_dtype, int expected_ndim = -1) const;

  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::optional<std::string> metadata_value(std::string_view key) const;
  const std::string& path() const { return path_; }

 private:
  SafetensorsFile() = default;
  const detail::SafetensorsEntry& entry(std::string_view name) const;
  void unmap() noexcept;

  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  const unsigned char* data_ = nullptr;               // start of the data section inside the mapping
  std::vector<detail::SafetensorsEntry> entries_;     // data-offset order
  std::map<std::string, size_t, std::less<>> index_;  // name -> position in entries_
  std::map<std::string, std::string> metadata_;
};

class SafetensorsWriter {
 public:
  // Copies the bytes of a contiguous CPU view. Throws Error for a duplicate or reserved name ("__metadata__"),
  // a non-contiguous or non-CPU view, or a view without data.
  void add(const std::string& name, const TensorView& t);
  // Throws Error for a duplicate key.
  void add_metadata(const std::string& key, const std::string& value);

  // Writes the file: compact JSON header padded with spaces to a multiple of 8 bytes ("__metadata__" first,
  // then the tensors), then the tensor bytes in insertion order with no gaps. The file is written under a
  // temporary name and renamed into place, so a reader that has `path` mapped keeps its old contents.
  void write(const std::string& path) const;

 private:
  struct Pending {
    detail::SafetensorsEntry entry;  // begin/end unused until write()
    std::vector<unsigned char> bytes;
  };
  std::vector<Pending> tensors_;
  std::set<std::string, std::less<>> names_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace fp4moe
