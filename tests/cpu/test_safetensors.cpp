// Tests of safetensors reading and writing: round trips, the exact byte layout, and one test per malformation.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "fp4moe/error.hpp"
#include "fp4moe/safetensors.hpp"
#include "fp4moe/tensor.hpp"

namespace fp4moe {
namespace {

namespace fs = std::filesystem;

constexpr DType kAllDTypes[] = {DType::kBF16, DType::kF16, DType::kF32, DType::kI32, DType::kU8, DType::kE4M3};

// A contiguous view through TensorView's own constructor (it only takes a braced shape list).
TensorView make_view(const void* data, DType dtype, const std::vector<int64_t>& s) {
  switch (s.size()) {
    case 0: return TensorView(data, dtype, {});
    case 1: return TensorView(data, dtype, {s[0]});
    case 2: return TensorView(data, dtype, {s[0], s[1]});
    case 3: return TensorView(data, dtype, {s[0], s[1], s[2]});
    default: return TensorView(data, dtype, {s[0], s[1], s[2], s[3]});
  }
}

std::string le64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((v >> (8 * i)) & 0xff);
  return out;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

std::string view_bytes(const TensorView& t) {
  return std::string(static_cast<const char*>(t.data), t.nbytes());
}

// Runs `f`, which must throw fp4moe::Error whose message contains every word.
template <class F>
void expect_error(F&& f, std::initializer_list<std::string_view> words) {
  try {
    f();
    ADD_FAILURE() << "expected fp4moe::Error";
  } catch (const Error& e) {
    const std::string message = e.what();
    for (std::string_view w : words) {
      EXPECT_NE(message.find(w), std::string::npos) << "message lacks '" << w << "': " << message;
    }
  }
}

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() /
           ("fp4moe_safetensors_" + std::to_string(::getpid()) + "_" + std::to_string(rd()));
    ASSERT_TRUE(fs::create_directories(dir_));
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  // Writes prefix + header + data; the prefix holds `header_length` if given, else the header's true length.
  std::string write_raw(std::string_view header, std::string_view data = {}, int64_t header_length = -1) {
    const std::string path = file("raw.safetensors");
    const uint64_t n = header_length >= 0 ? uint64_t(header_length) : header.size();
    write_bytes(path, le64(n) + std::string(header) + std::string(data));
    return path;
  }

  // A header whose only tensor "t" has the given entry JSON.
  std::string write_entry(std::string_view entry_json, std::string_view data = {}) {
    return write_raw(R"({"t":)" + std::string(entry_json) + "}", data);
  }

  // Opening `path` throws an Error naming the file and containing `words`.
  static void expect_open_error(const std::string& path, std::initializer_list<std::string_view> words) {
    SCOPED_TRACE(path);
    expect_error([&] { SafetensorsFile::open(path); }, {path});
    expect_error([&] { SafetensorsFile::open(path); }, words);
  }

  fs::path dir_;
};

// ---- round trips ------------------------------------------------------------------------------------------

TEST_F(SafetensorsTest, RoundTripEveryDtypeAndShape) {
  const auto seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::vector<std::vector<int64_t>> shapes = {{}, {0}, {1}, {7}, {3, 5}, {2, 0, 4}, {2, 3, 4}, {1, 2, 3, 5}};

  struct Expected {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::string bytes;
  };
  std::vector<Expected> expected;
  SafetensorsWriter writer;
  for (DType dtype : kAllDTypes) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      Expected e{std::string(dtype_name(dtype)) + ".s" + std::to_string(i), dtype, shapes[i], {}};
      int64_t numel = 1;
      for (int64_t d : e.shape) numel *= d;
      e.bytes.resize(size_t(numel) * dtype_size(dtype));
      for (char& c : e.bytes) c = char(rng() & 0xff);
      writer.add(e.name, make_view(e.bytes.data(), dtype, e.shape));
      expected.push_back(std::move(e));
    }
  }
  const std::string path = file("round_trip.safetensors");
  writer.write(path);

  const SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.path(), path);
  ASSERT_EQ(f.size(), expected.size());
  std::vector<std::string> names;
  for (const auto& e : expected) names.push_back(e.name);
  EXPECT_EQ(f.names(), names);  // insertion order, also among the zero-size tensors
  EXPECT_TRUE(f.metadata().empty());
  for (const auto& e : expected) {
    SCOPED_TRACE(e.name);
    ASSERT_TRUE(f.contains(e.name));
    const TensorView t = f.get(e.name, e.dtype, int(e.shape.size()));
    EXPECT_EQ(t.dtype, e.dtype);
    ASSERT_EQ(t.ndim, int(e.shape.size()));
    for (int d = 0; d < t.ndim; ++d) EXPECT_EQ(t.shape[d], e.shape[size_t(d)]);
    EXPECT_TRUE(t.device.is_cpu());
    EXPECT_TRUE(t.is_contiguous());
    EXPECT_NE(t.data, nullptr);
    EXPECT_EQ(view_bytes(t), e.bytes);
  }
  EXPECT_FALSE(f.contains("missing"));
}

