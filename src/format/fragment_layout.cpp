// Fragment-tile weight layout (see fragment_layout.hpp): packing from linear storage and element lookup.
#include "format/fragment_layout.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "fp4moe/error.hpp"
#include "fp4moe/nvfp4.hpp"

namespace fp4moe::format {

namespace {

// Where logical element (row, k) lives: its tile, lane, word and register/half inside the word.
struct FragSlot {
  int64_t tile;
  int lane, word, reg, half, row_half;
};

FragSlot slot_of(const FragShape& s, int64_t row, int64_t k) {
  const int rr = int(row % kFragRows), kk = int(k % kFragK);
  const int g = rr % 8, row_half = rr / 8, t = kk / 16, j = kk % 16;
  const int q = j % 4;
  return {(row / kFragRows) * s.k_tiles + k / kFragK, 4 * g + t, j / 4, (q < 2 ? 0 : 2) + row_half, q % 2, row_half};
}

size_t word_offset(const FragSlot& p) { return size_t(p.tile) * kFragCodeBytes + size_t(p.lane) * 16 + size_t(p.word) * 4; }
size_t scale_offset(const FragSlot& p) { return size_t(p.tile) * kFragScaleBytes + size_t(p.lane) * 2 + size_t(p.row_half); }

}  // namespace

uint8_t frag_scale_code(uint8_t e4m3) {
  const uint8_t magnitude = e4m3 & 0x7fu;
  if (magnitude == 0x7fu) return 0xffu;
  if (magnitude == 0) return 0;
  int e = 0;
  const float f = std::frexp(e4m3_to_float(magnitude), &e);  // |sf| = 2f · 2^(e-1), 2f in [1, 2)
  const int m = int(std::lround((2.0f * f - 1.0f) * 8.0f));
  return uint8_t(8 * (e - 1 + 20) + m);
}

float frag_scale_code_value(uint8_t code) {
  if (code == 0xffu) return std::numeric_limits<float>::quiet_NaN();
  return std::ldexp(1.0f + float(code % 8) / 8.0f, code / 8 - 20);
}

uint8_t frag_code_pair(uint8_t pair, uint8_t e4m3) {
  const uint8_t magnitude = e4m3 & 0x7fu;
  if (magnitude == 0x7fu) return pair;               // NaN: every product is NaN whatever the code
  if (e4m3 & 0x80u) pair ^= 0x88u;                   // sf < 0 (or −0): e2m1 · sf = (−e2m1) · |sf|
  return magnitude == 0 ? uint8_t(pair & 0x88u) : pair;  // sf = ±0: signed zeros
}

FragShape frag_shape(int64_t rows, int64_t k, int64_t row_align) {
  FP4MOE_CHECK(row_align > 0 && row_align % kFragRows == 0, "row_align must be a positive multiple of 16");
  FragShape s;
  s.rows = rows;
  s.k = k;
  s.row_tiles = (rows + row_align - 1) / row_align * (row_align / kFragRows);
  s.k_tiles = (k + kFragK - 1) / kFragK;
  return s;
}

// Bits of a code byte (low nibble = element k, high nibble = element k+1) placed as register `reg` of a word.
uint32_t place_pair(int reg, uint8_t byte) {
  uint32_t word = 0;
  for (int half = 0; half < 2; ++half) {
    const uint32_t code = half == 0 ? (byte & 0xfu) : (byte >> 4);
    for (int b = 0; b < 4; ++b) word |= ((code >> b) & 1u) << (kFragBitPos[reg][b] + 16 * half);
  }
  return word;
}

void pack_fragment_tiles(const uint8_t* codes, const uint8_t* scales, const FragShape& s, uint8_t* dst_codes,
                         uint8_t* dst_scales) {
  static const auto lut = [] {
    std::vector<uint32_t> t(4 * 256);
    for (int reg = 0; reg < 4; ++reg) {
      for (int b = 0; b < 256; ++b) t[size_t(reg * 256 + b)] = place_pair(reg, uint8_t(b));
    }
    return t;
  }();
  static const auto scale_codes = [] {
    std::vector<uint8_t> t(256);
    for (int b = 0; b < 256; ++b) t[size_t(b)] = frag_scale_code(uint8_t(b));
    return t;
  }();
  const int64_t row_bytes = s.k / 2, row_scales = s.k / 16;
  // A code byte pair (elements k, k+1) of row r as the tiles hold it for its block's scale, or 0 in the padding.
  auto byte_at = [&](int64_t r, int64_t k) -> uint8_t {
    return r < s.rows && k < s.k ? frag_code_pair(codes[r * row_bytes + k / 2], scales[r * row_scales + k / 16]) : 0;
  };
#pragma omp parallel for schedule(static)
  for (int64_t tile = 0; tile < s.tiles(); ++tile) {
    const int64_t r0 = (tile / s.k_tiles) * kFragRows, k0 = (tile % s.k_tiles) * kFragK;
    for (int lane = 0; lane < 32; ++lane) {
      const int g = lane / 4, t = lane % 4;
      for (int w = 0; w < 4; ++w) {
        const int64_t k = k0 + 16 * t + 4 * w;
        const uint32_t word = lut[size_t(0 * 256 + byte_at(r0 + g, k))] | lut[size_t(1 * 256 + byte_at(r0 + g + 8, k))] |
                              lut[size_t(2 * 256 + byte_at(r0 + g, k + 2))] |
                              lut[size_t(3 * 256 + byte_at(r0 + g + 8, k + 2))];
        std::memcpy(dst_codes + size_t(tile) * kFragCodeBytes + size_t(lane) * 16 + size_t(w) * 4, &word, 4);
      }
      for (int half = 0; half < 2; ++half) {
        const int64_t r = r0 + g + 8 * half, k = k0 + 16 * t;
        dst_scales[size_t(tile) * kFragScaleBytes + size_t(lane) * 2 + size_t(half)] =
            r < s.rows && k < s.k ? scale_codes[scales[r * row_scales + k / 16]] : 0;
      }
    }
  }
}

uint8_t fragment_code(const uint8_t* tile_codes, const FragShape& s, int64_t row, int64_t k) {
  const FragSlot p = slot_of(s, row, k);
  uint32_t word;
  std::memcpy(&word, tile_codes + word_offset(p), 4);
  uint8_t code = 0;
  for (int b = 0; b < 4; ++b) code |= uint8_t(((word >> (kFragBitPos[p.reg][b] + 16 * p.half)) & 1u) << b);
  return code;
}

uint8_t fragment_scale(const uint8_t* tile_scales, const FragShape& s, int64_t row, int64_t k) {
  return tile_scales[scale_offset(slot_of(s, row, k))];
}

}  // namespace fp4moe::format
