// The CUDA backend's weight layout: "fragment tiles". Each expert matrix [rows, K] of NVFP4 values is cut into
// tiles of 16 rows × 64 k. A tile is 512 bytes of codes + 64 bytes of E4M3 scales, ordered so that lane L = 4g + t
// of a warp reads its 16 code bytes at L·16 and its 2 scale bytes at L·2, and those bytes are exactly the A
// fragments of four m16n8k16 MMAs (rows g and g+8, logical k 16t .. 16t+15, one scale block per row).
//
// Logical k inside a tile: lane t owns k 16t..16t+15. MMA step s (0..3) takes from it k 16t+4s+{0,1} (A regs 0/1,
// B reg 0) and 16t+4s+{2,3} (A regs 2/3, B reg 1), so B (the activations) is 16 contiguous values per lane.
// Word s of a lane holds the 8 codes of step s, bits placed so that each A register (a BF16 pair) comes out of
// one or two integer ops (fragment_decode.cuh); a code's bits are m (value LSB), e0, e1, s (sign):
//   reg 0 (row g,   k+0/k+1): lo m@6  e0@7  e1@8  s@15, hi = lo + 16     → w & kFragMask
//   reg 1 (row g+8, k+0/k+1): lo m@3  e0@4  e1@5  s@12, hi = lo + 16     → (w << 3) & kFragMask
//   reg 2 (row g,   k+2/k+3): lo m@0  e0@1  e1@2  s@9,  hi = lo + 16     → (w << 6) & kFragMask
//   reg 3 (row g+8, k+2/k+3): lo m@13 e0@14 e1@10 s@11, hi = lo + 16     → ((w >> 7) & 0x00D800D8) · 0x821 & kFragMask
// Each result is a BF16 pair whose bits are the code's magnitude bits in the lowest exponent bits and the top
// mantissa bit: the value is e2m1 · 2^-126 (codes with e = 0 land on BF16 subnormals, as they should).
// Scales are stored as scale codes (frag_scale_code), not E4M3 bytes: a kernel makes the BF16 pair of |sf| · 2^117
// from one with a single integer multiply-add. The sign of a scale moves into its block's codes, and a zero scale
// zeroes their magnitudes (frag_code_pair), so every dequantized value e2m1 · sf, ±0 and NaN included, is unchanged.
// Rows are padded to the tile multiple `row_align` and K to a multiple of 64 with zero codes (and scale code 0).
#pragma once

#include <cstdint>
#include <vector>

namespace fp4moe::format {

inline constexpr int kFragRows = 16;           // rows of one tile
inline constexpr int kFragK = 64;              // k of one tile
inline constexpr int kFragCodeBytes = 512;     // 32 lanes × 16 bytes
inline constexpr int kFragScaleBytes = 64;     // 32 lanes × 2 bytes (row g, row g+8)
inline constexpr uint32_t kFragMask = 0x81C081C0u;

// Bit positions (m, e0, e1, s) of the low code of register `reg` (the high code is 16 bits up).
inline constexpr int kFragBitPos[4][4] = {{6, 7, 8, 15}, {3, 4, 5, 12}, {0, 1, 2, 9}, {13, 14, 10, 11}};

// The MMA k order of a tile: logical k `l` (0..63) of a tile is position fragment_k_slot(l) of the 64 k that the
// four MMA steps consume in turn (step s takes positions 16s..16s+15, in the m16n8k16 order: 2t, 2t+1 for A regs 0/1
// and 2t+8, 2t+9 for regs 2/3). The weight-streaming kernels never need it (their B operands are loaded per lane in
// logical order); operands that come from shared memory in the MMA's own order (wgmma) are stored in it.
constexpr int fragment_k_slot(int l) {
  const int t = l / 16, s = (l % 16) / 4, i = l % 4;
  return 16 * s + 8 * (i / 2) + 2 * t + i % 2;
}

// The scale code of an E4M3 block scale sf: 8 · (e + 20) + m where |sf| = 2^e · (1 + m/8) (subnormals normalized,
// e in -9..8), 0xFF for NaN, 0 for ±0 (whose blocks have zero codes). As a 16-bit pattern, code · 16 + 0x7000 is
// the BF16 |sf| · 2^117 (exponent field 224 + code / 8: 235..252, or 255 for NaN).
uint8_t frag_scale_code(uint8_t e4m3);
// The value of a scale code: |sf| (2^-20 for code 0), NaN for 0xFF.
float frag_scale_code_value(uint8_t code);
// A byte of two E2M1 codes of one block as the tiles hold it, for the block's E4M3 scale: signs flipped where the
// scale is negative, magnitudes zeroed where it is ±0 (each code's value times frag_scale_code_value is then
// e2m1 · sf, signed zeros included).
uint8_t frag_code_pair(uint8_t pair, uint8_t e4m3);

// Shape of one expert matrix in fragment tiles.
struct FragShape {
  int64_t rows = 0, k = 0;    // logical
  int64_t row_tiles = 0;      // padded rows / 16
  int64_t k_tiles = 0;        // ceil(k / 64)
  int64_t tiles() const { return row_tiles * k_tiles; }
  int64_t code_bytes() const { return tiles() * kFragCodeBytes; }
  int64_t scale_bytes() const { return tiles() * kFragScaleBytes; }
};

// rows padded up to a multiple of row_align (a multiple of 16), k up to a multiple of 64.
FragShape frag_shape(int64_t rows, int64_t k, int64_t row_align);

// Converts one expert matrix from linear storage (codes [rows, k/2], element 2i in the low nibble; linear E4M3
// scales [rows, k/16]) into fragment tiles: codes [tiles × 512] and scales [tiles × 64], tile (rt, kt) at index
// rt·k_tiles + kt. The destination spans shape.code_bytes() / shape.scale_bytes().
void pack_fragment_tiles(const uint8_t* codes, const uint8_t* scales, const FragShape& shape, uint8_t* dst_codes,
                         uint8_t* dst_scales);

// The inverse (for tests): the 4-bit code (frag_code_pair) and the scale code of logical element (row, k).
uint8_t fragment_code(const uint8_t* tile_codes, const FragShape& shape, int64_t row, int64_t k);
uint8_t fragment_scale(const uint8_t* tile_scales, const FragShape& shape, int64_t row, int64_t k);

}  // namespace fp4moe::format