TEST_F(SafetensorsTest, MetadataRoundTrip) {
  SafetensorsWriter writer;
  writer.add_metadata("format", "nvfp4");
  writer.add_metadata("empty", "");
  writer.add_metadata("tricky", "quote \" backslash \\ newline \n tab \t unicode \xc3\xa9 \xe2\x82\xac");
  const uint8_t byte = 42;
  writer.add("x", TensorView(&byte, DType::kU8, {1}));
  const std::string path = file("meta.safetensors");
  writer.write(path);

  const SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.metadata().size(), 3u);
  EXPECT_EQ(f.metadata_value("format"), "nvfp4");
  EXPECT_EQ(f.metadata_value("empty"), "");
  EXPECT_EQ(f.metadata_value("tricky"), "quote \" backslash \\ newline \n tab \t unicode \xc3\xa9 \xe2\x82\xac");
  EXPECT_EQ(f.metadata_value("absent"), std::nullopt);
  EXPECT_EQ(f.names(), std::vector<std::string>{"x"});
  EXPECT_FALSE(f.contains("__metadata__"));
}

TEST_F(SafetensorsTest, EmptyFileRoundTrip) {
  const std::string path = file("empty.safetensors");
  SafetensorsWriter().write(path);
  EXPECT_EQ(read_bytes(path), le64(8) + "{}      ");
  const SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.size(), 0u);
  EXPECT_TRUE(f.names().empty());
  EXPECT_TRUE(f.metadata().empty());
}

TEST_F(SafetensorsTest, OnlyZeroSizeTensorsHaveAnEmptyDataSection) {
  SafetensorsWriter writer;
  writer.add("a", TensorView(static_cast<const void*>(nullptr), DType::kF32, {0}));
  writer.add("b", TensorView(static_cast<const void*>(nullptr), DType::kBF16, {4, 0}));
  const std::string path = file("zero.safetensors");
  writer.write(path);
  const std::string bytes = read_bytes(path);
  uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | uint8_t(bytes[size_t(i)]);
  EXPECT_EQ(bytes.size(), 8 + header_length);  // no data bytes at all

  const SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(f.get("a").numel(), 0);
  const TensorView b = f.get("b", DType::kBF16, 2);
  EXPECT_EQ(b.shape[0], 4);
  EXPECT_EQ(b.shape[1], 0);
}

// ---- byte layout ------------------------------------------------------------------------------------------

TEST_F(SafetensorsTest, WriterProducesExactBytes) {
  SafetensorsWriter writer;
  const uint8_t u8[3] = {1, 2, 3};
  const float scalar = 1.5f;
  writer.add("a", TensorView(u8, DType::kU8, {3}));
  writer.add("b", TensorView(&scalar, DType::kF32, {}));
  writer.add_metadata("k", "v");
  const std::string path = file("exact.safetensors");
  writer.write(path);

  std::string header =
      R"({"__metadata__":{"k":"v"},"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},)"
      R"("b":{"dtype":"F32","shape":[],"data_offsets":[3,7]}})";
  ASSERT_NE(header.size() % 8, 0u);  // so that the padding is exercised
  header.append(8 - header.size() % 8, ' ');
  std::string data(reinterpret_cast<const char*>(u8), 3);
  data.append(reinterpret_cast<const char*>(&scalar), 4);
  EXPECT_EQ(read_bytes(path), le64(header.size()) + header + data);
}

