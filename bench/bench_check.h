// Benchmark setup helper: a step that fails ends the benchmark with its error
// (setup is not measured, and a benchmark over a half-built room means nothing).
#pragma once

#include <fmt/core.h>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

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

// A benchmark's own flag: `--NAME=` and what to do with its value.
struct Flag {
  const char* prefix;
  std::function<void(const char*)> set;
};

// Takes the benchmark's own flags out of argv and returns the rest for
// benchmark::Initialize, with random interleaving of the benchmarks on
// unless the command line says otherwise (the two sides of a ratio then
// share the machine's noise).
inline std::vector<char*> BenchArgs(int argc, char** argv, const std::vector<Flag>& flags) {
  static char interleave[] = "--benchmark_enable_random_interleaving=true";
  std::vector<char*> rest;
  bool interleave_given = false;
  for (int i = 0; i < argc; ++i) {
    interleave_given = interleave_given ||
                       std::strncmp(argv[i], "--benchmark_enable_random_interleaving", 38) == 0;
    bool taken = false;
    for (const Flag& f : flags) {
      const size_t n = std::strlen(f.prefix);
      if (!taken && std::strncmp(argv[i], f.prefix, n) == 0) {
        f.set(argv[i] + n);
        taken = true;
      }
    }
    if (!taken) rest.push_back(argv[i]);
  }
  if (!interleave_given) rest.push_back(interleave);
  return rest;
}

}  // namespace cr::bench
