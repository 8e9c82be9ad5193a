// Benchmark setup helper: a step that fails ends the benchmark with its error
// (setup is not measured, and a benchmark over a half-built room means nothing).
#pragma once

#include <fmt/core.h>

#include <cstdlib>

#include "common/error.h"

namespace cr::bench {

inline void Check(const Status& st, const char* what) {
  if (!st) {
    fmt::print(stderr, "{}: {}\n", what, st.error().ToString());
    std::exit(1);
  }
}

// The same for a result: its value, or the end of the benchmark.
template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r) Check(std::unexpected(r.error()), what);
  return std::move(*r);
}

}  // namespace cr::bench
