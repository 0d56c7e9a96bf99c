// Safetensors reading (mmap + full header validation) and writing (compact padded header, packed data).
#include "fp4moe/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <system_error>
#include <unordered_set>
#include <utility>

#include "fp4moe/error.hpp"

namespace fp4moe {
namespace {

// ordered_json keeps the header's key order, which names() uses to break ties between equal offsets (empty
// tensors) and which the writer uses to emit tensors in insertion order.
using Json = nlohmann::ordered_json;
using detail::SafetensorsEntry;

constexpr uint64_t kPrefixBytes = 8;
constexpr std::string_view kMetadataKey = "__metadata__";
constexpr DType kAllDTypes[] = {DType::kBF16, DType::kF16, DType::kF32, DType::kI32, DType::kU8, DType::kE4M3};

template <class... Parts>
[[noreturn]] void fail_file(const std::string& path, const Parts&... parts) {
  fail("safetensors file '", path, "': ", parts...);
}

template <class... Parts>
[[noreturn]] void fail_tensor(const std::string& path, std::string_view name, const Parts&... parts) {
  fail("safetensors file '", path, "': tensor '", name, "': ", parts...);
}

std::string errno_text(int err) { return std::generic_category().message(err); }

std::string shape_text(int ndim, const Shape& shape) {
  std::string s = "[";
  for (int d = 0; d < ndim; ++d) s += (d ? ", " : "") + std::to_string(shape[d]);
  return s + "]";
}

// Closes a file descriptor on every path out of a scope.
struct FdGuard {
  int fd = -1;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

// A contiguous view built through TensorView's own constructor, so the strides (also of zero-size dims) are
// exactly what the rest of the library considers contiguous.
TensorView make_view(const void* data, DType dtype, int ndim, const Shape& s) {
  static_assert(kMaxDims == 4, "extend make_view to the new kMaxDims");
  switch (ndim) {
    case 0: return TensorView(data, dtype, {});
    case 1: return TensorView(data, dtype, {s[0]});
    case 2: return TensorView(data, dtype, {s[0], s[1]});
    case 3: return TensorView(data, dtype, {s[0], s[1], s[2]});
    default: return TensorView(data, dtype, {s[0], s[1], s[2], s[3]});
  }
}

// ---- header parsing --------------------------------------------------------------------------------------

// Parses the header text; duplicate keys (which JSON parsers silently merge) are an error at any depth.
Json parse_header_json(const std::string& path, std::string_view text) {
  std::vector<std::unordered_set<std::string>> open_objects;
  std::string duplicate;
  auto on_event = [&](int, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == Json::parse_event_t::object_end) {
      open_objects.pop_back();
    } else if (event == Json::parse_event_t::key && !open_objects.empty()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  Json header;
  try {
    header = Json::parse(text.begin(), text.end(), on_event);
  } catch (const Json::exception& e) {
    fail_file(path, "header is not valid JSON: ", e.what());
  }
  if (!duplicate.empty()) fail_file(path, "duplicate key '", duplicate, "' in the header");
  if (!header.is_object()) fail_file(path, "header is not a JSON object (got ", header.type_name(), ")");
  return header;
}

const Json& require_field(const std::string& path, const std::string& name, const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) fail_tensor(path, name, "missing \"", key, "\"");
  return *it;
}

DType parse_entry_dtype(const std::string& path, const std::string& name, const Json& obj) {
  const Json& j = require_field(path, name, obj, "dtype");
  if (!j.is_string()) fail_tensor(path, name, "\"dtype\" must be a string, got ", j.type_name());
  const auto& text = j.get_ref<const std::string&>();
  for (DType d : kAllDTypes) {
    if (dtype_name(d) == text) return d;
  }
  fail_tensor(path, name, "unknown dtype '", text, "' (supported: BF16, F16, F32, I32, U8, F8_E4M3)");
}

// Fills ndim/shape; returns the element count, guarding the product against overflow.
uint64_t parse_entry_shape(const std::string& path, SafetensorsEntry& e, const Json& obj) {
  const Json& j = require_field(path, e.name, obj, "shape");
  if (!j.is_array()) fail_tensor(path, e.name, "\"shape\" must be an array, got ", j.type_name());
  if (j.size() > size_t(kMaxDims)) {
    fail_tensor(path, e.name, "rank ", j.size(), " exceeds the supported maximum of ", kMaxDims);
  }
  e.ndim = int(j.size());
  bool any_zero = false;
  for (int d = 0; d < e.ndim; ++d) {
    const Json& dim = j[size_t(d)];
    if (dim.is_number_integer() && !dim.is_number_unsigned()) {
      fail_tensor(path, e.name, "negative dimension ", dim.get<int64_t>(), " in shape ", dim.dump());
    }
    if (!dim.is_number_unsigned()) {
      fail_tensor(path, e.name, "\"shape\" must hold integers, got ", dim.type_name(), " ", dim.dump());
    }
    const uint64_t v = dim.get<uint64_t>();
    if (v > uint64_t(std::numeric_limits<int64_t>::max())) {
      fail_tensor(path, e.name, "dimension ", v, " is too large");
    }
    e.shape[d] = int64_t(v);
    any_zero = any_zero || v == 0;
  }
  if (any_zero) return 0;
  // The element count must fit int64_t, which TensorView::numel returns.
  uint64_t numel = 1;
  for (int d = 0; d < e.ndim; ++d) {
    if (__builtin_mul_overflow(numel, uint64_t(e.shape[d]), &numel) ||
        numel > uint64_t(std::numeric_limits<int64_t>::max())) {
      fail_tensor(path, e.name, "element count of shape ", shape_text(e.ndim, e.shape), " overflows");
    }
  }
  return numel;
}

void parse_entry_offsets(const std::string& path, SafetensorsEntry& e, const Json& obj, uint64_t data_size) {
  const Json& j = require_field(path, e.name, obj, "data_offsets");
  if (!j.is_array() || j.size() != 2 || !j[0].is_number_unsigned() || !j[1].is_number_unsigned()) {
    fail_tensor(path, e.name, "\"data_offsets\" must be [begin, end] of non-negative integers, got ", j.dump());
  }
  e.begin = j[0].get<uint64_t>();
  e.end = j[1].get<uint64_t>();
  if (e.begin > e.end) fail_tensor(path, e.name, "data_offsets begin ", e.begin, " > end ", e.end);
  if (e.end > data_size) {
    fail_tensor(path, e.name, "data_offsets end ", e.end, " lies beyond the data section of ", data_size,
                " bytes (file truncated?)");
  }
}

SafetensorsEntry parse_entry(const std::string& path, const std::string& name, const Json& obj,
                             uint64_t data_size) {
  if (!obj.is_object()) fail_tensor(path, name, "entry must be a JSON object, got ", obj.type_name());
  SafetensorsEntry e;
  e.name = name;
  e.dtype = parse_entry_dtype(path, name, obj);
  const uint64_t numel = parse_entry_shape(path, e, obj);
  parse_entry_offsets(path, e, obj, data_size);
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, uint64_t(dtype_size(e.dtype)), &nbytes)) {
    fail_tensor(path, name, "byte size of shape ", shape_text(e.ndim, e.shape), " overflows");
  }
  if (nbytes != e.end - e.begin) {
    fail_tensor(path, name, "byte size mismatch: shape ", shape_text(e.ndim, e.shape), " of ",
                dtype_name(e.dtype), " needs ", nbytes, " bytes but data_offsets [", e.begin, ", ", e.end,
                "] span ", e.end - e.begin);
  }
  return e;
}

void parse_metadata(const std::string& path, const Json& j, std::map<std::string, std::string>& out) {
  if (!j.is_object()) fail_file(path, "\"__metadata__\" must be a JSON object, got ", j.type_name());
  for (const auto& [key, value] : j.items()) {
    if (!value.is_string()) {
      fail_file(path, "\"__metadata__\" value of key '", key, "' must be a string, got ", value.type_name());
    }
    out.emplace(key, value.get<std::string>());
  }
}

// Sorts the entries into data order and rejects byte ranges shared by two tensors. Empty tensors own no bytes,
// so they overlap nothing wherever they sit.
void order_and_check_overlaps(const std::string& path, std::vector<SafetensorsEntry>& entries) {
  std::stable_sort(entries.begin(), entries.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
    return std::pair(a.begin, a.end) < std::pair(b.begin, b.end);
  });
  // Sorted by begin, a non-empty range overlaps an earlier one iff it starts before the largest end so far.
  const SafetensorsEntry* furthest = nullptr;
  for (const SafetensorsEntry& e : entries) {
    if (e.begin == e.end) continue;
    if (furthest && e.begin < furthest->end) {
      fail_file(path, "tensors '", furthest->name, "' [", furthest->begin, ", ", furthest->end, ") and '",
                e.name, "' [", e.begin, ", ", e.end, ") overlap");
    }
    if (!furthest || e.end > furthest->end) furthest = &e;
  }
}

