// Helpers shared by every test binary: fresh random seeds (replayable) and error-message checks.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>

#include "fp4moe/error.hpp"

namespace fp4moe::testing {

// A fresh seed per call; FP4MOE_TEST_SEED=<seed> replays a failing run (tests print their seeds).
inline uint64_t fresh_seed() {
  if (const char* s = std::getenv("FP4MOE_TEST_SEED")) return std::strtoull(s, nullptr, 10);
  std::random_device rd;
  return (uint64_t(rd()) << 32) ^ rd();
}

// Expects fn() to throw fp4moe::Error whose message contains `needle`.
inline void expect_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one containing: " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what();
  }
}

}  // namespace fp4moe::testing
