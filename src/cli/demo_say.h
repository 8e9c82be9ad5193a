// How the demo's steps print: a numbered step title, indented lines, and a
// result table indented like them. Shared by the demo's step files.
#pragma once

#include <fmt/core.h>

#include <sstream>
#include <string>

#include "results/results.h"

namespace cr::cli::demo_say {

inline void Step(int n, const std::string& title) { fmt::print("\n[{}] {}\n", n, title); }
inline void Say(const std::string& text) { fmt::print("    {}\n", text); }

inline void SayTable(const results::ResultSet& r) {
  std::istringstream lines(results::Render(r, "table"));
  std::string line;
  while (std::getline(lines, line)) Say(line);
}

}  // namespace cr::cli::demo_say