uint64_t read_u64_le(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// ---- writing ---------------------------------------------------------------------------------------------

void write_all(int fd, const std::string& path, const void* data, size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_file(path, "write failed: ", errno_text(errno));
    p += n;
    size -= size_t(n);
  }
}

// Removes the temporary file unless the write succeeded and renamed it.
struct TempFileGuard {
  std::string path;
  bool keep = false;
  ~TempFileGuard() {
    if (!keep) {
      std::error_code ec;
      std::filesystem::remove(path, ec);
    }
  }
};

}  // namespace

// ---- SafetensorsFile -------------------------------------------------------------------------------------

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile file;  // owns the mapping from here on, so every failure below unmaps it
  file.path_ = path;
  {
    FdGuard fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (fd.fd < 0) fail_file(path, "cannot open: ", errno_text(errno));
    struct stat st {};
    if (::fstat(fd.fd, &st) != 0) fail_file(path, "cannot stat: ", errno_text(errno));
    if (!S_ISREG(st.st_mode)) fail_file(path, "not a regular file");
    const uint64_t file_size = uint64_t(st.st_size);
    if (file_size < kPrefixBytes) {
      fail_file(path, "file is ", file_size, " bytes, shorter than the 8-byte header length (truncated)");
    }
    void* map = ::mmap(nullptr, size_t(file_size), PROT_READ, MAP_PRIVATE, fd.fd, 0);
    if (map == MAP_FAILED) fail_file(path, "mmap failed: ", errno_text(errno));
    file.map_ = map;
    file.map_size_ = size_t(file_size);
  }
  const auto* base = static_cast<const unsigned char*>(file.map_);
  const uint64_t header_size = read_u64_le(base);
  if (header_size > kMaxSafetensorsHeaderBytes) {
    fail_file(path, "header length ", header_size, " bytes exceeds the limit of ", kMaxSafetensorsHeaderBytes,
              " bytes (corrupt file or not safetensors)");
  }
  const uint64_t after_prefix = file.map_size_ - kPrefixBytes;
  if (header_size > after_prefix) {
    fail_file(path, "truncated: header length is ", header_size, " bytes but only ", after_prefix,
              " bytes follow the length prefix");
  }
  const std::string_view header_text(reinterpret_cast<const char*>(base + kPrefixBytes), size_t(header_size));
  const uint64_t data_size = after_prefix - header_size;
  file.data_ = base + kPrefixBytes + header_size;

  const Json header = parse_header_json(path, header_text);
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      parse_metadata(path, value, file.metadata_);
    } else {
      file.entries_.push_back(parse_entry(path, key, value, data_size));
    }
  }
  order_and_check_overlaps(path, file.entries_);
  for (size_t i = 0; i < file.entries_.size(); ++i) file.index_.emplace(file.entries_[i].name, i);
  return file;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : path_(std::move(other.path_)),
      map_(std::exchange(other.map_, nullptr)),
      map_size_(std::exchange(other.map_size_, 0)),
      data_(std::exchange(other.data_, nullptr)),
      entries_(std::move(other.entries_)),
      index_(std::move(other.index_)),
      metadata_(std::move(other.metadata_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    map_size_ = std::exchange(other.map_size_, 0);
    data_ = std::exchange(other.data_, nullptr);
    entries_ = std::move(other.entries_);
    index_ = std::move(other.index_);
    metadata_ = std::move(other.metadata_);
  }
  return *this;
}

