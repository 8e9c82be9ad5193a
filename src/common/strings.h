// Small string helpers shared by every module (one copy of each).
#pragma once

#include <string>
#include <string_view>

namespace cr {

// ASCII lower-casing (SQL identifiers, function names, file extensions):
// bytes outside A-Z are kept as they are, whatever the locale.
inline std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace cr