TEST_F(SafetensorsTest, ReadsHandBuiltFile) {
  // Whitespace, keys out of data order, metadata between tensors, an unpadded header length, and a gap
  // before the last tensor: all legal.
  const std::string header = R"({ "w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [4, 12]},
  "__metadata__": {"format": "nvfp4", "version": "1"},
  "s": {"dtype":"I32","shape":[1],"data_offsets":[0,4]},
  "e": {"dtype":"F8_E4M3","shape":[0,3],"data_offsets":[12,12]},
  "z": {"dtype":"F16","shape":[],"data_offsets":[14,16]}})";
  ASSERT_NE(header.size() % 8, 0u);
  const std::string data("\x01\x00\x00\x00"
                         "\x80\x3f\x00\x40\x40\x40\x80\x40"
                         "\xff\xff"
                         "\x00\x3c",
                         16);
  const std::string path = write_raw(header, data);

  const SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"s", "w", "e", "z"}));
  EXPECT_EQ(f.metadata_value("format"), "nvfp4");
  EXPECT_EQ(f.metadata_value("version"), "1");

  const TensorView s = f.get("s", DType::kI32, 1);
  EXPECT_EQ(s.shape[0], 1);
  EXPECT_EQ(view_bytes(s), data.substr(0, 4));
  const TensorView w = f.get("w", DType::kBF16, 2);
  EXPECT_EQ(w.shape[0], 2);
  EXPECT_EQ(w.shape[1], 2);
  EXPECT_EQ(view_bytes(w), data.substr(4, 8));
  EXPECT_EQ(f.get("e", DType::kE4M3, 2).numel(), 0);
  const TensorView z = f.get("z", DType::kF16, 0);
  EXPECT_EQ(z.numel(), 1);
  EXPECT_EQ(view_bytes(z), data.substr(14, 2));
}

// ---- accessors and writer checks --------------------------------------------------------------------------

TEST_F(SafetensorsTest, GetChecksDtypeAndRank) {
  const float values[6] = {1, 2, 3, 4, 5, 6};
  SafetensorsWriter writer;
  writer.add("w", TensorView(values, DType::kF32, {2, 3}));
  const std::string path = file("checks.safetensors");
  writer.write(path);
  const SafetensorsFile f = SafetensorsFile::open(path);

  EXPECT_EQ(f.get("w", DType::kF32, 2).ptr<const float>()[5], 6.0f);
  EXPECT_EQ(f.get("w", DType::kF32).ndim, 2);
  EXPECT_EQ(f.get("w", DType::kF32, -1).ndim, 2);
  expect_error([&] { f.get("w", DType::kBF16, 2); }, {"'w'", path, "expected dtype BF16", "got F32"});
  expect_error([&] { f.get("w", DType::kF32, 3); }, {"'w'", path, "expected rank 3", "got rank 2", "[2, 3]"});
}

TEST_F(SafetensorsTest, MissingTensorNamesTensorAndFile) {
  const std::string path = file("missing.safetensors");
  SafetensorsWriter().write(path);
  const SafetensorsFile f = SafetensorsFile::open(path);
  expect_error([&] { f.get("expert.0.w13"); }, {"'expert.0.w13'", path});
  expect_error([&] { f.get("expert.0.w13", DType::kU8, 2); }, {"'expert.0.w13'", path});
}

TEST_F(SafetensorsTest, MoveKeepsTheMappingAlive) {
  const int32_t values[2] = {7, -9};
  SafetensorsWriter writer;
  writer.add("v", TensorView(values, DType::kI32, {2}));
  writer.write(file("a.safetensors"));
  writer.write(file("b.safetensors"));

  SafetensorsFile a = SafetensorsFile::open(file("a.safetensors"));
  SafetensorsFile moved(std::move(a));
  EXPECT_EQ(moved.get("v").ptr<const int32_t>()[1], -9);
  SafetensorsFile other = SafetensorsFile::open(file("b.safetensors"));
  other = std::move(moved);  // unmaps b, takes over a
  EXPECT_EQ(other.path(), file("a.safetensors"));
  EXPECT_EQ(other.get("v").ptr<const int32_t>()[0], 7);
}

TEST_F(SafetensorsTest, OverwritingAMappedFileKeepsOldViewsValid) {
  const uint8_t old_bytes[4] = {1, 2, 3, 4};
  const std::string path = file("overwrite.safetensors");
  SafetensorsWriter first;
  first.add("x", TensorView(old_bytes, DType::kU8, {4}));
  first.write(path);
  const SafetensorsFile old_file = SafetensorsFile::open(path);
  const TensorView old_view = old_file.get("x");

  SafetensorsWriter second;
  second.add_metadata("k", "v");
  second.write(path);
  EXPECT_EQ(view_bytes(old_view), std::string("\x01\x02\x03\x04", 4));
  EXPECT_FALSE(SafetensorsFile::open(path).contains("x"));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);  // no temp file left
}