SafetensorsFile::~SafetensorsFile() { unmap(); }

void SafetensorsFile::unmap() noexcept {
  if (map_) ::munmap(map_, map_size_);
  map_ = nullptr;
  map_size_ = 0;
  data_ = nullptr;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& e : entries_) out.push_back(e.name);
  return out;
}

bool SafetensorsFile::contains(std::string_view name) const { return index_.find(name) != index_.end(); }

const detail::SafetensorsEntry& SafetensorsFile::entry(std::string_view name) const {
  auto it = index_.find(name);
  if (it == index_.end()) {
    fail("safetensors file '", path_, "': no tensor named '", name, "' (the file holds ", entries_.size(),
         " tensors)");
  }
  return entries_[it->second];
}

TensorView SafetensorsFile::get(std::string_view name) const {
  const auto& e = entry(name);
  return make_view(data_ + e.begin, e.dtype, e.ndim, e.shape);
}

TensorView SafetensorsFile::get(std::string_view name, DType expected_dtype, int expected_ndim) const {
  const auto& e = entry(name);
  if (e.dtype != expected_dtype) {
    fail_tensor(path_, name, "expected dtype ", dtype_name(expected_dtype), ", got ", dtype_name(e.dtype));
  }
  if (expected_ndim >= 0 && e.ndim != expected_ndim) {
    fail_tensor(path_, name, "expected rank ", expected_ndim, ", got rank ", e.ndim, " (shape ",
                shape_text(e.ndim, e.shape), ")");
  }
  return make_view(data_ + e.begin, e.dtype, e.ndim, e.shape);
}

