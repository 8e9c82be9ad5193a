// What both reports share: HTML escaping and one page frame with inline
// styles (no scripts, fonts or images from anywhere), times, count lists.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace cr::report {

std::string Escape(std::string_view text);
// A whole page: <title> and <h1> `title`, `subtitle` under it, then `body`.
std::string Page(std::string_view title, std::string_view subtitle, std::string_view body);

// Seconds since the epoch of "YYYY-MM-DDTHH:MM:SSZ" or "YYYY-MM-DD" (UTC);
// -1 for anything else.
long long ParseTime(std::string_view text);

// "A 2, B 1" (in key order), or `none` when empty.
std::string CountsText(const std::map<std::string, int64_t>& counts, std::string_view none);

}  // namespace cr::report
