// Shared CPU reference building blocks (see cpu_math.hpp).
#include "reference/cpu_math.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "fp4moe/nvfp4.hpp"

namespace fp4moe::reference {

namespace {

// Decoded values of every E2M1 byte pair and every E4M3 byte, built once from the shared nvfp4.hpp conversions.
struct Tables {
  float pair[256][2];  // packed byte → (low element, high element)
  float e4m3[256];
};

const Tables& tables() {
  static const Tables t = [] {
    Tables r{};
    for (int b = 0; b < 256; ++b) {
      r.pair[b][0] = e2m1_to_float(uint8_t(b & 0xf));
      r.pair[b][1] = e2m1_to_float(uint8_t(b >> 4));
      r.e4m3[b] = e4m3_to_float(uint8_t(b));
    }
    return r;
  }();
  return t;
}

}  // namespace

int max_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

int thread_index() {
#if defined(_OPENMP)
  return omp_get_thread_num();
#else
  return 0;
#endif
}

float dot(const float* a, const float* b, int64_t n) {
  float lane[kLanes] = {};
  for (int64_t j = 0; j < n; j += kLanes) {
    for (int l = 0; l < kLanes; ++l) lane[l] = lane[l] + mul_rn(a[j + l], b[j + l]);
  }
  for (int width = kLanes / 2; width >= 1; width /= 2) {
    for (int l = 0; l < width; ++l) lane[l] = lane[l] + lane[l + width];
  }
  return lane[0];
}

void dequantize_row(const uint8_t* packed, const uint8_t* scales, int64_t cols, float* dst) {
  const Tables& t = tables();
  for (int64_t b = 0; b < cols / kBlockSize; ++b) {
    const float sf = t.e4m3[scales[b]];
    const uint8_t* q = packed + b * (kBlockSize / 2);
    float* d = dst + b * kBlockSize;
    for (int i = 0; i < kBlockSize / 2; ++i) {
      d[2 * i] = mul_rn(t.pair[q[i]][0], sf);
      d[2 * i + 1] = mul_rn(t.pair[q[i]][1], sf);
    }
  }
}

}  // namespace fp4moe::reference