std::optional<std::string> SafetensorsFile::metadata_value(std::string_view key) const {
  auto it = metadata_.find(std::string(key));
  if (it == metadata_.end()) return std::nullopt;
  return it->second;
}

// ---- SafetensorsWriter -----------------------------------------------------------------------------------

void SafetensorsWriter::add(const std::string& name, const TensorView& t) {
  const auto reject = [&](const auto&... parts) { fail("safetensors writer: tensor '", name, "': ", parts...); };
  if (name == kMetadataKey) reject("the name is reserved for metadata");
  if (names_.count(name)) reject("duplicate tensor name");
  if (t.empty()) reject("the view is empty (no data)");
  if (!t.device.is_cpu()) reject("expected a CPU view, got device ", device_name(t.device));
  if (t.ndim < 0 || t.ndim > kMaxDims) reject("invalid rank ", t.ndim);
  for (int d = 0; d < t.ndim; ++d) {
    if (t.shape[d] < 0) reject("negative dimension in shape ", shape_text(t.ndim, t.shape));
  }
  if (!t.is_contiguous()) reject("expected a contiguous view, got shape ", shape_text(t.ndim, t.shape),
                                 " with strides ", shape_text(t.ndim, t.strides));
  const size_t nbytes = t.nbytes();
  if (nbytes > 0 && t.data == nullptr) reject("null data for ", nbytes, " bytes");

  Pending p;
  p.entry.name = name;
  p.entry.dtype = t.dtype;
  p.entry.ndim = t.ndim;
  p.entry.shape = t.shape;
  const auto* src = static_cast<const unsigned char*>(t.data);
  if (nbytes > 0) p.bytes.assign(src, src + nbytes);
  tensors_.push_back(std::move(p));
  names_.insert(name);
}

void SafetensorsWriter::add_metadata(const std::string& key, const std::string& value) {
  if (!metadata_.emplace(key, value).second) fail("safetensors writer: duplicate metadata key '", key, "'");
}

void SafetensorsWriter::write(const std::string& path) const {
  Json header = Json::object();
  if (!metadata_.empty()) {
    Json meta = Json::object();
    for (const auto& [key, value] : metadata_) meta[key] = value;
    header[std::string(kMetadataKey)] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const Pending& p : tensors_) {
    Json shape = Json::array();
    for (int d = 0; d < p.entry.ndim; ++d) shape.push_back(p.entry.shape[d]);
    const uint64_t end = offset + p.bytes.size();
    Json& entry = header[p.entry.name];
    entry["dtype"] = std::string(dtype_name(p.entry.dtype));
    entry["shape"] = std::move(shape);
    entry["data_offsets"] = Json::array({offset, end});
    offset = end;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const Json::exception& e) {
    fail_file(path, "cannot encode the header (names and metadata must be valid UTF-8): ", e.what());
  }
  // Padding the header keeps the data section 8-byte aligned in the file (and so in a page-aligned mapping).
  text.append((8 - text.size() % 8) % 8, ' ');
  unsigned char prefix[kPrefixBytes];
  for (size_t i = 0; i < kPrefixBytes; ++i) prefix[i] = static_cast<unsigned char>(uint64_t(text.size()) >> (8 * i));

  // Writing beside the target and renaming keeps any existing mapping of `path` intact (truncating a mapped
  // file would make its readers fault) and never leaves a half-written file under the final name.
  // The pid and a counter keep concurrent writers of one path (other processes, other threads) apart.
  static std::atomic<uint64_t> temp_counter{0};
  TempFileGuard temp{path + ".tmp" + std::to_string(::getpid()) + "." + std::to_string(temp_counter++)};
  {
    FdGuard fd{::open(temp.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (fd.fd < 0) fail_file(path, "cannot create '", temp.path, "': ", errno_text(errno));
    write_all(fd.fd, path, prefix, sizeof(prefix));
    write_all(fd.fd, path, text.data(), text.size());
    for (const Pending& p : tensors_) write_all(fd.fd, path, p.bytes.data(), p.bytes.size());
    const int rc = ::close(std::exchange(fd.fd, -1));
    if (rc != 0) fail_file(path, "close failed: ", errno_text(errno));
  }
  std::error_code ec;
  std::filesystem::rename(temp.path, path, ec);
  if (ec) fail_file(path, "cannot rename '", temp.path, "' into place: ", ec.message());
  temp.keep = true;
}

}  // namespace fp4moe