TEST_F(SafetensorsTest, WriterRejectsBadInput) {
  const float values[6] = {};
  SafetensorsWriter writer;
  writer.add("t", TensorView(values, DType::kF32, {2, 3}));
  expect_error([&] { writer.add("t", TensorView(values, DType::kF32, {6})); }, {"'t'", "duplicate"});
  expect_error([&] { writer.add("__metadata__", TensorView(values, DType::kF32, {6})); }, {"reserved"});
  expect_error([&] { writer.add("empty", TensorView()); }, {"'empty'", "no data"});

  TensorView strided(values, DType::kF32, {2, 2});
  strided.strides[0] = 3;  // rows of a [2, 3] buffer
  expect_error([&] { writer.add("strided", strided); }, {"'strided'", "contiguous"});

  // A CUDA view is rejected before its pointer could be read.
  const TensorView on_gpu(values, DType::kF32, {6}, Device::cuda(0));
  expect_error([&] { writer.add("gpu", on_gpu); }, {"'gpu'", "CPU", "cuda:0"});

  writer.add_metadata("k", "v");
  expect_error([&] { writer.add_metadata("k", "w"); }, {"duplicate metadata key 'k'"});

  expect_error([&] { writer.write((dir_ / "no_such_dir" / "x.safetensors").string()); }, {"no_such_dir"});
  const std::string path = file("ok.safetensors");
  writer.write(path);  // the rejected calls left the writer usable
  EXPECT_EQ(SafetensorsFile::open(path).names(), std::vector<std::string>{"t"});
}

// ---- malformed files: one test per error --------------------------------------------------------------------

TEST_F(SafetensorsTest, ErrorMissingFile) { expect_open_error(file("nope.safetensors"), {"cannot open"}); }

TEST_F(SafetensorsTest, ErrorNotARegularFile) { expect_open_error(dir_.string(), {"not a regular file"}); }

TEST_F(SafetensorsTest, ErrorShorterThanEightBytes) {
  const std::string path = file("short.safetensors");
  write_bytes(path, "");
  expect_open_error(path, {"0 bytes", "shorter than the 8-byte", "truncated"});
  write_bytes(path, std::string("\x02\x00\x00\x00\x00", 5));
  expect_open_error(path, {"5 bytes", "shorter than the 8-byte", "truncated"});
}

TEST_F(SafetensorsTest, ErrorHeaderLengthBeyondFile) {
  expect_open_error(write_raw("{}", "", 100), {"truncated", "header length is 100", "only 2 bytes"});
}

TEST_F(SafetensorsTest, ErrorAbsurdHeaderLength) {
  expect_open_error(write_raw("{}", "", int64_t(1) << 40), {"header length 1099511627776", "exceeds the limit"});
  expect_open_error(write_raw("{}", "", int64_t(kMaxSafetensorsHeaderBytes) + 1), {"exceeds the limit"});
}

TEST_F(SafetensorsTest, ErrorHeaderNotJson) {
  expect_open_error(write_raw(R"({"t": {"dtype": )"), {"not valid JSON"});
  expect_open_error(write_raw(""), {"not valid JSON"});
  expect_open_error(write_raw("{\"\xff\": 1}"), {"not valid JSON"});  // invalid UTF-8
}

TEST_F(SafetensorsTest, ErrorHeaderNotObject) {
  expect_open_error(write_raw("[1, 2]"), {"not a JSON object", "array"});
  expect_open_error(write_raw("\"text\""), {"not a JSON object", "string"});
}

TEST_F(SafetensorsTest, ErrorEntryMissingField) {
  expect_open_error(write_entry(R"({"shape":[1],"data_offsets":[0,1]})", "x"), {"'t'", "missing \"dtype\""});
  expect_open_error(write_entry(R"({"dtype":"U8","data_offsets":[0,1]})", "x"), {"'t'", "missing \"shape\""});
  expect_open_error(write_entry(R"({"dtype":"U8","shape":[1]})", "x"), {"'t'", "missing \"data_offsets\""});
}

TEST_F(SafetensorsTest, ErrorEntryWrongJsonTypes) {
  expect_open_error(write_entry("3"), {"'t'", "entry must be a JSON object", "number"});
  expect_open_error(write_entry(R"({"dtype":8,"shape":[1],"data_offsets":[0,1]})", "x"),
                    {"'t'", "\"dtype\" must be a string", "number"});
  expect_open_error(write_entry(R"({"dtype":"U8","shape":"1","data_offsets":[0,1]})", "x"),
                    {"'t'", "\"shape\" must be an array", "string"});
  expect_open_error(write_entry(R"({"dtype":"U8","shape":[1.0],"data_offsets":[0,1]})", "x"),
                    {"'t'", "\"shape\" must hold integers"});
  expect_open_error(write_entry(R"({"dtype":"U8","shape":[true],"data_offsets":[0,1]})", "x"),
                    {"'t'", "\"shape\" must hold integers", "boolean"});
  expect_open_error(write_entry(R"({"dtype":"U8","shape":[1],"data_offsets":[0]})", "x"),
                    {"'t'", "\"data_offsets\" must be [begin, end]", "[0]"});
  expect_open_error(write_entry(R"({"dtype":"U8","shape":[1],"data_offsets":{"a":1}})", "x"),
                    {"'t'", "\"data_offsets\" must be [begin, end]"});
  expect_open_error(write_entry(R"({"dtype":"U8","shape":[1],"data_offsets":[-1,0]})", "x"),
                    {"'t'", "non-negative integers", "[-1,0]"});
  expect_open_error(write_entry(R"({"dtype":"U8","shape":[1],"data_offsets":[0,1.0]})", "x"),
                    {"'t'", "\"data_offsets\" must be [begin, end]"});
}

