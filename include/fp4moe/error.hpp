// fp4moe: the one exception type of the library, and the helpers that build its messages.
//
// Every error the library reports is an fp4moe::Error. Messages about caller input name the argument,
// what was expected and what was given, e.g.
//   fp4moe: argument 'topk_ids': expected dtype I32, got F32
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace fp4moe {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

}  // namespace detail

// Throws Error("fp4moe: <parts...>").
template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  throw Error(detail::concat("fp4moe: ", parts...));
}

// Throws Error("fp4moe: argument '<arg>': expected <expected>, got <actual>").
template <class Expected, class Actual>
[[noreturn]] void fail_arg(std::string_view arg, const Expected& expected, const Actual& actual) {
  throw Error(detail::concat("fp4moe: argument '", arg, "': expected ", expected, ", got ", actual));
}

}  // namespace fp4moe

// FP4MOE_CHECK(cond, message parts...): throws fp4moe::Error with the parts when cond is false.
#define FP4MOE_CHECK(cond, ...)          \
  do {                                   \
    if (!(cond)) ::fp4moe::fail(__VA_ARGS__); \
  } while (0)

// FP4MOE_CHECK_ARG(cond, "arg", expected, actual): argument check with the standard message.
#define FP4MOE_CHECK_ARG(cond, arg, expected, actual)         \
  do {                                                        \
    if (!(cond)) ::fp4moe::fail_arg((arg), (expected), (actual)); \
  } while (0)
