// HTML escaping shared by the pages the binary writes (risk, reports).
#pragma once

#include <string>
#include <string_view>

namespace cr {

// Text for HTML element content and quoted attribute values: & < > " ' escaped.
inline std::string HtmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace cr