TEST_F(SafetensorsTest, ErrorUnknownDtype) {
  expect_open_error(write_entry(R"({"dtype":"F64","shape":[1],"data_offsets":[0,8]})", "12345678"),
                    {"'t'", "unknown dtype 'F64'"});
  expect_open_error(write_entry(R"({"dtype":"bf16","shape":[1],"data_offsets":[0,2]})", "12"),
                    {"'t'", "unknown dtype 'bf16'"});
}

TEST_F(SafetensorsTest, ErrorNegativeDimension) {
  expect_open_error(write_entry(R"({"dtype":"U8","shape":[2,-3],"data_offsets":[0,0]})"),
                    {"'t'", "negative dimension -3"});
}

TEST_F(SafetensorsTest, ErrorRankAboveMaximum) {
  expect_open_error(write_entry(R"({"dtype":"U8","shape":[1,1,1,1,1],"data_offsets":[0,1]})", "x"),
                    {"'t'", "rank 5", "maximum of 4"});
}

TEST_F(SafetensorsTest, ErrorOffsetsBeginAfterEnd) {
  expect_open_error(write_entry(R"({"dtype":"U8","shape":[4],"data_offsets":[8,4]})", "0123456789"),
                    {"'t'", "begin 8 > end 4"});
}

TEST_F(SafetensorsTest, ErrorOffsetsBeyondDataSection) {
  expect_open_error(write_entry(R"({"dtype":"U8","shape":[8],"data_offsets":[0,8]})", "0123"),
                    {"'t'", "end 8", "beyond the data section of 4 bytes"});
}

TEST_F(SafetensorsTest, ErrorByteSizeMismatch) {
  expect_open_error(write_entry(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})", "01234567"),
                    {"'t'", "byte size mismatch", "[3]", "F32", "needs 12 bytes", "span 8"});
}

TEST_F(SafetensorsTest, ErrorShapeProductOverflow) {
  expect_open_error(write_entry(R"({"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]})"),
                    {"'t'", "element count", "overflows"});
  expect_open_error(write_entry(R"({"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]})"),
                    {"'t'", "byte size", "overflows"});
  expect_open_error(write_entry(R"({"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,0]})"),
                    {"'t'", "too large"});
  // A zero dimension makes the tensor empty however large the others are.
  const std::string ok = write_entry(R"({"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]})");
  EXPECT_EQ(SafetensorsFile::open(ok).get("t").numel(), 0);
}

TEST_F(SafetensorsTest, ErrorOverlappingRanges) {
  expect_open_error(write_raw(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"U8","shape":[8],"data_offsets":[4,12]}})",
                              "0123456789AB"),
                    {"'a'", "'b'", "overlap"});
  // A range inside a longer one overlaps too, whichever comes first in the header.
  expect_open_error(write_raw(R"({"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},)"
                              R"("a":{"dtype":"U8","shape":[12],"data_offsets":[0,12]}})",
                              "0123456789AB"),
                    {"'a'", "'b'", "overlap"});
  // Empty tensors own no bytes, so one inside another range is fine.
  const std::string ok = write_raw(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},)"
                                   R"("e":{"dtype":"U8","shape":[0],"data_offsets":[4,4]}})",
                                   "01234567");
  EXPECT_EQ(SafetensorsFile::open(ok).names(), (std::vector<std::string>{"a", "e"}));
}

TEST_F(SafetensorsTest, ErrorDuplicateTensorName) {
  expect_open_error(write_raw(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                              R"("t":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                              "xy"),
                    {"duplicate key 't'"});
}

TEST_F(SafetensorsTest, ErrorMetadataValueNotString) {
  expect_open_error(write_raw(R"({"__metadata__":{"ok":"1","bad":3}})"),
                    {"\"__metadata__\"", "key 'bad'", "must be a string", "number"});
  expect_open_error(write_raw(R"({"__metadata__":["a"]})"), {"\"__metadata__\" must be a JSON object", "array"});
}

}  // namespace
}  // namespace fp4moe
